"""Working-hour deadlines: office hours, lunch, weekends, Vietnam time."""

from __future__ import annotations

import datetime as dt

import pytest

from helpdesk.sla import VN, add_working_hours


def vn(y: int, m: int, d: int, h: int, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=VN)


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
