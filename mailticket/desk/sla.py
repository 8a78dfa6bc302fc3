"""SLA policy, working-time calendars and clocks: pure functions of ``now``.

Config (see docs/rules.md)::

    [sla]
    check_interval = "60s"
    warn_at = 0.75                  # share of the target used when the warning goes out, 0 < x < 1
    warn_each_tier = true           # each tier gets its own warning; false: one per clock per ticket
    auto_close_after = "3d"         # wall-clock time from resolved to closed
    [sla.business_hours]            # optional; without it every clock runs 24/7
    days = ["mon", "tue", "wed", "thu", "fri"]
    start = "08:00"
    end = "17:00"                   # "24:00" allowed; end after start
    holidays = ["2026-12-23"]      # the company's own days: dates or inclusive ranges
    holidays_country = "SE"         # (in [sla]) public holidays computed for every year: publicholidays.py
    holidays_subdivision = "..."    # (in [sla]) optional: a state, province or county with days of its own
    [sla.P1]
    first_response = "1h"
    resolution = "4h"
    business_hours = false          # P1 defaults to false (24/7), P2-P4 to true when hours are set
    [sla.breach_report]             # personal-data breach tickets (rules.Decision.breach_report)
    deadline = "72h"                # wall-clock, from creation
    warn_before = ["24h", "4h"]

Times are aware datetimes (stored in UTC); calendar maths runs in the service time zone and is
DST-correct: a working window is placed on the local wall clock, and elapsed time is real time.
A ``Clock`` measures working time from ``started_at`` less paused time, against ``target``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..durations import format_duration, within
from .publicholidays import load_public_holidays
from ..errors import ConfigError
from ..i18n import Message, N_

CLOCK_WORDS = {"first_response": N_("first response"), "resolution": N_("resolution")}

ZERO = timedelta(0)
PRIORITIES = ("P1", "P2", "P3", "P4")
CLOCKS = ("first_response", "resolution")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_TARGETS = {"P1": ("1h", "4h"), "P2": ("2h", "8h"), "P3": ("3h", "24h"), "P4": ("3h", "72h")}
SLA_KEYS = {"check_interval", "warn_at", "warn_each_tier", "auto_close_after", "business_hours",
            "breach_report", "holidays_country", "holidays_subdivision",
            "pending_reminder", "pending_resolve_after",
            *PRIORITIES}
HOURS_KEYS = {"days", "start", "end", "holidays"}
TARGET_KEYS = {"first_response", "resolution", "business_hours"}
REPORT_KEYS = {"deadline", "warn_before"}
MAX_DAYS = 3700  # a calendar walk gives up after ten years (cannot happen with a valid calendar)


# ---------------------------------------------------------------- calendar

@dataclass(frozen=True)
class Calendar:
    """When clocks run. ``business=False`` means 24/7 (days, hours and holidays unused)."""
    tz: ZoneInfo
    business: bool = False
    days: frozenset[int] = frozenset(range(7))
    start: time = time(0)
    end: time | None = None          # None = midnight at the end of the day ("24:00")
    holidays: frozenset[date] = frozenset()
    public: object = field(default=None, compare=False)   # publicholidays.PublicHolidays: `day in public`
    _windows: dict = field(default_factory=dict, compare=False, repr=False)
    _before: "_PrefixSums" = field(default_factory=lambda: _PrefixSums(), compare=False,
                                   repr=False)

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working window of a local day in UTC, or None for a day off (memoised)."""
        try:
            return self._windows[day]
        except KeyError:
            win = self._windows[day] = self._compute_window(day)
            return win

    def _compute_window(self, day: date) -> tuple[datetime, datetime] | None:
        if day.weekday() not in self.days or day in self.holidays or (self.public is not None and day in self.public):
            return None
        opens = datetime.combine(day, self.start, self.tz).astimezone(UTC)
        if self.end is None:
            closes = datetime.combine(day + timedelta(days=1), time(0), self.tz)
        else:
            closes = datetime.combine(day, self.end, self.tz)
        return opens, closes.astimezone(UTC)

    def day_length(self, day: date) -> timedelta:
        """Working time of one whole local day."""
        win = self.window(day)
        return win[1] - win[0] if win else ZERO

    def working_before(self, day: date) -> timedelta | None:
        """Working time of the days before ``day``, counted from the first day ever asked
        (memoised prefix sums); None when ``day`` is over MAX_DAYS from the known range."""
        return self._before.at(day.toordinal(), self.day_length)


class _PrefixSums:
    """Cumulative working time per day ordinal over a growing range [lo, hi]."""

    def __init__(self):
        self.sums: dict[int, timedelta] = {}
        self.lo = self.hi = None

    def at(self, n: int, day_length) -> timedelta | None:
        if self.lo is None:
            self.lo = self.hi = n
            self.sums[n] = ZERO
        if not self.lo - MAX_DAYS <= n <= self.hi + MAX_DAYS:
            return None
        while n > self.hi:
            self.sums[self.hi + 1] = self.sums[self.hi] + day_length(date.fromordinal(self.hi))
            self.hi += 1
        while n < self.lo:
            self.sums[self.lo - 1] = self.sums[self.lo] - day_length(date.fromordinal(self.lo - 1))
            self.lo -= 1
        return self.sums[n]


@lru_cache(maxsize=64)
def always(tz: str | ZoneInfo = "UTC") -> Calendar:
    """A 24/7 calendar."""
    return Calendar(tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz))


def _local_day(moment: datetime, cal: Calendar) -> date:
    return moment.astimezone(cal.tz).date()


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} is naive; SLA times must be timezone-aware")
    return moment.astimezone(UTC)


def add_working_time(start: datetime, duration: timedelta, calendar: Calendar) -> datetime:
    """The moment when ``duration`` of working time has passed after ``start`` (UTC)."""
    start = _utc(start)
    if not calendar.business:
        return start + duration
    left, day = duration, _local_day(start, calendar)
    for _ in range(MAX_DAYS):
        win = calendar.window(day)
        if win:
            opens, closes = max(win[0], start), win[1]
            if closes > opens:
                if opens + left <= closes:
                    return opens + left
                left -= closes - opens
        day += timedelta(days=1)
    raise ValueError("the calendar has no working time within ten years")


def working_time_between(a: datetime, b: datetime, calendar: Calendar) -> timedelta:
    """Working time from ``a`` to ``b`` (zero when b <= a)."""
    a, b = _utc(a), _utc(b)
    if b <= a:
        return ZERO
    if not calendar.business:
        return b - a
    first, last = _local_day(a, calendar), _local_day(b, calendar)
    if (last - first).days > 2:
        start, end = calendar.working_before(first + timedelta(days=1)), calendar.working_before(last)
        if start is not None and end is not None:
            return _clipped(calendar, first, a, b) + (end - start) + _clipped(calendar, last, a, b)
    total, day = ZERO, first
    while day <= last:
        total += _clipped(calendar, day, a, b)
        day += timedelta(days=1)
    return total


def _clipped(calendar: Calendar, day: date, a: datetime, b: datetime) -> timedelta:
    """The working time of one day that lies between a and b."""
    win = calendar.window(day)
    if not win:
        return ZERO
    opens, closes = max(win[0], a), min(win[1], b)
    return closes - opens if closes > opens else ZERO


# ---------------------------------------------------------------- clocks

@dataclass(frozen=True)
class Clock:
    """One SLA clock. ``paused_total`` is working time spent paused before ``paused_since``."""
    started_at: datetime
    target: timedelta
    paused_total: timedelta = ZERO
    paused_since: datetime | None = None
    stopped_at: datetime | None = None

    def pause(self, now: datetime) -> Clock:
        """Paused from now on (no change when already paused or stopped)."""
        if self.paused_since or self.stopped_at:
            return self
        return replace(self, paused_since=now)

    def resume(self, now: datetime, calendar: Calendar) -> Clock:
        """Running again; the working time of the pause is added to ``paused_total``."""
        if not self.paused_since:
            return self
        spent = working_time_between(self.paused_since, now, calendar)
        return replace(self, paused_total=self.paused_total + spent, paused_since=None)

    def stop(self, now: datetime) -> Clock:
        """Stopped for good (first response, resolution); a pause in progress stays uncounted."""
        if self.stopped_at:
            return self
        return replace(self, stopped_at=now)

    def reopen(self, now: datetime, calendar: Calendar) -> Clock:
        """A stopped clock runs on; the time it stood still counts as paused."""
        if not self.stopped_at:
            return self
        end = self.paused_since or self.stopped_at
        spent = working_time_between(end, now, calendar)
        return replace(self, stopped_at=None, paused_since=None,
                       paused_total=self.paused_total + spent)

    def restart(self, now: datetime) -> Clock:
        """A fresh clock from ``now`` with the same target (a new tier's own window)."""
        return Clock(now, self.target, ZERO, now if self.paused_since else None, None)

    def used(self, now: datetime, calendar: Calendar) -> timedelta:
        """Working time used so far (frozen while paused, fixed once stopped)."""
        end = min(_utc(now), _utc(self.stopped_at)) if self.stopped_at else _utc(now)
        if self.paused_since:
            end = min(end, _utc(self.paused_since))
        return max(ZERO, working_time_between(self.started_at, end, calendar) - self.paused_total)

    def due(self, calendar: Calendar) -> datetime | None:
        """When the target is reached if the clock runs on; None while paused."""
        if self.paused_since and not self.stopped_at:
            return None
        return add_working_time(self.started_at, self.target + self.paused_total, calendar)


def retarget(clock: Clock, new_target: timedelta) -> Clock:
    """The same clock measured against a new target (priority changed)."""
    return replace(clock, target=new_target)


def check(clock: Clock, now: datetime, calendar: Calendar, warn_at: float) -> str:
    """``"stopped"``, ``"breach"`` (target used up), ``"warning"`` (warn_at reached) or ``"ok"``."""
    if clock.stopped_at:
        return "stopped"
    # Working time never exceeds wall time: most clocks are decided without calendar maths.
    if _utc(now) - _utc(clock.started_at) < clock.target * warn_at:
        return "ok"
    used = clock.used(now, calendar)
    if used >= clock.target:
        return "breach"
    if used >= clock.target * warn_at:
        return "warning"
    return "ok"


# ---------------------------------------------------------------- policy

@dataclass(frozen=True)
class Target:
    first_response: timedelta
    resolution: timedelta
    business_hours: bool


@dataclass(frozen=True)
class SlaPolicy:
    """The validated [sla] section."""
    check_interval: timedelta
    warn_at: float
    auto_close_after: timedelta
    targets: dict[str, Target]
    business: Calendar
    breach_report_deadline: timedelta = timedelta(hours=72)
    breach_report_warn_before: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=4))
    warn_each_tier: bool = True
    pending_reminder: timedelta = timedelta(days=3)       # 0: no reminder
    pending_resolve_after: timedelta = timedelta(days=7)  # 0: a pending ticket waits for ever

    def calendar_for(self, priority: str) -> Calendar:
        """The business calendar, or 24/7 when the priority opts out or none is set."""
        if self.targets[priority].business_hours and self.business.business:
            return self.business
        return always(self.business.tz)

    def target(self, priority: str, clock: str) -> timedelta:
        """The target of a clock (``first_response`` or ``resolution``) for a priority."""
        return getattr(self.targets[priority], clock)


def load_policy(data: dict, timezone: str, file: str) -> SlaPolicy:
    """Validate the [sla] table (``data`` is that table, not the whole config)."""
    data = data or {}
    _require_table(data, "sla", file)
    _reject_unknown(data, SLA_KEYS, file, "sla")
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"unknown time zone {timezone!r}", file, "service.timezone") from None
    business = _load_hours(data.get("business_hours"), tz, file)
    public = load_public_holidays(data, file)
    if public is not None and business.business:
        business = replace(business, public=public, _windows={}, _before=_PrefixSums())
    report = data.get("breach_report", {})
    _require_table(report, "sla.breach_report", file)
    _reject_unknown(report, REPORT_KEYS, file, "sla.breach_report")
    return SlaPolicy(
        check_interval=_duration(data, "check_interval", "60s", file, "sla"),
        warn_at=within("sla.warn_at", data.get("warn_at", 0.75), file),
        auto_close_after=_duration(data, "auto_close_after", "3d", file, "sla"),
        targets={p: _load_target(data, p, business.business, file) for p in PRIORITIES},
        business=business,
        breach_report_deadline=_duration(report, "deadline", "72h", file, "sla.breach_report"),
        breach_report_warn_before=_warn_before(report, file),
        warn_each_tier=_bool(data, "warn_each_tier", True, file, "sla"),
        **_pending(data, file),
    )


def _pending(data: dict, file: str) -> dict:
    """[sla] pending_reminder and pending_resolve_after: the reminder must come before the resolution."""
    reminder = _duration(data, "pending_reminder", "3d", file, "sla")  # 0 turns it off (durations.BOUNDS)
    resolve = _duration(data, "pending_resolve_after", "7d", file, "sla")
    if reminder and resolve and reminder >= resolve:
        raise ConfigError(f"{format_duration(reminder)} is not before pending_resolve_after "
                          f"({format_duration(resolve)}): the reminder would never be sent", file,
                          "sla.pending_reminder")
    return {"pending_reminder": reminder, "pending_resolve_after": resolve}


def _bool(raw: dict, key: str, default: bool, file: str, where: str) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, not {value!r}", file, f"{where}.{key}")
    return value


def _require_table(value, key: str, file: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError("must be a table", file, key)


def _reject_unknown(raw: dict, allowed: set, file: str, where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r}; valid: {', '.join(sorted(allowed))}",
                              file, f"{where}.{key}")


def _duration(raw: dict, key: str, default: str, file: str, where: str) -> timedelta:
    """``[where] key``, bounded as durations.BOUNDS says (a ConfigError names the key and the range)."""
    return within(f"{where}.{key}", raw.get(key, default), file)


def _warn_before(report: dict, file: str) -> tuple[timedelta, ...]:
    raw = report.get("warn_before", ["24h", "4h"])
    key = "sla.breach_report.warn_before"
    if not isinstance(raw, list):
        raise ConfigError("must be a list of durations", file, key)
    out = [within(key, v, file) for v in raw]
    if len(set(out)) != len(out):
        raise ConfigError("duplicate durations", file, key)
    return tuple(sorted(out, reverse=True))


def _load_target(data: dict, priority: str, has_hours: bool, file: str) -> Target:
    raw = data.get(priority, {})
    where = f"sla.{priority}"
    _require_table(raw, where, file)
    _reject_unknown(raw, TARGET_KEYS, file, where)
    first, resolution = DEFAULT_TARGETS[priority]
    use_hours = _bool(raw, "business_hours", priority != "P1", file, where)
    if raw.get("business_hours") is True and not has_hours:
        raise ConfigError("business_hours = true but [sla.business_hours] is not set",
                          file, f"{where}.business_hours")
    return Target(_duration(raw, "first_response", first, file, where),
                  _duration(raw, "resolution", resolution, file, where), use_hours)


def _load_hours(raw, tz: ZoneInfo, file: str) -> Calendar:
    if raw is None:
        return Calendar(tz)
    _require_table(raw, "sla.business_hours", file)
    _reject_unknown(raw, HOURS_KEYS, file, "sla.business_hours")
    start = _clock_time(raw.get("start", "08:00"), file, "sla.business_hours.start")
    end = _clock_time(raw.get("end", "17:00"), file, "sla.business_hours.end")
    if end is not None and (start is None or end <= start):
        raise ConfigError(f"end {raw.get('end')!r} must be after start {raw.get('start')!r}",
                          file, "sla.business_hours.end")
    if start is None:
        raise ConfigError("24:00 can only be an end", file, "sla.business_hours.start")
    return Calendar(tz, True, _days(raw.get("days", list(DAY_NAMES[:5])), file), start, end,
                    _holidays(raw.get("holidays", []), file))


def _clock_time(value, file: str, key: str) -> time | None:
    """``"HH:MM"``; ``"24:00"`` is returned as None (end of day)."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", value) if isinstance(value, str) else None
    if not m or int(m.group(2)) > 59 or int(m.group(1)) > 24 or (
            int(m.group(1)) == 24 and m.group(2) != "00"):
        raise ConfigError(f"{value!r} is not a time; write HH:MM, e.g. 08:00", file, key)
    return None if int(m.group(1)) == 24 else time(int(m.group(1)), int(m.group(2)))


def _days(raw, file: str) -> frozenset[int]:
    key = "sla.business_hours.days"
    if not isinstance(raw, list) or not raw:
        raise ConfigError("must be a non-empty list of days (mon..sun)", file, key)
    out = set()
    for i, name in enumerate(raw):
        low = name.strip().lower()[:3] if isinstance(name, str) else None
        if low not in DAY_NAMES:
            raise ConfigError(f"{name!r} is not a day; valid: {', '.join(DAY_NAMES)}",
                              file, f"{key}[{i}]")
        if DAY_NAMES.index(low) in out:
            raise ConfigError(f"{name!r} is listed twice", file, f"{key}[{i}]")
        out.add(DAY_NAMES.index(low))
    return frozenset(out)


def _holidays(raw, file: str) -> frozenset[date]:
    """Dates ``YYYY-MM-DD`` or inclusive ranges ``YYYY-MM-DD..YYYY-MM-DD``; no overlaps."""
    key = "sla.business_hours.holidays"
    if not isinstance(raw, list):
        raise ConfigError("must be a list of dates (YYYY-MM-DD or FROM..TO)", file, key)
    seen: dict[date, str] = {}
    for i, entry in enumerate(raw):
        first, last = _holiday_range(entry, file, f"{key}[{i}]")
        day = first
        while day <= last:
            if day in seen:
                raise ConfigError(f"{entry!r} overlaps {seen[day]!r} on {day.isoformat()}",
                                  file, f"{key}[{i}]")
            seen[day] = entry
            day += timedelta(days=1)
    return frozenset(seen)


def _holiday_range(entry, file: str, key: str) -> tuple[date, date]:
    try:
        parts = entry.split("..")
        if len(parts) > 2:
            raise ValueError
        first, last = date.fromisoformat(parts[0].strip()), date.fromisoformat(parts[-1].strip())
    except (AttributeError, ValueError):
        raise ConfigError(f"{entry!r} is not a date; write YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD",
                          file, key) from None
    if last < first:
        raise ConfigError(f"{entry!r} ends before it starts", file, key)
    if (last - first).days > 366:
        raise ConfigError(f"{entry!r} is longer than a year", file, key)
    return first, last


# ---------------------------------------------------------------- the scan

@dataclass(frozen=True)
class TicketState:
    """What the scan needs to know about one ticket. ``already_sent`` holds action keys done."""
    priority: str
    tier: int
    status: str                       # new | open | pending | resolved | closed
    created_at: datetime
    response: Clock
    resolution: Clock
    already_sent: frozenset[str] = frozenset()
    resolved_at: datetime | None = None
    breach_report_deadline: datetime | None = None


@dataclass(frozen=True)
class Action:
    """One thing the daemon should do now; ``key`` is recorded so it happens once."""
    kind: str                         # warn | escalate | escalate_manager | auto_close
                                      # | breach_deadline_warning | pending_reminder | pending_resolve
    clock: str | None                 # first_response | resolution | None
    key: str
    reason: str
    to_tier: int | None = None        # escalate: the tier the ticket moves to
    tier: int | None = None           # warn: the tier to warn


def new_ticket_state(priority: str, tier: int, created_at: datetime, policy: SlaPolicy,
                     breach_report: bool = False) -> TicketState:
    """A new ticket's state: both clocks start at creation with the priority's targets."""
    deadline = created_at + policy.breach_report_deadline if breach_report else None
    return TicketState(priority, tier, "new", created_at,
                       Clock(created_at, policy.target(priority, "first_response")),
                       Clock(created_at, policy.target(priority, "resolution")),
                       breach_report_deadline=deadline)


def breach_report_deadline(created_at: datetime, policy: SlaPolicy) -> datetime:
    """When a personal-data breach must have been reported (wall clock, default 72 h)."""
    return created_at + policy.breach_report_deadline


def with_priority(state: TicketState, priority: str, policy: SlaPolicy) -> TicketState:
    """The state after a priority change: both clocks measured against the new targets."""
    return replace(state, priority=priority,
                   response=retarget(state.response, policy.target(priority, "first_response")),
                   resolution=retarget(state.resolution, policy.target(priority, "resolution")))


def escalated(state: TicketState, now: datetime, policy: SlaPolicy) -> TicketState:
    """The state after escalating to the next tier: every breached clock restarts there.

    Call it after performing an ``escalate`` action (and for a manual ``#escalate``): each
    tier gets its own full window, so one unanswered ticket climbs one tier per target.
    """
    cal = policy.calendar_for(state.priority)
    clocks = {}
    for name in ("response", "resolution"):
        clock = getattr(state, name)
        if check(clock, now, cal, policy.warn_at) == "breach":
            clocks[name] = clock.restart(now)
    return replace(state, tier=min(state.tier + 1, 3), **clocks)


def due_actions(state: TicketState, now: datetime, policy: SlaPolicy) -> list[Action]:
    """What is due for one ticket at ``now``, leaving out keys already sent."""
    actions = _deadline_actions(state, now, policy)
    if state.status == "pending":
        actions += _pending_actions(state, now, policy)
    if state.status == "resolved":
        actions += _auto_close(state, now, policy)
    elif state.status in ("new", "open", "pending"):
        actions += _clock_actions(state, now, policy)
    return [a for a in actions if a.key not in state.already_sent]


def _clock_actions(state: TicketState, now: datetime, policy: SlaPolicy) -> list[Action]:
    cal = policy.calendar_for(state.priority)
    sent = state.already_sent
    found = [(name, clock, check(clock, now, cal, policy.warn_at))
             for name, clock in (("first_response", state.response),
                                 ("resolution", state.resolution))
             # a clock with both its keys sent at this tier has nothing left to say
             if not (f"breach:{name}:tier{state.tier}" in sent
                     and warn_key(name, state.tier, policy) in sent)]
    breached = [(n, c) for n, c, s in found
                if s == "breach" and f"breach:{n}:tier{state.tier}" not in state.already_sent]
    # A scan that comes after the warning point was missed still warns the owning tier first.
    warned = [(n, c) for n, c, s in found if s == "warning"] + breached
    warnings = [_warning(state, n, c, now, cal, policy) for n, c in warned
                if warn_key(n, state.tier, policy) not in state.already_sent]
    return warnings + (_breach_actions(state, breached, now, cal) if breached else [])


def warn_key(clock: str, tier: int, policy: SlaPolicy) -> str:
    """``warn:first_response:tier1``; without the tier when ``warn_each_tier`` is off."""
    return f"warn:{clock}:tier{tier}" if policy.warn_each_tier else f"warn:{clock}"


def _warning(state, name: str, clock: Clock, now: datetime, cal: Calendar, policy) -> Action:
    used, due = clock.used(now, cal), clock.due(cal)
    words = (Message("{priority} {clock}: {used} of {target} used; due {due}", priority=state.priority,
                     clock=Message(CLOCK_WORDS[name]), used=used, target=clock.target, due=due) if due else
             Message("{priority} {clock}: {used} of {target} used", priority=state.priority,
                     clock=Message(CLOCK_WORDS[name]), used=used, target=clock.target))
    return Action("warn", name, warn_key(name, state.tier, policy), words, tier=state.tier)


def _breach_actions(state, breached, now, cal) -> list[Action]:
    """Below tier 3 one escalation (the first breached clock); at tier 3, the manager per clock."""
    def reason(name, clock):
        return Message("{priority} {clock} target {target} breached at tier {tier} ({used} used)",
                       priority=state.priority, clock=Message(CLOCK_WORDS[name]), target=clock.target,
                       tier=state.tier, used=clock.used(now, cal))
    if state.tier >= 3:
        return [Action("escalate_manager", n, f"breach:{n}:tier{state.tier}", reason(n, c))
                for n, c in breached]
    name, clock = breached[0]
    text = reason(name, clock) if len(breached) == 1 else Message(
        "{first}; {second}", first=reason(*breached[0]), second=reason(*breached[1]))
    return [Action("escalate", name, f"breach:{name}:tier{state.tier}", text,
                   to_tier=state.tier + 1)]


def _auto_close(state: TicketState, now: datetime, policy: SlaPolicy) -> list[Action]:
    if state.resolved_at is None or now < state.resolved_at + policy.auto_close_after:
        return []
    stamp = _utc(state.resolved_at).strftime("%Y%m%dT%H%M%SZ")
    return [Action("auto_close", None, f"auto_close:{stamp}",
                   Message("resolved {ago} ago (auto-close after {after})", ago=now - state.resolved_at,
                           after=policy.auto_close_after))]


def pending_moments(pending_since: datetime | None, policy: SlaPolicy) -> list[tuple[str, datetime]]:
    """When a ticket pending since ``pending_since`` gets its reminder and is resolved (wall clock)."""
    if pending_since is None:
        return []
    return [(kind, pending_since + after) for kind, after in (("pending_reminder", policy.pending_reminder),
                                                               ("pending_resolve", policy.pending_resolve_after))
            if after > ZERO]


def _pending_actions(state: TicketState, now: datetime, policy: SlaPolicy) -> list[Action]:
    """One reminder to the requester, then the resolution; a late scan resolves without reminding.
    The keys carry the moment the ticket became pending, so each pending spell has its own."""
    since = state.resolution.paused_since
    due = [(kind, at) for kind, at in pending_moments(since, policy) if now >= at]
    if not due:
        return []
    kind, _ = due[-1]
    stamp = _utc(since).strftime("%Y%m%dT%H%M%SZ")
    waited = format_duration(now - since)
    reason = (f"pending for {waited}: reminder to the requester" if kind == "pending_reminder"
              else f"pending for {waited} without an answer (pending_resolve_after "
                   f"{format_duration(policy.pending_resolve_after)})")
    return [Action(kind, None, f"{kind}:{stamp}", reason)]


def _deadline_actions(state: TicketState, now: datetime, policy: SlaPolicy) -> list[Action]:
    """Only the most urgent threshold passed: a late scan sends one warning, not all."""
    deadline = state.breach_report_deadline
    if deadline is None or state.status == "closed":
        return []
    left = deadline - now
    passed = [b for b in policy.breach_report_warn_before if left <= b]
    if not passed:
        return []
    before = passed[-1]
    text = (Message("breach report due {deadline}: {left} left", deadline=deadline, left=left) if left > ZERO
            else Message("breach report due {deadline}: overdue by {late}", deadline=deadline, late=-left))
    return [Action("breach_deadline_warning", None,
                   f"breach_deadline:{format_duration(before).replace(' ', '')}", text)]
