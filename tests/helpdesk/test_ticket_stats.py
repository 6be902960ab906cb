"""ticket_stats, kept by database triggers (migration 0010), always equals the same sums worked out in Python from
the tickets themselves — after inserts, every kind of change, changes outside the ORM and deletes."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from bot.models import Conversation
from helpdesk.models import Department, Ticket, TicketStat, User
from helpdesk.sla import VN

SUMS = ("n", "hours_n", "late", "open_late", "apologies", "ratings", "rating_sum")
MOMENTS = {"created": "created_at", "first": "first_response_at", "resolved": "resolved_at"}
HOURS = {"created": None, "first": "first_response_hours", "resolved": "resolution_hours"}


def vn(month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=VN).astimezone(dt.UTC)


def expected(session: Session) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """The table worked out in Python: every ticket under the Vietnam day and month of each of its moments."""
    sums: dict[tuple[Any, ...], Counter[str]] = {}
    for ticket in session.scalars(select(Ticket)):
        for kind, moment in MOMENTS.items():
            at = getattr(ticket, moment)
            if at is None:
                continue
            local = at.astimezone(VN).date()
            hours = getattr(ticket, HOURS[kind]) if HOURS[kind] else None
            row = Counter(
                n=1,
                hours_n=int(hours is not None),
                late=int(ticket.apologies > 0),
                open_late=int(ticket.resolved_at is None and ticket.apologies > 0),
                apologies=ticket.apologies,
                ratings=int(ticket.rating is not None),
                rating_sum=ticket.rating or 0,
            )
            department = ticket.department or ""
            for key in (
                ("day", kind, local, department, 0, ""),
                ("month", kind, local.replace(day=1), department, ticket.assignee_id or 0, ticket.category or ""),
            ):
                sums.setdefault(key, Counter()).update(row)
    return {key: tuple(found[name] for name in SUMS) for key, found in sums.items()}


def kept(session: Session) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """The table as the triggers keep it, without the rows that went back to zero."""
    session.flush()
    session.expire_all()
    found = {}
    for stat in session.scalars(select(TicketStat)):
        sums = tuple(getattr(stat, name) for name in SUMS)
        if any(sums):
            key = (stat.grain, stat.kind, stat.start, stat.department, stat.assignee_id, stat.category)
            found[key] = sums
    return found


def test_stats_stay_exact_through_every_change(session: Session) -> None:
    session.add_all([Department(slug="ho-tich", name="Hộ tịch"), Department(slug="cu-tru", name="Cư trú")])
    session.add(Conversation(channel="web", user_key="c", state={}))
    session.flush()
    a1 = User(username="a1", password_hash="x", role="official", department="ho-tich")
    b1 = User(username="b1", password_hash="x", role="official", department="cu-tru")
    session.add_all([a1, b1])
    session.flush()
    conversation_id = session.scalar(select(Conversation.id))

    def ticket(code: str, **fields: Any) -> Ticket:
        values: dict[str, Any] = {"department": "ho-tich", "created_at": vn(3, 2), "deadline": vn(3, 3)}
        values.update(fields)
        made = Ticket(code=code, conversation_id=conversation_id, channel="web", question="?", reason="x", **values)
        session.add(made)
        return made

    t1 = ticket("T1")
    # 23:30 in Vietnam on March 31 is 16:30 UTC the same day; 00:30 on April 1 is still March 31 in UTC
    t2 = ticket("T2", created_at=vn(3, 31, 23, 30), category="civil-status", assignee_id=a1.id)
    t3 = ticket("T3", created_at=vn(4, 1, 0, 30), department=None, category="residence")
    t4 = ticket("T4", first_response_at=vn(3, 3), first_response_hours=3.0, resolved_at=vn(3, 4))
    t4.resolution_hours, t4.rating, t4.apologies, t4.assignee_id = 10.0, 4, 1, b1.id
    session.flush()
    assert kept(session) == expected(session)
    assert kept(session)[("month", "created", dt.date(2026, 4, 1), "", 0, "residence")] == (1, 0, 0, 0, 0, 0, 0)

    # the ORM's changes: a claim, a first reply, an apology, a resolution with a rating, a transfer, a reopening
    t1.assignee_id = a1.id
    t1.first_response_at, t1.first_response_hours = vn(3, 2, 11), 2.0
    t2.apologies = 1
    t1.resolved_at, t1.resolution_hours, t1.rating = vn(3, 3, 16), 7.0, 5
    t3.department, t3.assignee_id = "cu-tru", b1.id
    t4.resolved_at, t4.resolution_hours, t4.rating = None, None, None
    session.flush()
    assert kept(session) == expected(session)
    # resolved again a month later, in another department, rated once more
    t4.resolved_at, t4.resolution_hours, t4.rating, t4.department = vn(4, 20), 80.0, 2, "cu-tru"
    t2.question = "a change the stats do not depend on"
    session.flush()
    assert kept(session) == expected(session)

    # changes outside the ORM count too: a bulk UPDATE, a ticket moved off any department, deletes
    session.execute(update(Ticket).where(Ticket.department == "cu-tru").values(apologies=Ticket.apologies + 1))
    session.execute(update(Ticket).where(Ticket.id == t1.id).values(department=None, category="land"))
    session.execute(delete(Ticket).where(Ticket.id == t2.id))
    assert kept(session) == expected(session)
    session.execute(delete(Ticket))
    assert kept(session) == {}
