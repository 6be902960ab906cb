"""Who has a ticket open: each open ticket page beats every few seconds; the others see a collision notice."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from helpdesk.models import TicketViewer, User

# A page beats every few seconds (dashboard.js); a viewer silent this long has closed it or gone away.
VIEWING_SECONDS = 20


def mark_viewing(session: Session, ticket_id: int, user_id: int, now: dt.datetime) -> None:
    """Note that this user has the ticket's page open now (one upsert: two tabs may beat at once)."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    stmt = insert(TicketViewer).values(ticket_id=ticket_id, user_id=user_id, seen_at=now)
    session.execute(
        stmt.on_conflict_do_update(index_elements=["ticket_id", "user_id"], set_={"seen_at": stmt.excluded.seen_at})
    )


def stop_viewing(session: Session, ticket_id: int, user_id: int) -> None:
    """The user left the ticket's page."""
    session.execute(delete(TicketViewer).where(TicketViewer.ticket_id == ticket_id, TicketViewer.user_id == user_id))


def other_viewers(session: Session, ticket_id: int, user_id: int, now: dt.datetime) -> list[str]:
    """Full names (else usernames) of the others who have the ticket's page open, by name."""
    since = now - dt.timedelta(seconds=VIEWING_SECONDS)
    rows = session.execute(
        select(User.full_name, User.username)
        .join(TicketViewer, TicketViewer.user_id == User.id)
        .where(TicketViewer.ticket_id == ticket_id, TicketViewer.user_id != user_id, TicketViewer.seen_at >= since)
        .order_by(User.username)
    ).all()
    return [full_name or username for full_name, username in rows]
