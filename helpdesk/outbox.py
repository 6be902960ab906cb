"""Delivering queued messages to push channels: claim, send, record; retries with back-off, honouring 429s."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.cards import TELEGRAM_LIMIT, ZALO_LIMIT, plain_text, split_blocks, split_message
from core.db import session_scope
from helpdesk.models import OutboxMessage
from knowledge.models import utcnow

logger = logging.getLogger(__name__)

PUSH_CHANNELS = {"telegram": TELEGRAM_LIMIT, "zalo": ZALO_LIMIT}  # delivered through the outbox
FORMATTED_CHANNELS = {"telegram"}  # these send a reply's blocks formatted; Zalo shows plain text only

Failure = tuple[int, str, float | None, bool]  # message id, error, seconds until retry (None: give up), attempted
BACKOFF_SECONDS = (1, 2, 5, 15, 60, 300, 900)  # attempt n waits BACKOFF_SECONDS[n-1], then the last one
MAX_ATTEMPTS = 12  # about two hours of trying before a message is marked failed and shown to admins
MAX_RETRY_AFTER = 3600.0


class RetryAfter(Exception):  # noqa: N818 - named after Telegram's own field
    """The channel asked us to wait (Telegram 429 retry_after)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


class PermanentFailure(Exception):
    """The message can never be delivered (blocked bot, unknown chat): do not retry."""


@dataclass(frozen=True)
class Outgoing:
    """A queued message as a sender sees it."""

    id: int
    channel: str
    recipient: str
    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    reply_to: str | None = None
    blocks: list[dict[str, Any]] | None = None  # the part's structure (bot/cards.py); text is its plain form


class Sender(Protocol):
    """Delivers one message on one channel; raises RetryAfter, PermanentFailure or anything else to retry."""

    async def send(self, message: Outgoing) -> None:
        """Deliver the message or raise."""
        ...


def enqueue(
    session: Session,
    channel: str,
    recipient: str,
    text: str,
    buttons: list[dict[str, str]],
    chat_message_id: int | None,
    reply_to: str | None = None,
    *,
    not_before: dt.datetime | None = None,
    blocks: list[dict[str, Any]] | None = None,
) -> None:
    """Queue a message for a push channel, split to its length limit (buttons under the last part).

    With `not_before` the message waits until then (staff notifications kept for the next working moment).
    With `blocks` (the structure of `text`) a channel that formats gets parts cut only between blocks, each
    keeping its own blocks; the limit holds for the visible text, which is the part's plain text.
    """
    limit = PUSH_CHANNELS.get(channel)
    if limit is None:
        return  # web chat reads its messages from the log; nothing to push
    parts: list[tuple[str, list[dict[str, Any]] | None]]
    if blocks and channel in FORMATTED_CHANNELS:
        parts = [(plain_text(part), part) for part in split_blocks(blocks, limit)]
    else:
        parts = [(part, None) for part in split_message(text, limit)]
    for index, (part, part_blocks) in enumerate(parts):
        session.add(
            OutboxMessage(
                channel=channel,
                recipient=recipient,
                chat_message_id=chat_message_id,
                text=part,
                buttons=buttons if index == len(parts) - 1 else [],
                reply_to=reply_to if index == 0 else None,
                next_attempt_at=not_before or utcnow(),
                blocks=part_blocks,
            )
        )


def claim_due(session: Session, channels: list[str], now: dt.datetime, limit: int) -> list[Outgoing]:
    """Pending messages whose time has come, oldest first, never overtaking a postponed one of the same chat."""
    rows = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.status == "pending",
            OutboxMessage.channel.in_(channels),
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    # A chat whose earlier message waits for a retry gets nothing newer until that one is through. Only retries
    # count (they carry their error): a message queued to wait (`not_before`, quiet hours) holds nothing back.
    postponed = dict(
        session.execute(
            select(OutboxMessage.channel + ":" + OutboxMessage.recipient, func.min(OutboxMessage.id))
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.channel.in_(channels),
                OutboxMessage.next_attempt_at > now,
                OutboxMessage.last_error.is_not(None),
            )
            .group_by(OutboxMessage.channel, OutboxMessage.recipient)
        ).all()
    )
    return [
        Outgoing(m.id, m.channel, m.recipient, m.text, list(m.buttons or []), m.reply_to, m.blocks or None)
        for m in rows
        if postponed.get(f"{m.channel}:{m.recipient}", m.id + 1) > m.id
    ]


def record_sent(session: Session, ids: list[int], now: dt.datetime) -> None:
    """Mark messages delivered."""
    if ids:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(status="sent", sent_at=now, attempts=OutboxMessage.attempts + 1)
        )


def record_failure(
    session: Session,
    message_id: int,
    now: dt.datetime,
    error: str,
    delay: float | None,
    *,
    attempted: bool = True,
) -> None:
    """Count a failed attempt (or a postponement behind one); schedule the next, or give up."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        return
    message.attempts += 1 if attempted else 0
    message.last_error = error[:500]
    if delay is None or message.attempts >= MAX_ATTEMPTS:
        message.status = "failed"
        logger.warning("outbox message %s failed for good after %s attempts: %s", message_id, message.attempts, error)
        return
    message.next_attempt_at = now + dt.timedelta(seconds=delay)


def backoff(attempts: int) -> float:
    """Seconds to wait before the next attempt after `attempts` failures."""
    return float(BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1]) if attempts > 0 else 0.0


def depth(session: Session) -> int:
    """How many messages wait to be delivered."""
    return session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.status == "pending")) or 0


class OutboxWorker:
    """Drains the outbox: one message at a time per recipient (order kept), many recipients at once."""

    def __init__(
        self,
        senders: dict[str, Sender],
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        batch: int = 200,
        concurrency: int = 32,
        idle_seconds: float = 0.2,
    ) -> None:
        self.senders = senders
        self.clock = clock
        self.batch = batch
        self.idle_seconds = idle_seconds
        self._limit = asyncio.Semaphore(concurrency)
        self._paused_until: dict[str, dt.datetime] = {}  # a channel-wide 429 pauses the whole channel
        self._record_lock = asyncio.Lock()
        self._unrecorded: list[int] = []
        self._recorded: set[int] = set()

    async def drain_once(self) -> int:
        """Send every due message once; returns how many were delivered."""
        now = self.clock()
        channels = [c for c in self.senders if self._paused_until.get(c, now) <= now]
        if not channels:
            return 0
        due = await asyncio.to_thread(self._claim, channels, now)
        by_recipient: dict[tuple[str, str], list[Outgoing]] = {}
        for message in due:
            by_recipient.setdefault((message.channel, message.recipient), []).append(message)
        results = await asyncio.gather(*(self._send_in_order(msgs) for msgs in by_recipient.values()))
        failures = [f for _, fails in results for f in fails]
        await asyncio.to_thread(self._record, [], failures)
        return sum(len(ok) for ok, _ in results)

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until stop is set; sleeps briefly when nothing is due."""
        while not stop.is_set():
            try:
                delivered = await self.drain_once()
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the worker
                logger.exception("outbox drain failed; retrying")
                delivered = 0
            if not delivered:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.idle_seconds)

    async def _mark_sent(self, message_id: int) -> None:
        """Record a delivery before the chat's next message goes out (group commit across chats).

        A crash between sending and recording is the only way a message can go out twice, so each
        delivery is recorded at once; deliveries finishing while a commit runs share the next one.
        """
        self._unrecorded.append(message_id)
        async with self._record_lock:
            if message_id in self._recorded:  # committed by another chat's flush while we waited
                self._recorded.discard(message_id)
                return
            ids, self._unrecorded = self._unrecorded, []
            await asyncio.to_thread(self._record, ids, [])
            self._recorded.update(i for i in ids if i != message_id)

    def _claim(self, channels: list[str], now: dt.datetime) -> list[Outgoing]:
        with session_scope() as session:
            return claim_due(session, channels, now, self.batch)

    def _record(self, sent: list[int], failures: list[Failure]) -> None:
        now = self.clock()
        with session_scope() as session:
            record_sent(session, sent, now)
            for message_id, error, delay, attempted in failures:
                record_failure(session, message_id, now, error, delay, attempted=attempted)

    async def _send_in_order(self, messages: list[Outgoing]) -> tuple[list[int], list[Failure]]:
        """Send one recipient's messages in order; the first failure postpones the rest."""
        sent: list[int] = []
        failures: list[Failure] = []
        for index, message in enumerate(messages):
            async with self._limit:
                try:
                    await self.senders[message.channel].send(message)
                except RetryAfter as exc:
                    wait = min(max(exc.seconds, 0.0), MAX_RETRY_AFTER)
                    self._paused_until[message.channel] = self.clock() + dt.timedelta(seconds=wait)
                    failures += [(m.id, str(exc), wait, m is message) for m in messages[index:]]
                    break
                except PermanentFailure as exc:
                    failures.append((message.id, f"permanent: {exc}", None, True))
                    continue
                except Exception as exc:  # noqa: BLE001 - every other failure is retried with back-off
                    attempts = await asyncio.to_thread(_attempts, message.id)
                    error = f"{type(exc).__name__}: {exc}"
                    failures += [(m.id, error, backoff(attempts + 1), m is message) for m in messages[index:]]
                    break
                # Still holding the send slot: at most `concurrency` messages are ever sent but unrecorded,
                # which bounds what a crash can make us send twice.
                await self._mark_sent(message.id)
            sent.append(message.id)
        return sent, failures


def _attempts(message_id: int) -> int:
    with session_scope() as session:
        return session.scalar(select(OutboxMessage.attempts).where(OutboxMessage.id == message_id)) or 0
