"""Help-desk use cases used by the bot: open a ticket, list a citizen's tickets."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import ChatMessage, Conversation
from bot.texts import say
from core.errors import Conflict, Invalid, NotFound, PermissionDenied
from helpdesk.models import Ticket
from helpdesk.outbox import enqueue
from helpdesk.sla import ACKNOWLEDGE_HOURS, add_working_hours

OPEN_STATUSES = ("new", "acknowledged", "reopened", "transferred")  # "answered" and "closed" are not open
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
    stmt = select(Ticket).where(Ticket.conversation_id == conversation_id).order_by(Ticket.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def reply_to_ticket(session: Session, code: str, text: str, *, now: dt.datetime) -> ChatMessage:
    """Deliver an official's reply to the citizen in their own channel, with rating and reopen buttons."""
    ticket = get_ticket(session, code)
    if ticket.status == "closed":
        raise Conflict(f"ticket {code} is closed; reopen it before replying")
    text = text.strip()
    if not text:
        raise Invalid("field 'text': the reply is empty")
    conversation = session.get(Conversation, ticket.conversation_id)
    if conversation is None:
        raise NotFound(f"the conversation of ticket {code} no longer exists")
    buttons = [{"label": "⭐" * n, "payload": f"r:{code}:{n}"} for n in range(1, 6)]
    buttons.append({"label": say("button_reopen", ticket.lang), "payload": f"o:{code}"})
    message = ChatMessage(
        conversation_id=conversation.id,
        direction="out",
        author="official",
        text=text,
        buttons=buttons,
        at=now,
        ticket_code=code,
        status="official_reply",
    )
    session.add(message)
    session.flush()
    enqueue(session, conversation.channel, conversation.user_key, text, buttons, message.id)
    ticket.status = "answered"
    ticket.answered_at = now
    return message


def rate_ticket(session: Session, code: str, conversation_id: int, rating: int) -> Ticket:
    """Store the citizen's 1-5 rating of the official's reply (their own ticket only)."""
    ticket = get_ticket(session, code)
    if ticket.conversation_id != conversation_id:
        raise PermissionDenied(f"ticket {code} belongs to another conversation")
    if not 1 <= rating <= 5:
        raise Invalid("a rating is 1 to 5")
    ticket.rating = rating
    return ticket


def reopen_ticket(session: Session, code: str, conversation_id: int, *, now: dt.datetime) -> Ticket:
    """The citizen is not satisfied: the ticket opens again with a new acknowledgement deadline."""
    ticket = get_ticket(session, code)
    if ticket.conversation_id != conversation_id:
        raise PermissionDenied(f"ticket {code} belongs to another conversation")
    ticket.status = "reopened"
    ticket.deadline = add_working_hours(now, ACKNOWLEDGE_HOURS)
    return ticket


def get_ticket(session: Session, code: str) -> Ticket:
    """The ticket with this code."""
    ticket = session.scalar(select(Ticket).where(Ticket.code == code))
    if ticket is None:
        raise NotFound(f"no ticket {code}")
    return ticket
