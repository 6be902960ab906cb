"""The migrations build exactly the schema the models declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlalchemy
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


def test_reports_migrations_go_down_and_up_keeping_their_figures(settings: Settings) -> None:
    """0011 and 0010 undo cleanly and, redone over existing rows, fill ticket_stats and the feedback's answer
    columns from what is there (then the triggers keep them)."""
    import datetime as dt

    from alembic import command
    from sqlalchemy import select, text

    from bot.models import ChatMessage, Conversation, Feedback
    from core.db import alembic_config, migrate, session_scope
    from helpdesk.models import Ticket, TicketStat

    moment = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
    with session_scope() as session:
        conversation = Conversation(channel="web", user_key="c", state={})
        session.add(conversation)
        session.flush()
        answer = ChatMessage(
            conversation_id=conversation.id,
            direction="out",
            author="bot",
            text="…",
            status="answered",
            procedure="birth",
            at=moment,
        )
        session.add(answer)
        session.flush()
        session.add(Feedback(message_id=answer.id, conversation_id=conversation.id, value=1, at=moment))
        session.add(
            Ticket(
                code="T1",
                conversation_id=conversation.id,
                channel="web",
                question="?",
                reason="x",
                department="ho-tich",
                created_at=moment,
                deadline=moment,
            )
        )
    engine = get_engine()
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0009")
    with engine.connect() as conn:
        tables = set(sqlalchemy.inspect(conn).get_table_names())
        assert "ticket_stats" not in tables
        assert "answer_status" not in {c["name"] for c in sqlalchemy.inspect(conn).get_columns("feedback")}
        conn.execute(text("UPDATE tickets SET department = 'cu-tru'"))  # a change while no trigger is there
        conn.commit()
    migrate(engine)
    with session_scope() as session:
        stats = {(s.grain, s.kind, s.department): s.n for s in session.scalars(select(TicketStat))}
        assert stats == {("day", "created", "cu-tru"): 1, ("month", "created", "cu-tru"): 1}
        feedback = session.scalars(select(Feedback)).one()
        assert (feedback.answer_status, feedback.answer_procedure) == ("answered", "birth")
