"""Per-day rollups of the bot's replies, so that a report over a year adds up a few hundred rows a day instead of
counting and ranking half a million replies.

A bot reply never changes once logged (its time, status, procedure and latency are written once, bot/engine.py),
so a Vietnam day can be summarised for good once it is over. `refresh_bot_rollups` (run by the leader every few
minutes, and by the benchmark after its bulk load) summarises each complete day into `bot_reply_days` (replies
by status and answered procedure) and `bot_latency_days` (replies by kind and latency bucket). A report adds up
the summary of the days it covers and reads the rest live from the log:

- covered: bot replies with `at` before the day `through` (Vietnam time) and `id ≤ last_id` — exactly the rows
  the summary was built from;
- live: every other reply — today, the last GRACE of yesterday, and rows that arrived after the summary was
  built whatever their time (a late commit, an import of old history): the next refresh rebuilds their days.

The split is exact as long as no row with an id at or below `last_id` commits after the summary was built with
an `at` before `through`: on SQLite there is one writer; on PostgreSQL ids are taken in insertion order and a
day is summarised only GRACE after it ended, so that would take a transaction open for longer than GRACE.
Feedback is not rolled up: a citizen may change a 👍 into a 👎 later, and it is small (a few % of replies).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import ClauseAdapter

from bot.models import ChatMessage
from core.db import session_scope
from helpdesk.models import BotLatencyDay, BotReplyDay, ReportRollup
from helpdesk.sla import VN
from knowledge.models import utcnow

if TYPE_CHECKING:
    from helpdesk.reports import Period

logger = logging.getLogger(__name__)

NAME = "bot_replies"
GRACE = dt.timedelta(hours=1)  # a day is summarised this long after it ended (see the module docstring)
REFRESH_SECONDS = 600.0  # the live part of a report stays a day or two of replies
QUESTION_STATUSES = ("answered", "clarify", "escalated", "declined")
# Latency buckets in ms: a power of two, so that latency / 8 is exact in floating point and a bucket b holds
# exactly the latencies in [8b, 8b + 8) — the range the exact value is then read from.
LATENCY_WIDTH = 8
T = TypeVar("T")


@dataclass(frozen=True)
class Coverage:
    """What the rollups summarise: the replies before the Vietnam day `through` with id ≤ `last_id` (None: none)."""

    through: dt.date | None
    last_id: int

    @property
    def through_at(self) -> dt.datetime | None:
        """The first moment (UTC) not summarised."""
        return None if self.through is None else _start(self.through)


NOTHING = Coverage(None, 0)


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), VN).astimezone(dt.UTC)


def vn_day(dialect: str, column: Any) -> Any:
    """The Vietnam day of a UTC column: a date on PostgreSQL, 'YYYY-MM-DD' text on SQLite. Vietnam is UTC+7 all
    year (no daylight saving since 1975), so a fixed offset is exact."""
    if dialect == "postgresql":
        return cast(func.timezone("UTC", column) + literal_column("interval '7 hours'"), Date)
    return func.date(column, "+7 hours")  # SQLite keeps naive UTC text


def kind_of(status: Any) -> Any:
    """A reply's kind: its status if it answers a question, else "other"."""
    return case((status.in_(QUESTION_STATUSES), status), else_=literal("other"))


def floor_bucket(value: Any, width: float) -> Any:
    """floor(value / width) on both databases (SQLite truncates a cast, PostgreSQL rounds it). With a power of
    two for width the division is exact, so bucket b holds exactly the values in [b·width, (b+1)·width)."""
    scaled = value / float(width)
    whole = cast(scaled, Integer)
    return whole - case((scaled < whole, 1), else_=0)


def _replies() -> list[ColumnElement[bool]]:
    """The bot's replies to citizens' messages (apologies and other unprompted messages have no latency)."""
    return [ChatMessage.author == "bot", ChatMessage.latency_ms.is_not(None)]


# -- building ----------------------------------------------------------------------------------------------


def coverage(session: Session) -> Coverage:
    """What the rollups summarise now."""
    state = session.get(ReportRollup, NAME, populate_existing=True)
    return NOTHING if state is None else Coverage(state.through, state.last_id)


def refresh_bot_rollups(session: Session, now: dt.datetime) -> int:
    """Summarise every complete day not summarised yet, and again each summarised day that got replies since
    (imports, late commits); returns how many days were (re)written."""
    state = session.get(ReportRollup, NAME, with_for_update=True)
    last_id = session.scalar(select(func.max(ChatMessage.id))) or 0
    through = (now - GRACE).astimezone(VN).date()
    written: set[dt.date] = set()
    if state is None:
        written |= _summarise(session, None, _start(through), last_id)
        session.add(ReportRollup(name=NAME, through=through, last_id=last_id))
        return len(written)
    dialect = session.get_bind().dialect.name
    recent = _newer(state.last_id)
    stale = session.scalars(
        recent(
            select(vn_day(dialect, ChatMessage.at))
            .where(*_replies(), ChatMessage.id <= last_id, ChatMessage.at < _start(state.through))
            .distinct()
        )
    ).all()
    for value in stale:
        day = _day(value)
        session.execute(delete(BotReplyDay).where(BotReplyDay.day == day))
        session.execute(delete(BotLatencyDay).where(BotLatencyDay.day == day))
        written |= _summarise(session, _start(day), _start(day + dt.timedelta(days=1)), last_id)
    if through > state.through:
        written |= _summarise(session, _start(state.through), _start(through), last_id)
        state.through = through
    state.last_id = last_id
    return len(written)


class RollupScheduler:
    """Refreshes the rollups at start-up and then every `every` seconds (the leader runs it)."""

    def __init__(self, *, every: float = REFRESH_SECONDS) -> None:
        self.every = every

    def refresh(self) -> int:
        """One refresh in its own transaction; returns the days written."""
        with session_scope() as session:
            return refresh_bot_rollups(session, utcnow())

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh until stop is set; a database hiccup is logged and retried at the next round."""
        while not stop.is_set():
            try:
                days = await asyncio.to_thread(self.refresh)
                if days:
                    logger.info("report rollups: %d day(s) summarised", days)
            except Exception:  # noqa: BLE001 - the job must outlive a database restart
                logger.exception("report rollups refresh failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every)


def rebuild_bot_rollups(session: Session, now: dt.datetime) -> int:
    """Summarise every complete day from scratch (after restoring or bulk-loading the log with its own ids)."""
    session.execute(delete(BotReplyDay))
    session.execute(delete(BotLatencyDay))
    session.execute(delete(ReportRollup).where(ReportRollup.name == NAME))
    return refresh_bot_rollups(session, now)


def _summarise(session: Session, since: dt.datetime | None, until: dt.datetime, last_id: int) -> set[dt.date]:
    """Insert the summary of the replies in [since, until) with id ≤ last_id; returns the days summarised."""
    dialect = session.get_bind().dialect.name
    day = vn_day(dialect, ChatMessage.at)
    where = [*_replies(), ChatMessage.at < until, ChatMessage.id <= last_id]
    if since is not None:
        where.append(ChatMessage.at >= since)
    status = func.coalesce(ChatMessage.status, "")
    procedure = func.coalesce(ChatMessage.procedure, "")
    session.execute(
        insert(BotReplyDay).from_select(
            ["day", "status", "procedure", "replies"],
            select(day, status, procedure, func.count()).where(*where).group_by(day, status, procedure),
        )
    )
    kind, bucket = kind_of(ChatMessage.status), floor_bucket(ChatMessage.latency_ms, LATENCY_WIDTH)
    session.execute(
        insert(BotLatencyDay).from_select(
            ["kind", "bucket", "day", "replies"],
            select(kind, bucket, day, func.count()).where(*where).group_by(kind, bucket, day),
        )
    )
    found = select(BotReplyDay.day).where(BotReplyDay.day < until.astimezone(VN).date())
    if since is not None:
        found = found.where(BotReplyDay.day >= since.astimezone(VN).date())
    return set(session.scalars(found.distinct()))


def _newer(last_id: int) -> Callable[[Select[Any]], Select[Any]]:
    """Reads a select of chat messages from those with an id above last_id only: the few rows logged since a
    rollup was built, found by primary key (materialised first, else SQLite, without statistics, would rather
    range over the whole period in ix_chat_messages_author_at)."""
    columns = [ChatMessage.id, ChatMessage.author, ChatMessage.at, ChatMessage.status, ChatMessage.procedure]
    recent = (
        select(*columns, ChatMessage.latency_ms)
        .where(ChatMessage.id > last_id)
        .cte("recent")
        .prefix_with("MATERIALIZED")
    )
    return ClauseAdapter(recent).traverse


def _day(value: str | dt.date) -> dt.date:
    """A day as read from vn_day (PostgreSQL gives dates, SQLite text)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


# -- reading -----------------------------------------------------------------------------------------------


def consistently(session: Session, compute: Callable[[Coverage], T]) -> T:
    """compute(coverage), checked against a refresh committing meanwhile (its rows could then be counted twice or
    not at all): computed again, and at worst from the log alone."""
    for _ in range(3):
        covered = coverage(session)
        result = compute(covered)
        if coverage(session) == covered:
            return result
    return compute(NOTHING)


def _live(period: Period, covered: Coverage, group: Sequence[Any], where: Iterable[Any]) -> list[Select[Any]]:
    """Counts by group of the period's replies the rollups do not cover, each select on its own index range."""
    base = [*_replies(), *where]

    def select_where(*conditions: Any) -> Select[Any]:
        return select(*group, func.count()).where(*base, *conditions).group_by(*group)

    through_at = covered.through_at
    if through_at is None:
        return [select_where(period.contains(ChatMessage.at))]
    parts = []
    if period.until > through_at:
        parts.append(select_where(ChatMessage.at >= max(period.since, through_at), ChatMessage.at < period.until))
    if period.since < through_at:
        parts.append(
            _newer(covered.last_id)(
                select_where(ChatMessage.at >= period.since, ChatMessage.at < min(period.until, through_at))
            )
        )
    return parts


def reply_counts(
    session: Session, period: Period, covered: Coverage, keys: Sequence[str], statuses: Sequence[str] | None = None
) -> dict[tuple[Any, ...], int]:
    """The period's bot replies counted by `keys` (of "day", "status", "procedure"; "" for a missing status or
    procedure, days as dates), of the given statuses (None: all)."""
    dialect = session.get_bind().dialect.name
    rolled_columns = {"day": BotReplyDay.day, "status": BotReplyDay.status, "procedure": BotReplyDay.procedure}
    live_columns = {
        "day": vn_day(dialect, ChatMessage.at),
        "status": func.coalesce(ChatMessage.status, ""),
        "procedure": func.coalesce(ChatMessage.procedure, ""),
    }
    counts: dict[tuple[Any, ...], int] = {}

    def add(rows: Iterable[Any]) -> None:
        for *key, n in rows:
            key = tuple(_day(value) if name == "day" else value for name, value in zip(keys, key, strict=True))
            counts[key] = counts.get(key, 0) + int(n)

    if covered.through is not None and period.start < covered.through:
        group = [rolled_columns[name] for name in keys]
        stmt = select(*group, func.sum(BotReplyDay.replies)).where(
            BotReplyDay.day >= period.start, BotReplyDay.day <= period.end
        )
        if statuses is not None:
            stmt = stmt.where(BotReplyDay.status.in_(list(statuses)))
        add(session.execute(stmt.group_by(*group)))
    group = [live_columns[name] for name in keys]
    where = [] if statuses is None else [ChatMessage.status.in_(list(statuses))]
    for stmt in _live(period, covered, group, where):
        add(session.execute(stmt))
    return counts


def latency_histograms(session: Session, period: Period, covered: Coverage) -> dict[str, dict[int, int]]:
    """How many of the period's bot replies of each kind fall in each latency bucket."""
    histograms: dict[str, dict[int, int]] = {}

    def add(rows: Iterable[Any]) -> None:
        for kind, bucket, n in rows:
            counts = histograms.setdefault(kind, {})
            counts[bucket] = counts.get(bucket, 0) + int(n)

    if covered.through is not None and period.start < covered.through:
        add(
            session.execute(
                select(BotLatencyDay.kind, BotLatencyDay.bucket, func.sum(BotLatencyDay.replies))
                .where(BotLatencyDay.day >= period.start, BotLatencyDay.day <= period.end)
                .group_by(BotLatencyDay.kind, BotLatencyDay.bucket)
            )
        )
    kind, bucket = kind_of(ChatMessage.status), floor_bucket(ChatMessage.latency_ms, LATENCY_WIDTH)
    for stmt in _live(period, covered, [kind, bucket], []):
        add(session.execute(stmt))
    return histograms


def latencies_at(session: Session, period: Period, spots: dict[Any, tuple[str | None, int, int]]) -> dict[Any, float]:
    """The exact latency at each spot (kind or None for every kind, bucket, rank): the rank-th smallest of the
    period's replies of that kind in that bucket, from the log itself, walking the bucket in latency order."""
    if not spots:
        return {}
    selects = []
    for n, (kind, bucket, rank) in enumerate(spots.values()):
        where = [
            *_replies(),
            ChatMessage.latency_ms >= bucket * LATENCY_WIDTH,
            ChatMessage.latency_ms < (bucket + 1) * LATENCY_WIDTH,
            period.contains(ChatMessage.at),
        ]
        if kind == "other":
            where.append(func.coalesce(ChatMessage.status, "").not_in(QUESTION_STATUSES))
        elif kind is not None:
            where.append(ChatMessage.status == kind)
        walk = (
            select(ChatMessage.latency_ms.label("v"))
            .where(*where)
            .order_by(ChatMessage.latency_ms)
            .offset(rank - 1)
            .limit(1)
            .subquery()
        )
        selects.append(select(literal(n).label("spot"), walk.c.v))
    keys = list(spots)
    return {keys[n]: value for n, value in session.execute(union_all(*selects))}
