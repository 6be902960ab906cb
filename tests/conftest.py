"""Shared fixtures: an isolated data folder, real databases (SQLite file and PostgreSQL), sessions."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from core.config import Settings, get_settings
from core.db import dispose_engines, session_scope

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
POSTGRES_ADMIN_URL = os.environ.get(
    "MOTCUA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


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
def database_url(
    request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
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
