"""The outbox worker on a real database: order per recipient, back-off, 429 pauses, permanent failures."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select

from bot.cards import plain_text, render_card, utf16_len
from core.config import Settings
from core.db import session_scope
from helpdesk.models import OutboxMessage
from helpdesk.outbox import (
    BACKOFF_SECONDS,
    OutboxWorker,
    Outgoing,
    PermanentFailure,
    RetryAfter,
    claim_due,
    depth,
    enqueue,
)
from knowledge.models import utcnow


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class RecordingChannel:
    """A stand-in for a messenger's server: records deliveries, fails as scripted."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, str]] = []
        self.script: list[Exception] = []

    async def send(self, message: Outgoing) -> None:
        if self.script:
            raise self.script.pop(0)
        self.delivered.append((message.recipient, message.text))


def queue(clock: Clock, *items: tuple[str, str]) -> None:
    with session_scope() as session:
        for recipient, text in items:
            session.add(OutboxMessage(channel="telegram", recipient=recipient, text=text, next_attempt_at=clock()))


@pytest.fixture
def clock(settings: Settings) -> Clock:
    return Clock()


def drain(worker: OutboxWorker) -> int:
    return asyncio.run(worker.drain_once())


def statuses() -> list[tuple[str, int]]:
    with session_scope() as session:
        return [(m.status, m.attempts) for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]


def test_delivers_everything_in_order_per_recipient(clock: Clock) -> None:
    channel = RecordingChannel()
    queue(clock, ("a", "1"), ("b", "1"), ("a", "2"), ("a", "3"), ("b", "2"))
    assert drain(OutboxWorker({"telegram": channel}, clock=clock)) == 5
    assert [t for r, t in channel.delivered if r == "a"] == ["1", "2", "3"]
    assert [t for r, t in channel.delivered if r == "b"] == ["1", "2"]
    assert statuses() == [("sent", 1)] * 5
    with session_scope() as session:
        assert depth(session) == 0
    assert drain(OutboxWorker({"telegram": channel}, clock=clock)) == 0  # nothing sent twice


def test_retry_after_pauses_the_channel_then_delivers_once(clock: Clock) -> None:
    channel = RecordingChannel()
    channel.script = [RetryAfter(3)]
    queue(clock, ("a", "1"), ("a", "2"))
    worker = OutboxWorker({"telegram": channel}, clock=clock)
    assert drain(worker) == 0
    assert statuses() == [("pending", 1), ("pending", 0)]  # the second was only postponed
    clock.advance(2)
    assert drain(worker) == 0  # still paused
    clock.advance(1.5)
    assert drain(worker) == 2
    assert channel.delivered == [("a", "1"), ("a", "2")]


def test_errors_back_off_and_permanent_failures_stop(clock: Clock) -> None:
    channel = RecordingChannel()
    channel.script = [ConnectionError("reset"), PermanentFailure("bot was blocked")]
    queue(clock, ("a", "1"), ("b", "1"))
    worker = OutboxWorker({"telegram": channel}, clock=clock)
    drain(worker)
    with session_scope() as session:
        first, second = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert (first.status, first.attempts) == ("pending", 1)
        assert first.next_attempt_at == clock() + dt.timedelta(seconds=BACKOFF_SECONDS[0])
        assert "ConnectionError: reset" in first.last_error
        assert (second.status, second.last_error) == ("failed", "permanent: bot was blocked")
    clock.advance(BACKOFF_SECONDS[0])
    assert drain(worker) == 1
    assert channel.delivered == [("a", "1")]


def test_a_postponed_message_is_not_overtaken_by_a_later_one_of_the_same_chat(clock: Clock) -> None:
    channel = RecordingChannel()
    channel.script = [ConnectionError("reset")]
    queue(clock, ("a", "1"))
    worker = OutboxWorker({"telegram": channel}, clock=clock)
    drain(worker)  # "1" failed and waits for its retry
    queue(clock, ("a", "2"), ("b", "1"))
    assert drain(worker) == 1  # only chat b; "2" must not overtake "1"
    clock.advance(BACKOFF_SECONDS[0])
    assert drain(worker) == 2
    assert [t for r, t in channel.delivered if r == "a"] == ["1", "2"]


def test_a_card_is_queued_in_parts_of_whole_blocks_for_telegram_and_as_plain_text_for_zalo(settings: Settings) -> None:
    card = {
        "slug": "p",
        "title": "<b>Thủ tục</b> & 😀",
        "documents": [f"Giấy tờ {i} " + "chi tiết " * 80 for i in range(12)],
        "steps": [f"Bước {i} " + "làm " * 150 for i in range(10)],
        "fees": "70.000 đồng",
    }
    rendered = render_card(card, "vi", "full")
    buttons = [{"label": "👍 Hữu ích", "payload": "f:+"}]
    with session_scope() as session:
        for channel, recipient in (("telegram", "42"), ("zalo", "77")):
            enqueue(session, channel, recipient, rendered.text, buttons, None, blocks=rendered.blocks)
    with session_scope() as session:
        due = claim_due(session, ["telegram", "zalo"], utcnow() + dt.timedelta(seconds=1), 100)
    telegram = [m for m in due if m.channel == "telegram"]
    zalo = [m for m in due if m.channel == "zalo"]
    assert len(telegram) >= 2
    assert all(m.blocks and m.text == plain_text(m.blocks) for m in telegram)
    assert all(utf16_len(m.text) <= 4096 for m in telegram)
    # Long lists go on in the next part, item by item, their label once.
    assert items([b for m in telegram for b in m.blocks]) == items(rendered.blocks)
    assert sum(m.text.count("Hồ sơ cần có:") for m in telegram) == 1
    assert [bool(m.buttons) for m in telegram] == [False] * (len(telegram) - 1) + [True]
    assert all(m.blocks is None and len(m.text) <= 2000 for m in zalo)
    assert len(zalo) > len(telegram)


def items(blocks: list[dict]) -> list[str]:
    return [item for block in blocks if block["type"] == "list" for item in block["items"]]
