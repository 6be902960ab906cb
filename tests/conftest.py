"""Shared fixtures: an isolated data folder, real databases (SQLite file and PostgreSQL), sessions, the live app."""

from __future__ import annotations

import os
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
from sqlalchemy.orm import Session

from core.config import Settings, get_settings
from core.db import dispose_engines, session_scope

REPO = Path(__file__).resolve().parents[1]
# Data the tests use lives in the repository (tests/data/README.md): a clone runs alone.
TEST_DATA = REPO / "tests" / "data"
DEV_QUESTIONS = TEST_DATA / "questions_dev.jsonl"
PORTAL_FAQ = TEST_DATA / "portal_faq_dev.jsonl.gz"
REQUIRED_PROCEDURES = TEST_DATA / "required_procedures.yaml"
STARTUP_SECONDS = 60  # seeding the knowledge base and building the hash-embedder index
POSTGRES_ADMIN_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh MOTCUA_DATA_DIR with the fast hash embedder, settings re-read."""
    monkeypatch.setenv("MOTCUA_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("MOTCUA_EMBEDDER", "hash")
    monkeypatch.delenv("MOTCUA_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "var"
    dispose_engines()
    get_settings.cache_clear()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new empty database, once on SQLite and once on a throw-away PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'test.db'}"
        monkeypatch.setenv("MOTCUA_DATABASE_URL", url)
        get_settings.cache_clear()
        yield url
        return
    name = f"motcua_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means no server here
        admin.dispose()
        pytest.fail(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("MOTCUA_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


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


@contextmanager
def running_app() -> Iterator[str]:
    """The real app (start-up included) on uvicorn in a background thread, on the configured database."""
    from admin_api.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
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
            time.sleep(0.1)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def live_server(data_dir: Path) -> Iterator[str]:
    """The real app on a loopback port; a test asking for `database_url` first gets it on that database."""
    with running_app() as base:
        yield base
