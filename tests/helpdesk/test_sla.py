"""Working-hour deadlines: office hours, lunch, weekends, holidays, make-up days, Vietnam time; SLA targets."""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from core.config import get_settings
from core.errors import Invalid
from helpdesk.models import Department, SlaPolicy
from helpdesk.sla import (
    BUNDLED_HOLIDAYS,
    DEFAULT_TARGETS,
    VN,
    SlaTargets,
    WorkingCalendar,
    add_working_hours,
    default_calendar,
    load_calendar,
    remaining_working_hours,
    sla_targets,
    working_hours_between,
)


def vn(y: int, m: int, d: int, h: int, mi: int = 0, s: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, s, tzinfo=VN)


# A calendar of its own, so these cases do not depend on the bundled file: Wednesday 25/11/2026 is a holiday,
# Saturday 5/12/2026 a make-up working day.
CAL = WorkingCalendar(holidays=frozenset({dt.date(2026, 11, 25)}), workdays=frozenset({dt.date(2026, 12, 5)}))


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (vn(2026, 11, 23, 9), 2, vn(2026, 11, 23, 11)),  # Monday morning
        (vn(2026, 11, 23, 11), 2, vn(2026, 11, 23, 14)),  # over lunch
        (vn(2026, 11, 23, 9), 8, vn(2026, 11, 24, 9)),  # one working day
        (vn(2026, 11, 27, 16), 2, vn(2026, 11, 30, 9)),  # Friday afternoon -> Monday
        (vn(2026, 11, 28, 10), 1, vn(2026, 11, 30, 9)),  # Saturday counts from Monday 08:00
        (vn(2026, 11, 23, 6), 1, vn(2026, 11, 23, 9)),  # before office hours
        (vn(2026, 11, 23, 12, 30), 0.5, vn(2026, 11, 23, 13, 30)),  # at lunch
    ],
)
def test_add_working_hours(start: dt.datetime, hours: float, expected: dt.datetime) -> None:
    result = add_working_hours(start.astimezone(dt.UTC), hours)
    assert result == expected
    assert result.tzinfo is not None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_hours(dt.datetime(2026, 11, 23, 9), 1)  # noqa: DTZ001


@pytest.mark.parametrize("hours", [-1, float("nan"), float("inf")])
def test_impossible_hours_are_refused(hours: float) -> None:
    with pytest.raises(ValueError, match="finite number"):
        CAL.add_working_hours(vn(2026, 11, 23, 9), hours)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (vn(2026, 11, 24, 16), 2, vn(2026, 11, 26, 9)),  # Tuesday afternoon over the Wednesday holiday
        (vn(2026, 11, 25, 10), 1, vn(2026, 11, 26, 9)),  # opened on the holiday
        (vn(2026, 12, 4, 16), 2, vn(2026, 12, 5, 9)),  # Friday -> the make-up Saturday
        (vn(2026, 12, 5, 16, 30), 1, vn(2026, 12, 7, 8, 30)),  # make-up Saturday -> Monday
        (vn(2026, 11, 23, 9), 3, vn(2026, 11, 23, 12)),  # ends with the morning: stays at 12:00
        (vn(2026, 11, 23, 9, 0, 1), 1 / 3600, vn(2026, 11, 23, 9, 0, 2)),  # to the second
        (vn(2026, 11, 23, 17), 0, vn(2026, 11, 24, 8)),  # zero hours: the next working moment
    ],
)
def test_holidays_and_make_up_days(start: dt.datetime, hours: float, expected: dt.datetime) -> None:
    assert CAL.add_working_hours(start, hours) == expected


def test_is_working_day() -> None:
    assert CAL.is_working_day(dt.date(2026, 11, 24))
    assert not CAL.is_working_day(dt.date(2026, 11, 25))  # holiday
    assert not CAL.is_working_day(dt.date(2026, 11, 28))  # Saturday
    assert CAL.is_working_day(dt.date(2026, 12, 5))  # make-up Saturday


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (vn(2026, 2, 13, 16), 2, vn(2026, 2, 23, 9)),  # Friday before Tết Bính Ngọ -> Monday after it
        (vn(2026, 2, 13, 9), 40, vn(2026, 2, 27, 9)),  # a 40-hour deadline across Tết: 7 + 4 x 8 + 1
        (vn(2026, 8, 21, 16), 2, vn(2026, 8, 22, 9)),  # make-up Saturday 22/8/2026
        (vn(2026, 8, 28, 16), 2, vn(2026, 9, 3, 9)),  # National Day 2026: 31/8 swapped, 1/9 and 2/9 off
        (vn(2026, 4, 24, 16), 2, vn(2026, 4, 28, 9)),  # Giỗ Tổ on Sunday 26/4/2026: Monday 27/4 off
        (vn(2025, 12, 31, 16), 2, vn(2026, 1, 5, 9)),  # 1/1 and the swapped 2/1/2026
    ],
)
def test_bundled_calendar(start: dt.datetime, hours: float, expected: dt.datetime) -> None:
    assert load_calendar().add_working_hours(start, hours) == expected


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_bundled_file_has_the_labour_code_days_each_year(year: int) -> None:
    calendar = load_calendar(BUNDLED_HOLIDAYS)
    off = [d for d in calendar.holidays if d.year == year]
    assert all(d.weekday() < 5 for d in off)
    swapped = [d for d in calendar.workdays if d.year == year]
    # 11 paid days off (Article 112 of the Labour Code 2019), plus one bridge day per make-up Saturday.
    assert len(off) - len(swapped) == 11
    assert calendar.names[dt.date(year, 1, 1)] == "Tết Dương lịch"


def test_working_hours_between() -> None:
    assert CAL.working_hours_between(vn(2026, 11, 23, 9), vn(2026, 11, 23, 14)) == 4
    assert CAL.working_hours_between(vn(2026, 11, 24, 16), vn(2026, 11, 26, 9)) == 2  # over the holiday
    assert CAL.working_hours_between(vn(2026, 11, 27, 18), vn(2026, 11, 30, 7)) == 0  # a weekend
    assert CAL.working_hours_between(vn(2026, 11, 23, 9), vn(2026, 11, 23, 9, 0, 1)) == pytest.approx(1 / 3600)
    assert CAL.working_hours_between(vn(2026, 11, 23, 14), vn(2026, 11, 23, 9)) == 0.0  # end before start


def _reference_seconds(calendar: WorkingCalendar, start: dt.datetime, end: dt.datetime) -> int:
    """Working seconds from start to end, walking from one period boundary to the next (slow but obvious)."""
    total = 0
    moment, end = start.astimezone(VN), end.astimezone(VN)
    while moment < end:
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        edges = [midnight.replace(hour=t.hour, minute=t.minute) for period in calendar.periods for t in period]
        step_to = min([edge for edge in edges if edge > moment] + [midnight + dt.timedelta(days=1), end])
        working = calendar.is_working_day(moment.date()) and any(b <= moment.time() < e for b, e in calendar.periods)
        if working:
            total += round((step_to - moment).total_seconds())
        moment = step_to
    return total


def test_random_spans_match_a_slow_reference_and_invert_exactly() -> None:
    rng = random.Random(4)
    calendar = load_calendar()
    for _ in range(1000):
        start = vn(2026, 1, 1, 0) + dt.timedelta(seconds=rng.randrange(365 * 86400))
        hours = rng.randrange(0, 60 * 3600) / 3600  # whole seconds, up to 60 working hours
        deadline = calendar.add_working_hours(start, hours)
        assert calendar.working_hours_between(start, deadline) == pytest.approx(hours, abs=1e-9)
        assert _reference_seconds(calendar, start, deadline) == round(hours * 3600)
        end = start + dt.timedelta(seconds=rng.randrange(20 * 86400))
        between = calendar.working_hours_between(start, end)
        assert round(between * 3600) == _reference_seconds(calendar, start, end)
        # The earliest moment with that much work done: at end, or where the last period before it closed.
        back = calendar.add_working_hours(start, between)
        assert calendar.working_hours_between(back, end) == 0
        if between:  # zero hours lands on the next working moment, which may come after end
            assert back <= end


def test_a_40_hour_deadline_is_fast() -> None:
    calendar = load_calendar()
    start = vn(2026, 2, 10, 9, 17)
    began = time.perf_counter()
    for _ in range(1000):
        calendar.add_working_hours(start, 40)
        calendar.working_hours_between(start, start + dt.timedelta(days=30))
    per_call = (time.perf_counter() - began) / 2000
    assert per_call < 0.0002  # about 5 µs here; "well under 1 ms" with room for a slow CI machine


def test_remaining_working_hours_is_negative_when_overdue() -> None:
    deadline = vn(2026, 11, 24, 10)
    assert remaining_working_hours(vn(2026, 11, 24, 9), deadline, CAL) == 1
    assert remaining_working_hours(vn(2026, 11, 26, 9), deadline, CAL) == -7  # the holiday does not count
    assert working_hours_between(vn(2026, 11, 24, 9), deadline, calendar=CAL) == 1


def test_pausing_keeps_the_remaining_hours() -> None:
    deadline = CAL.add_working_hours(vn(2026, 11, 23, 9), 8)
    paused_at = vn(2026, 11, 23, 15)
    left = CAL.working_hours_between(paused_at, deadline)
    assert left == 3  # 15:00-17:00, then 08:00-09:00 the next day
    assert CAL.add_working_hours(vn(2026, 11, 30, 10), left) == vn(2026, 11, 30, 14)


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later mtime on any file system


def test_an_admin_edit_of_the_holidays_file_applies_without_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "holidays.yaml"
    _write(path, "holidays: []\n")
    monkeypatch.setenv("MOTCUA_HOLIDAYS_FILE", str(path))
    get_settings.cache_clear()
    try:
        start = vn(2026, 12, 7, 16)
        assert add_working_hours(start, 2) == vn(2026, 12, 8, 9)
        assert default_calendar() is default_calendar()  # cached while the file is unchanged
        _write(path, "holidays:\n  - {date: 2026-12-08, name: Ngày nghỉ đột xuất}\n")
        assert add_working_hours(start, 2) == vn(2026, 12, 9, 9)
        assert default_calendar().names[dt.date(2026, 12, 8)] == "Ngày nghỉ đột xuất"
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("holidays:\n  - {date: 2026-02-30, name: x}\n", "holidays entry 1: field 'date': '2026-02-30' is not a date"),
        ("holidays:\n  - {date: 'soon'}\n", "holidays entry 1: field 'date': 'soon' is not a date"),
        ("holidays:\n  - {name: Tết}\n", "holidays entry 1: field 'date': missing"),
        (
            "holidays:\n  - {date: 2026-02-16}\n  - {date: 2026-02-16}\n",
            "holidays entry 2: field 'date': 2026-02-16 is already holidays entry 1",
        ),
        (
            "holidays:\n  - {date: 2026-08-31}\nworkdays:\n  - {date: 2026-08-22}\n  - {date: 2026-08-31}\n",
            "workdays entry 2: field 'date': 2026-08-31 is already holidays entry 1",
        ),
        ("workdays:\n  - {date: 2026-08-24}\n", "workdays entry 1: field 'date': 2026-08-24 is a weekday"),
        (
            "holidays:\n  - {date: 2026-01-01 08:00:00}\n",
            "holidays entry 1: field 'date': '2026-01-01 08:00:00' is not a date (YYYY-MM-DD)",
        ),
        ("holidays:\n  - {date: 2026-01-01, nmae: x}\n", "holidays entry 1: unknown field(s) nmae"),
        ("holiday: []\n", "unknown key(s) holiday"),
        ("holidays: {date: 2026-01-01}\n", "'holidays' must be a list"),
        ("- 2026-01-01\n", "expected a mapping"),
        ("holidays: [\n", "invalid YAML"),
    ],
)
def test_bad_holidays_files_name_the_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    _write(path, text)
    with pytest.raises(Invalid) as caught:
        load_calendar(path)
    assert str(caught.value).startswith(str(path.resolve()) + ":")
    assert message in str(caught.value)


def test_missing_holidays_file(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="no such file"):
        load_calendar(tmp_path / "none.yaml")


def test_sla_targets_most_specific_first(session: Session) -> None:
    session.add(Department(slug="land", name="Đất đai"))
    session.flush()
    session.add_all(
        [
            SlaPolicy(department="land", category="*", urgency="normal", ack_hours=6, resolve_hours=30),
            SlaPolicy(department="land", category="land-construction", urgency="normal", ack_hours=8, resolve_hours=80),
        ]
    )
    session.flush()
    assert sla_targets(session, "land", "land-construction", "normal") == SlaTargets(8, 80)
    assert sla_targets(session, "land", "business", "normal") == SlaTargets(6, 30)
    assert sla_targets(session, "land", None, "normal") == SlaTargets(6, 30)
    assert sla_targets(session, "land", "land-construction", "urgent") == DEFAULT_TARGETS["urgent"]
    assert sla_targets(session, None, None, "normal") == SlaTargets(8, 40)
    assert sla_targets(session, "other", "x", "urgent") == SlaTargets(4, 16)
    with pytest.raises(Invalid, match="field 'urgency': 'asap' is not one of normal, urgent"):
        sla_targets(session, "land", None, "asap")
