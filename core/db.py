"""Database engine, sessions and schema migrations (SQLAlchemy 2 + Alembic)."""

from __future__ import annotations

import contextvars
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, DateTime, Dialect, Engine, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from core.config import Settings, get_settings

# Stable constraint names so Alembic migrations work the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out, on every database (SQLite drops the zone on its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:  # noqa: ARG002
        """Always hand back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every ORM model."""

    metadata = MetaData(naming_convention=NAMING)


_engines: dict[str, Engine] = {}
_lock = threading.Lock()
IDLE_PING_SECONDS = 10.0  # a server connection idle this long is pinged before use
THREADS = 40  # at least the server's threads (MOTCUA_HTTP_THREADS) plus the engine's and background jobs' ones


def _default_url(settings: Settings) -> str:
    """The configured URL; resolving the SQLite path touches the file system, so it is done once per value."""
    return settings.database_url or _sqlite_url(settings.data_dir, Path.cwd())


@lru_cache(maxsize=32)
def _sqlite_url(data_dir: Path, cwd: Path) -> str:  # noqa: ARG001 - cwd keys the cache: data_dir may be relative
    return Settings(data_dir=data_dir, database_url=None).resolved_database_url


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets its parent folder, foreign keys and WAL."""
    # orjson reads the JSON columns (lists of documents, steps...) twice as fast as the standard library.
    kwargs: dict[str, Any] = {"future": True, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        # One pooled connection per server thread: opening one (with its PRAGMAs) per request costs more
        # than the queue query itself.
        kwargs.update(pool_size=THREADS, max_overflow=THREADS)
    else:
        kwargs.update(pool_size=10, max_overflow=THREADS)
    engine = create_engine(url, **kwargs)
    if not url.startswith("sqlite"):
        _ping_when_idle(engine)
    else:

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a server connection before use only when it sat idle long enough to have been dropped.

    A ping on every checkout (SQLAlchemy's pool_pre_ping) costs a round trip per request; a connection in
    steady use is known to be alive, and if the server restarts under load the first error invalidates the pool.
    """

    @event.listens_for(engine, "checkin")
    def _note_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("checked_in", 0.0) < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure means: not this connection
            raise DisconnectionError(f"stale connection: {exc}") from exc
        if not alive:
            raise DisconnectionError("stale connection")


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for url (default: the configured database), migrated on first use."""
    url = url or _default_url(get_settings())
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = make_engine(url)
            migrate(engine)
            _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _session_factory.cache_clear()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")


def alembic_config(connection: Connection) -> Any:
    """Alembic's configuration for our migrations, running on `connection`."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


# Work to do once the current transaction has ended (committed or rolled back), see after_transaction.
_after_transaction: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "after_transaction", default=None
)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error; then what after_transaction asked for."""
    pending: list[Callable[[], None]] = []
    token = _after_transaction.set(pending)
    try:
        with _session_factory(get_engine(url)).begin() as session:
            yield session
    finally:
        _after_transaction.reset(token)
        for work in pending:
            work()


def after_transaction(work: Callable[[], None]) -> None:
    """Run work once the innermost session_scope has ended, whether it committed or not (now, outside any).

    For records that must outlive a failing transaction without waiting for it: written in a transaction of its
    own while the first one still holds SQLite's single write lock, they would wait for it forever.
    """
    pending = _after_transaction.get()
    if pending is None:
        work()
    else:
        pending.append(work)


@lru_cache(maxsize=32)
def _session_factory(engine: Engine) -> sessionmaker[Session]:
    # One factory per engine: building a sessionmaker makes a new Session class, which costs more than a query.
    return sessionmaker(bind=engine, expire_on_commit=False)
