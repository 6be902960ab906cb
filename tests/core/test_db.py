"""The database layer on a real PostgreSQL server: connections the server dropped are replaced, not handed out."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

import core.db
from core.config import Settings
from core.db import get_engine, session_scope
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.postgres


def backend_pid() -> int:
    """The server process behind the pooled connection a new session gets."""
    with session_scope() as session:
        return int(session.scalar(text("SELECT pg_backend_pid()")))


def terminate(pid: int) -> None:
    """Drop one connection from the server side, as a server restart or an idle timeout would."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_connection_dropped_while_idle_is_replaced_before_use(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    get_engine().pool.dispose()
    dropped = backend_pid()  # the pool now holds this one connection, idle
    terminate(dropped)
    monkeypatch.setattr(core.db, "IDLE_PING_SECONDS", 0.0)  # any idle time is long enough to check
    assert backend_pid() != dropped  # pinged, found dead, replaced: the request never saw it


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_connection_in_steady_use_is_not_pinged(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    get_engine().pool.dispose()
    dropped = backend_pid()
    terminate(dropped)
    monkeypatch.setattr(core.db, "IDLE_PING_SECONDS", 3600.0)
    # Used a moment ago, so no round trip is spent checking it: the first statement meets the dropped connection,
    # fails, and the pool replaces it for the next request.
    with pytest.raises(OperationalError):
        backend_pid()
    assert backend_pid() != dropped
