"""The Telegram channel: the real PTB Application over HTTP against a local Bot API stand-in."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from telegram import Update

from admin_api.app import create_app
from bot import telegram as channel
from bot.cards import utf16_len
from bot.engine import ConversationEngine
from bot.models import InboundUpdate
from bot.texts import say
from core.config import get_settings
from core.db import session_scope
from helpdesk.models import OutboxMessage
from knowledge.models import Procedure
from knowledge.service import ensure_seeded
from retrieval.service import AskService, open_retriever
from tests.bot.telegram_standin import (
    CONTACT,
    DOCUMENT,
    LOCATION,
    PHOTO,
    STICKER,
    VOICE,
    BotApiStandin,
    callback_update,
    message_update,
    running_standin,
    text_update,
)

TOKEN = "123456789:TEST-stand-in-token-for-motcua-tests_0123456789"
SECRET = "webhook-secret_0123456789"
QUESTION = "đăng ký khai sinh"
HOSTILE = "<b>x</b> & <script>alert(1)</script> &amp;"
e2e = pytest.mark.e2e


@pytest.fixture
def engine(data_dir: Path) -> ConversationEngine:
    """The engine on a fresh SQLite database with the bundled knowledge base (hash embedder)."""
    return load()


def load() -> ConversationEngine:
    """What a starting process does: seed if needed, open the persisted index."""
    with session_scope() as session:
        ensure_seeded(session)
    with session_scope() as session:
        return ConversationEngine(AskService(open_retriever(session)))


@pytest.fixture
def standin() -> Iterator[BotApiStandin]:
    with running_standin(TOKEN) as api:
        yield api


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    """Poll until check() is truthy; fail with what it last returned."""
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(check)
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {within} s: {value!r}"
            return value
        await asyncio.sleep(0.05)


def outbox(chat_id: int) -> list[tuple[str, int, str | None]]:
    with session_scope() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient == str(chat_id)).order_by(OutboxMessage.id)
        )
        return [(m.status, m.attempts, m.last_error) for m in rows]


def replies(chat_id: int) -> int:
    """How many replies were queued for a chat (a long card is one reply in several messages)."""
    with session_scope() as session:
        return (
            session.scalar(
                select(func.count(func.distinct(OutboxMessage.chat_message_id))).where(
                    OutboxMessage.recipient == str(chat_id)
                )
            )
            or 0
        )


def inbound_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count(InboundUpdate.id))) or 0


def buttons(sent: dict[str, Any]) -> list[str]:
    """callback_data of the inline keyboard, checking there is one button per row."""
    rows = sent["reply_markup"]["inline_keyboard"]
    assert all(len(row) == 1 for row in rows)
    return [row[0]["callback_data"] for row in rows]


def polling_bot(engine: ConversationEngine, standin: BotApiStandin) -> Any:
    return channel.running(channel.build_application(TOKEN, engine, base_url=standin.base_url))


# -- conversion (no network) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (PHOTO, "photo"),
        (STICKER, "sticker"),
        (VOICE, "voice"),
        (LOCATION, "location"),
        (DOCUMENT, "file"),
        (CONTACT, "other"),
    ],
)
def test_non_text_messages_become_their_kind_without_text(content: dict[str, Any], kind: str) -> None:
    inbound = channel.update_to_inbound(Update.de_json(message_update(7, 42, "en-US", **content), None))
    assert inbound is not None
    assert (inbound.kind, inbound.text, inbound.button) == (kind, None, None)
    assert (inbound.channel, inbound.user, inbound.external_id, inbound.lang_hint) == ("telegram", "42", "7", "en")


def test_text_and_button_press_convert() -> None:
    text = channel.update_to_inbound(Update.de_json(text_update(1, -100123, "xin chào"), None))
    press = channel.update_to_inbound(Update.de_json(callback_update(2, 42, "f:+", "cb"), None))
    assert text is not None
    assert (text.user, text.text, text.kind) == ("-100123", "xin chào", "text")
    assert press is not None
    assert (press.user, press.button, press.external_id) == ("42", "f:+", "2")
    assert channel.update_to_inbound(Update.de_json({"update_id": 3}, None)) is None


def test_error_handler_logs_masked_and_returns(caplog: pytest.LogCaptureFixture) -> None:
    application = channel.build_application(TOKEN, None)  # type: ignore[arg-type]
    update = Update.de_json(text_update(5, 42, "hi"), None)
    error = RuntimeError(f"engine failed for 0912345678, id 001099012345, token {TOKEN}")
    with caplog.at_level(logging.ERROR, logger="bot.telegram"):
        asyncio.run(application.process_error(update, error))
    logged = caplog.records[-1].getMessage()
    assert "telegram update 5 failed" in logged
    assert "RuntimeError" in logged
    assert "0912345678" not in logged
    assert "001099012345" not in logged
    assert TOKEN not in logged


# -- long polling -------------------------------------------------------------------------------------


@e2e
def test_question_is_answered_with_buttons_and_a_button_press_is_answered(
    engine: ConversationEngine, standin: BotApiStandin
) -> None:
    async def scenario() -> None:
        async with polling_bot(engine, standin):
            standin.push(text_update(1, 4242, QUESTION))
            # A reply longer than 4,096 characters would come in several messages; the buttons sit under the last.
            reply = (await eventually(lambda: [m for m in standin.sent(4242) if "reply_markup" in m]))[0]
            payloads = buttons(reply)
            assert payloads[-1] == "h"  # every answer offers an official
            standin.push(callback_update(2, 4242, payloads[0], "cb-1"))
            await eventually(lambda: replies(4242) == 2 and len(standin.sent(4242)) == len(outbox(4242)))
            await eventually(lambda: standin.requests("answerCallbackQuery"))

    asyncio.run(scenario())
    first = standin.sent(4242)[0]
    # A card goes as HTML the stand-in parsed as Telegram does (every value escaped); anything else as plain text.
    assert all(m.get("parse_mode") in (None, "HTML") for m in standin.sent(4242))
    assert all("_parsed" in m for m in standin.sent(4242) if m.get("parse_mode"))
    assert first["text"].strip()
    assert [p["callback_query_id"] for p in standin.requests("answerCallbackQuery")] == ["cb-1"]
    assert standin.requests("deleteWebhook")
    assert not any(str(p.get("drop_pending_updates")).lower() == "true" for _, p in standin.calls)
    assert outbox(4242) == [("sent", 1, None)] * len(outbox(4242))


@e2e
def test_a_card_arrives_formatted_with_hostile_knowledge_base_text_shown_as_text(
    engine: ConversationEngine, standin: BotApiStandin
) -> None:
    with session_scope() as session:
        text = session.scalar(select(Procedure).where(Procedure.slug == "birth-registration")).text("vi")
        text.title = HOSTILE
        text.fees = "<i>miễn phí</i> & <a href='javascript:alert(1)'>x</a> 👨‍👩‍👧"
        text.steps = [f"Bước {i}: " + "điền tờ khai 😀 " * 60 for i in range(12)]  # the full card: several messages

    async def scenario() -> None:
        async with polling_bot(engine, standin):
            standin.push(callback_update(80, 4343, "p:birth-registration", "cb-80"))
            await eventually(lambda: replies(4343) == 1 and {s for s, _, _ in outbox(4343)} == {"sent"})
            standin.push(callback_update(81, 4343, "c:birth-registration:full", "cb-81"))
            await eventually(lambda: replies(4343) == 2 and {s for s, _, _ in outbox(4343)} == {"sent"})

    asyncio.run(scenario())
    sent = standin.sent(4343)
    assert len(sent) >= 3  # the short card in one message, the full one in several
    assert all(m["parse_mode"] == "HTML" for m in sent)
    assert all("<script>" not in m["text"] for m in sent)
    short = sent[0]["_parsed"]
    assert short["text"].startswith(f"📄 {HOSTILE}\n\n")  # shown as the characters it is
    assert short["entities"][0] == {"type": "bold", "offset": 0, "length": utf16_len(f"📄 {HOSTILE}")}
    assert "Lệ phí: <i>miễn phí</i> & <a href='javascript:alert(1)'>x</a> 👨‍👩‍👧" in short["text"]
    assert {e["type"] for m in sent for e in m["_parsed"]["entities"]} == {"bold", "italic"}  # no link, no code
    assert buttons(sent[0])[0] == "c:birth-registration:full"
    full = sent[1:]
    assert all(utf16_len(m["_parsed"]["text"]) <= 4096 for m in full)
    assert ["reply_markup" in m for m in full] == [False] * (len(full) - 1) + [True]
    assert full[0]["_parsed"]["text"].startswith(f"📄 {HOSTILE}")
    assert sum(m["_parsed"]["text"].count("Các bước:") for m in full) == 1  # a label is never cut from its list


@e2e
def test_html_telegram_refuses_goes_again_as_plain_text(engine: ConversationEngine, standin: BotApiStandin) -> None:
    standin.refuse_html(1)

    async def scenario() -> None:
        async with polling_bot(engine, standin):
            standin.push(callback_update(90, 5353, "c:birth-registration:fees", "cb-90"))
            await eventually(lambda: standin.sent(5353))

    asyncio.run(scenario())
    (attempt, delivered) = standin.requests("sendMessage")
    assert attempt["parse_mode"] == "HTML"
    assert "parse_mode" not in delivered
    assert delivered["text"].startswith("📄 Đăng ký khai sinh\n\nLệ phí:")
    assert outbox(5353) == [("sent", 1, None)]


@e2e
def test_the_same_update_twice_gets_one_reply(engine: ConversationEngine, standin: BotApiStandin) -> None:
    async def scenario() -> None:
        async with polling_bot(engine, standin):
            twice = text_update(10, 5151, QUESTION)
            # The later update of the same chat is handled after both copies: when it is answered, they were too.
            standin.push(twice, twice, text_update(11, 5151, "/help"))
            await eventually(lambda: any(m["text"] == say("help", "vi") for m in standin.sent(5151)))

    asyncio.run(scenario())
    assert replies(5151) == 2
    assert len(standin.sent(5151)) == len(outbox(5151))
    assert inbound_count() == 2


@e2e
def test_429_makes_the_worker_wait_then_deliver_once(engine: ConversationEngine, standin: BotApiStandin) -> None:
    standin.throttle(1, retry_after=1)

    async def scenario() -> None:
        async with polling_bot(engine, standin):
            standin.push(text_update(20, 6161, "/help"))
            await eventually(lambda: standin.sent(6161))
            await asyncio.sleep(0.5)  # time enough for a wrongly repeated send to show

    asyncio.run(scenario())
    attempts = standin.requests("sendMessage")
    assert len(attempts) == 2
    assert len(standin.sent(6161)) == 1
    assert attempts[1]["_at"] - attempts[0]["_at"] >= 0.95
    ((status, tries, error),) = outbox(6161)
    assert (status, tries) == ("sent", 2)
    assert "retry after 1" in (error or "")


@e2e
def test_photo_sticker_voice_and_location_get_the_text_only_reply(
    engine: ConversationEngine, standin: BotApiStandin
) -> None:
    chats = {7001: PHOTO, 7002: STICKER, 7003: VOICE, 7004: LOCATION}

    async def scenario() -> None:
        async with polling_bot(engine, standin):
            standin.push(*(message_update(30 + i, chat, **content) for i, (chat, content) in enumerate(chats.items())))
            await eventually(lambda: all(standin.sent(chat) for chat in chats))

    asyncio.run(scenario())
    for chat in chats:
        assert [m["text"] for m in standin.sent(chat)] == [say("unsupported", "vi")]


@e2e
def test_blocked_or_unknown_chat_is_given_up_at_once(engine: ConversationEngine, standin: BotApiStandin) -> None:
    standin.block(8001)
    standin.forget(8002)

    async def scenario() -> None:
        async with polling_bot(engine, standin):
            standin.push(text_update(40, 8001, "/help"), text_update(41, 8002, "/help"))
            await eventually(lambda: [row[0] for row in outbox(8001) + outbox(8002)] == ["failed", "failed"])

    asyncio.run(scenario())
    assert len(standin.requests("sendMessage")) == 2  # no retries
    assert "blocked" in (outbox(8001)[0][2] or "")
    assert "chat not found" in (outbox(8002)[0][2] or "").lower()


@e2e
def test_restart_mid_conversation_delivers_the_queued_reply_and_keeps_the_state(
    engine: ConversationEngine, standin: BotApiStandin
) -> None:
    async def before_restart() -> None:
        application = channel.build_application(TOKEN, engine, base_url=standin.base_url)
        await channel.start(application)  # no outbox worker: the process goes down before anything is sent
        standin.push(text_update(50, 9001, "/lang en"), text_update(51, 9001, QUESTION))
        await eventually(lambda: len(outbox(9001)) >= 2 and inbound_count() == 2)
        await channel.stop(application)

    async def after_restart() -> None:
        async with polling_bot(load(), standin):
            queued = await eventually(lambda: len(standin.sent(9001)) == len(outbox(9001)) and len(outbox(9001)))
            standin.push(callback_update(52, 9001, "h", "cb-2"))  # "talk to an official" on the answer
            await eventually(lambda: len(standin.sent(9001)) == queued + 1)

    asyncio.run(before_restart())
    assert standin.sent() == []
    assert all(status == "pending" for status, _, _ in outbox(9001))
    asyncio.run(after_restart())
    texts = [m["text"] for m in standin.sent(9001)]
    assert texts[0] == say("lang_set", "en")  # the queued replies went out, in order
    assert texts[-1].startswith("I have passed your question to an official. Ticket ")  # English kept
    assert inbound_count() == 3  # updates 50 and 51 were confirmed, not fetched again


# -- webhook ------------------------------------------------------------------------------------------


class Server:
    """The FastAPI app under uvicorn in a background thread, on a free port."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "the app stopped while starting"
            assert time.monotonic() < deadline, "the app did not start in time"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()


def wait_for(check: Callable[[], Any], within: float = 10.0) -> Any:
    return asyncio.run(eventually(check, within))


@e2e
def test_webhook_checks_the_secret_and_never_answers_500(
    engine: ConversationEngine, standin: BotApiStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTCUA_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("MOTCUA_TELEGRAM_BASE_URL", standin.base_url)
    monkeypatch.setenv("MOTCUA_TELEGRAM_WEBHOOK_URL", "https://motcua.example/telegram/webhook")
    monkeypatch.setenv("MOTCUA_TELEGRAM_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    hook = "/telegram/webhook"
    good = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    with Server(create_app(engine)) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        (registered,) = standin.requests("setWebhook")
        assert registered["url"] == "https://motcua.example/telegram/webhook"
        assert registered["secret_token"] == SECRET
        assert "message" in registered["allowed_updates"]

        question = text_update(60, 3131, QUESTION)
        answered = client.post(hook, json=question, headers=good)
        assert answered.status_code == 200
        assert client.post(hook, json=question, headers=good).status_code == 200  # Telegram's retry
        client.post(hook, json=text_update(61, 3131, "/help"), headers=good)
        wait_for(lambda: any(m["text"] == say("help", "vi") for m in standin.sent(3131)))

        forged = [
            client.post(hook, json=text_update(62, 3131, "hi"), headers=headers)
            for headers in ({"X-Telegram-Bot-Api-Secret-Token": "guess"}, {})
        ]
        bad = [
            client.post(hook, content=body, headers={**good, "Content-Type": "application/json"})
            for body in (b"{not json", b"[1, 2]", b'{"update_id": "x"}', b'{"update_id": 63, "message": {"x": 1}}')
        ]
        pressed = client.post(hook, json=callback_update(64, 3131, "f:+", "cb-3"), headers=good)
        wait_for(lambda: standin.requests("answerCallbackQuery"))
        wait_for(lambda: replies(3131) == 3 and {s for s, _, _ in outbox(3131)} == {"sent"})
    assert [r.status_code for r in forged] == [403, 403]
    assert all(r.json()["detail"] for r in forged + bad)
    assert [r.status_code for r in bad] == [400, 400, 400, 400]
    assert pressed.status_code == 200
    assert replies(3131) == 3
    assert len(standin.sent(3131)) == len(outbox(3131))
    assert inbound_count() == 3  # 60, 61, 64: nothing from forged or malformed calls
    assert not standin.requests("deleteWebhook")  # a restart keeps the webhook and Telegram's queue


@e2e
def test_the_app_runs_the_bot_by_long_polling_without_a_webhook_url(
    engine: ConversationEngine, standin: BotApiStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTCUA_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("MOTCUA_TELEGRAM_BASE_URL", standin.base_url)
    monkeypatch.delenv("MOTCUA_TELEGRAM_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("MOTCUA_TELEGRAM_WEBHOOK_SECRET", raising=False)
    get_settings.cache_clear()
    with Server(create_app(engine)) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        standin.push(text_update(70, 2121, "/start"))
        wait_for(lambda: standin.sent(2121))
        refused = client.post(
            "/telegram/webhook",
            json=text_update(71, 2121, "hi"),
            headers={"X-Telegram-Bot-Api-Secret-Token": "anything"},
        )
    assert [m["text"] for m in standin.sent(2121)] == [say("greeting", "vi")]
    assert refused.status_code == 403  # no secret configured: the webhook route accepts nothing
    assert not standin.requests("setWebhook")
    assert inbound_count() == 1
