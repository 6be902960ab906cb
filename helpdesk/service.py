"""Help-desk use cases used by the bot: open a ticket, list a citizen's tickets."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Ticket
from helpdesk.sla import ACKNOWLEDGE_HOURS, add_working_hours

OPEN_STATUSES = ("new", "acknowledged", "reopened", "transferred")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: codes are read out on the phone


def new_ticket_code() -> str:
    """A short, unambiguous, random ticket code such as MC-7KQ2XP."""
    return "MC-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))


def open_ticket(
    session: Session,
    *,
    conversation_id: int,
    channel: str,
    question: str,
    reason: str,
    lang: str,
    now: dt.datetime,
    candidates: list[dict[str, Any]] | None = None,
    excerpt: list[dict[str, Any]] | None = None,
) -> Ticket:
    """Create a ticket with its acknowledgement deadline; an open ticket of the conversation is reused."""
    existing = open_ticket_of(session, conversation_id)
    if existing is not None:
        return existing
    ticket = Ticket(
        code=new_ticket_code(),
        conversation_id=conversation_id,
        channel=channel,
        question=question,
        reason=reason,
        lang=lang,
        candidates=candidates or [],
        excerpt=excerpt or [],
        deadline=add_working_hours(now, ACKNOWLEDGE_HOURS),
        created_at=now,
    )
    session.add(ticket)
    session.flush()
    return ticket


def open_ticket_of(session: Session, conversation_id: int) -> Ticket | None:
    """The conversation's ticket that an official has not closed yet."""
    return session.scalar(
        select(Ticket)
        .where(Ticket.conversation_id == conversation_id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.id.desc())
    )


def tickets_of(session: Session, conversation_id: int, limit: int = 10) -> list[Ticket]:
    """A conversation's tickets, newest first."""
    stmt = (
        select(Ticket)
        .where(Ticket.conversation_id == conversation_id)
        .order_by(Ticket.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
