"""An official's reply reaches the citizen in their channel; the citizen rates it or reopens the ticket."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot.engine import ConversationEngine, Inbound
from bot.web import messages_for
from core.config import Settings
from core.db import session_scope
from core.errors import Conflict, Invalid
from helpdesk.models import OutboxMessage, Ticket
from helpdesk.service import reply_to_ticket
from knowledge.service import ensure_seeded
from retrieval.retriever import Retriever
from retrieval.service import AskService

NOW = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine(settings: Settings, bundled_retriever: Retriever) -> ConversationEngine:
    """The engine over the bundled knowledge base, seeded into this test's database."""
    with session_scope() as session:
        ensure_seeded(session)
    return ConversationEngine(AskService(bundled_retriever))


def send(engine: ConversationEngine, channel: str, user: str, **kw: str) -> object:
    with session_scope() as session:
        return engine.handle(session, Inbound(channel=channel, user=user, **kw))


def test_reply_reaches_the_web_chat_and_can_be_rated(engine: ConversationEngine) -> None:
    code = send(engine, "web", "w1", text="tôi muốn gặp cán bộ").ticket
    with session_scope() as session:
        reply_to_ticket(session, code, "Chào bạn, bạn mang CCCD đến UBND phường nhé.", now=NOW)
    with session_scope() as session:
        official = messages_for(session, "w1", None)[-1]
        assert official["author"] == "official"
        assert official["text"].startswith("Chào bạn")
        payloads = [b["payload"] for b in official["buttons"]]
        assert payloads[:5] == [f"r:{code}:{n}" for n in range(1, 6)]
        assert payloads[-1] == f"o:{code}"
        ticket = session.scalar(select(Ticket).where(Ticket.code == code))
        assert (ticket.status, ticket.answered_at) == ("answered", NOW)
    assert send(engine, "web", "w1", button=f"r:{code}:4").status == "rated"
    with session_scope() as session:
        assert session.scalar(select(Ticket.rating).where(Ticket.code == code)) == 4
    assert send(engine, "web", "w2", button=f"r:{code}:1").status == "expired"  # not their ticket
    with session_scope() as session:
        assert session.scalar(select(Ticket.rating).where(Ticket.code == code)) == 4


def test_reply_goes_to_telegram_through_the_outbox_and_can_be_reopened(engine: ConversationEngine) -> None:
    code = send(engine, "telegram", "777", text="I want to talk to an official").ticket
    with session_scope() as session:
        reply_to_ticket(session, code, "Hello, please bring your passport.", now=NOW)
    with session_scope() as session:
        queued = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "777")).all()
        assert queued[-1].text == "Hello, please bring your passport."
        assert queued[-1].buttons
    outcome = send(engine, "telegram", "777", button=f"o:{code}")
    assert outcome.status == "reopened"
    assert code in outcome.replies[0].text
    with session_scope() as session:
        assert session.scalar(select(Ticket.status).where(Ticket.code == code)) == "reopened"


def test_bad_replies_are_refused(engine: ConversationEngine) -> None:
    code = send(engine, "web", "w3", text="tôi muốn gặp cán bộ").ticket
    with session_scope() as session, pytest.raises(Invalid, match="empty"):
        reply_to_ticket(session, code, "   ", now=NOW)
    with session_scope() as session:
        session.scalar(select(Ticket).where(Ticket.code == code)).status = "closed"
    with session_scope() as session, pytest.raises(Conflict, match="closed"):
        reply_to_ticket(session, code, "late", now=NOW)
