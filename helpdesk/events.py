"""The audit trail: every change to a ticket, and every refused attempt, is an event with actor and time."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import after_transaction, session_scope
from helpdesk.models import Ticket, TicketEvent

logger = logging.getLogger(__name__)

CITIZEN, BOT, SYSTEM = "citizen", "bot", "system"  # actors that are not users


def record_event(
    session: Session,
    ticket: Ticket | None,
    kind: str,
    *,
    actor: str,
    now: dt.datetime,
    user_id: int | None = None,
    **data: Any,
) -> TicketEvent:
    """Add one event to the trail (in the caller's transaction)."""
    event = TicketEvent(
        ticket_id=ticket.id if ticket is not None else None,
        kind=kind,
        actor=actor,
        user_id=user_id,
        department=ticket.department if ticket is not None else None,
        at=now,
        data=data,
    )
    session.add(event)
    return event


def record_denial(
    ticket_id: int | None,
    department: str | None,
    *,
    actor: str,
    user_id: int | None,
    action: str,
    reason: str,
    now: dt.datetime,
) -> None:
    """Audit a refused attempt in a transaction of its own, once the request's has ended: the request fails (its
    transaction rolls back), the record of the attempt must not."""

    def write() -> None:
        with session_scope() as session:
            session.add(
                TicketEvent(
                    ticket_id=ticket_id,
                    kind="denied",
                    actor=actor,
                    user_id=user_id,
                    department=department,
                    at=now,
                    data={"action": action, "reason": reason},
                )
            )

    after_transaction(write)
    logger.warning("access denied: %s tried %s (%s)", actor, action, reason)


def history(session: Session, ticket_id: int) -> list[TicketEvent]:
    """A ticket's events, oldest first."""
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.at, TicketEvent.id)
    return list(session.scalars(stmt))
