"""Officials' ticket API: a thin layer over helpdesk.tickets (auth, parsing, JSON)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from admin_api.auth_routes import BearerDep, actor_in, current_actor
from core.db import session_scope
from helpdesk import tickets
from helpdesk.accounts import Actor
from helpdesk.tickets import MAX_PAGE, QueueFilter
from knowledge.models import utcnow

router = APIRouter(prefix="/api", tags=["tickets"])
ActorDep = Annotated[Actor, Depends(current_actor)]
Code = Annotated[str, Field(min_length=1, max_length=40)]


class TicketOut(BaseModel):
    """A ticket as the queue shows it."""

    code: str
    status: str
    department: str | None
    question: str
    deadline: str
    overdue: bool
    paused: bool
    urgency: str
    assignee: str | None
    channel: str
    lang: str
    category: str | None
    created_at: str


class QueueOut(BaseModel):
    """A page of the queue and how many tickets match in all."""

    data: list[TicketOut]
    count: int
    limit: int
    offset: int


class EventOut(BaseModel):
    """One entry of a ticket's history."""

    at: str
    kind: str
    actor: str
    department: str | None
    data: dict[str, Any]


class TicketDetailOut(TicketOut):
    """A ticket with what the official needs to answer it, and its history."""

    reason: str
    excerpt: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    ack_deadline: str | None
    resolve_deadline: str | None
    expected_at: str | None
    apologies: int
    rating: int | None
    history: list[EventOut]
    deliveries: dict[str, str]  # chat message id of each reply → pending | sent | failed | shown


class Strict(BaseModel):
    """Request bodies refuse unknown fields (a typo is an error, not silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class ReplyIn(Strict):
    """An official's answer to the citizen."""

    text: Annotated[str, Field(min_length=1, max_length=8000)]
    await_citizen: bool = Field(False, description="Ask the citizen for something: the clock stops until they write")


class ReplyOut(BaseModel):
    """The reply was queued for delivery in the citizen's channel."""

    ticket: TicketOut
    message_id: int
    delivery: str


class NoteIn(Strict):
    """An internal note, never shown to the citizen."""

    text: Annotated[str, Field(min_length=1, max_length=4000)]


class TransferIn(Strict):
    """Hand the ticket to another department."""

    department: Annotated[str, Field(min_length=1, max_length=80)]
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class ReasonIn(Strict):
    """An optional reason for closing or reopening."""

    reason: Annotated[str, Field(max_length=1000)] = ""


class UrgencyIn(Strict):
    """Urgent tickets get shorter deadlines (acknowledge within 4 working hours)."""

    urgency: Literal["normal", "urgent"]


class NotificationOut(BaseModel):
    """A notification for the signed-in user."""

    id: int
    kind: str
    text: str
    ticket: str | None
    created_at: str
    read: bool


def _summary(session: Any, ticket: Any, now: Any) -> dict[str, Any]:
    names = tickets.usernames(session, {ticket.assignee_id} if ticket.assignee_id else set())
    return tickets.ticket_summary(ticket, now, names)


@router.get("/tickets", response_model=QueueOut)
def list_tickets(
    token: BearerDep,
    status: Annotated[str | None, Query(max_length=200, description="comma-separated; default: open ones")] = None,
    department: Annotated[str | None, Query(max_length=80)] = None,
    assignee: Annotated[str | None, Query(max_length=80, description="a username, 'me' or 'none'")] = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, at most {MAX_PAGE}")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """The queue: tickets of your department (admins: all), soonest deadline first."""
    wanted = QueueFilter(
        status=tuple(s.strip() for s in status.split(",") if s.strip()) if status else None,
        department=department,
        assignee=assignee,
        overdue=overdue,
        limit=limit,
        offset=offset,
    )
    now = utcnow()
    # The token is checked in the queue's own transaction: one connection and one thread hop a request, not two
    # (this is the busiest endpoint).
    with session_scope() as session:
        actor = actor_in(session, token, now)
        rows, count = tickets.queue(session, actor, wanted, now)
        data = [tickets.queue_item(row, now) for row in rows]
    # Built to QueueOut's shape: serialised as is (orjson writes the times as ISO 8601, as isoformat() does), not
    # validated again — this is the busiest endpoint.
    body = orjson.dumps({"data": data, "count": count, "limit": limit, "offset": offset})
    return Response(body, media_type="application/json")


@router.get("/tickets/{code}", response_model=TicketDetailOut)
def get_ticket(code: str, actor: ActorDep) -> dict[str, Any]:
    """One ticket with its conversation excerpt, the bot's candidates, its history and delivery status."""
    now = utcnow()
    with session_scope() as session:
        ticket, events, deliveries = tickets.detail(session, actor, code, now)
        return {
            **_summary(session, ticket, now),
            "reason": ticket.reason,
            "excerpt": ticket.excerpt or [],
            "candidates": ticket.candidates or [],
            "ack_deadline": _iso(ticket.ack_deadline),
            "resolve_deadline": _iso(ticket.resolve_deadline),
            "expected_at": _iso(ticket.expected_at),
            "apologies": ticket.apologies,
            "rating": ticket.rating,
            "history": [
                {
                    "at": e.at.isoformat(),
                    "kind": e.kind,
                    "actor": e.actor,
                    "department": e.department,
                    "data": e.data or {},
                }
                for e in events
            ],
            "deliveries": {str(k): v for k, v in deliveries.items()},
        }


@router.post("/tickets/{code}/claim", response_model=TicketOut)
def claim_ticket(code: str, actor: ActorDep) -> dict[str, Any]:
    """Acknowledge the ticket and own it; 409 if someone else got it first."""
    now = utcnow()
    with session_scope() as session:
        return _summary(session, tickets.claim(session, actor, code, now), now)


@router.post("/tickets/{code}/reply", response_model=ReplyOut)
def reply_ticket(code: str, body: ReplyIn, actor: ActorDep) -> dict[str, Any]:
    """Answer the citizen; the reply goes out in their own channel through the outbox."""
    now = utcnow()
    with session_scope() as session:
        ticket, message_id = tickets.reply(session, actor, code, body.text, now, await_citizen=body.await_citizen)
        delivery = "pending" if ticket.channel in ("telegram", "zalo") else "shown"
        return {"ticket": _summary(session, ticket, now), "message_id": message_id, "delivery": delivery}


@router.post("/tickets/{code}/note", response_model=EventOut)
def note_ticket(code: str, body: NoteIn, actor: ActorDep) -> dict[str, Any]:
    """Add an internal note to the ticket's history."""
    now = utcnow()
    with session_scope() as session:
        event = tickets.add_note(session, actor, code, body.text, now)
        return {
            "at": now.isoformat(),
            "kind": event.kind,
            "actor": event.actor,
            "department": event.department,
            "data": event.data,
        }


@router.post("/tickets/{code}/transfer", response_model=TicketOut)
def transfer_ticket(code: str, body: TransferIn, actor: ActorDep) -> dict[str, Any]:
    """Send the ticket to another department, with a reason."""
    now = utcnow()
    with session_scope() as session:
        return _summary(session, tickets.transfer(session, actor, code, body.department, body.reason, now), now)


@router.post("/tickets/{code}/close", response_model=TicketOut)
def close_ticket(code: str, actor: ActorDep, body: ReasonIn | None = None) -> dict[str, Any]:
    """Close the ticket."""
    now = utcnow()
    with session_scope() as session:
        return _summary(session, tickets.close(session, actor, code, now, body.reason if body else ""), now)


@router.post("/tickets/{code}/reopen", response_model=TicketOut)
def reopen_ticket(code: str, actor: ActorDep, body: ReasonIn | None = None) -> dict[str, Any]:
    """Open an answered or closed ticket again (fresh deadlines)."""
    now = utcnow()
    with session_scope() as session:
        return _summary(session, tickets.reopen_by(session, actor, code, now, body.reason if body else ""), now)


@router.post("/tickets/{code}/urgency", response_model=TicketOut)
def ticket_urgency(code: str, body: UrgencyIn, actor: ActorDep) -> dict[str, Any]:
    """Mark the ticket urgent or normal; deadlines are recomputed."""
    now = utcnow()
    with session_scope() as session:
        return _summary(session, tickets.set_urgency(session, actor, code, body.urgency, now), now)


@router.get("/notifications", response_model=list[NotificationOut])
def my_notifications(
    actor: ActorDep, unread: bool = False, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50
) -> list[dict[str, Any]]:
    """Your notifications (missed deadlines, transfers), newest first."""
    with session_scope() as session:
        rows = tickets.notifications_of(session, actor, unread_only=unread, limit=limit)
        codes = tickets.codes_of(session, {n.ticket_id for n in rows if n.ticket_id})
        return [
            {
                "id": n.id,
                "kind": n.kind,
                "text": n.text,
                "ticket": codes.get(n.ticket_id) if n.ticket_id else None,
                "created_at": n.created_at.isoformat(),
                "read": n.read_at is not None,
            }
            for n in rows
        ]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
