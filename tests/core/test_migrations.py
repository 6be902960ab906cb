"""The migrations build exactly the schema the models declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import bot.models
import helpdesk.models
import knowledge.models
from core.config import Settings
from core.db import Base, get_engine

MODELS = (bot.models, helpdesk.models, knowledge.models)  # every table is declared in one of these


def test_migrated_schema_equals_the_models(settings: Settings) -> None:
    with get_engine().connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
