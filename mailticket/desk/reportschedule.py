"""When the manager's report is mailed: the ``[reports]`` section, and which report is due at ``now``.

    [reports]
    weekly = "monday 08:00"     # a day name (mon..sun, or in full) and a local time
    monthly = "1 08:00"         # a day of the month (1-31; the last day in shorter months) and a time

Times are in the service's time zone. A weekly report covers the seven days before the day it is
sent (midnight to midnight); a monthly one the month before, from the same day of that month.
Pure functions of ``now``: the daemon asks ``due_reports`` at each SLA check and records each
report it sends, so a restart neither repeats nor (within a day) misses one.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..errors import ConfigError

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CATCH_UP = timedelta(days=1)  # a report missed while the daemon was down is still sent this late


@dataclass(frozen=True)
class Slot:
    kind: str            # weekly | monthly
    day: int             # weekday 0-6 (weekly) or day of the month 1-31 (monthly)
    at: time


@dataclass(frozen=True)
class ReportSchedule:
    weekly: Slot | None = None
    monthly: Slot | None = None

    @property
    def slots(self) -> tuple[Slot, ...]:
        return tuple(s for s in (self.weekly, self.monthly) if s is not None)


@dataclass(frozen=True)
class DueReport:
    kind: str
    key: str             # recorded once sent, e.g. report:weekly:2026-12-07
    since: datetime      # the period, local midnights as aware datetimes
    until: datetime


def load_reports(data, file: str) -> ReportSchedule:
    if not isinstance(data, dict):
        raise ConfigError("must be a table", file, "reports")
    unknown = sorted(set(data) - {"weekly", "monthly"})
    if unknown:
        raise ConfigError("unknown key (valid: monthly, weekly)", file, f"reports.{unknown[0]}")
    return ReportSchedule(weekly=_slot(data, "weekly", file), monthly=_slot(data, "monthly", file))


_SLOT = re.compile(r"\s*(\S+)\s+(\d{1,2}):(\d{2})\s*")


def _slot(data: dict, kind: str, file: str) -> Slot | None:
    if kind not in data:
        return None
    raw = data[kind]
    example = '"monday 08:00"' if kind == "weekly" else '"1 08:00"'
    found = _SLOT.fullmatch(raw) if isinstance(raw, str) else None
    if not found or int(found.group(2)) > 23 or int(found.group(3)) > 59:
        raise ConfigError(f"{raw!r} is not a day and a time like {example}", file, f"reports.{kind}")
    word, at = found.group(1).lower(), time(int(found.group(2)), int(found.group(3)))
    if kind == "weekly":
        days = [i for i, name in enumerate(DAYS) if len(word) >= 3 and name.startswith(word)]
        if len(days) != 1:
            raise ConfigError(f"{found.group(1)!r} is not a day of the week (monday..sunday)", file,
                              "reports.weekly")
        return Slot(kind, days[0], at)
    if not word.isdigit() or not 1 <= int(word) <= 31:
        raise ConfigError(f"{found.group(1)!r} is not a day of the month (1-31)", file, "reports.monthly")
    return Slot(kind, int(word), at)


def _month_day(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _prev_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def latest(slot: Slot, now: datetime, tz: ZoneInfo) -> DueReport:
    """The most recent moment of ``slot`` at or before ``now``, with the period it reports on."""
    today = now.astimezone(tz).date()
    if slot.kind == "weekly":
        day = today - timedelta(days=(today.weekday() - slot.day) % 7)
        if datetime.combine(day, slot.at, tz) > now:
            day -= timedelta(days=7)
        start = day - timedelta(days=7)
    else:
        day = _month_day(today.year, today.month, slot.day)
        if day > today or datetime.combine(day, slot.at, tz) > now:
            day = _month_day(*_prev_month(today.year, today.month), slot.day)
        start = _month_day(*_prev_month(day.year, day.month), slot.day)
    return DueReport(slot.kind, f"report:{slot.kind}:{day.isoformat()}",
                     datetime.combine(start, time(0), tz), datetime.combine(day, time(0), tz))


def sent_at(due: DueReport, slot: Slot, tz: ZoneInfo) -> datetime:
    return datetime.combine(due.until.date(), slot.at, tz)


def due_reports(schedule: ReportSchedule | None, now: datetime, tz: ZoneInfo) -> list[DueReport]:
    """The reports whose moment has come within ``CATCH_UP`` (the caller leaves out those sent)."""
    if schedule is None:
        return []
    found = []
    for slot in schedule.slots:
        due = latest(slot, now, tz)
        if now - sent_at(due, slot, tz) <= CATCH_UP:
            found.append(due)
    return found
