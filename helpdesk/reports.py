"""Accountability figures, computed in SQL from what was logged (tickets, their events, the chat log); never typed in.

Every function takes `(session, period, departments, ...)` and returns a list of plain dicts whose keys are in a
fixed order (the `*_COLUMNS` tuples), ready for JSON and CSV. Aggregates run in the database (SQLAlchemy Core,
window functions), never as Python loops over messages or tickets; the bot's replies of past days are added up
from per-day rollups (helpdesk.rollups), which give exactly the figures of the log itself. Over a long period
(one holding LONG_SHARE or more of all the tickets) the ticket figures are added up from `ticket_stats`, which
database triggers keep exact (migration 0010), and each median or p90 is read by walking the group's values in
order up to its rank; over a shorter one they are grouped from the period's own tickets. Both readings give the
same figures.

Definitions
- Period: `from` and `to` dates, both included, as Vietnam days (Asia/Ho_Chi_Minh, UTC+7, no daylight saving):
  from 00:00 up to the midnight after `to`. Default: the last 30 days up to today; at most 400 days.
- A ticket belongs to its current department, and its official is its assignee (a transferred ticket counts for
  the department that has it now).
- volume (`tickets`): tickets created in the period.
- first response time: working hours from the ticket's opening to the first official reply
  (`Ticket.first_response_hours`), over tickets whose first reply came in the period.
- resolution time: working hours from opening to the answer or closing (`Ticket.resolution_hours`), over tickets
  resolved in the period (`resolved_at` in the period; a reopened ticket is resolved again later).
- on time: resolved in the period without a missed deadline (`apologies == 0`).
- decided in the period: resolved in it, or still unresolved with a missed deadline and created in it.
- missed: decided with at least one missed deadline (`apologies > 0`); decided = on time + missed.
- on-time rate = on time / decided (null when nothing was decided).
- overdue now: open (new, acknowledged, reopened, transferred), clock not paused, running deadline passed — at
  the moment of the request, whatever the period.
- apologies: apologies sent to citizens (one per missed deadline, `Ticket.apologies`, never reset) for the
  tickets created in the period, charged to the ticket's current department and assignee.
- rating: the citizen's 1–5 rating of the official's reply, over tickets resolved in the period.
- 👍/👎: feedback given in the period on the bot's answers, reported overall (bot report) and per category of the
  answered procedure (category report) — not per department: it judges the bot's answer, not a department's work.
- Medians, p90 and p95 use the nearest rank: the value at position ceil(p·n/100) of the n values in ascending
  order (the smallest value with at least p% of the values at or below it), located with a histogram and integer
  arithmetic and read from the rows themselves, so SQLite and PostgreSQL give the same figures.
- Bot response time: `latency_ms` of each bot reply (citizen's message stored → reply queued), every bot reply in
  the period. Shares: replies answered / clarify / escalated / declined over the sum of those four (questions);
  other replies (help, topics, forwarded to an official, …) are counted but not in the shares.
- Buckets: Vietnam-time day, ISO week (labelled by its Monday) or month (labelled by its first day).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
    values,
)
from sqlalchemy.orm import Session

from bot.models import Feedback
from core.db import UtcDateTime
from core.errors import Invalid
from helpdesk import rollups
from helpdesk.models import Department, Ticket, TicketStat, User
from helpdesk.rollups import QUESTION_STATUSES
from helpdesk.service import OPEN_STATUSES
from helpdesk.sla import VN, working_hours_between
from knowledge.models import Procedure, utcnow

DEFAULT_DAYS = 30
MAX_DAYS = 400  # a year and a bit: enough for year-on-year, small enough to stay an index range scan
BUCKETS = ("day", "week", "month")
FIGURES = ("volume", "first_response", "resolved", "decided", "on_time", "missed", "overdue", "apologies", "rated")
MAX_TICKET_ROWS = 1000
ALL = "all"  # the label of a whole-scope row
TOTAL = object()  # the key of whole-scope aggregates (never equal to a value read from the database)

TICKET_FIGURES = (
    "tickets",
    "first_responses",
    "first_response_median_hours",
    "first_response_p90_hours",
    "resolved",
    "resolution_median_hours",
    "resolution_p90_hours",
    "decided",
    "on_time",
    "missed",
    "on_time_rate",
    "overdue_now",
    "apologies",
    "ratings",
    "rating_avg",
)
DEPARTMENT_COLUMNS = ("department", "name", "name_en", *TICKET_FIGURES)
OFFICIAL_COLUMNS = ("official", "full_name", "role", "department", *TICKET_FIGURES)
CATEGORY_COLUMNS = ("category", "bot_answers", "thumbs_up", "thumbs_down", *TICKET_FIGURES)
BOT_COLUMNS = ("status", "replies", "share", "latency_p50_ms", "latency_p95_ms", "thumbs_up", "thumbs_down")
TIMESERIES_COLUMNS = (
    "bucket",
    "questions",
    "answered",
    "clarify",
    "escalated",
    "declined",
    "tickets",
    "resolved",
    "on_time",
    "first_response_median_hours",
)
RANKING_COLUMNS = (
    "month",
    "rank",
    "department",
    "name",
    "name_en",
    "tickets",
    "decided",
    "on_time_rate",
    "ratings",
    "rating_avg",
)
OVERDUE_COLUMNS = (
    "code",
    "department",
    "status",
    "urgency",
    "category",
    "assignee",
    "created_at",
    "deadline",
    "overdue_working_hours",
    "apologies",
)
TICKET_COLUMNS = (
    "code",
    "department",
    "status",
    "urgency",
    "category",
    "assignee",
    "created_at",
    "first_response_at",
    "resolved_at",
    "deadline",
    "first_response_hours",
    "resolution_hours",
    "apologies",
    "rating",
)
TRANSPARENCY_COLUMNS = (
    "department",
    "name",
    "name_en",
    "tickets",
    "decided",
    "on_time_rate",
    "ratings",
    "rating_avg",
    "bot_answered_share",
)


# -- the period --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """From and to dates, both included, in Vietnam days."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise Invalid(f"to: {self.end.isoformat()} is before from: {self.start.isoformat()}")
        if self.days > MAX_DAYS:
            raise Invalid(f"from/to: {self.days} days asked; a report covers at most {MAX_DAYS} days")

    @classmethod
    def parse(cls, start: str | None, end: str | None, *, today: dt.date | None = None) -> Period:
        """The period of two optional YYYY-MM-DD strings; `to` defaults to today, `from` to 30 days before `to`."""
        today = today or utcnow().astimezone(VN).date()
        last = _date("to", end) if end else today
        first = _date("from", start) if start else last - dt.timedelta(days=DEFAULT_DAYS - 1)
        return cls(first, last)

    @classmethod
    def month(cls, month: str) -> Period:
        """The calendar month of a YYYY-MM string."""
        try:
            year, number = (int(part) for part in month.split("-"))
            first = dt.date(year, number, 1)
        except ValueError:
            raise Invalid(f"month: {month!r} is not a month; use YYYY-MM") from None
        if len(month) != 7:
            raise Invalid(f"month: {month!r} is not a month; use YYYY-MM")
        return cls(first, first.replace(day=calendar.monthrange(year, number)[1]))

    @property
    def days(self) -> int:
        """How many days the period covers."""
        return (self.end - self.start).days + 1

    @property
    def since(self) -> dt.datetime:
        """The first moment of the period (UTC)."""
        return dt.datetime.combine(self.start, dt.time(), VN).astimezone(dt.UTC)

    @property
    def until(self) -> dt.datetime:
        """The first moment after the period (UTC)."""
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), VN).astimezone(dt.UTC)

    def contains(self, column: Any) -> ColumnElement[bool]:
        """column falls in the period."""
        return and_(column >= self.since, column < self.until)


def _date(name: str, value: str) -> dt.date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name}: {value!r} is not a date; use YYYY-MM-DD") from None


# -- building blocks ---------------------------------------------------------------------------------------


def _scope(column: Any, departments: Sequence[str] | None) -> list[ColumnElement[bool]]:
    """The department filter (None: every department)."""
    return [] if departments is None else [column.in_(list(departments))]


def _period_scope(departments: Sequence[str] | None) -> list[ColumnElement[bool]]:
    """The department filter of ticket queries over a period. On an expression, not the bare column: the planner
    then reads the period's covering index (a range of days) rather than every ticket the department ever had —
    without statistics (the app never runs ANALYZE) SQLite would take the department index."""
    return [] if departments is None else [func.coalesce(Ticket.department, "").in_(list(departments))]


def _grouped(
    session: Session,
    group: Any,
    columns: Sequence[Any],
    where: Iterable[Any],
    *,
    source: Any = None,
    joins: Sequence[Any] = (),
    total: bool = False,
) -> dict[Any, tuple[Any, ...]]:
    """Additive aggregates (counts, sums) of `columns` by group; with `total`, also their sum over the groups
    keyed TOTAL (group None: only that)."""
    stmt = select(*([group] if group is not None else []), *columns)
    if source is not None:
        stmt = stmt.select_from(source)
    for target, on in joins:
        stmt = stmt.join(target, on)
    stmt = stmt.where(*where)
    if group is None:
        return {TOTAL: tuple(session.execute(stmt).one())}
    found = {row[0]: tuple(row[1:]) for row in session.execute(stmt.group_by(group))}
    if total:
        found[TOTAL] = tuple(sum(values) for values in zip(*found.values(), strict=True)) or (0,) * len(columns)
    return found


def _percentiles(
    session: Session,
    group: Any,
    value: Any,
    where: Iterable[Any],
    pcts: Sequence[int],
    *,
    width: float,
    total: bool = False,
    sums: Sequence[Any] = (),
) -> dict[Any, tuple[Any, ...]]:
    """(n, value at each nearest-rank percentile, each of `sums` added up) by group (None: the whole scope, keyed
    TOTAL; with `total`, the whole scope too), exact, in two aggregate queries instead of sorting every row:

    1. a histogram: how many values fall in each bucket floor(value / width) of each group, with `sums` added up
       in the same pass (n counts the values; rows without a value only count in `sums`);
    2. the rank k = ceil(p·n/100) is located in its bucket from the cumulative counts (a loop over buckets, not
       rows), and the k-th value is read from the rows of that group and bucket only (_values_at).
    """
    bucket = rollups.floor_bucket(value, width)
    keyed = group is not None
    by = [group, bucket] if keyed else [bucket]
    histograms: dict[Any, dict[int, int]] = {}
    added: dict[Any, list[Any]] = {}
    if total or not keyed:
        histograms[TOTAL], added[TOTAL] = {}, [0] * len(sums)
    stmt = select(*by, func.count(value), *sums).where(*where).group_by(*by)
    for row in session.execute(stmt):
        key, b, n, *more = row if keyed else (TOTAL, *row)
        for target in [key, TOTAL] if keyed and total else [key]:
            counts = histograms.setdefault(target, {})
            if b is not None:
                counts[b] = counts.get(b, 0) + n
            found = added.setdefault(target, [0] * len(sums))
            found[:] = [a + (m or 0) for a, m in zip(found, more, strict=True)]
    spots = {key: [_locate(counts, pct) for pct in pcts] for key, counts in histograms.items()}
    wanted = {(key, *spot) for key, found in spots.items() for spot in found if spot}
    at = _values_at(session, group, value, [*where, value.is_not(None)], width, wanted)
    return {
        key: (
            sum(histograms[key].values()),
            *(at.get((key, *spot)) if spot else None for spot in found),
            *added[key],
        )
        for key, found in spots.items()
    }


def _values_at(
    session: Session, group: Any, value: Any, where: list[Any], width: float, wanted: set[tuple[Any, int, int]]
) -> dict[tuple[Any, int, int], Any]:
    """The value at each (group key or TOTAL, bucket, rank in the bucket), read from the rows of that bucket
    only, [bucket·width, (bucket+1)·width), found on the value's own index (ix_tickets_*_hours): the groups'
    spots in one ranking statement (_ranked_values), the whole scope's (and no group's) by walking the bucket."""
    ranked = {spot for spot in wanted if spot[0] not in (TOTAL, None)}
    found = _ranked_values(session, group, value, where, width, ranked) if ranked else {}
    walked = sorted(wanted - ranked, key=repr)
    walks = []
    for n, (key, b, rank) in enumerate(walked):
        conditions = [*where, value >= b * width, value < (b + 1) * width]
        if key is None:
            conditions.append(group.is_(None))
        walk = select(value.label("v")).where(*conditions).order_by(value).offset(rank - 1).limit(1).subquery()
        walks.append(select(literal(n).label("spot"), walk.c.v))
    if walks:
        found.update({walked[n]: v for n, v in session.execute(union_all(*walks))})
    return found


def _ranked_values(
    session: Session, group: Any, value: Any, where: list[Any], width: float, spots: set[tuple[Any, int, int]]
) -> dict[tuple[Any, int, int], Any]:
    """The value at each spot of a group: the (group, bucket) pairs wanted, as a VALUES list, are joined to the
    rows of their bucket's value range and group, which alone are ranked with ROW_NUMBER. One statement whatever
    the number of spots (building one subquery a spot costs more than running them)."""
    pairs = sorted({(key, b) for key, b, _ in spots})
    wanted = values(column("g", group.type), column("b", Integer), name="wanted").data(pairs).cte("wanted")
    # the group on an expression: SQLite, without statistics, would rather read every ticket of the group
    # through its own index (a department's, an official's) than the bucket's range
    joined = and_(
        value >= wanted.c.b * width, value < (wanted.c.b + 1) * width, func.coalesce(group, group) == wanted.c.g
    )
    rank = func.row_number().over(partition_by=[wanted.c.g, wanted.c.b], order_by=value)
    ranked = (
        select(wanted.c.g, wanted.c.b, value.label("v"), rank.label("rn"))
        .select_from(wanted)
        .join(Ticket, joined)
        .where(*where)
        .subquery()
    )
    found = select(ranked).where(ranked.c.rn.in_(sorted({r for _, _, r in spots})))
    picked = {(g, b, rn): v for g, b, v, rn in session.execute(found)}
    return {spot: picked.get(spot) for spot in spots}


def _locate(counts: dict[int, int], pct: int) -> tuple[int, int] | None:
    """(bucket, rank inside it) of the nearest-rank percentile pct of a histogram; None when it is empty."""
    rank = (sum(counts.values()) * pct + 99) // 100  # ceil(p*n/100) in integers
    seen = 0
    for b in sorted(counts):
        if rank <= seen + counts[b]:
            return (b, rank - seen)
        seen += counts[b]
    return None


def _round(value: Any, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


HOURS_WIDTH = 0.25  # histogram buckets of working hours: a power of two, so that a bucket's bounds are exact


def _ticket_figures(
    session: Session,
    period: Period,
    departments: Sequence[str] | None,
    group: Any,
    now: dt.datetime,
    *,
    total: bool = False,
) -> dict[Any, dict[str, Any]]:
    """The ticket figures (TICKET_FIGURES) by group — a Ticket column, or None for the whole scope (keyed TOTAL);
    with `total`, the whole scope as well. A long period is read from ticket_stats and walked (_long_figures), a
    short one from the period's own tickets (_short_figures): the same figures, each the faster way for it."""
    read = _long_figures if _is_long(session, period) else _short_figures
    created, first, resolution = read(session, period, departments, group, total)
    # grouped on an expression: SQLite would otherwise read every ticket in the group's order through one of the
    # walk indexes, rather than the few open ones through the partial index of open tickets
    overdue = _grouped(
        session,
        None if group is None else func.coalesce(group, group),
        [func.count()],
        [*_scope(Ticket.department, departments), *_overdue(now)],
        total=total,
    )
    figures: dict[Any, dict[str, Any]] = {}
    for key in {*created, *first, *resolution, *overdue}:
        volume, missed_open, apologies = created.get(key, (0, 0, 0))
        n_first, first_median, first_p90 = first.get(key, (0, None, None))
        resolution_median, resolution_p90, n_resolved, on_time, ratings, rating_sum = resolution.get(
            key, (None, None, 0, 0, 0, 0)
        )
        decided = int(n_resolved) + int(missed_open)
        figures[key] = {
            "tickets": int(volume),
            "first_responses": int(n_first),
            "first_response_median_hours": _round(first_median, 2),
            "first_response_p90_hours": _round(first_p90, 2),
            "resolved": int(n_resolved),
            "resolution_median_hours": _round(resolution_median, 2),
            "resolution_p90_hours": _round(resolution_p90, 2),
            "decided": decided,
            "on_time": int(on_time),
            "missed": decided - int(on_time),
            "on_time_rate": _rate(int(on_time), decided),
            "overdue_now": int(overdue.get(key, (0,))[0]),
            "apologies": int(apologies),
            "ratings": int(ratings),
            "rating_avg": _round(int(rating_sum) / int(ratings), 2) if ratings else None,
        }
    return figures


Figures = dict[Any, tuple[Any, ...]]


def _count_if(condition: ColumnElement[bool]) -> Any:
    """How many rows meet the condition (0, not null, when none)."""
    return func.coalesce(func.sum(case((condition, literal_column("1")), else_=0)), 0)


def _short_figures(
    session: Session, period: Period, departments: Sequence[str] | None, group: Any, total: bool
) -> tuple[Figures, Figures, Figures]:
    """By group: (tickets, open and missed, apologies) of the tickets created in the period; (n, median, p90) of
    the first responses; (median, p90, resolved, on time, ratings, rating sum) of the resolutions — from the
    period's tickets: three grouped passes and histograms, quickest when the period holds few tickets."""
    scope = _period_scope(departments)
    resolved = period.contains(Ticket.resolved_at)
    open_missed = and_(Ticket.resolved_at.is_(None), Ticket.apologies > 0)
    created = _grouped(
        session,
        group,
        [func.count(), _count_if(open_missed), func.coalesce(func.sum(Ticket.apologies), 0)],
        [*scope, period.contains(Ticket.created_at)],
        total=total,
    )
    # the resolved tickets' counts ride along with their resolution-time histogram: one pass, not two
    resolution = _percentiles(
        session,
        group,
        Ticket.resolution_hours,
        [*scope, resolved],
        (50, 90),
        width=HOURS_WIDTH,
        total=total,
        sums=[func.count(), _count_if(Ticket.apologies == 0), func.count(Ticket.rating), func.sum(Ticket.rating)],
    )
    first = _percentiles(
        session,
        group,
        Ticket.first_response_hours,
        [*scope, period.contains(Ticket.first_response_at)],
        (50, 90),
        width=HOURS_WIDTH,
        total=total,
    )
    return created, first, {key: found[1:] for key, found in resolution.items()}


# A period that holds this share of all the tickets or more is read from ticket_stats and walks: a walk costs at
# most half a group's whole history, grouping and ranking costs several times the period's tickets (measured on a
# year of tickets: the walks cost less from 60 days on, about the same at 30).
LONG_SHARE = 0.1


def _is_long(session: Session, period: Period) -> bool:
    """Whether the period holds LONG_SHARE or more of all the tickets ever created (ticket_stats' days)."""
    inside = and_(TicketStat.start >= period.start, TicketStat.start <= period.end)
    stmt = select(func.sum(case((inside, TicketStat.n), else_=0)), func.sum(TicketStat.n)).where(
        TicketStat.grain == "day", TicketStat.kind == "created"
    )
    in_period, everything = session.execute(stmt).one()
    return bool(everything) and int(in_period) >= LONG_SHARE * int(everything)


STAT_SUMS = ("n", "hours_n", "late", "open_late", "apologies", "ratings", "rating_sum")
# ticket_stats' key for each group: its column, and how "none" is written there
STAT_KEYS = {"department": ("department", ""), "assignee_id": ("assignee_id", 0), "category": ("category", "")}
MOMENTS = {"created": "created_at", "first": "first_response_at", "resolved": "resolved_at"}


def _long_figures(
    session: Session, period: Period, departments: Sequence[str] | None, group: Any, total: bool
) -> tuple[Figures, Figures, Figures]:
    """The same as _short_figures, for a long period: the counts and sums added up from ticket_stats (days for a
    department or the whole scope; whole months plus the edge days counted live for an assignee or a category),
    each median and p90 then read by walking the group's tickets in value order to its rank (_walked)."""
    sums = _stat_sums(session, period, departments, group, total)
    created = {key: (found[0], found[3], found[4]) for key, found in sums["created"].items()}
    value = {"first": Ticket.first_response_hours, "resolved": Ticket.resolution_hours}
    at = {
        kind: _walked(session, period, departments, group, value[kind], {k: f[1] for k, f in sums[kind].items()})
        for kind in value
    }
    first = {key: (found[1], *at["first"].get(key, (None, None))) for key, found in sums["first"].items()}
    resolution = {
        key: (*at["resolved"].get(key, (None, None)), found[0], found[0] - found[2], found[5], found[6])
        for key, found in sums["resolved"].items()
    }
    return created, first, resolution


def _rank(n: int, pct: int) -> int:
    """The nearest rank ceil(p·n/100) of n values (0: none)."""
    return (n * pct + 99) // 100


def _stat_sums(
    session: Session, period: Period, departments: Sequence[str] | None, group: Any, total: bool
) -> dict[str, dict[Any, list[int]]]:
    """kind -> group key (TOTAL for the whole scope) -> STAT_SUMS over the period."""
    name = None if group is None else group.key
    key_column, none = STAT_KEYS[name or "department"]
    stat_key = getattr(TicketStat, key_column)
    scope = _scope(TicketStat.department, departments)
    columns = [func.sum(getattr(TicketStat, column)) for column in STAT_SUMS]
    found: dict[str, dict[Any, list[int]]] = {kind: {} for kind in MOMENTS}

    def add(kind: str, key: Any, values: Iterable[Any]) -> None:
        keys = [TOTAL] if name is None else [None if key == none else key, *([TOTAL] if total else [])]
        for target in keys:
            into = found[kind].setdefault(target, [0] * len(STAT_SUMS))
            into[:] = [a + int(b or 0) for a, b in zip(into, values, strict=True)]

    if name in (None, "department"):
        days = [TicketStat.grain == "day", TicketStat.start >= period.start, TicketStat.start <= period.end]
        stmt = select(TicketStat.kind, stat_key, *columns).where(*days, *scope).group_by(TicketStat.kind, stat_key)
        for kind, key, *values in session.execute(stmt):
            add(kind, key, values)
        return found
    months, edges = _whole_months(period)
    if months:
        in_months = [TicketStat.grain == "month", TicketStat.start >= months[0], TicketStat.start <= months[1]]
        stmt = select(TicketStat.kind, stat_key, *columns).where(*in_months, *scope)
        for kind, key, *values in session.execute(stmt.group_by(TicketStat.kind, stat_key)):
            add(kind, key, values)
    for kind, moment in MOMENTS.items() if edges else ():
        at = getattr(Ticket, moment)
        during = or_(*(edge.contains(at) for edge in edges))
        for key, values in _grouped(session, group, _live_sums(kind), [*_period_scope(departments), during]).items():
            add(kind, none if key is None else key, values)
    return found


def _live_sums(kind: str) -> list[Any]:
    """STAT_SUMS of tickets counted live, as ticket_stats counts them for `kind`."""
    hours = {"first": Ticket.first_response_hours, "resolved": Ticket.resolution_hours}.get(kind)
    return [
        func.count(),
        func.count(hours) if hours is not None else literal(0),
        _count_if(Ticket.apologies > 0),
        _count_if(and_(Ticket.resolved_at.is_(None), Ticket.apologies > 0)),
        func.coalesce(func.sum(Ticket.apologies), 0),
        func.count(Ticket.rating),
        func.coalesce(func.sum(Ticket.rating), 0),
    ]


def _whole_months(period: Period) -> tuple[tuple[dt.date, dt.date] | None, list[Period]]:
    """The first days of the first and last whole months inside the period (None: no whole month), and the days
    of the period outside them (at most two runs, each shorter than a month)."""
    first = period.start if period.start.day == 1 else (period.start.replace(day=28) + dt.timedelta(days=4))
    first = first.replace(day=1)
    after = period.end + dt.timedelta(days=1)
    last_end = after.replace(day=1)  # the first day after the last whole month
    if first >= last_end:
        return None, [period]
    last = (last_end - dt.timedelta(days=1)).replace(day=1)
    edges = []
    if period.start < first:
        edges.append(Period(period.start, first - dt.timedelta(days=1)))
    if last_end <= period.end:
        edges.append(Period(last_end, period.end))
    return (first, last), edges


WALK_TERMS = 256  # walks per UNION ALL statement (SQLite allows 500 terms)
MOMENT_OF = {"first_response_hours": "first_response_at", "resolution_hours": "resolved_at"}


def _walked(
    session: Session,
    period: Period,
    departments: Sequence[str] | None,
    group: Any,
    value: Any,
    counts: dict[Any, int],
    pcts: Sequence[int] = (50, 90),
) -> dict[Any, tuple[Any, ...]]:
    """The nearest-rank percentiles `pcts` of each group (TOTAL: the whole scope) that has `counts[key]` values in
    the period, read by walking the group's tickets in value order (ix_tickets_<group>_<hours>_walk, or the
    value's own index for the whole scope) to the rank, from whichever end is nearer: a walk steps over a few
    thousand index entries where a histogram groups the period's every ticket."""
    spots = [(key, _rank(n, pct), n) for key, n in counts.items() for pct in pcts if n]
    shapes, params = [], {"since": period.since, "until": period.until}
    for number, (key, rank, n) in enumerate(spots):
        backwards = 2 * rank > n + 1  # the rank is nearer the top: walk down from the largest value
        shapes.append(("total" if key is TOTAL else "null" if key is None else "key") + ("-" if backwards else ""))
        params[f"skip_{number}"] = n - rank if backwards else rank - 1
        if key is not TOTAL and key is not None:
            params[f"key_{number}"] = key
    group_name = None if group is None else group.key
    found = _walk(session, value.key, group_name, tuple(shapes), departments, params, False)
    at = {(key, rank): found.get(number) for number, (key, rank, _) in enumerate(spots)}
    return {key: tuple(at.get((key, _rank(n, pct))) for pct in pcts) for key, n in counts.items()}


def _walk(
    session: Session,
    value: str,
    group: str | None,
    shapes: tuple[str, ...],
    departments: Sequence[str] | None,
    params: dict[str, Any],
    ranged: bool,
) -> dict[int, Any]:
    """Run the walks of `shapes` (see _walks) with their parameters, WALK_TERMS to a statement: spot -> value."""
    found: dict[int, Any] = {}
    if departments is not None:
        params = {**params, "scope": list(departments)}
    for start in range(0, len(shapes), WALK_TERMS):
        chunk = list(shapes[start : start + WALK_TERMS])
        # padded to a power of two with copies of the last walk, so that a few statements serve every request
        last, size = start + len(chunk) - 1, 8
        while size < len(chunk):
            size *= 2
        for n in range(start + len(chunk), start + min(size, WALK_TERMS)):
            chunk.append(chunk[-1])
            for name in ("since", "until", "skip", "key"):
                if f"{name}_{last}" in params:
                    params[f"{name}_{n}"] = params[f"{name}_{last}"]
        stmt = _walks(value, group, tuple(chunk), start, departments is not None, ranged)
        found.update((spot, v) for spot, v in session.execute(stmt, params) if spot <= last)
    return found


@lru_cache(maxsize=64)  # a few shapes in practice: each group kind, and walks padded to powers of two
def _walks(
    value_name: str, group_name: str | None, shapes: tuple[str, ...], first: int, scoped: bool, ranged: bool
) -> Any:
    """One statement of walks, built once per shape (values bound): each spot n reads the value at offset
    `skip_n` of the tickets that have one, in value order, within the period and scope, and
    - a group walk ("key": the group equals `key_n`; "null": it has none; "total": any; ending in "-": from the
      largest value down): the period is tested on an expression, so that the planner walks the group's value
      index instead of reading the period's range;
    - a ranged walk (`ranged`, the time series' buckets): between `since_n` and `until_n` — a bucket's range,
      read and sorted (value + 0 keeps the planner from walking the whole value index instead)."""
    value = getattr(Ticket, value_name)
    moment = getattr(Ticket, MOMENT_OF[value_name])
    terms = []
    for n, shape in enumerate(shapes, start=first):
        if ranged:
            where = [
                moment >= bindparam(f"since_{n}", type_=UtcDateTime),
                moment < bindparam(f"until_{n}", type_=UtcDateTime),
            ]
            order = value + 0
        else:
            during = func.coalesce(moment, moment)
            where = [during >= bindparam("since", type_=UtcDateTime), during < bindparam("until", type_=UtcDateTime)]
            order = value
        if scoped:
            where.append(func.coalesce(Ticket.department, "").in_(bindparam("scope", expanding=True)))
        kind = shape.rstrip("-")
        if kind != "total":
            group = getattr(Ticket, group_name)
            where.append(group.is_(None) if kind == "null" else group == bindparam(f"key_{n}"))
        walk = select(value.label("v")).where(*where, value.is_not(None))
        walk = walk.order_by(order.desc() if shape.endswith("-") else order)
        walk = walk.offset(bindparam(f"skip_{n}", type_=Integer)).limit(1).subquery()
        terms.append(select(literal_column(str(n)).label("spot"), walk.c.v))
    return union_all(*terms)


def _empty_figures() -> dict[str, Any]:
    return {name: (None if name.endswith(("_hours", "_rate", "_avg")) else 0) for name in TICKET_FIGURES}


def _overdue(now: dt.datetime) -> list[ColumnElement[bool]]:
    """Open, clock running, running deadline passed. The statuses are written into the SQL, not bound, so that
    SQLite and PostgreSQL can prove the partial index of open tickets (ix_tickets_open_deadline) applies."""
    statuses = bindparam("open_statuses", OPEN_STATUSES, expanding=True, literal_execute=True)
    return [Ticket.status.in_(statuses), Ticket.paused_at.is_(None), Ticket.deadline < now]


def _departments(session: Session, departments: Sequence[str] | None) -> list[tuple[str, str, str]]:
    """(slug, name, name_en) of the departments in scope, by slug."""
    stmt = select(Department.slug, Department.name, Department.name_en).where(*_scope(Department.slug, departments))
    return [(slug, name, name_en) for slug, name, name_en in session.execute(stmt.order_by(Department.slug))]


def check_departments(session: Session, departments: Sequence[str] | None) -> None:
    """Refuse department slugs that do not exist (a typo would otherwise give an empty report)."""
    if not departments:
        return
    known = set(session.scalars(select(Department.slug).where(Department.slug.in_(list(departments)))))
    unknown = [slug for slug in departments if slug not in known]
    if unknown:
        raise Invalid(f"department: no department {', '.join(repr(slug) for slug in unknown)}")


# -- reports -----------------------------------------------------------------------------------------------


def department_report(
    session: Session, period: Period, departments: list[str] | None, *, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Per department: volume, first-response and resolution times, on-time rate, overdue, apologies, ratings."""
    figures = _ticket_figures(session, period, departments, Ticket.department, now or utcnow())
    rows = []
    known = _departments(session, departments)
    for slug, name, name_en in known:
        rows.append({"department": slug, "name": name, "name_en": name_en, **figures.pop(slug, _empty_figures())})
    # tickets of a department that no longer exists, or never routed: shown rather than silently dropped
    for slug in sorted(figures, key=lambda key: (key is None, key or "")):
        rows.append({"department": slug, "name": "", "name_en": "", **figures[slug]})
    return [{column: row[column] for column in DEPARTMENT_COLUMNS} for row in rows]


def official_report(
    session: Session, period: Period, departments: list[str] | None, *, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Per official (the assignee of the department's tickets): the same figures as per department."""
    figures = _ticket_figures(session, period, departments, Ticket.assignee_id, now or utcnow())
    figures.pop(None, None)  # nobody holds these tickets yet: they count for the department only
    staff = or_(
        and_(User.role.in_(("official", "supervisor")), *_scope(User.department, departments)),
        User.id.in_(list(figures)),
    )
    users = session.execute(
        select(User.id, User.username, User.full_name, User.role, User.department)
        .where(staff)
        .order_by(User.department, User.username)
    ).all()
    rows = []
    for user_id, username, full_name, role, department in users:
        row = {"official": username, "full_name": full_name, "role": role, "department": department}
        rows.append({**row, **figures.get(user_id, _empty_figures())})
    return rows


def category_report(
    session: Session, period: Period, departments: list[str] | None, *, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Per procedure category: the bot's answers and their 👍/👎 (city-wide), and the ticket figures in scope."""
    figures = _ticket_figures(session, period, departments, Ticket.category, now or utcnow())
    by_procedure = rollups.consistently(
        session, lambda covered: rollups.reply_counts(session, period, covered, ["procedure"], ["answered"])
    )
    by_slug = _grouped(session, Feedback.answer_procedure, _thumbs(), [period.contains(Feedback.at)])
    answers: dict[Any, tuple[int]] = {}
    thumbs: dict[Any, tuple[int, int]] = {}
    for slug, category in session.execute(select(Procedure.slug, Procedure.category)):
        if (n := by_procedure.get((slug,))) is not None:
            answers[category] = (answers.get(category, (0,))[0] + n,)
        if (found := by_slug.get(slug)) is not None:
            up, down = thumbs.get(category, (0, 0))
            thumbs[category] = (up + int(found[0]), down + int(found[1]))
    rows = []
    for category in sorted({*figures, *answers, *thumbs}, key=lambda key: key or ""):
        up, down = thumbs.get(category, (0, 0))
        rows.append(
            {
                "category": category or "",
                "bot_answers": int(answers.get(category, (0,))[0]),
                "thumbs_up": int(up or 0),
                "thumbs_down": int(down or 0),
                **figures.get(category, _empty_figures()),
            }
        )
    return rows


def bot_report(session: Session, period: Period, departments: list[str] | None = None) -> list[dict[str, Any]]:
    """The bot's replies by status: count, share of questions, p50/p95 latency (ms), 👍/👎 — city-wide."""
    del departments  # the bot answers for the whole city: its figures have no department
    histograms = rollups.consistently(session, lambda covered: rollups.latency_histograms(session, period, covered))
    overall: dict[int, int] = {}
    for counts in histograms.values():
        for bucket, n in counts.items():
            overall[bucket] = overall.get(bucket, 0) + n
    histograms[ALL] = overall
    spots = {
        (kind, pct): (None if kind == ALL else kind, *spot)
        for kind, counts in histograms.items()
        for pct in (50, 95)
        if (spot := _locate(counts, pct))
    }
    latencies = rollups.latencies_at(session, period, spots)
    thumbs = _grouped(
        session, rollups.kind_of(Feedback.answer_status), _thumbs(), [period.contains(Feedback.at)], total=True
    )
    questions = sum(sum(histograms.get(status, {}).values()) for status in QUESTION_STATUSES)
    rows = []
    for status in (ALL, *QUESTION_STATUSES, "other"):
        replies = sum(histograms.get(status, {}).values())
        up, down = thumbs.get(TOTAL if status == ALL else status) or (0, 0)
        rows.append(
            {
                "status": status,
                "replies": replies,
                "share": _rate(replies, questions) if status in QUESTION_STATUSES else None,
                "latency_p50_ms": _round(latencies.get((status, 50)), 1),
                "latency_p95_ms": _round(latencies.get((status, 95)), 1),
                "thumbs_up": int(up or 0),
                "thumbs_down": int(down or 0),
            }
        )
    return rows


def _thumbs() -> list[Any]:
    return [_count_if(Feedback.value > 0), _count_if(Feedback.value < 0)]


def timeseries(
    session: Session, period: Period, departments: list[str] | None, bucket: str = "day"
) -> list[dict[str, Any]]:
    """By day, week or month: questions by outcome (city-wide), tickets created and resolved, on time, and the
    median first-response time (tickets in scope); every bucket of the period, empty ones included."""
    if bucket not in BUCKETS:
        raise Invalid(f"bucket: {bucket!r}; one of {', '.join(BUCKETS)}")
    by_day = rollups.consistently(
        session,
        lambda covered: rollups.reply_counts(session, period, covered, ["day", "status"], QUESTION_STATUSES),
    )
    counted: dict[tuple[str, str], int] = {}
    for (day, status), n in by_day.items():
        label = _day_label(day, bucket)
        counted[(label, status)] = counted.get((label, status), 0) + n
    if _is_long(session, period):
        created, resolved, first = _long_series(session, period, departments, bucket)
    else:
        created, resolved, first = _short_series(session, period, departments, bucket)
    rows = []
    for label in _labels(period, bucket):
        by_status = {status: counted.get((label, status), 0) for status in QUESTION_STATUSES}
        n_resolved, on_time = resolved.get(label, (0, 0))
        rows.append(
            {
                "bucket": label,
                "questions": sum(by_status.values()),
                **by_status,
                "tickets": int(created.get(label, (0,))[0]),
                "resolved": int(n_resolved),
                "on_time": int(on_time),
                "first_response_median_hours": _round(first.get(label, (0, None))[1], 2),
            }
        )
    return rows


def _short_series(
    session: Session, period: Period, departments: list[str] | None, bucket: str
) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """By bucket label: (tickets created,), (resolved, on time), (first responses, their median) — grouped from
    the period's tickets."""
    dialect = session.get_bind().dialect.name
    scope = _period_scope(departments)
    created = _relabel(
        _grouped(
            session,
            _bucket(dialect, Ticket.created_at, bucket),
            [func.count()],
            [*scope, period.contains(Ticket.created_at)],
        )
    )
    resolved = _relabel(
        _grouped(
            session,
            _bucket(dialect, Ticket.resolved_at, bucket),
            [func.count(), _count_if(Ticket.apologies == 0)],
            [*scope, period.contains(Ticket.resolved_at)],
        )
    )
    first = _relabel(
        _percentiles(
            session,
            _bucket(dialect, Ticket.first_response_at, bucket),
            Ticket.first_response_hours,
            [*scope, period.contains(Ticket.first_response_at)],
            (50,),
            width=HOURS_WIDTH,
        )
    )
    return created, resolved, first


def _long_series(
    session: Session, period: Period, departments: list[str] | None, bucket: str
) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """The same as _short_series over a long period: the counts added up from ticket_stats' days, each bucket's
    median walked from the bucket's own first responses (a day's or a week's range, sorted) on SQLite, sorted per
    bucket in one statement on PostgreSQL."""
    columns = [func.sum(TicketStat.n), func.sum(TicketStat.late), func.sum(TicketStat.hours_n)]
    stmt = (
        select(TicketStat.kind, TicketStat.start, *columns)
        .where(TicketStat.grain == "day", TicketStat.start >= period.start, TicketStat.start <= period.end)
        .where(*_scope(TicketStat.department, departments))
        .group_by(TicketStat.kind, TicketStat.start)
    )
    sums: dict[tuple[str, str], list[int]] = {}
    for kind, day, n, late, hours_n in session.execute(stmt):
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
        into = sums.setdefault((kind, _day_label(day, bucket)), [0, 0, 0])
        into[:] = [into[0] + int(n), into[1] + int(late), into[2] + int(hours_n)]
    created = {label: (n,) for (kind, label), (n, _, _) in sums.items() if kind == "created"}
    resolved = {label: (n, n - late) for (kind, label), (n, late, _) in sums.items() if kind == "resolved"}
    counted = {label: hours_n for (kind, label), (_, _, hours_n) in sums.items() if kind == "first"}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # PostgreSQL sorts each bucket's values in one pass; percentile_disc(0.5) is the value at position
        # ceil(0.5·n), the nearest rank (0.5·n is exact in floating point)
        label = _bucket(dialect, Ticket.first_response_at, bucket)
        median = func.percentile_disc(0.5).within_group(Ticket.first_response_hours)
        within = [*_period_scope(departments), period.contains(Ticket.first_response_at)]
        stmt = select(label, median).where(*within, Ticket.first_response_hours.is_not(None)).group_by(label)
        medians = {_label(day): v for day, v in session.execute(stmt)}
    else:
        spots = [(label, _rank(n, 50)) for label, n in sorted(counted.items()) if n]
        params: dict[str, Any] = {}
        for n, (label, rank) in enumerate(spots):
            span = bucket_period(label, bucket, period)
            params.update({f"since_{n}": span.since, f"until_{n}": span.until, f"skip_{n}": rank - 1})
        found = _walk(session, "first_response_hours", None, ("total",) * len(spots), departments, params, True)
        medians = {label: found.get(n) for n, (label, _) in enumerate(spots)}
    first = {label: (n, medians.get(label)) for label, n in counted.items()}
    return created, resolved, first


def bucket_period(label: str, bucket: str, period: Period) -> Period:
    """The days of one bucket (of a time series or a chart) inside the period."""
    first = dt.date.fromisoformat(label)
    if bucket == "day":
        last = first
    elif bucket == "week":
        last = first + dt.timedelta(days=6)
    else:
        last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return Period(max(first, period.start), min(last, period.end))


def _bucket(dialect: str, column: Any, bucket: str) -> Any:
    """The Vietnam-time day, week (its Monday) or month (its 1st) of a UTC column: a date on PostgreSQL,
    'YYYY-MM-DD' text on SQLite (see _label). Vietnam is UTC+7 all year (no daylight saving since 1975), so a
    fixed offset is exact — and on PostgreSQL twice as fast as converting through the named zone."""
    if bucket == "day":
        return rollups.vn_day(dialect, column)
    if dialect == "postgresql":
        local = func.timezone("UTC", column) + literal_column("interval '7 hours'")
        return cast(func.date_trunc(bucket, local), Date)
    # SQLite keeps naive UTC text
    if bucket == "week":
        return func.date(column, "+7 hours", "weekday 0", "-6 days")
    return func.strftime("%Y-%m-01", column, "+7 hours")


def _label(value: str | dt.date) -> str:
    """A bucket as 'YYYY-MM-DD' (PostgreSQL gives dates, SQLite text)."""
    return value if isinstance(value, str) else value.isoformat()


def _day_label(day: dt.date, bucket: str) -> str:
    """The label of the bucket holding a day."""
    if bucket == "week":
        return (day - dt.timedelta(days=day.weekday())).isoformat()
    return (day.replace(day=1) if bucket == "month" else day).isoformat()


def _relabel(found: dict[Any, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    return {_label(key): values for key, values in found.items()}


def _labels(period: Period, bucket: str) -> list[str]:
    """Every bucket's label from the one holding `from` to the one holding `to`."""
    if bucket == "day":
        first, step = period.start, None
    elif bucket == "week":
        first, step = period.start - dt.timedelta(days=period.start.weekday()), None
    else:
        first, step = period.start.replace(day=1), "month"
    labels = []
    day = first
    while day <= period.end:
        labels.append(day.isoformat())
        if step == "month":
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        else:
            day += dt.timedelta(days=7 if bucket == "week" else 1)
    return labels


def monthly_ranking(
    session: Session, month: str, departments: list[str] | None = None, *, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Departments ranked over one month by on-time rate, then average rating (ties share a rank); departments
    with nothing decided that month are listed last, unranked."""
    period = Period.month(month)
    rows = [row for row in department_report(session, period, None, now=now) if row["name"]]

    def key(row: dict[str, Any]) -> tuple[float, float]:
        return (-row["on_time_rate"], -(row["rating_avg"] if row["rating_avg"] is not None else -1.0))

    ranked = sorted(
        (row for row in rows if row["on_time_rate"] is not None), key=lambda row: (key(row), row["department"])
    )
    unranked = [row for row in rows if row["on_time_rate"] is None]
    result = []
    for position, row in enumerate(ranked, start=1):
        rank = result[-1]["rank"] if result and key(ranked[position - 2]) == key(row) else position
        result.append({"month": month, "rank": rank, **{c: row[c] for c in RANKING_COLUMNS[2:]}})
    result.extend({"month": month, "rank": None, **{c: row[c] for c in RANKING_COLUMNS[2:]}} for row in unranked)
    if departments is not None:
        result = [row for row in result if row["department"] in departments]
    return result


def overdue_tickets(
    session: Session, departments: list[str] | None, now: dt.datetime, limit: int = 100
) -> list[dict[str, Any]]:
    """Tickets overdue now, the longest-late first (the deadline that runs now has passed, clock not paused)."""
    stmt = (
        select(Ticket, User.username)
        .outerjoin(User, User.id == Ticket.assignee_id)
        .where(*_scope(Ticket.department, departments), *_overdue(now))
        .order_by(Ticket.deadline, Ticket.id)
        .limit(_limit(limit))
    )
    return [
        {
            **_ticket_fields(ticket, assignee),
            "deadline": ticket.deadline.isoformat(),
            "overdue_working_hours": round(working_hours_between(ticket.deadline, now), 2),
            "apologies": ticket.apologies,
        }
        for ticket, assignee in session.execute(stmt)
    ]


def _ticket_fields(ticket: Ticket, assignee: str | None) -> dict[str, Any]:
    """What every list of tickets behind a figure shows first."""
    return {
        "code": ticket.code,
        "department": ticket.department,
        "status": ticket.status,
        "urgency": ticket.urgency,
        "category": ticket.category,
        "assignee": assignee,
        "created_at": ticket.created_at.isoformat(),
    }


def tickets_behind(
    session: Session,
    departments: list[str] | None,
    figure: str,
    period: Period,
    *,
    now: dt.datetime | None = None,
    official: str | None = None,
    category: str | None = None,
    limit: int = MAX_TICKET_ROWS,
) -> list[dict[str, Any]]:
    """The tickets counted in one figure (same conditions as the reports), so a figure links to its tickets."""
    now = now or utcnow()
    resolved = period.contains(Ticket.resolved_at)
    created = period.contains(Ticket.created_at)
    decided = or_(resolved, and_(Ticket.resolved_at.is_(None), Ticket.apologies > 0, created))
    conditions: dict[str, list[Any]] = {
        "volume": [created],
        "first_response": [period.contains(Ticket.first_response_at)],
        "resolved": [resolved],
        "decided": [decided],
        "on_time": [resolved, Ticket.apologies == 0],
        "missed": [decided, Ticket.apologies > 0],
        "overdue": _overdue(now),
        "apologies": [created, Ticket.apologies > 0],
        "rated": [resolved, Ticket.rating.is_not(None)],
    }
    if figure not in conditions:
        raise Invalid(f"figure: {figure!r}; one of {', '.join(FIGURES)}")
    where = [*_scope(Ticket.department, departments), *conditions[figure]]
    if official is not None:
        where.append(User.username == official)
    if category is not None:
        where.append(Ticket.category == category if category else Ticket.category.is_(None))
    order = [Ticket.deadline] if figure == "overdue" else [Ticket.created_at]
    stmt = (
        select(Ticket, User.username)
        .outerjoin(User, User.id == Ticket.assignee_id)
        .where(*where)
        .order_by(*order, Ticket.id)
        .limit(_limit(limit))
    )
    return [
        {
            **_ticket_fields(ticket, assignee),
            "first_response_at": _iso(ticket.first_response_at),
            "resolved_at": _iso(ticket.resolved_at),
            "deadline": ticket.deadline.isoformat(),
            "first_response_hours": _round(ticket.first_response_hours, 2),
            "resolution_hours": _round(ticket.resolution_hours, 2),
            "apologies": ticket.apologies,
            "rating": ticket.rating,
        }
        for ticket, assignee in session.execute(stmt)
    ]


def transparency(session: Session, period: Period, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Public figures per department (tickets, on-time rate, average rating) and for the whole desk ("all",
    with the share of questions the bot answered); no names of people, no questions."""
    now = now or utcnow()
    figures = _ticket_figures(session, period, None, Ticket.department, now, total=True)
    rows = []
    for slug, name, name_en in _departments(session, None):
        found = figures.get(slug, _empty_figures())
        rows.append(
            {
                "department": slug,
                "name": name,
                "name_en": name_en,
                **{c: found[c] for c in TRANSPARENCY_COLUMNS[3:-1]},
                "bot_answered_share": None,
            }
        )
    total = figures[TOTAL]
    counted = rollups.consistently(
        session, lambda covered: rollups.reply_counts(session, period, covered, ["status"], QUESTION_STATUSES)
    )
    by_status = {status: n for (status,), n in counted.items()}
    answered = _rate(by_status.get("answered", 0), sum(by_status.values()))
    rows.append(
        {
            "department": ALL,
            "name": "Tất cả",
            "name_en": "All departments",
            **{c: total[c] for c in TRANSPARENCY_COLUMNS[3:-1]},
            "bot_answered_share": answered,
        }
    )
    return rows


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_TICKET_ROWS:
        raise Invalid(f"limit: must be between 1 and {MAX_TICKET_ROWS}")
    return limit


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
