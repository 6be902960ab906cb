"""Deadlines: warn a working hour ahead, once; mark each breach once, apologise to the citizen in their channel, tell
the supervisors and the ticket's holder."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from bot.models import ChatMessage, Conversation
from bot.texts import say
from core.db import session_scope
from helpdesk.events import SYSTEM, record_event
from helpdesk.models import Ticket
from helpdesk.notifications import notify_breach, notify_deadline_soon
from helpdesk.outbox import enqueue
from helpdesk.sla import VN, add_working_hours, default_calendar
from helpdesk.tickets import WAITING
from knowledge.models import utcnow

logger = logging.getLogger(__name__)

EXTENSION_HOURS = 4.0  # the new time promised in an apology: the urgent acknowledgement target (iHaNoi)
BATCH = 500
WARN_HOURS = 1.0  # the holder (or the department) hears of a running deadline this many working hours ahead


def _watched() -> list[ColumnElement[bool]]:
    """Each stage's running, unmarked deadlines, as two plain conditions (each served by its own index)."""
    return [
        and_(Ticket.ack_breached_at.is_(None), Ticket.paused_at.is_(None), Ticket.status.in_(WAITING)),
        and_(Ticket.resolve_breached_at.is_(None), Ticket.paused_at.is_(None), Ticket.status == "acknowledged"),
    ]


def mark_breaches(session: Session, now: dt.datetime) -> list[str]:
    """Mark every deadline missed by now, once; returns the ticket codes marked."""
    due = [
        ticket
        for condition in _watched()
        for ticket in session.scalars(
            select(Ticket).where(condition, Ticket.deadline <= now).order_by(Ticket.deadline).limit(BATCH)
        )
    ]
    marked = []
    for ticket in due:
        stage = "resolve" if ticket.status == "acknowledged" else "ack"
        column = Ticket.resolve_breached_at if stage == "resolve" else Ticket.ack_breached_at
        expected = add_working_hours(now, EXTENSION_HOURS)
        # Conditional on the marker still being empty: two schedulers (two processes) never apologise twice.
        won = session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, column.is_(None), Ticket.deadline <= now)
            .values({column.key: now, "expected_at": expected, "apologies": Ticket.apologies + 1})
            .execution_options(synchronize_session=False)
        ).rowcount
        if not won:
            continue
        session.refresh(ticket)
        record_event(
            session, ticket, "breached", actor=SYSTEM, now=now, stage=stage, deadline=ticket.deadline.isoformat()
        )
        _apologise(session, ticket, stage, expected, now)
        told = notify_breach(session, ticket, stage, expected, now)
        record_event(session, ticket, "supervisor_notified", actor=SYSTEM, now=now, notified=len(told))
        marked.append(ticket.code)
    if marked:
        logger.info("deadlines missed: %s", ", ".join(marked))
    return marked


def warn_deadlines(session: Session, now: dt.datetime) -> list[str]:
    """Warn of every running deadline less than a working hour away, once per deadline; returns the codes warned.

    A warning stands for the deadline it was about: a new clock clears it (start_clock), and a deadline that moved
    later (claimed: the resolution deadline runs now; resumed after a pause) is warned of again when it comes near.
    """
    calendar = default_calendar()
    horizon = calendar.add_working_hours(now, WARN_HOURS)
    # A warning older than an hour before the horizon can only be about an earlier deadline; younger ones, about
    # these deadlines, are passed over in SQL so that they never fill the batch.
    unwarned = or_(Ticket.deadline_warned_at.is_(None), Ticket.deadline_warned_at < horizon - dt.timedelta(hours=1))
    near = [
        ticket
        for condition in _watched()
        for ticket in session.scalars(
            select(Ticket)
            .where(condition, unwarned, Ticket.deadline > now, Ticket.deadline <= horizon)
            .order_by(Ticket.deadline)
            .limit(BATCH)
        )
    ]
    warned = []
    for ticket in near:
        previous = ticket.deadline_warned_at
        if previous is not None and calendar.working_hours_between(previous, ticket.deadline) <= WARN_HOURS:
            continue  # this very deadline was warned of already
        # Conditional on the marker as read: of two schedulers (two processes) exactly one warns.
        same_marker = Ticket.deadline_warned_at.is_(None) if previous is None else Ticket.deadline_warned_at == previous
        won = session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, same_marker, Ticket.deadline == ticket.deadline)
            .values(deadline_warned_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not won:
            continue
        session.refresh(ticket)
        told = notify_deadline_soon(session, ticket, now)
        record_event(
            session,
            ticket,
            "deadline_warned",
            actor=SYSTEM,
            now=now,
            deadline=ticket.deadline.isoformat(),
            notified=len(told),
        )
        warned.append(ticket.code)
    if warned:
        logger.info("deadlines within a working hour: %s", ", ".join(warned))
    return warned


def _apologise(session: Session, ticket: Ticket, stage: str, expected: dt.datetime, now: dt.datetime) -> None:
    """Tell the citizen, in their channel and language, that we are late and by when they will hear from us."""
    conversation = session.get(Conversation, ticket.conversation_id)
    if conversation is None:
        return
    text = say(
        f"apology_{stage}", ticket.lang, code=ticket.code, deadline=_local(ticket.deadline), expected=_local(expected)
    )
    message = ChatMessage(
        conversation_id=conversation.id,
        direction="out",
        author="bot",
        text=text,
        buttons=[],
        at=now,
        ticket_code=ticket.code,
        status="apology",
    )
    session.add(message)
    session.flush()
    enqueue(session, conversation.channel, conversation.user_key, text, [], message.id)
    record_event(
        session,
        ticket,
        "apology_sent",
        actor=SYSTEM,
        now=now,
        stage=stage,
        message_id=message.id,
        expected=expected.isoformat(),
    )


def next_deadline(session: Session) -> dt.datetime | None:
    """The soonest deadline that can still be missed."""
    soonest = [session.scalar(select(func.min(Ticket.deadline)).where(condition)) for condition in _watched()]
    return min((moment for moment in soonest if moment is not None), default=None)


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(VN).strftime("%H:%M %d/%m/%Y")


class BreachScheduler:
    """Marks breaches as they happen and warns of near deadlines: sleeps until the next deadline (or `poll` seconds,
    which bounds how late a warning is), then checks."""

    def __init__(self, *, poll: float = 5.0, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.poll = poll
        self.clock = clock

    def check(self) -> tuple[list[str], float]:
        """One pass (breaches, then one-hour warnings): codes marked missed, and seconds to wait before the next."""
        now = self.clock()
        with session_scope() as session:
            marked = mark_breaches(session, now)
        with session_scope() as session:
            warned = warn_deadlines(session, now)
        with session_scope() as session:
            upcoming = next_deadline(session)
        if len(marked) >= BATCH or len(warned) >= BATCH:
            return marked, 0.0  # more are due: go on at once
        wait = self.poll if upcoming is None else (upcoming - self.clock()).total_seconds()
        return marked, min(max(wait, 0.05), self.poll)

    async def run(self, stop: asyncio.Event) -> None:
        """Check until stop is set; a database hiccup is logged and retried."""
        while not stop.is_set():
            try:
                _, wait = await asyncio.to_thread(self.check)
            except Exception:  # noqa: BLE001 - the scheduler must outlive a database restart
                logger.exception("breach check failed; retrying")
                wait = self.poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
