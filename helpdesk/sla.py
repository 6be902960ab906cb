"""Deadlines in working hours on a working calendar: office periods, weekends, public holidays, make-up days.

Monday to Friday, 08:00-12:00 and 13:00-17:00 Vietnam time, less the public holidays of a YAML file that admins
edit (the bundled `helpdesk/data/holidays.yaml` unless MOTCUA_HOLIDAYS_FILE names another), plus the Saturdays
worked in exchange for a bridge day off.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import get_settings
from core.errors import Invalid
from helpdesk.models import SlaPolicy
from knowledge.io import read_text

VN = ZoneInfo("Asia/Ho_Chi_Minh")
WORK_PERIODS = ((dt.time(8), dt.time(12)), (dt.time(13), dt.time(17)))
ACKNOWLEDGE_HOURS = 8.0  # iHaNoi rule: acknowledge within 8 working hours (urgent: 4)
BUNDLED_HOLIDAYS = Path(__file__).resolve().parent / "data" / "holidays.yaml"
URGENCIES = ("normal", "urgent")

_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR
_ONE_DAY = dt.timedelta(days=1)


def _offset_us(moment: dt.time) -> int:
    """Microseconds since midnight."""
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000 + moment.microsecond


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days and office periods; deadlines are computed day by day, never minute by minute."""

    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()  # make-up working Saturdays (or Sundays)
    periods: tuple[tuple[dt.time, dt.time], ...] = WORK_PERIODS
    names: Mapping[dt.date, str] = field(default_factory=dict, compare=False, hash=False, repr=False)
    _bounds: tuple[tuple[int, int], ...] = field(init=False, compare=False, hash=False, repr=False)
    _day_us: int = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        """Check the periods once and keep them as microsecond offsets."""
        bounds = tuple((_offset_us(begin), _offset_us(end)) for begin, end in self.periods)
        if not bounds:
            raise ValueError("a working calendar needs at least one office period")
        previous_end = 0
        for begin, end in bounds:
            if not previous_end <= begin < end:
                raise ValueError(f"office periods must be ascending and not overlap: {self.periods}")
            previous_end = end
        object.__setattr__(self, "_bounds", bounds)
        object.__setattr__(self, "_day_us", sum(end - begin for begin, end in bounds))
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))

    def is_working_day(self, day: dt.date) -> bool:
        """True on Monday to Friday that is no public holiday, and on a make-up working day."""
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_hours(self, start: dt.datetime, hours: float) -> dt.datetime:
        """The moment `hours` working hours after start (aware in, UTC out); outside office hours the clock
        starts at the next period, and a deadline that ends a period stays at that period's end."""
        remaining = _hours_to_us(hours)
        day, at = _local(start)
        while True:
            if self.is_working_day(day):
                if at == 0 and remaining > self._day_us:
                    remaining -= self._day_us  # a whole working day: no need to look at its periods
                else:
                    for begin, end in self._bounds:
                        if at >= end:
                            continue
                        at = max(at, begin)
                        available = end - at
                        if remaining <= available:
                            return _utc(day, at + remaining)
                        remaining -= available
                        at = end
            day += _ONE_DAY
            at = 0

    def working_hours_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Working hours from start to end (0.0 when end is not after start)."""
        return self._worked_us(start, end) / _US_PER_HOUR

    def _worked_us(self, start: dt.datetime, end: dt.datetime) -> int:
        """Working microseconds from start to end, 0 when end <= start."""
        first_day, first_at = _local(start)
        last_day, last_at = _local(end)
        if (last_day, last_at) <= (first_day, first_at):
            return 0
        total = -self._worked_before(first_day, first_at) + self._worked_before(last_day, last_at)
        day = first_day
        while day < last_day:
            if self.is_working_day(day):
                total += self._day_us
            day += _ONE_DAY
        return total

    def _worked_before(self, day: dt.date, at: int) -> int:
        """Working microseconds of day before the offset `at`."""
        if not self.is_working_day(day):
            return 0
        return sum(min(at, end) - begin for begin, end in self._bounds if at > begin)


def _hours_to_us(hours: float) -> int:
    """Hours as whole microseconds; refuses negative, infinite and NaN."""
    if not math.isfinite(hours) or hours < 0:
        raise ValueError(f"working hours must be a finite number >= 0, got {hours!r}")
    return round(hours * _US_PER_HOUR)


def _local(moment: dt.datetime) -> tuple[dt.date, int]:
    """The Vietnam-time date and microseconds since its midnight of an aware datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    local = moment.astimezone(VN)
    return local.date(), _offset_us(local.time())


def _utc(day: dt.date, at: int) -> dt.datetime:
    """The UTC moment `at` microseconds after midnight of day, Vietnam time."""
    # Vietnam has had no daylight saving since 1975, so local wall-clock arithmetic is exact.
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=VN)
    return (midnight + dt.timedelta(microseconds=at)).astimezone(dt.UTC)


# --- the holidays file -------------------------------------------------------------------------------------------


class _DatesAsText(yaml.SafeLoader):
    """SafeLoader that keeps 2026-02-30 as text, so that a bad date gets an error naming its entry."""


_DatesAsText.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_cache: dict[Path, tuple[tuple[int, int], WorkingCalendar]] = {}
_cache_lock = threading.Lock()


def load_calendar(path: Path | None = None) -> WorkingCalendar:
    """The calendar of a holidays YAML file (default: the bundled one), re-read when the file changes."""
    path = (path or BUNDLED_HOLIDAYS).resolve()
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise Invalid(f"{path}: no such file") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    calendar = parse_calendar(read_text(path), source=str(path))
    with _cache_lock:
        _cache[path] = (stamp, calendar)
    return calendar


def default_calendar() -> WorkingCalendar:
    """The calendar of MOTCUA_HOLIDAYS_FILE, or of the bundled file."""
    return load_calendar(get_settings().holidays_file)


def parse_calendar(text: str, *, source: str) -> WorkingCalendar:
    """A calendar from the YAML text `{holidays: [{date, name}], workdays: [{date, name}]}`; Invalid names the
    file, the list, the entry and the field of the first problem."""
    try:
        data = yaml.load(text, Loader=_DatesAsText)  # noqa: S506 - a SafeLoader that leaves dates to us
    except yaml.YAMLError as exc:
        raise Invalid(f"{source}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Invalid(f"{source}: expected a mapping with 'holidays' and 'workdays', got {type(data).__name__}")
    unknown = sorted(str(key) for key in data if key not in ("holidays", "workdays"))
    if unknown:
        raise Invalid(f"{source}: unknown key(s) {', '.join(unknown)}; expected 'holidays' and 'workdays'")
    names: dict[dt.date, str] = {}
    where: dict[dt.date, str] = {}
    lists: dict[str, set[dt.date]] = {"holidays": set(), "workdays": set()}
    for key, dates in lists.items():
        entries = data.get(key) or []
        if not isinstance(entries, list):
            raise Invalid(f"{source}: '{key}' must be a list of {{date, name}} entries")
        for index, entry in enumerate(entries, 1):
            label = f"{source}: {key} entry {index}"
            day, name = _parse_entry(entry, label)
            if day in where:
                raise Invalid(f"{label}: field 'date': {day.isoformat()} is already {where[day]}")
            if key == "workdays" and day.weekday() < 5:
                raise Invalid(
                    f"{label}: field 'date': {day.isoformat()} is a weekday; 'workdays' lists the weekend days "
                    "worked in exchange for a day off"
                )
            where[day] = f"{key} entry {index}"
            dates.add(day)
            names[day] = name
    return WorkingCalendar(frozenset(lists["holidays"]), frozenset(lists["workdays"]), names=names)


def _parse_entry(entry: Any, label: str) -> tuple[dt.date, str]:
    """(date, name) of one `{date: YYYY-MM-DD, name: ...}` entry (a bare date is accepted too)."""
    if not isinstance(entry, dict):
        entry = {"date": entry}
    unknown = sorted(str(key) for key in entry if key not in ("date", "name"))
    if unknown:
        raise Invalid(f"{label}: unknown field(s) {', '.join(unknown)}; expected 'date' and 'name'")
    value = entry.get("date")
    if value is None:
        raise Invalid(f"{label}: field 'date': missing")
    try:
        day = dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise Invalid(f"{label}: field 'date': {value!r} is not a date (YYYY-MM-DD)") from None
    name = entry.get("name") or ""
    if not isinstance(name, str):
        raise Invalid(f"{label}: field 'name': expected text, got {type(name).__name__}")
    return day, name.strip()


# --- module-level helpers on the default calendar ----------------------------------------------------------------


def add_working_hours(start: dt.datetime, hours: float, *, calendar: WorkingCalendar | None = None) -> dt.datetime:
    """The moment `hours` working hours after start (aware datetimes in, UTC out), on the default calendar."""
    return (calendar or default_calendar()).add_working_hours(start, hours)


def working_hours_between(start: dt.datetime, end: dt.datetime, *, calendar: WorkingCalendar | None = None) -> float:
    """Working hours from start to end on the default calendar (0.0 when end is not after start)."""
    return (calendar or default_calendar()).working_hours_between(start, end)


def remaining_working_hours(now: dt.datetime, deadline: dt.datetime, calendar: WorkingCalendar | None = None) -> float:
    """Working hours left until deadline; negative when overdue, by the working hours since it passed."""
    calendar = calendar or default_calendar()
    if deadline >= now:
        return calendar.working_hours_between(now, deadline)
    return -calendar.working_hours_between(deadline, now)


# --- targets -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlaTargets:
    """Working hours allowed to acknowledge and to resolve a ticket."""

    ack_hours: float
    resolve_hours: float


# iHaNoi: acknowledge within 8 working hours (urgent: 4). Resolution: 5 working days (urgent: 2) unless a
# department's policy says otherwise.
DEFAULT_TARGETS = {"normal": SlaTargets(8, 40), "urgent": SlaTargets(4, 16)}


def sla_targets(session: Session, department: str | None, category: str | None, urgency: str) -> SlaTargets:
    """The most specific targets: the department's policy for the category, then for "*", then the defaults."""
    if urgency not in URGENCIES:
        raise Invalid(f"field 'urgency': {urgency!r} is not one of {', '.join(URGENCIES)}")
    if department is None:
        return DEFAULT_TARGETS[urgency]
    scopes = [category, "*"] if category and category != "*" else ["*"]
    rows = session.execute(
        select(SlaPolicy.category, SlaPolicy.ack_hours, SlaPolicy.resolve_hours).where(
            SlaPolicy.department == department, SlaPolicy.urgency == urgency, SlaPolicy.category.in_(scopes)
        )
    ).all()
    by_scope = {row.category: SlaTargets(row.ack_hours, row.resolve_hours) for row in rows}
    for scope in scopes:
        if scope in by_scope:
            return by_scope[scope]
    return DEFAULT_TARGETS[urgency]
