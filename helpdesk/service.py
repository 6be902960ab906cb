"""Help-desk use cases on the citizen's side: open a routed ticket with its deadlines, deliver replies, rate, reopen."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import ChatMessage, Conversation
from bot.texts import say
from core.errors import Conflict, Invalid, NotFound, PermissionDenied
from core.text import fold
from helpdesk.events import BOT, CITIZEN, record_event
from helpdesk.models import Ticket
from helpdesk.notifications import notify_new_ticket
from helpdesk.outbox import enqueue
from helpdesk.sla import add_working_hours, sla_targets, working_hours_between
from knowledge.models import Procedure, utcnow

OPEN_STATUSES = ("new", "acknowledged", "reopened", "transferred")  # "answered" and "closed" are not open
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: codes are read out on the phone
MAX_REPLY_CHARS = 8000


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
    procedure_slug: str | None = None,
    urgency: str = "normal",
) -> Ticket:
    """Create a ticket routed to a department, with its deadlines; an open ticket of the conversation is reused."""
    existing = open_ticket_of(session, conversation_id)
    if existing is not None:
        return existing
    candidates = candidates or []
    slug = procedure_slug or (candidates[0].get("slug") if candidates else None)
    procedure = session.scalar(select(Procedure).where(Procedure.slug == slug)) if slug else None
    code = new_ticket_code()
    ticket = Ticket(
        code=code,
        conversation_id=conversation_id,
        channel=channel,
        question=question,
        search_text=fold(f"{code} {question}"),
        reason=reason,
        lang=lang,
        candidates=candidates,
        excerpt=excerpt or [],
        procedure_slug=procedure.slug if procedure else None,
        category=procedure.category or None if procedure else None,
        urgency=urgency,
        department=_route(session, procedure),
        created_at=now,
        status="new",
        apologies=0,
    )
    start_clock(session, ticket, now)
    session.add(ticket)
    session.flush()
    record_event(session, ticket, "created", actor=BOT, now=now, reason=reason, channel=channel)
    notify_new_ticket(session, ticket, now)  # only here: a reused open ticket returned above is no news
    return ticket


def _route(session: Session, procedure: Procedure | None) -> str | None:
    """The department a ticket about this procedure goes to (None when no department exists at all)."""
    from helpdesk.departments import route_department  # noqa: PLC0415 - departments imports this module's siblings

    try:
        return route_department(
            session,
            procedure_slug=procedure.slug if procedure else None,
            category=procedure.category if procedure else None,
            authority=procedure.authority if procedure else None,
        )
    except NotFound:
        return None


def mark_resolved(ticket: Ticket, now: dt.datetime) -> None:
    """The ticket got its answer (or was closed): record when, and how many working hours it took."""
    if ticket.resolved_at is None:
        ticket.resolved_at = now
        ticket.resolution_hours = working_hours_between(ticket.created_at, now)


def start_clock(session: Session, ticket: Ticket, now: dt.datetime) -> None:
    """Set the acknowledgement and resolution deadlines from now (new, reopened or transferred ticket)."""
    targets = sla_targets(session, ticket.department, ticket.category, ticket.urgency)
    ticket.ack_deadline = add_working_hours(now, targets.ack_hours)
    ticket.resolve_deadline = add_working_hours(now, targets.resolve_hours)
    ticket.deadline = ticket.ack_deadline
    ticket.ack_breached_at = ticket.resolve_breached_at = ticket.expected_at = ticket.paused_at = None
    ticket.deadline_warned_at = None  # a new deadline gets its own one-hour warning


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


def reply_to_ticket(
    session: Session,
    code: str,
    text: str,
    *,
    now: dt.datetime,
    actor: str = "official",
    user_id: int | None = None,
    await_citizen: bool = False,
) -> ChatMessage:
    """Deliver an official's reply to the citizen in their own channel, with rating and reopen buttons.

    With `await_citizen` the official asked the citizen for something: the ticket stays with them and its
    clock stops until the citizen writes back.
    """
    ticket = get_ticket(session, code)
    if ticket.status == "closed":
        raise Conflict(f"ticket {code} is closed; reopen it before replying")
    text = text.strip()
    if not text:
        raise Invalid("field 'text': the reply is empty")
    if len(text) > MAX_REPLY_CHARS:
        raise Invalid(f"field 'text': {len(text)} characters; a reply has at most {MAX_REPLY_CHARS}")
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
    if ticket.first_response_at is None:
        ticket.first_response_at = now
        ticket.first_response_hours = working_hours_between(ticket.created_at, now)
    ticket.answered_at = now
    if await_citizen:
        ticket.status = "acknowledged"
        ticket.paused_at = now
    else:
        ticket.status = "answered"
        mark_resolved(ticket, now)
    record_event(
        session,
        ticket,
        "replied",
        actor=actor,
        user_id=user_id,
        now=now,
        message_id=message.id,
        await_citizen=await_citizen,
    )
    return message


def rate_ticket(session: Session, code: str, conversation_id: int, rating: int) -> Ticket:
    """Store the citizen's 1-5 rating of the official's reply (their own ticket only)."""
    ticket = get_ticket(session, code)
    if ticket.conversation_id != conversation_id:
        raise PermissionDenied(f"ticket {code} belongs to another conversation")
    if not 1 <= rating <= 5:
        raise Invalid("a rating is 1 to 5")
    ticket.rating = rating
    record_event(session, ticket, "rated", actor=CITIZEN, now=utcnow(), rating=rating)
    return ticket


def reopen_ticket(session: Session, code: str, conversation_id: int, *, now: dt.datetime) -> Ticket:
    """The citizen is not satisfied: the ticket opens again with a new acknowledgement deadline."""
    ticket = get_ticket(session, code)
    if ticket.conversation_id != conversation_id:
        raise PermissionDenied(f"ticket {code} belongs to another conversation")
    reopen(session, ticket, now, actor=CITIZEN)
    return ticket


def reopen(
    session: Session, ticket: Ticket, now: dt.datetime, *, actor: str, user_id: int | None = None, reason: str = ""
) -> None:
    """Open an answered or closed ticket again: back to the queue with fresh deadlines."""
    if ticket.status in OPEN_STATUSES and ticket.status != "acknowledged":
        raise Conflict(f"ticket {ticket.code} is already open ({ticket.status})")
    ticket.status = "reopened"
    ticket.assignee_id = None
    ticket.closed_at = None
    ticket.resolved_at = ticket.resolution_hours = None  # resolved again later, counted from the opening
    start_clock(session, ticket, now)
    record_event(session, ticket, "reopened", actor=actor, user_id=user_id, now=now, reason=reason)


def get_ticket(session: Session, code: str) -> Ticket:
    """The ticket with this code."""
    ticket = session.scalar(select(Ticket).where(Ticket.code == code))
    if ticket is None:
        raise NotFound(f"no ticket {code}")
    return ticket
