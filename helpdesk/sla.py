"""Deadlines in working hours: Monday to Friday, 08:00-12:00 and 13:00-17:00, Vietnam time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

VN = ZoneInfo("Asia/Ho_Chi_Minh")
WORK_PERIODS = ((dt.time(8), dt.time(12)), (dt.time(13), dt.time(17)))
ACKNOWLEDGE_HOURS = 8.0  # iHaNoi rule: acknowledge within 8 working hours (urgent: 4)


def add_working_hours(start: dt.datetime, hours: float) -> dt.datetime:
    """The moment `hours` working hours after start (aware datetimes in, UTC out)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    remaining = dt.timedelta(hours=hours)
    local = start.astimezone(VN)
    while True:
        if local.weekday() < 5:
            for begin, end in WORK_PERIODS:
                period_start = local.replace(hour=begin.hour, minute=begin.minute, second=0, microsecond=0)
                period_end = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
                if local >= period_end:
                    continue
                local = max(local, period_start)
                available = period_end - local
                if remaining <= available:
                    return (local + remaining).astimezone(dt.UTC)
                remaining -= available
                local = period_end
        local = (local + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
