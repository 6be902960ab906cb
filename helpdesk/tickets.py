"""What officials do with tickets: the queue, claim, reply, note, transfer, close, reopen — scoped by department."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select, true, update
from sqlalchemy.orm import Session

from core.errors import Conflict, Invalid, PermissionDenied
from helpdesk.accounts import Actor
from helpdesk.events import CITIZEN, history, record_denial, record_event
from helpdesk.models import Department, OutboxMessage, Ticket, TicketCount, TicketEvent, User
from helpdesk.notifications import notifications_of as notifications_of  # re-exported: the routes read them here
from helpdesk.notifications import notify_citizen_answered, notify_transfer
from helpdesk.notifications import unread_count as unread_count  # re-exported: the dashboard's header badge
from helpdesk.service import OPEN_STATUSES, get_ticket, mark_resolved, reopen, reply_to_ticket, start_clock
from helpdesk.sla import add_working_hours, default_calendar

STATUSES = ("new", "acknowledged", "answered", "closed", "reopened", "transferred")
WAITING = ("new", "reopened", "transferred")  # nobody has acknowledged it yet: the acknowledgement clock runs
URGENCIES = ("normal", "urgent")
MAX_PAGE = 200  # hard cap on a queue page, whatever the caller asks
MAX_NOTE_CHARS = 4000
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class QueueFilter:
    """What a queue request asks for; None means no restriction."""

    status: tuple[str, ...] | None = None  # default: every open status
    department: str | None = None
    assignee: str | None = None  # a username, "me" or "none"
    overdue: bool | None = None
    limit: int = 50
    offset: int = 0


# -- access ------------------------------------------------------------------------------------------------


def may_access(actor: Actor, department: str | None) -> bool:
    """Admins see everything; officials and supervisors only their own department's tickets."""
    return actor.role == "admin" or (department is not None and department == actor.department)


def authorize(actor: Actor, ticket: Ticket, action: str, now: dt.datetime) -> None:
    """Refuse (403, audited) when the ticket belongs to another department."""
    if not may_access(actor, ticket.department):
        reason = f"ticket {ticket.code} belongs to department {ticket.department or '(none)'}"
        record_denial(
            ticket.id,
            ticket.department,
            actor=actor.username,
            user_id=actor.user_id,
            action=action,
            reason=reason,
            now=now,
        )
        raise PermissionDenied(f"{reason}; you work for {actor.department or 'no department'}")


def list_scope(actor: Actor, department: str | None, action: str, now: dt.datetime) -> str | None:
    """The department a list of tickets covers: admins the one asked for (None: all), others only their own.

    Asking for another department is refused (403) and audited.
    """
    if actor.role == "admin":
        return department or None
    if department and department != actor.department:
        record_denial(
            None,
            department,
            actor=actor.username,
            user_id=actor.user_id,
            action=action,
            reason=f"{action} of department {department}",
            now=now,
        )
        raise PermissionDenied(f"you may only list your own department's tickets ({actor.department})")
    return actor.department or ""


def ticket_for(session: Session, actor: Actor, code: str, action: str, now: dt.datetime) -> Ticket:
    """The ticket with this code, if the actor may act on it."""
    ticket = get_ticket(session, code.strip().upper())
    authorize(actor, ticket, action, now)
    return ticket


# -- the queue ---------------------------------------------------------------------------------------------


class QueueRow(NamedTuple):
    """A ticket as the queue lists it, with its assignee's username."""

    code: str
    status: str
    department: str | None
    question: str
    deadline: dt.datetime
    paused_at: dt.datetime | None
    urgency: str
    channel: str
    lang: str
    category: str | None
    created_at: dt.datetime
    assignee: str | None


QUEUE_COLUMNS = (
    Ticket.code,
    Ticket.status,
    Ticket.department,
    Ticket.question,
    Ticket.deadline,
    Ticket.paused_at,
    Ticket.urgency,
    Ticket.channel,
    Ticket.lang,
    Ticket.category,
    Ticket.created_at,
)


def queue(session: Session, actor: Actor, wanted: QueueFilter, now: dt.datetime) -> tuple[list[QueueRow], int]:
    """A page of tickets ordered by deadline (soonest first) and the total matching, within the actor's scope.

    Rows carry the queue's columns, with the assignee's username in place of `assignee_id`, not whole tickets:
    the queue is the most read page of the admin API and must stay cheap with 100,000 tickets.
    """
    if not 1 <= wanted.limit <= MAX_PAGE:
        raise Invalid(f"limit: must be between 1 and {MAX_PAGE}")
    if wanted.offset < 0:
        raise Invalid("offset: must be 0 or more")
    department = list_scope(actor, wanted.department, "queue", now)
    statuses = tuple(sorted(set(wanted.status or OPEN_STATUSES)))
    unknown = set(statuses) - set(STATUSES)
    if unknown:
        raise Invalid(f"status: unknown {', '.join(sorted(unknown))}; one of {', '.join(STATUSES)}")
    values: dict[str, Any] = {"department": department, "now": now, "limit": wanted.limit, "offset": wanted.offset}
    assignee = wanted.assignee
    if assignee not in (None, "none"):
        values["assignee_id"] = actor.user_id if assignee == "me" else _user_id(session, assignee)
        assignee = "id"
    page, count = _queue_statements(statuses, department is not None, assignee, wanted.overdue)
    rows = session.execute(page, values).all()
    if not rows:  # past the last page, or nothing matches: the total still counts
        return [], session.scalar(count, values) or 0
    return [QueueRow(*row[:-1]) for row in rows], rows[0][-1]


@lru_cache(maxsize=256)
def _queue_statements(
    statuses: tuple[str, ...], by_department: bool, assignee: str | None, overdue: bool | None
) -> tuple[Select[Any], Select[tuple[int]]]:
    """The page and count statements of one shape of queue request, values left as parameters.

    Built once per shape: constructing and keying a statement costs more than running it on SQLite.
    """
    conditions: list[ColumnElement[bool]] = []
    if set(statuses) != set(STATUSES):  # every status: no condition, so the deadline index gives the order
        conditions.append(Ticket.status.in_(statuses) if len(statuses) > 1 else Ticket.status == statuses[0])
    if by_department:
        conditions.append(Ticket.department == bindparam("department"))
    if assignee == "none":
        conditions.append(Ticket.assignee_id.is_(None))
    elif assignee == "id":
        conditions.append(Ticket.assignee_id == bindparam("assignee_id"))
    if overdue is not None:
        late = and_(Ticket.status.in_(OPEN_STATUSES), Ticket.paused_at.is_(None), Ticket.deadline < bindparam("now"))
        conditions.append(late if overdue else ~late)
    where = and_(true(), *conditions)  # no condition at all is a valid shape: an admin, every status
    # The page's ids come straight from a covering index walked in deadline order (no sort of wide rows); only
    # those tickets are read, with their assignees' names.
    page_ids = (
        select(Ticket.id)
        .where(where)
        .order_by(Ticket.deadline, Ticket.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    # The total rides along on every row (the database computes it once): one round trip for the whole page.
    count = select(func.count()).select_from(Ticket).where(where)
    if assignee is None and overdue is None:  # by status and department only: kept up to date by triggers
        kept = [TicketCount.status.in_(statuses)]
        if by_department:
            kept.append(TicketCount.department == bindparam("department"))
        count = select(func.coalesce(func.sum(TicketCount.n), 0)).where(*kept)
    page = (  # correlate(None): both subqueries stand alone, never tied to the outer row
        select(*QUEUE_COLUMNS, User.username, count.correlate(None).scalar_subquery())
        .outerjoin(User, User.id == Ticket.assignee_id)
        .where(Ticket.id.in_(page_ids.correlate(None).scalar_subquery()))
        .order_by(Ticket.deadline, Ticket.id)
    )
    return page, count


def _user_id(session: Session, username: str) -> int:
    user_id = session.scalar(select(User.id).where(User.username == username))
    if user_id is None:
        raise Invalid(f"assignee: no user {username!r}")
    return user_id


def usernames(session: Session, user_ids: set[int]) -> dict[int, str]:
    """Usernames of the given users (one query for a whole page)."""
    if not user_ids:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all())


def is_overdue(ticket: Ticket, now: dt.datetime) -> bool:
    """Open, clock running, and past the deadline that runs now."""
    return ticket.status in OPEN_STATUSES and ticket.paused_at is None and ticket.deadline < now


# -- one ticket --------------------------------------------------------------------------------------------


def detail(
    session: Session, actor: Actor, code: str, now: dt.datetime
) -> tuple[Ticket, list[TicketEvent], dict[int, str]]:
    """The ticket, its history, and the delivery status of each reply (by chat message id)."""
    ticket = ticket_for(session, actor, code, "view", now)
    events = history(session, ticket.id)
    message_ids = [e.data.get("message_id") for e in events if e.kind == "replied" and e.data.get("message_id")]
    deliveries: dict[int, str] = {}
    if message_ids:
        for message_id, status in session.execute(
            select(OutboxMessage.chat_message_id, OutboxMessage.status).where(
                OutboxMessage.chat_message_id.in_(message_ids)
            )
        ):
            # a long reply is split into parts: it is delivered when every part is
            if deliveries.get(message_id) not in ("failed", "pending"):
                deliveries[message_id] = status
        for message_id in message_ids:
            deliveries.setdefault(message_id, "shown")  # web chat: read from the log, nothing to push
    return ticket, events, deliveries


def claim(session: Session, actor: Actor, code: str, now: dt.datetime) -> Ticket:
    """Acknowledge the ticket and become its owner; of two officials claiming at once exactly one wins (409)."""
    ticket = ticket_for(session, actor, code, "claim", now)
    if ticket.assignee_id == actor.user_id and ticket.status == "acknowledged":
        return ticket  # claiming twice is harmless
    released = ticket.status == "acknowledged" and ticket.assignee_id is None  # given back by its holder
    if ticket.status not in WAITING and not released:
        holder = usernames(session, {ticket.assignee_id}).get(ticket.assignee_id) if ticket.assignee_id else None
        raise Conflict(f"ticket {ticket.code} is {ticket.status}" + (f", held by {holder}" if holder else ""))
    # One conditional UPDATE: the database lets exactly one of two concurrent claims match.
    claimable = or_(Ticket.status.in_(WAITING), and_(Ticket.status == "acknowledged", Ticket.assignee_id.is_(None)))
    won = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id, claimable)
        .values(
            status="acknowledged",
            assignee_id=actor.user_id,
            acknowledged_at=func.coalesce(Ticket.acknowledged_at, now),
            deadline=func.coalesce(Ticket.resolve_deadline, Ticket.deadline),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        raise Conflict(f"ticket {ticket.code} was just claimed by someone else")
    session.refresh(ticket)
    record_event(session, ticket, "claimed", actor=actor.username, user_id=actor.user_id, now=now)
    return ticket


def release(session: Session, actor: Actor, code: str, now: dt.datetime) -> Ticket:
    """Give a held ticket back to the department's queue (unclaim); a colleague may claim it, its deadline stands."""
    ticket = ticket_for(session, actor, code, "release", now)
    if ticket.status != "acknowledged" or ticket.assignee_id is None:
        raise Conflict(f"ticket {ticket.code} is held by nobody; there is nothing to give back")
    _not_held_by_another(session, actor, ticket)
    ticket.assignee_id = None
    record_event(session, ticket, "released", actor=actor.username, user_id=actor.user_id, now=now)
    return ticket


def reply(
    session: Session, actor: Actor, code: str, text: str, now: dt.datetime, *, await_citizen: bool = False
) -> tuple[Ticket, int]:
    """Send the official's answer to the citizen (through the outbox); returns the ticket and the message id."""
    ticket = ticket_for(session, actor, code, "reply", now)
    _not_held_by_another(session, actor, ticket)
    if ticket.status in WAITING or (ticket.status == "acknowledged" and ticket.assignee_id is None):
        # answering is acknowledging and owning
        ticket = claim(session, actor, code, now)
    message = reply_to_ticket(
        session, ticket.code, text, now=now, actor=actor.username, user_id=actor.user_id, await_citizen=await_citizen
    )
    return ticket, message.id


def add_note(session: Session, actor: Actor, code: str, text: str, now: dt.datetime) -> TicketEvent:
    """An internal note on the ticket, never shown to the citizen."""
    ticket = ticket_for(session, actor, code, "note", now)
    text = _required(text, "text", MAX_NOTE_CHARS)
    return record_event(session, ticket, "note", actor=actor.username, user_id=actor.user_id, now=now, text=text)


def transfer(session: Session, actor: Actor, code: str, department: str, reason: str, now: dt.datetime) -> Ticket:
    """Hand the ticket to another department with a reason; its clocks start again there."""
    ticket = ticket_for(session, actor, code, "transfer", now)
    reason = _required(reason, "reason", MAX_REASON_CHARS)
    if ticket.status == "closed":
        raise Conflict(f"ticket {ticket.code} is closed; reopen it before transferring")
    target = session.scalar(select(Department).where(Department.slug == department))
    if target is None:
        raise Invalid(f"department: no department {department!r}")
    if target.slug == ticket.department:
        raise Conflict(f"ticket {ticket.code} already belongs to {department}")
    source = ticket.department
    ticket.department = target.slug
    ticket.status = "transferred"
    ticket.assignee_id = None
    start_clock(session, ticket, now)
    record_event(
        session,
        ticket,
        "transferred",
        actor=actor.username,
        user_id=actor.user_id,
        now=now,
        source=source,
        target=target.slug,
        reason=reason,
    )
    notify_transfer(session, ticket, source, reason, now, actor_id=actor.user_id)
    return ticket


def close(session: Session, actor: Actor, code: str, now: dt.datetime, reason: str = "") -> Ticket:
    """Close the ticket (answered, or nothing more to do)."""
    ticket = ticket_for(session, actor, code, "close", now)
    if ticket.status == "closed":
        raise Conflict(f"ticket {ticket.code} is already closed")
    _not_held_by_another(session, actor, ticket)
    ticket.status = "closed"
    ticket.closed_at = now
    ticket.paused_at = None
    mark_resolved(ticket, now)
    record_event(
        session,
        ticket,
        "closed",
        actor=actor.username,
        user_id=actor.user_id,
        now=now,
        reason=reason.strip()[:MAX_REASON_CHARS],
    )
    return ticket


def reopen_by(session: Session, actor: Actor, code: str, now: dt.datetime, reason: str = "") -> Ticket:
    """An official reopens an answered or closed ticket."""
    ticket = ticket_for(session, actor, code, "reopen", now)
    if ticket.status not in ("answered", "closed"):
        raise Conflict(f"ticket {ticket.code} is {ticket.status}; only answered or closed tickets reopen")
    reopen(session, ticket, now, actor=actor.username, user_id=actor.user_id, reason=reason.strip()[:1000])
    return ticket


def set_urgency(session: Session, actor: Actor, code: str, urgency: str, now: dt.datetime) -> Ticket:
    """Mark a ticket urgent (or normal again); its deadlines are recomputed from when it was opened."""
    if urgency not in URGENCIES:
        raise Invalid(f"urgency: one of {', '.join(URGENCIES)}")
    ticket = ticket_for(session, actor, code, "urgency", now)
    if ticket.urgency == urgency:
        return ticket
    if ticket.status in ("answered", "closed"):
        raise Conflict(f"ticket {ticket.code} is {ticket.status}")
    ticket.urgency = urgency
    acknowledged = ticket.status == "acknowledged"
    start_clock(session, ticket, ticket.created_at)
    if acknowledged:
        ticket.deadline = ticket.resolve_deadline
    record_event(session, ticket, "urgency", actor=actor.username, user_id=actor.user_id, now=now, urgency=urgency)
    return ticket


# -- the citizen's side of an owned conversation -----------------------------------------------------------


def citizen_wrote(session: Session, ticket: Ticket, text: str, now: dt.datetime) -> None:
    """The citizen wrote while an official owns the ticket: note it, restart a paused clock, tell the holder."""
    record_event(session, ticket, "citizen_message", actor=CITIZEN, now=now, text=text[:1000])
    if ticket.paused_at is not None:
        resume(session, ticket, now)
    notify_citizen_answered(session, ticket, now)  # after resuming: the notice gives the deadline now running


def resume(session: Session, ticket: Ticket, now: dt.datetime) -> None:
    """Restart the clock: the working time left at the pause is what is left now."""
    calendar = default_calendar()
    paused_at = ticket.paused_at
    assert paused_at is not None
    left = calendar.working_hours_between(paused_at, ticket.deadline)
    ticket.deadline = add_working_hours(now, max(left, 0.0), calendar=calendar)
    if ticket.resolve_deadline is not None and ticket.resolve_deadline >= paused_at:
        ticket.resolve_deadline = ticket.deadline
    ticket.paused_at = None
    record_event(
        session,
        ticket,
        "resumed",
        actor=CITIZEN,
        now=now,
        paused_hours=round(calendar.working_hours_between(paused_at, now), 3),
    )


# -- helpers -----------------------------------------------------------------------------------------------


def _not_held_by_another(session: Session, actor: Actor, ticket: Ticket) -> None:
    """An official does not act over a colleague who holds the ticket; supervisors and admins may."""
    if actor.role == "official" and ticket.assignee_id not in (None, actor.user_id):
        holder = usernames(session, {ticket.assignee_id}).get(ticket.assignee_id, "another official")
        raise Conflict(f"ticket {ticket.code} is held by {holder}; ask them or your supervisor")


def _required(value: str, field: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise Invalid(f"{field}: must not be empty")
    if len(value) > limit:
        raise Invalid(f"{field}: {len(value)} characters; at most {limit}")
    return value


def ticket_summary(ticket: Ticket | QueueRow, now: dt.datetime, names: dict[int, str] | None = None) -> dict[str, Any]:
    """The queue's view of a ticket (with `names` of assignees by id) or of a queue row (JSON-ready)."""
    summary = queue_item(ticket, now, names)
    summary["deadline"] = ticket.deadline.isoformat()
    summary["created_at"] = ticket.created_at.isoformat()
    return summary


def queue_item(ticket: Ticket | QueueRow, now: dt.datetime, names: dict[int, str] | None = None) -> dict[str, Any]:
    """ticket_summary with its times left as aware datetimes, for a serialiser that writes them itself (orjson)."""
    return {
        "code": ticket.code,
        "status": ticket.status,
        "department": ticket.department,
        "question": ticket.question,
        "deadline": ticket.deadline,
        "overdue": is_overdue(ticket, now),
        "paused": ticket.paused_at is not None,
        "urgency": ticket.urgency,
        "assignee": ticket.assignee if isinstance(ticket, QueueRow) else (names or {}).get(ticket.assignee_id),
        "channel": ticket.channel,
        "lang": ticket.lang,
        "category": ticket.category,
        "created_at": ticket.created_at,
    }


def codes_of(session: Session, ticket_ids: set[int]) -> dict[int, str]:
    """Ticket codes by id (one query)."""
    if not ticket_ids:
        return {}
    return dict(session.execute(select(Ticket.id, Ticket.code).where(Ticket.id.in_(ticket_ids))).all())
