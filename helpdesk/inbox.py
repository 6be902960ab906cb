"""The officials' inbox: a department's tickets by view (mine, unassigned, overdue, waiting, done), searched and paged.

Reads only; every change to a ticket goes through helpdesk.tickets. Scoped like the queue of the admin API: officials
and supervisors see their own department, admins any (refusals are audited).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.orm import Session

from core.errors import Invalid
from core.text import fold
from helpdesk.accounts import Actor
from helpdesk.models import Ticket, TicketCount, User
from helpdesk.service import OPEN_STATUSES
from helpdesk.sla import remaining_working_hours
from helpdesk.tickets import list_scope
from knowledge.models import Procedure, ProcedureText

DONE_STATUSES = ("answered", "closed")
VIEWS = {  # name → (Vietnamese, English)
    "open": ("Đang mở", "Open"),
    "mine": ("Của tôi", "Mine"),
    "unassigned": ("Chưa ai nhận", "Unassigned"),
    "overdue": ("Quá hạn", "Overdue"),
    "waiting": ("Chờ công dân", "Waiting for citizen"),
    "closed": ("Đã xong", "Done"),
}
PER_PAGE = 25
MAX_PAGE_NUMBER = 10_000
SOON_HOURS = 1.0  # a running deadline this close (working hours) is shown as "due soon"
EXCERPT_CHARS = 160
CODE_SHAPE = re.compile(r"MC-[A-Z0-9]{6}")
# Whatever the deadline order puts first, the newest unassigned tickets show above it for a while, so that a new
# hand-off is seen at once by whoever watches the inbox.
ARRIVAL_MINUTES = 120
ARRIVALS_SHOWN = 5
MAX_SEARCH_WORDS = 8


@dataclass(frozen=True)
class InboxQuery:
    """What an inbox page asks for."""

    view: str = "open"
    department: str | None = None  # admins: one department, or None for all
    search: str = ""
    channel: str | None = None
    lang: str | None = None
    page: int = 1
    per_page: int = PER_PAGE


@dataclass
class InboxPage:
    """One page of the inbox, the counts of every view, and the departments it covers."""

    rows: list[dict[str, Any]]
    total: int
    counts: dict[str, int]
    department: str | None
    pages: int
    arrivals: list[dict[str, Any]]  # the newest unassigned tickets (open and unassigned views, first page)


def inbox_page(session: Session, actor: Actor, query: InboxQuery, now: dt.datetime) -> InboxPage:
    """The tickets of one view, soonest deadline first (done ones: latest first), with every view's count."""
    if query.view not in VIEWS:
        raise Invalid(f"view: {query.view!r}; one of {', '.join(VIEWS)}")
    if not 1 <= query.page <= MAX_PAGE_NUMBER:
        raise Invalid(f"page: must be between 1 and {MAX_PAGE_NUMBER}")
    department = list_scope(actor, query.department, "inbox", now)
    scope = [Ticket.department == department] if department is not None else []
    filters = scope + _filters(query)
    conditions = and_(true(), *filters, _view(query.view, actor, now))
    total = session.scalar(select(func.count()).select_from(Ticket).where(conditions)) or 0
    order = (Ticket.resolved_at.desc(), Ticket.id.desc()) if query.view == "closed" else (Ticket.deadline, Ticket.id)
    rows = session.execute(
        select(Ticket, User.username)
        .outerjoin(User, User.id == Ticket.assignee_id)
        .where(conditions)
        .order_by(*order)
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    ).all()
    fresh = arrivals(session, scope, now) if query.view in ("open", "unassigned") and query.page == 1 else []
    titles = procedure_titles(session, {t.procedure_slug for t, _ in [*rows, *fresh] if t.procedure_slug})
    return InboxPage(
        rows=[_row(ticket, assignee, titles, now) for ticket, assignee in rows],
        total=total,
        counts=view_counts(session, actor, department, now),
        department=department,
        pages=max(1, -(-total // query.per_page)),
        arrivals=[_row(ticket, assignee, titles, now) for ticket, assignee in fresh],
    )


def arrivals(session: Session, scope: list[ColumnElement[bool]], now: dt.datetime) -> list[Any]:
    """The newest open, unassigned tickets of the last ARRIVAL_MINUTES, newest first."""
    since = now - dt.timedelta(minutes=ARRIVAL_MINUTES)
    return list(
        session.execute(
            select(Ticket, User.username)
            .outerjoin(User, User.id == Ticket.assignee_id)
            .where(
                *scope,
                Ticket.created_at >= since,
                Ticket.status.in_(OPEN_STATUSES),
                Ticket.assignee_id.is_(None),
            )
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(ARRIVALS_SHOWN)
        ).all()
    )


def view_counts(session: Session, actor: Actor, department: str | None, now: dt.datetime) -> dict[str, int]:
    """How many tickets each view holds, for the tabs: one pass over the open ones, the done ones from the totals."""
    scope = [Ticket.department == department] if department is not None else []
    is_open = Ticket.status.in_(OPEN_STATUSES)
    counted = select(
        func.count(),
        func.count().filter(Ticket.assignee_id == actor.user_id),
        func.count().filter(Ticket.assignee_id.is_(None)),
        func.count().filter(Ticket.paused_at.is_(None), Ticket.deadline < now),
        func.count().filter(Ticket.paused_at.is_not(None)),
    ).where(is_open, *scope)
    open_, mine, unassigned, overdue, waiting = session.execute(counted).one()
    kept = select(func.coalesce(func.sum(TicketCount.n), 0)).where(TicketCount.status.in_(DONE_STATUSES))
    if department is not None:
        kept = kept.where(TicketCount.department == department)
    done = session.scalar(kept) or 0
    return {
        "open": open_,
        "mine": mine,
        "unassigned": unassigned,
        "overdue": overdue,
        "waiting": waiting,
        "closed": int(done),
    }


def procedure_titles(session: Session, slugs: set[str]) -> dict[str, str]:
    """Vietnamese titles of the given procedures (one query for a page)."""
    if not slugs:
        return {}
    rows = session.execute(
        select(Procedure.slug, ProcedureText.title)
        .join(ProcedureText, ProcedureText.procedure_id == Procedure.id)
        .where(Procedure.slug.in_(slugs), ProcedureText.lang == "vi")
    ).all()
    return dict(rows)


def due_state(ticket: Ticket, now: dt.datetime) -> tuple[str, float | None]:
    """How the running deadline stands: missed, soon (within an hour of work), ok, paused or done; and hours left."""
    if ticket.status not in OPEN_STATUSES:
        return "done", None
    if ticket.paused_at is not None:
        return "paused", None
    left = remaining_working_hours(now, ticket.deadline)  # negative once missed
    if ticket.deadline <= now:
        return "missed", left
    return ("soon" if left <= SOON_HOURS else "ok"), left


# -- helpers -----------------------------------------------------------------------------------------------


def _view(view: str, actor: Actor, now: dt.datetime) -> ColumnElement[bool]:
    is_open = Ticket.status.in_(OPEN_STATUSES)
    return {
        "open": is_open,
        "mine": and_(is_open, Ticket.assignee_id == actor.user_id),
        "unassigned": and_(is_open, Ticket.assignee_id.is_(None)),
        "overdue": and_(is_open, Ticket.paused_at.is_(None), Ticket.deadline < now),
        "waiting": and_(is_open, Ticket.paused_at.is_not(None)),
        "closed": Ticket.status.in_(DONE_STATUSES),
    }[view]


def _filters(query: InboxQuery) -> list[ColumnElement[bool]]:
    """Search (a ticket code, or words matched without diacritics), channel and language."""
    conditions: list[ColumnElement[bool]] = []
    search = query.search.strip()
    if search:
        if CODE_SHAPE.fullmatch(search.upper()):
            conditions.append(Ticket.code == search.upper())
        else:
            words = fold(search).split()[:MAX_SEARCH_WORDS]
            conditions += [Ticket.search_text.contains(word, autoescape=True) for word in words]
    if query.channel:
        conditions.append(Ticket.channel == query.channel)
    if query.lang:
        conditions.append(Ticket.lang == query.lang)
    return conditions


def _row(ticket: Ticket, assignee: str | None, titles: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    state, hours = due_state(ticket, now)
    question = ticket.question.strip()
    return {
        "code": ticket.code,
        "status": ticket.status,
        "department": ticket.department,
        "excerpt": question if len(question) <= EXCERPT_CHARS else question[: EXCERPT_CHARS - 1].rstrip() + "…",
        "channel": ticket.channel,
        "lang": ticket.lang,
        "procedure": ticket.procedure_slug,
        "procedure_title": titles.get(ticket.procedure_slug or "", ""),
        "deadline": ticket.deadline,
        "due": state,
        "hours_left": hours,
        "urgency": ticket.urgency,
        "assignee": assignee,
        "created_at": ticket.created_at,
        "rating": ticket.rating,
    }
