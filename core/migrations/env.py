"""Alembic environment: runs on the connection handed over by core.db.migrate, or on MOTCUA's URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import bot.models  # noqa: F401  (each import registers its tables on Base.metadata)
import helpdesk.models  # noqa: F401
import knowledge.models  # noqa: F401
from core.db import Base, make_engine

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from core.config import get_settings

    with make_engine(get_settings().resolved_database_url).begin() as conn:
        _run(conn)
