"""The reports' rollups of the chat log: with them, every report gives exactly the figures read from the raw log
alone — over periods wholly summarised, partly summarised, or not at all, with department filters, and after
whatever could make a summary stale (replies logged late or imported into past days, new replies today, late or
changed feedback, reopened, transferred and reassigned tickets). Also: the exact nearest ranks of bot latencies
and ticket hours against a brute-force sort, on both reading paths (walks and ranking)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy import delete, func, literal, select
from sqlalchemy.orm import Session

from bot.models import ChatMessage, Conversation, Feedback
from core.config import Settings
from core.db import session_scope
from helpdesk import reports, rollups
from helpdesk.models import BotLatencyDay, BotReplyDay, Department, ReportRollup, Ticket, User
from helpdesk.reports import Period
from helpdesk.sla import VN
from knowledge.models import Procedure, utcnow

STATUSES = ["answered", "answered", "answered", "clarify", "escalated", "declined", "help", "topics", None]
DEPARTMENTS = ["ho-tich", "cu-tru", "dat-dai"]
# Vietnam time 2026-05-20 10:00: the log runs from 2026-01-01 to this morning
NOW = dt.datetime(2026, 5, 20, 10, tzinfo=VN).astimezone(dt.UTC)
TODAY = dt.date(2026, 5, 20)


def vn_moment(day: dt.date, seconds: float) -> dt.datetime:
    """A moment `seconds` after the start of a Vietnam day, as aware UTC."""
    return (dt.datetime.combine(day, dt.time(), VN) + dt.timedelta(seconds=seconds)).astimezone(dt.UTC)


@pytest.fixture
def log(session: Session) -> Session:
    """140 days of replies (float latencies, ties, bucket edges, every kind), feedback and tickets."""
    rng = random.Random(5)
    session.add_all(
        [
            *(Department(slug=slug, name=slug, name_en=slug) for slug in DEPARTMENTS),
            Procedure(slug="birth", category="civil-status"),
            Procedure(slug="residence", category="residence"),
        ]
    )
    users = [
        User(username=f"{slug}.{k}", password_hash="x", role="official", department=slug)
        for slug in DEPARTMENTS
        for k in range(2)
    ]
    conversation = Conversation(channel="web", user_key="c", state={})
    session.add_all([*users, conversation])
    session.flush()
    edges = [8.0, 16.0, 7.999999999999999, 120.0, 120.0]
    for offset in range(140):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=offset)
        for _ in range(rng.randint(0, 12)):
            at = vn_moment(day, rng.uniform(0, 86399.999))
            if at >= NOW:
                continue
            status = rng.choice(STATUSES)
            latency = rng.choice(edges) if rng.random() < 0.1 else rng.lognormvariate(5, 0.7)
            procedure = rng.choice(["birth", "residence", "unknown-slug"]) if status == "answered" else None
            reply = ChatMessage(
                conversation_id=conversation.id,
                direction="out",
                author="bot",
                text="…",
                at=at,
                status=status,
                latency_ms=latency,
                procedure=procedure,
            )
            session.add(reply)
            session.flush()
            if procedure and rng.random() < 0.3:
                session.add(
                    Feedback(
                        message_id=reply.id,
                        conversation_id=conversation.id,
                        value=rng.choice((1, -1)),
                        at=at + dt.timedelta(minutes=rng.choice((1, 600, 3000))),
                    )
                )
        session.add(ChatMessage(conversation_id=conversation.id, direction="out", author="bot", at=vn_moment(day, 5)))
        for n in range(rng.randint(1, 3)):
            created = vn_moment(day, 3600 * (8 + n))
            first = created + dt.timedelta(hours=rng.uniform(0.5, 30))
            resolved = first + dt.timedelta(hours=rng.uniform(0, 50))
            done = resolved < NOW
            session.add(
                Ticket(
                    code=f"T{offset}-{n}",
                    conversation_id=conversation.id,
                    channel="web",
                    question="?",
                    reason="low_confidence",
                    status="answered" if done else "acknowledged",
                    department=rng.choice(DEPARTMENTS),
                    assignee_id=rng.choice(users).id,
                    category=rng.choice(["civil-status", "residence", None]),
                    created_at=created,
                    deadline=created + dt.timedelta(days=2),
                    first_response_at=first if first < NOW else None,
                    first_response_hours=round(rng.uniform(0.1, 12), 2) if first < NOW else None,
                    resolved_at=resolved if done else None,
                    resolution_hours=rng.uniform(0.1, 40) if done else None,
                    apologies=rng.choice((0, 0, 0, 1)),
                    rating=rng.choice((None, 3, 5)) if done else None,
                )
            )
    session.flush()
    return session


PERIODS = [
    Period(dt.date(2026, 1, 1), TODAY),  # summarised, then today live
    Period(dt.date(2026, 2, 3), dt.date(2026, 3, 17)),  # wholly summarised
    Period(dt.date(2026, 5, 19), TODAY),  # yesterday summarised, today live
    Period(TODAY, TODAY),  # wholly live
    Period(dt.date(2026, 3, 9), dt.date(2026, 3, 9)),  # one summarised day
]


def figures(session: Session, period: Period) -> dict[str, Any]:
    """Every report that reads the chat log or ticket figures, with and without a department filter."""
    found: dict[str, Any] = {
        "bot": reports.bot_report(session, period),
        "transparency": reports.transparency(session, period, now=NOW),
        **{f"timeseries {b}": reports.timeseries(session, period, None, b) for b in reports.BUCKETS},
        "timeseries own": reports.timeseries(session, period, ["cu-tru"], "week"),
    }
    for scope in (None, ["ho-tich"], ["cu-tru", "dat-dai"]):
        found[f"departments {scope}"] = reports.department_report(session, period, scope, now=NOW)
        found[f"officials {scope}"] = reports.official_report(session, period, scope, now=NOW)
        found[f"categories {scope}"] = reports.category_report(session, period, scope, now=NOW)
    return found


def from_raw_log(session: Session, period: Period) -> dict[str, Any]:
    """The same figures with the rollups out of the way (in a savepoint, rolled back)."""
    savepoint = session.begin_nested()
    session.execute(delete(ReportRollup))
    assert rollups.coverage(session) == rollups.NOTHING
    found = figures(session, period)
    savepoint.rollback()
    return found


def assert_rollups_exact(session: Session) -> None:
    for period in PERIODS:
        assert figures(session, period) == from_raw_log(session, period), period


def test_reports_from_rollups_equal_the_raw_log(log: Session) -> None:
    days = rollups.refresh_bot_rollups(log, NOW)
    assert rollups.coverage(log) == rollups.Coverage(TODAY, log.scalar(select(func.max(ChatMessage.id))))
    assert days == len(set(log.scalars(select(BotReplyDay.day))))
    assert log.scalar(select(func.max(BotReplyDay.day))) == TODAY - dt.timedelta(days=1)
    assert log.scalar(select(func.sum(BotLatencyDay.replies))) == log.scalar(
        select(func.count()).where(
            ChatMessage.author == "bot", ChatMessage.latency_ms.is_not(None), ChatMessage.at < vn_moment(TODAY, 0)
        )
    )
    assert_rollups_exact(log)
    assert rollups.refresh_bot_rollups(log, NOW) == 0  # nothing new: nothing written


def test_changes_after_the_rollup_are_read_live_then_summarised(log: Session) -> None:
    rollups.refresh_bot_rollups(log, NOW)
    conversation_id = log.scalar(select(Conversation.id))
    past = dt.date(2026, 3, 9)
    # replies logged late into summarised days (an import, a transaction that committed late) and today
    for day, latency in [(past, 61.5), (past, 8.0), (dt.date(2026, 2, 3), 9999.0), (TODAY, 0.4)]:
        log.add(
            ChatMessage(
                conversation_id=conversation_id,
                direction="out",
                author="bot",
                text="…",
                at=vn_moment(day, 7200),
                status="answered",
                latency_ms=latency,
                procedure="birth",
            )
        )
    log.flush()
    # feedback given late on an old answer, and a 👍 changed into a 👎
    old = log.scalars(select(ChatMessage).where(ChatMessage.procedure == "birth").order_by(ChatMessage.id)).first()
    assert old is not None
    log.add(Feedback(message_id=old.id, conversation_id=conversation_id, value=-1, at=NOW - dt.timedelta(hours=1)))
    changed = log.scalars(select(Feedback).where(Feedback.value == 1)).first()
    assert changed is not None
    changed.value = -1
    # tickets: one reopened (its resolution cleared), one transferred, one handed to another official
    tickets = log.scalars(select(Ticket).where(Ticket.resolved_at.is_not(None)).order_by(Ticket.id)).all()
    tickets[0].resolved_at, tickets[0].resolution_hours, tickets[0].status = None, None, "reopened"
    tickets[1].department = "dat-dai" if tickets[1].department != "dat-dai" else "ho-tich"
    tickets[2].assignee_id = log.scalar(select(User.id).where(User.id != tickets[2].assignee_id))
    log.flush()
    assert_rollups_exact(log)
    assert rollups.refresh_bot_rollups(log, NOW) == 2  # the two past days that got replies, summarised again
    assert rollups.coverage(log).last_id == log.scalar(select(func.max(ChatMessage.id)))
    assert_rollups_exact(log)


def test_a_day_is_summarised_once_it_is_over_by_the_grace(log: Session) -> None:
    just_after_midnight = vn_moment(TODAY, 30 * 60)  # 00:30: yesterday ended less than GRACE ago
    rollups.refresh_bot_rollups(log, just_after_midnight)
    assert rollups.coverage(log).through == TODAY - dt.timedelta(days=1)
    assert log.scalar(select(func.max(BotReplyDay.day))) == TODAY - dt.timedelta(days=2)
    assert_rollups_exact(log)
    rollups.refresh_bot_rollups(log, NOW)  # the next refresh summarises yesterday
    assert log.scalar(select(func.max(BotReplyDay.day))) == TODAY - dt.timedelta(days=1)
    assert_rollups_exact(log)


def rollup_rows(session: Session) -> list[Any]:
    """Every row of both rollup tables."""
    replies = session.execute(select(BotReplyDay.day, BotReplyDay.status, BotReplyDay.procedure, BotReplyDay.replies))
    latencies = session.execute(
        select(BotLatencyDay.kind, BotLatencyDay.bucket, BotLatencyDay.day, BotLatencyDay.replies)
    )
    return sorted(map(tuple, replies)) + sorted(map(tuple, latencies))


def test_rebuild_writes_the_same_rollups(log: Session) -> None:
    rollups.refresh_bot_rollups(log, NOW)
    before = rollup_rows(log)
    rollups.rebuild_bot_rollups(log, NOW)
    after = rollup_rows(log)
    assert before == after


def test_a_refresh_in_between_is_noticed(log: Session) -> None:
    seen: list[rollups.Coverage] = []

    def compute(covered: rollups.Coverage) -> rollups.Coverage:
        if not seen:
            rollups.refresh_bot_rollups(log, NOW)  # as if another process committed a refresh meanwhile
        seen.append(covered)
        return covered

    assert rollups.consistently(log, compute) == rollups.coverage(log)
    assert seen == [rollups.NOTHING, rollups.coverage(log)]


def nearest_rank(sample: list[float], pct: int) -> float | None:
    """The value at position ceil(p·n/100) of the sorted sample (None when it is empty)."""
    return sorted(sample)[-(-len(sample) * pct // 100) - 1] if sample else None


def test_latency_percentiles_are_exact_nearest_ranks(log: Session) -> None:
    rollups.refresh_bot_rollups(log, NOW)
    period = PERIODS[0]
    replies = log.execute(
        select(ChatMessage.status, ChatMessage.latency_ms).where(
            ChatMessage.author == "bot", ChatMessage.latency_ms.is_not(None), period.contains(ChatMessage.at)
        )
    ).all()
    kinds: dict[str, list[float]] = {"all": [latency for _, latency in replies]}
    for status, latency in replies:
        kinds.setdefault(status if status in rollups.QUESTION_STATUSES else "other", []).append(latency)
    rows = {row["status"]: row for row in reports.bot_report(log, period)}
    for kind, sample in kinds.items():
        assert rows[kind]["replies"] == len(sample)
        assert rows[kind]["latency_p50_ms"] == round(sorted(sample)[-(-len(sample) * 50 // 100) - 1], 1)
        assert rows[kind]["latency_p95_ms"] == round(sorted(sample)[-(-len(sample) * 95 // 100) - 1], 1)


def test_ticket_percentiles_are_exact_on_both_reading_paths(log: Session) -> None:
    """Per department, category and day (one ranking statement), and for tickets of no category (a walk)."""
    period = PERIODS[0]
    answered = log.execute(
        select(Ticket.department, Ticket.category, Ticket.first_response_at, Ticket.first_response_hours).where(
            period.contains(Ticket.first_response_at)
        )
    ).all()
    samples: dict[str, dict[Any, list[float]]] = {"department": {}, "category": {}, "day": {}}
    for department, category, at, hours in answered:
        samples["department"].setdefault(department, []).append(hours)
        samples["category"].setdefault(category or "", []).append(hours)
        samples["day"].setdefault(at.astimezone(VN).date().isoformat(), []).append(hours)
    assert "" in samples["category"]
    rows = {
        "department": reports.department_report(log, period, None, now=NOW),
        "category": reports.category_report(log, period, None, now=NOW),
    }
    for name, found in rows.items():
        for row in found:
            sample = samples[name].get(row[name], [])
            assert row["first_response_median_hours"] == nearest_rank(sample, 50)
            assert row["first_response_p90_hours"] == nearest_rank(sample, 90)
    for row in reports.timeseries(log, period, None, "day"):
        assert row["first_response_median_hours"] == nearest_rank(samples["day"].get(row["bucket"], []), 50)


@pytest.mark.parametrize(
    ("value", "bucket"), [(0.0, 0), (7.999999999999999, 0), (8.0, 1), (15.5, 1), (16.0, 2), (-0.5, -1), (-8.0, -1)]
)
def test_floor_bucket_on_both_databases(session: Session, value: float, bucket: int) -> None:
    assert session.scalar(select(rollups.floor_bucket(literal(value), rollups.LATENCY_WIDTH))) == bucket


def test_the_leaders_job_refreshes_at_start(settings: Settings) -> None:  # noqa: ARG001 - the test database
    three_days_ago = utcnow() - dt.timedelta(days=3)
    with session_scope() as session:
        conversation = Conversation(channel="web", user_key="c", state={})
        session.add(conversation)
        session.flush()
        session.add(
            ChatMessage(
                conversation_id=conversation.id,
                direction="out",
                author="bot",
                at=three_days_ago,
                status="answered",
                latency_ms=120.0,
                procedure="birth",
            )
        )

    async def first_round() -> None:
        stop = asyncio.Event()
        job = asyncio.create_task(rollups.RollupScheduler(every=60).run(stop))
        for _ in range(200):
            with session_scope() as session:
                if rollups.coverage(session) != rollups.NOTHING:
                    break
            await asyncio.sleep(0.05)
        stop.set()
        await job

    asyncio.run(first_round())
    with session_scope() as session:
        assert rollups.coverage(session).through == (utcnow() - rollups.GRACE).astimezone(VN).date()
        assert session.execute(select(BotReplyDay.day, BotReplyDay.replies)).all() == [
            (three_days_ago.astimezone(VN).date(), 1)
        ]
