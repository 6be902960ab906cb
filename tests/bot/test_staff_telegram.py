"""Staff link their Telegram with `/link CODE`; their notifications then reach that chat through the real PTB path."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

import pytest
from sqlalchemy import select

from bot import telegram as channel
from bot.engine import ConversationEngine, Inbound, Outcome
from bot.texts import say
from core.db import session_scope
from helpdesk.accounts import create_user, get_user
from helpdesk.models import Department, OutboxMessage, Ticket
from helpdesk.notifications import new_link_code
from helpdesk.sla import VN
from knowledge.models import utcnow
from knowledge.service import ensure_seeded
from retrieval.retriever import Retriever
from retrieval.service import AskService
from tests.bot.telegram_standin import callback_update, running_standin, text_update
from tests.bot.test_telegram import TOKEN, eventually

MONDAY_9 = dt.datetime(2026, 11, 23, 9, tzinfo=VN).astimezone(dt.UTC)  # a working moment: nothing waits


def working_clock() -> Callable[[], dt.datetime]:
    """A clock running from a past working Monday 09:00, so that notifications go out at once whenever tests run."""
    started = utcnow()
    return lambda: MONDAY_9 + (utcnow() - started)


@pytest.fixture
def engine(settings: object, bundled_retriever: Retriever) -> ConversationEngine:
    """The engine on this test's database (bundled knowledge base), on the working clock."""
    with session_scope() as session:
        ensure_seeded(session)
    return ConversationEngine(AskService(bundled_retriever), clock=working_clock())


@pytest.fixture
def official(engine: ConversationEngine) -> str:
    """An official of the default desk, which gets every ticket no rule routes elsewhere; returns the username."""
    with session_scope() as session:
        session.add(Department(slug="one-stop", name="Bộ phận Một cửa", is_default=True))
        session.flush()
        create_user(session, username="lan.canbo", password="correct horse 1", role="official", department="one-stop")
    return "lan.canbo"


def link_code(engine: ConversationEngine, username: str) -> str:
    with session_scope() as session:
        return new_link_code(session, get_user(session, username), engine.clock())


def send(engine: ConversationEngine, text: str, *, chat: str = "4242", on: str = "telegram") -> Outcome:
    with session_scope() as session:
        return engine.handle(session, Inbound(channel=on, user=chat, text=text))


def chat_of(username: str) -> str | None:
    with session_scope() as session:
        return get_user(session, username).telegram_chat_id


def our_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Everything our own packages logged."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("bot", "helpdesk", "core"))


def test_link_works_once_in_telegram_and_is_explained_elsewhere(
    engine: ConversationEngine, official: str, caplog: pytest.LogCaptureFixture
) -> None:
    code = link_code(engine, official)
    caplog.set_level(logging.DEBUG)
    web = send(engine, f"/link {code}", on="web", chat="w" * 22)
    assert [r.text for r in web.replies] == [say("link_telegram_only", "vi")]
    assert [r.text for r in send(engine, "/link").replies] == [say("link_usage", "vi")]
    assert [r.text for r in send(engine, "/link ABCD2345").replies] == [say("link_wrong", "vi")]
    assert chat_of(official) is None

    done = send(engine, f"/link@motcua_bot {code.lower()}")  # as Telegram groups send commands
    assert (done.status, [r.text for r in done.replies]) == ("linked", [say("link_done", "vi", username=official)])
    assert chat_of(official) == "4242"
    again = send(engine, f"/link {code}", chat="4343")  # used up
    assert [r.text for r in again.replies] == [say("link_wrong", "vi")]
    assert chat_of(official) == "4242"
    logged = our_logs(caplog)
    assert "telegram notifications linked for user lan.canbo" in logged
    assert code not in logged
    assert "4242" not in logged


def test_link_answers_in_the_chats_language(engine: ConversationEngine, official: str) -> None:
    send(engine, "/lang en")
    assert [r.text for r in send(engine, "/link nope").replies] == [say("link_wrong", "en")]
    code = link_code(engine, official)
    assert [r.text for r in send(engine, f"/link {code}").replies] == [say("link_done", "en", username=official)]
    assert say("link_done", "en", username=official).startswith("Telegram is now linked")


@pytest.mark.e2e
def test_a_linked_official_gets_the_new_ticket_on_telegram(engine: ConversationEngine, official: str) -> None:
    """/link over the real PTB Application and the stand-in, then a citizen's ticket reaches that chat."""
    code = link_code(engine, official)
    with running_standin(TOKEN) as standin:

        async def scenario() -> None:
            application = channel.build_application(TOKEN, engine, base_url=standin.base_url)
            async with channel.running(application):
                standin.push(text_update(1, 5555, f"/link {code}"))
                await eventually(lambda: standin.sent(5555))
                standin.push(callback_update(2, 6666, "h", "cb-1"))  # a citizen asks for an official
                await eventually(lambda: len(standin.sent(5555)) == 2 and standin.sent(6666))

        asyncio.run(scenario())
        linked, notified = standin.sent(5555)
        (escalated,) = standin.sent(6666)
    assert linked["text"] == say("link_done", "vi", username=official)
    with session_scope() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert get_user(session, official).telegram_chat_id == "5555"
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient == "5555").order_by(OutboxMessage.id)
        ).all()
    assert ticket.code in escalated["text"]
    assert notified["text"].startswith("🔔 Yêu cầu mới")
    assert ticket.code in notified["text"]
    assert f"/dashboard/tickets/{ticket.code}" in notified["text"]
    assert "reply_markup" not in notified  # a notification has no buttons
    assert [(m.status, m.attempts, m.chat_message_id is None) for m in rows] == [("sent", 1, False), ("sent", 1, True)]
