"""Accountability reports over a known history: every figure equals a number worked out by hand below.

The history (Vietnam times, March 2026 is the period):

ho-tich (civil status), officials a1 and a2, supervisor s1
  T1 created 03-02 09:00, first reply and resolved 03-02 10:00 (1.0 h / 1.0 h), a1, rating 5
  T2 created 03-03 09:00, first reply 03-03 12:00 (3.0 h), resolved 03-04 11:00 (10.0 h), a1, rating 4
  T3 created 03-05 09:00, missed (apology 03-05 17:30), first reply 03-06 10:00 (9.0 h), resolved 03-06 13:00
     (12.0 h), a2, rating 2
  T4 created 03-10 09:00, new, deadline 03-11 09:00 missed twice (apologies 03-11 09:05 and 04-01 01:00)
  T5 created 02-25 09:00 (before the period), first reply 03-01 09:00 (5.0 h), resolved 03-02 15:00 (20.0 h), a2
  T6 created 03-30 09:00, acknowledged by a1, deadline 04-03: not overdue
  T7 created 03-20 09:00, acknowledged by a2, deadline 03-22 passed but the clock is paused: not overdue
  T8 created 04-01 08:00 (after the period), new
cu-tru (residence), official b1
  U1 created 03-15 09:00 in ho-tich, missed there (apology 03-15 17:00), transferred to cu-tru; category
     civil-status; first reply 03-16 10:00 (4.0 h), resolved 03-16 12:00 (6.0 h), b1, rating 3
  U2 created 03-31 23:59 (last minute of the period), new
  U3 created 03-01 00:00 (first minute of the period), first reply and resolved 03-01 01:00 (2.0 h), b1, rating 5
  U4 created 02-28 19:00, resolved 02-28 20:00 (1.0 h): before the period
dat-dai (land): nothing.

The bot in March (latency ms): answered 100 (03-01 06:30, birth), 200, 300 (birth), 400 (residence);
clarify 50, 150; escalated 500; declined 80, 120, 160; help 10; an apology (no latency); and on 02-28 an
answered 9999 with a 👍 (outside). Feedback in March: 👍 on 100 and 200, 👎 on 300 and 400.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import ChatMessage, Conversation, Feedback
from core.errors import Invalid
from helpdesk import reports
from helpdesk.models import Department, Ticket, TicketEvent, User
from helpdesk.reports import Period
from helpdesk.sla import VN
from knowledge.models import Procedure

MARCH = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 31))


def vn(month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    """A Vietnam wall-clock moment of 2026 as aware UTC."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=VN).astimezone(dt.UTC)


NOW = vn(4, 1, 10)


@pytest.fixture(autouse=True, params=["short", "long"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every figure below is checked on both ways of reading it: from the period's tickets (short periods) and from
    ticket_stats plus walks in value order (long periods)."""
    monkeypatch.setattr(reports, "LONG_SHARE", 2.0 if request.param == "short" else 0.0)
    return str(request.param)


@pytest.fixture
def history(session: Session) -> Session:
    """The history described in the module docstring."""
    session.add_all(
        [
            Department(slug="ho-tich", name="Hộ tịch", name_en="Civil status"),
            Department(slug="cu-tru", name="Cư trú", name_en="Residence"),
            Department(slug="dat-dai", name="Đất đai", name_en="Land"),
            Procedure(slug="birth", category="civil-status"),
            Procedure(slug="residence", category="residence"),
        ]
    )
    session.flush()
    users = {}
    for username, role, department in [
        ("a1", "official", "ho-tich"),
        ("a2", "official", "ho-tich"),
        ("s1", "supervisor", "ho-tich"),
        ("b1", "official", "cu-tru"),
        ("root", "admin", None),
    ]:
        users[username] = User(
            username=username, full_name=f"Cán bộ {username}", password_hash="x", role=role, department=department
        )
    session.add_all(users.values())
    conv = Conversation(channel="web", user_key="citizen-1", state={})
    session.add(conv)
    session.flush()

    def ticket(
        code: str,
        department: str,
        created: dt.datetime,
        *,
        status: str = "answered",
        first: tuple[dt.datetime, float] | None = None,
        resolved: tuple[dt.datetime, float] | None = None,
        apologies: int = 0,
        rating: int | None = None,
        assignee: str | None = None,
        deadline: dt.datetime | None = None,
        paused: dt.datetime | None = None,
        category: str | None = None,
    ) -> Ticket:
        row = Ticket(
            code=code,
            conversation_id=conv.id,
            channel="web",
            question=f"câu hỏi {code}",
            reason="low_confidence",
            status=status,
            department=department,
            created_at=created,
            deadline=deadline or created,
            first_response_at=first[0] if first else None,
            first_response_hours=first[1] if first else None,
            resolved_at=resolved[0] if resolved else None,
            resolution_hours=resolved[1] if resolved else None,
            apologies=apologies,
            rating=rating,
            assignee_id=users[assignee].id if assignee else None,
            paused_at=paused,
            category=category or ("civil-status" if department == "ho-tich" else "residence"),
        )
        session.add(row)
        session.flush()
        return row

    tickets = {
        "T1": ticket(
            "T1", "ho-tich", vn(3, 2), first=(vn(3, 2, 10), 1.0), resolved=(vn(3, 2, 10), 1.0), rating=5, assignee="a1"
        ),
        "T2": ticket(
            "T2",
            "ho-tich",
            vn(3, 3),
            first=(vn(3, 3, 12), 3.0),
            resolved=(vn(3, 4, 11), 10.0),
            rating=4,
            assignee="a1",
            status="closed",
        ),
        "T3": ticket(
            "T3",
            "ho-tich",
            vn(3, 5),
            first=(vn(3, 6, 10), 9.0),
            resolved=(vn(3, 6, 13), 12.0),
            apologies=1,
            rating=2,
            assignee="a2",
        ),
        "T4": ticket("T4", "ho-tich", vn(3, 10), status="new", apologies=2, deadline=vn(3, 11)),
        "T5": ticket("T5", "ho-tich", vn(2, 25), first=(vn(3, 1), 5.0), resolved=(vn(3, 2, 15), 20.0), assignee="a2"),
        "T6": ticket("T6", "ho-tich", vn(3, 30), status="acknowledged", assignee="a1", deadline=vn(4, 3)),
        "T7": ticket(
            "T7", "ho-tich", vn(3, 20), status="acknowledged", assignee="a2", deadline=vn(3, 22), paused=vn(3, 21)
        ),
        "T8": ticket("T8", "ho-tich", vn(4, 1, 8), status="new", deadline=vn(4, 2)),
        "U1": ticket(
            "U1",
            "cu-tru",
            vn(3, 15),
            first=(vn(3, 16, 10), 4.0),
            resolved=(vn(3, 16, 12), 6.0),
            apologies=1,
            rating=3,
            assignee="b1",
            category="civil-status",
        ),
        "U2": ticket("U2", "cu-tru", vn(3, 31, 23, 59), status="new", deadline=vn(4, 2, 10)),
        "U3": ticket(
            "U3", "cu-tru", vn(3, 1, 0), first=(vn(3, 1, 1), 2.0), resolved=(vn(3, 1, 1), 2.0), rating=5, assignee="b1"
        ),
        "U4": ticket(
            "U4",
            "cu-tru",
            vn(2, 28, 19),
            first=(vn(2, 28, 20), 1.0),
            resolved=(vn(2, 28, 20), 1.0),
            assignee="b1",
            status="closed",
        ),
    }
    for code, at, department in [
        ("T3", vn(3, 5, 17, 30), "ho-tich"),
        ("T4", vn(3, 11, 9, 5), "ho-tich"),
        ("T4", vn(4, 1, 1), "ho-tich"),
        ("U1", vn(3, 15, 17), "ho-tich"),
    ]:
        session.add(
            TicketEvent(
                ticket_id=tickets[code].id, at=at, kind="apology_sent", actor="system", department=department, data={}
            )
        )
    session.add(
        TicketEvent(
            ticket_id=tickets["U1"].id,
            at=vn(3, 15, 18),
            kind="transferred",
            actor="a1",
            department="cu-tru",
            data={"source": "ho-tich"},
        )
    )

    def bot(
        status: str | None, latency: float | None, at: dt.datetime, procedure: str | None = None, author: str = "bot"
    ) -> ChatMessage:
        message = ChatMessage(
            conversation_id=conv.id,
            direction="out" if author == "bot" else "in",
            author=author,
            text="…",
            at=at,
            status=status,
            latency_ms=latency,
            procedure=procedure,
        )
        session.add(message)
        session.flush()
        return message

    answers = [
        bot("answered", 100, vn(3, 1, 6, 30), "birth"),
        bot("answered", 200, vn(3, 10), "birth"),
        bot("answered", 300, vn(3, 10), "birth"),
        bot("answered", 400, vn(3, 10), "residence"),
    ]
    for status, latency in [
        ("clarify", 50),
        ("clarify", 150),
        ("escalated", 500),
        ("declined", 80),
        ("declined", 120),
        ("declined", 160),
        ("help", 10),
    ]:
        bot(status, latency, vn(3, 10))
    bot("apology", None, vn(3, 11))
    bot(None, None, vn(3, 10), author="citizen")
    outside = bot("answered", 9999, vn(2, 28, 10), "birth")
    session.add(Feedback(message_id=outside.id, conversation_id=conv.id, value=1, at=vn(2, 28, 10, 5)))
    for message, value, at in [
        (answers[0], 1, vn(3, 1, 7)),
        (answers[1], 1, vn(3, 10, 10)),
        (answers[2], -1, vn(3, 10, 10)),
        (answers[3], -1, vn(3, 10, 10)),
    ]:
        session.add(Feedback(message_id=message.id, conversation_id=conv.id, value=value, at=at))
    session.flush()
    return session


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in rows}


def test_department_report(history: Session) -> None:
    rows = reports.department_report(history, MARCH, None, now=NOW)
    assert [row["department"] for row in rows] == ["cu-tru", "dat-dai", "ho-tich"]
    assert list(rows[0]) == list(reports.DEPARTMENT_COLUMNS)
    ho_tich = by(rows, "department")["ho-tich"]
    assert ho_tich == {
        "department": "ho-tich",
        "name": "Hộ tịch",
        "name_en": "Civil status",
        "tickets": 6,  # T1 T2 T3 T4 T6 T7
        "first_responses": 4,
        "first_response_median_hours": 3.0,
        "first_response_p90_hours": 9.0,  # 1 3 5 9
        "resolved": 4,
        "resolution_median_hours": 10.0,
        "resolution_p90_hours": 20.0,  # 1 10 12 20
        "decided": 5,
        "on_time": 3,
        "missed": 2,
        "on_time_rate": 0.6,  # T1 T2 T5 on time; T3 T4 missed
        "overdue_now": 1,  # T4
        "apologies": 3,  # T3 once, T4 twice (of tickets created in March; U1's is charged to cu-tru)
        "ratings": 3,
        "rating_avg": 3.67,  # 5 4 2
    }
    assert by(rows, "department")["cu-tru"] == {
        "department": "cu-tru",
        "name": "Cư trú",
        "name_en": "Residence",
        "tickets": 3,  # U1 U2 U3
        "first_responses": 2,
        "first_response_median_hours": 2.0,
        "first_response_p90_hours": 4.0,
        "resolved": 2,
        "resolution_median_hours": 2.0,
        "resolution_p90_hours": 6.0,
        "decided": 2,
        "on_time": 1,
        "missed": 1,
        "on_time_rate": 0.5,
        "overdue_now": 0,
        "apologies": 1,
        "ratings": 2,
        "rating_avg": 4.0,
    }
    assert by(rows, "department")["dat-dai"] == {
        "department": "dat-dai",
        "name": "Đất đai",
        "name_en": "Land",
        "tickets": 0,
        "first_responses": 0,
        "first_response_median_hours": None,
        "first_response_p90_hours": None,
        "resolved": 0,
        "resolution_median_hours": None,
        "resolution_p90_hours": None,
        "decided": 0,
        "on_time": 0,
        "missed": 0,
        "on_time_rate": None,
        "overdue_now": 0,
        "apologies": 0,
        "ratings": 0,
        "rating_avg": None,
    }


def test_department_filter(history: Session) -> None:
    rows = reports.department_report(history, MARCH, ["cu-tru"], now=NOW)
    assert [(row["department"], row["tickets"]) for row in rows] == [("cu-tru", 3)]


def test_period_edges_are_vietnam_days(history: Session) -> None:
    first_day = reports.department_report(
        history, Period(dt.date(2026, 3, 1), dt.date(2026, 3, 1)), ["cu-tru"], now=NOW
    )
    assert (first_day[0]["tickets"], first_day[0]["resolved"]) == (1, 1)  # U3 at 00:00, not U4 at 02-28 19:00
    last_day = reports.department_report(
        history, Period(dt.date(2026, 3, 31), dt.date(2026, 3, 31)), ["cu-tru"], now=NOW
    )
    assert last_day[0]["tickets"] == 1  # U2 at 23:59


def test_official_report(history: Session) -> None:
    rows = reports.official_report(history, MARCH, None, now=NOW)
    assert [row["official"] for row in rows] == ["b1", "a1", "a2", "s1"]  # by department, then username
    assert list(rows[0]) == list(reports.OFFICIAL_COLUMNS)
    officials = by(rows, "official")
    assert officials["a1"] == {
        "official": "a1",
        "full_name": "Cán bộ a1",
        "role": "official",
        "department": "ho-tich",
        "tickets": 3,  # T1 T2 T6
        "first_responses": 2,
        "first_response_median_hours": 1.0,
        "first_response_p90_hours": 3.0,
        "resolved": 2,
        "resolution_median_hours": 1.0,
        "resolution_p90_hours": 10.0,
        "decided": 2,
        "on_time": 2,
        "missed": 0,
        "on_time_rate": 1.0,
        "overdue_now": 0,
        "apologies": 0,
        "ratings": 2,
        "rating_avg": 4.5,
    }
    a2 = officials["a2"]
    assert (a2["tickets"], a2["first_response_median_hours"], a2["first_response_p90_hours"]) == (2, 5.0, 9.0)
    assert (a2["resolution_median_hours"], a2["resolution_p90_hours"]) == (12.0, 20.0)
    assert (a2["decided"], a2["on_time"], a2["on_time_rate"], a2["overdue_now"]) == (2, 1, 0.5, 0)  # T7 paused
    assert (a2["apologies"], a2["ratings"], a2["rating_avg"]) == (1, 1, 2.0)
    b1 = officials["b1"]
    assert (b1["tickets"], b1["decided"], b1["on_time_rate"], b1["apologies"], b1["rating_avg"]) == (2, 2, 0.5, 1, 4.0)
    assert officials["s1"]["tickets"] == 0
    assert officials["s1"]["on_time_rate"] is None
    only = reports.official_report(history, MARCH, ["cu-tru"], now=NOW)
    assert [row["official"] for row in only] == ["b1"]


def test_bot_report(history: Session) -> None:
    rows = reports.bot_report(history, MARCH, None)
    assert list(rows[0]) == list(reports.BOT_COLUMNS)
    assert rows == [
        # 10 50 80 100 120 150 160 200 300 400 500: rank 6 and rank 11
        {
            "status": "all",
            "replies": 11,
            "share": None,
            "latency_p50_ms": 150.0,
            "latency_p95_ms": 500.0,
            "thumbs_up": 2,
            "thumbs_down": 2,
        },
        {
            "status": "answered",
            "replies": 4,
            "share": 0.4,
            "latency_p50_ms": 200.0,
            "latency_p95_ms": 400.0,
            "thumbs_up": 2,
            "thumbs_down": 2,
        },
        {
            "status": "clarify",
            "replies": 2,
            "share": 0.2,
            "latency_p50_ms": 50.0,
            "latency_p95_ms": 150.0,
            "thumbs_up": 0,
            "thumbs_down": 0,
        },
        {
            "status": "escalated",
            "replies": 1,
            "share": 0.1,
            "latency_p50_ms": 500.0,
            "latency_p95_ms": 500.0,
            "thumbs_up": 0,
            "thumbs_down": 0,
        },
        {
            "status": "declined",
            "replies": 3,
            "share": 0.3,
            "latency_p50_ms": 120.0,
            "latency_p95_ms": 160.0,
            "thumbs_up": 0,
            "thumbs_down": 0,
        },
        {
            "status": "other",
            "replies": 1,
            "share": None,
            "latency_p50_ms": 10.0,
            "latency_p95_ms": 10.0,
            "thumbs_up": 0,
            "thumbs_down": 0,
        },
    ]


def test_category_report(history: Session) -> None:
    rows = reports.category_report(history, MARCH, None, now=NOW)
    assert [row["category"] for row in rows] == ["civil-status", "residence"]
    assert list(rows[0]) == list(reports.CATEGORY_COLUMNS)
    civil, residence = rows
    assert civil == {
        "category": "civil-status",
        "bot_answers": 3,
        "thumbs_up": 2,
        "thumbs_down": 1,
        "tickets": 7,  # T1 T2 T3 T4 T6 T7 U1
        "first_responses": 5,
        "first_response_median_hours": 4.0,
        "first_response_p90_hours": 9.0,  # 1 3 4 5 9
        "resolved": 5,
        "resolution_median_hours": 10.0,
        "resolution_p90_hours": 20.0,  # 1 6 10 12 20
        "decided": 6,
        "on_time": 3,
        "missed": 3,
        "on_time_rate": 0.5,
        "overdue_now": 1,
        "apologies": 4,  # T3, T4 twice, U1
        "ratings": 4,
        "rating_avg": 3.5,
    }
    assert residence == {
        "category": "residence",
        "bot_answers": 1,
        "thumbs_up": 0,
        "thumbs_down": 1,
        "tickets": 2,
        "first_responses": 1,
        "first_response_median_hours": 2.0,
        "first_response_p90_hours": 2.0,
        "resolved": 1,
        "resolution_median_hours": 2.0,
        "resolution_p90_hours": 2.0,
        "decided": 1,
        "on_time": 1,
        "missed": 0,
        "on_time_rate": 1.0,
        "overdue_now": 0,
        "apologies": 0,
        "ratings": 1,
        "rating_avg": 5.0,
    }


def test_timeseries_by_month(history: Session) -> None:
    rows = reports.timeseries(history, Period(dt.date(2026, 2, 15), dt.date(2026, 3, 31)), None, bucket="month")
    assert list(rows[0]) == list(reports.TIMESERIES_COLUMNS)
    assert rows == [
        {
            "bucket": "2026-02-01",
            "questions": 1,
            "answered": 1,
            "clarify": 0,
            "escalated": 0,
            "declined": 0,
            "tickets": 2,
            "resolved": 1,
            "on_time": 1,
            "first_response_median_hours": 1.0,
        },  # T5, U4
        {
            "bucket": "2026-03-01",
            "questions": 10,
            "answered": 4,
            "clarify": 2,
            "escalated": 1,
            "declined": 3,
            "tickets": 9,
            "resolved": 6,
            "on_time": 4,
            "first_response_median_hours": 3.0,
        },  # 1 2 3 4 5 9
    ]


def test_timeseries_by_day_and_week(history: Session) -> None:
    days = reports.timeseries(history, Period(dt.date(2026, 3, 1), dt.date(2026, 3, 2)), None, bucket="day")
    assert days == [
        # U3 at 00:00 and the answer at 06:30 Vietnam time are still 02-28 in UTC
        {
            "bucket": "2026-03-01",
            "questions": 1,
            "answered": 1,
            "clarify": 0,
            "escalated": 0,
            "declined": 0,
            "tickets": 1,
            "resolved": 1,
            "on_time": 1,
            "first_response_median_hours": 2.0,
        },  # U3 2.0, T5 5.0
        {
            "bucket": "2026-03-02",
            "questions": 0,
            "answered": 0,
            "clarify": 0,
            "escalated": 0,
            "declined": 0,
            "tickets": 1,
            "resolved": 2,
            "on_time": 2,
            "first_response_median_hours": 1.0,
        },  # T1; T1 and T5 resolved
    ]
    weeks = reports.timeseries(
        history, Period(dt.date(2026, 3, 1), dt.date(2026, 3, 8)), ["ho-tich", "cu-tru"], bucket="week"
    )
    # 2026-03-01 is a Sunday: its week began on Monday 02-23
    assert [
        (w["bucket"], w["tickets"], w["resolved"], w["on_time"], w["first_response_median_hours"], w["questions"])
        for w in weeks
    ] == [("2026-02-23", 1, 1, 1, 2.0, 1), ("2026-03-02", 3, 4, 3, 3.0, 0)]


def test_monthly_ranking(history: Session) -> None:
    rows = reports.monthly_ranking(history, "2026-03", now=NOW)
    assert list(rows[0]) == list(reports.RANKING_COLUMNS)
    assert [(r["rank"], r["department"], r["on_time_rate"], r["rating_avg"]) for r in rows] == [
        (1, "ho-tich", 0.6, 3.67),
        (2, "cu-tru", 0.5, 4.0),
        (None, "dat-dai", None, None),  # nothing decided: not ranked
    ]
    with pytest.raises(Invalid, match="YYYY-MM"):
        reports.monthly_ranking(history, "2026-3")


def test_ranking_ties_share_a_rank(history: Session) -> None:
    # dat-dai gets exactly cu-tru's figures in March: one on time rated 5, one missed rated 3
    conv_id = history.scalar(select(Conversation.id))
    for code, apologies, rating in [("W1", 0, 5), ("W2", 1, 3)]:
        history.add(
            Ticket(
                code=code,
                conversation_id=conv_id,
                channel="web",
                question="?",
                reason="low_confidence",
                status="answered",
                department="dat-dai",
                created_at=vn(3, 2),
                deadline=vn(3, 3),
                resolved_at=vn(3, 2, 11),
                resolution_hours=2.0,
                apologies=apologies,
                rating=rating,
            )
        )
    history.flush()
    rows = reports.monthly_ranking(history, "2026-03", now=NOW)
    assert [(r["rank"], r["department"]) for r in rows] == [(1, "ho-tich"), (2, "cu-tru"), (2, "dat-dai")]


def test_overdue_tickets(history: Session) -> None:
    rows = reports.overdue_tickets(history, None, NOW)
    assert [row["code"] for row in rows] == ["T4"]
    assert list(rows[0]) == list(reports.OVERDUE_COLUMNS)
    # from Wed 03-11 09:00 to Wed 04-01 10:00: 7 h that day, 14 working days of 8 h, 2 h on 04-01
    assert rows[0]["overdue_working_hours"] == 121.0
    assert reports.overdue_tickets(history, ["cu-tru"], NOW) == []


@pytest.mark.parametrize(
    ("figure", "departments", "official", "codes"),
    [
        ("volume", ["ho-tich"], None, ["T1", "T2", "T3", "T4", "T7", "T6"]),
        ("volume", None, "a1", ["T1", "T2", "T6"]),
        ("first_response", ["ho-tich"], None, ["T5", "T1", "T2", "T3"]),
        ("resolved", ["cu-tru"], None, ["U3", "U1"]),
        ("decided", ["ho-tich"], None, ["T5", "T1", "T2", "T3", "T4"]),
        ("on_time", ["ho-tich"], None, ["T5", "T1", "T2"]),
        ("missed", None, None, ["T3", "T4", "U1"]),
        ("overdue", None, None, ["T4"]),
        ("apologies", None, None, ["T3", "T4", "U1"]),
        ("rated", None, None, ["U3", "T1", "T2", "T3", "U1"]),
    ],
)
def test_tickets_behind_a_figure(
    history: Session, figure: str, departments: list[str] | None, official: str | None, codes: list[str]
) -> None:
    rows = reports.tickets_behind(history, departments, figure, MARCH, now=NOW, official=official)
    assert [row["code"] for row in rows] == codes


def test_tickets_behind_match_the_report(history: Session) -> None:
    report = by(reports.department_report(history, MARCH, None, now=NOW), "department")
    for figure, column in [
        ("volume", "tickets"),
        ("resolved", "resolved"),
        ("decided", "decided"),
        ("on_time", "on_time"),
        ("missed", "missed"),
        ("overdue", "overdue_now"),
    ]:
        for department in ("ho-tich", "cu-tru", "dat-dai"):
            rows = reports.tickets_behind(history, [department], figure, MARCH, now=NOW)
            assert len(rows) == report[department][column], (figure, department)
    with pytest.raises(Invalid, match="figure"):
        reports.tickets_behind(history, None, "everything", MARCH)


def test_transparency(history: Session) -> None:
    rows = reports.transparency(history, MARCH, now=NOW)
    assert list(rows[0]) == list(reports.TRANSPARENCY_COLUMNS)
    assert rows == [
        {
            "department": "cu-tru",
            "name": "Cư trú",
            "name_en": "Residence",
            "tickets": 3,
            "decided": 2,
            "on_time_rate": 0.5,
            "ratings": 2,
            "rating_avg": 4.0,
            "bot_answered_share": None,
        },
        {
            "department": "dat-dai",
            "name": "Đất đai",
            "name_en": "Land",
            "tickets": 0,
            "decided": 0,
            "on_time_rate": None,
            "ratings": 0,
            "rating_avg": None,
            "bot_answered_share": None,
        },
        {
            "department": "ho-tich",
            "name": "Hộ tịch",
            "name_en": "Civil status",
            "tickets": 6,
            "decided": 5,
            "on_time_rate": 0.6,
            "ratings": 3,
            "rating_avg": 3.67,
            "bot_answered_share": None,
        },
        # 4 on time of 7 decided; ratings 5 4 2 3 5; 4 answered of 10 questions
        {
            "department": "all",
            "name": "Tất cả",
            "name_en": "All departments",
            "tickets": 9,
            "decided": 7,
            "on_time_rate": 0.5714,
            "ratings": 5,
            "rating_avg": 3.8,
            "bot_answered_share": 0.4,
        },
    ]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-03-10", "2026-03-01", "to: 2026-03-01 is before from: 2026-03-10"),
        ("2025-01-01", "2026-03-01", "at most 400 days"),
        ("2026-3-1", None, "from: '2026-3-1' is not a date; use YYYY-MM-DD"),
        (None, "yesterday", "to: 'yesterday' is not a date"),
    ],
)
def test_bad_periods(start: str | None, end: str | None, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        Period.parse(start, end, today=dt.date(2026, 4, 1))


def test_default_period_is_the_last_30_days() -> None:
    period = Period.parse(None, None, today=dt.date(2026, 4, 1))
    assert (period.start, period.end, period.days) == (dt.date(2026, 3, 3), dt.date(2026, 4, 1), 30)
    assert Period.parse(None, "2026-03-31").start == dt.date(2026, 3, 2)
    assert Period.month("2026-02") == Period(dt.date(2026, 2, 1), dt.date(2026, 2, 28))


def add_resolved(session: Session, rows: list[tuple[str | None, dt.datetime, float | None]]) -> None:
    """Tickets created on 03-02, each (department, resolved at, resolution hours), none of them late."""
    session.add(Conversation(channel="web", user_key="c", state={}))
    session.flush()
    conversation_id = session.scalar(select(Conversation.id))
    for i, (department, resolved_at, hours) in enumerate(rows):
        session.add(
            Ticket(
                code=f"P{i}",
                conversation_id=conversation_id,
                channel="web",
                question="?",
                reason="low_confidence",
                department=department,
                created_at=vn(3, 2),
                deadline=vn(3, 3),
                resolved_at=resolved_at,
                resolution_hours=hours,
                apologies=0,
            )
        )
    session.flush()


@pytest.mark.parametrize("values", [[7.0] * 50, [0.1 * k for k in range(1, 302)], [0.0, 0.24, 0.25, 0.26, 1e6]])
def test_percentiles_are_exact_nearest_ranks(session: Session, values: list[float]) -> None:
    """The histogram-then-rank computation equals sorting and reading position ceil(p*n/100), with ties, one value
    repeated, far outliers, several groups and the whole scope."""
    shuffled = values[::2] + values[1::2]
    add_resolved(session, [("odd" if i % 2 else "even", vn(3, 4), value) for i, value in enumerate(shuffled)])

    def nearest_rank(sample: list[float], pct: int) -> float:
        return sorted(sample)[-(-len(sample) * pct // 100) - 1]

    found = reports._percentiles(
        session, Ticket.department, Ticket.resolution_hours, [], (1, 50, 90, 95, 100), width=0.25, total=True
    )
    groups = {"even": shuffled[::2], "odd": shuffled[1::2], reports.TOTAL: shuffled}
    for key, sample in groups.items():
        assert found[key] == (len(sample), *(nearest_rank(sample, pct) for pct in (1, 50, 90, 95, 100)))


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-03-01", "2026-03-31"),  # one whole month
        ("2026-02-20", "2026-03-10"),  # no whole month: the edges alone
        ("2026-02-01", "2026-04-30"),  # three whole months
        ("2026-02-25", "2026-04-02"),  # a whole month between two edges
        ("2026-03-02", "2026-03-02"),  # one day
    ],
)
def test_both_readings_give_the_same_figures(
    history: Session, monkeypatch: pytest.MonkeyPatch, start: str, end: str
) -> None:
    """Whatever the period's edges, the long reading (ticket_stats' days and months, the edge days counted live,
    walks cut into several small statements) gives exactly the short reading's rows."""
    period = Period.parse(start, end)

    def everything() -> list[Any]:
        found: list[Any] = [reports.transparency(history, period, now=NOW)]
        for scope in (None, ["ho-tich"], ["cu-tru", "dat-dai"]):
            found += [
                reports.department_report(history, period, scope, now=NOW),
                reports.official_report(history, period, scope, now=NOW),
                reports.category_report(history, period, scope, now=NOW),
                *(reports.timeseries(history, period, scope, bucket) for bucket in reports.BUCKETS),
            ]
        return found

    monkeypatch.setattr(reports, "LONG_SHARE", 2.0)
    short = everything()
    monkeypatch.setattr(reports, "LONG_SHARE", 0.0)
    monkeypatch.setattr(reports, "WALK_TERMS", 3)  # several statements, the last one padded
    assert everything() == short
    assert any(row["tickets"] for row in short[1])  # the period is not empty


@pytest.mark.parametrize(
    ("start", "end", "months", "edges"),
    [
        ("2026-03-01", "2026-03-31", ("2026-03-01", "2026-03-01"), []),
        ("2026-02-20", "2026-03-10", None, [("2026-02-20", "2026-03-10")]),
        ("2025-12-15", "2026-03-31", ("2026-01-01", "2026-03-01"), [("2025-12-15", "2025-12-31")]),
        ("2026-01-01", "2026-02-27", ("2026-01-01", "2026-01-01"), [("2026-02-01", "2026-02-27")]),
        (
            "2026-01-31",
            "2026-03-01",
            ("2026-02-01", "2026-02-01"),
            [("2026-01-31", "2026-01-31"), ("2026-03-01", "2026-03-01")],
        ),
    ],
)
def test_whole_months_and_edges(start: str, end: str, months: Any, edges: list[tuple[str, str]]) -> None:
    found, outside = reports._whole_months(Period.parse(start, end))
    assert found == (None if months is None else tuple(dt.date.fromisoformat(day) for day in months))
    assert [(edge.start.isoformat(), edge.end.isoformat()) for edge in outside] == edges


@pytest.mark.parametrize("values", [[7.0] * 50, [0.1 * k for k in range(1, 302)], [0.0, 0.24, 0.25, 0.26, 1e6]])
def test_walks_read_exact_nearest_ranks(session: Session, values: list[float]) -> None:
    """Walking a group's values in order to rank ceil(p*n/100) equals sorting, for each group, the tickets without
    a group and the whole scope; tickets outside the period or without a value are stepped over."""
    groups: dict[Any, list[float]] = {"even": [], "odd": [], None: [], reports.TOTAL: []}
    rows = []
    for i, value in enumerate(values[::2] + values[1::2]):
        department, inside, valued = ("even", "odd", None)[i % 3], i % 5 != 4, i % 7 != 6
        rows.append((department, vn(3, 4) if inside else vn(5, 4), value if valued else None))
        if inside and valued:
            groups[department].append(value)
            groups[reports.TOTAL].append(value)
    add_resolved(session, rows)
    pcts = (1, 50, 90, 95, 100)  # walked up from the smallest value, or down from the largest
    counts = {key: len(sample) for key, sample in groups.items()}
    found = reports._walked(session, MARCH, None, Ticket.department, Ticket.resolution_hours, counts, pcts)
    for key, sample in groups.items():
        assert found[key] == tuple(sorted(sample)[-(-len(sample) * pct // 100) - 1] for pct in pcts), key


def test_a_period_is_long_when_it_holds_a_share_of_the_tickets(
    history: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "LONG_SHARE", 0.25)
    # 12 tickets created from 02-25 to 04-01: March holds 9, its first week 4 (a third), its second week 1
    assert reports._is_long(history, MARCH)
    assert reports._is_long(history, Period(dt.date(2026, 3, 1), dt.date(2026, 3, 7)))
    assert not reports._is_long(history, Period(dt.date(2026, 3, 8), dt.date(2026, 3, 14)))
    assert not reports._is_long(history, Period(dt.date(2026, 5, 1), dt.date(2026, 5, 1)))
