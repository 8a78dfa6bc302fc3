"""A ticket's life as intervals: from one change to the next, which status, tier and priority held it.

Every figure of ``mailticket report`` is computed from these intervals, so the accounting is
right by construction rather than by the clocks the SLA scan keeps (which restart at each tier):

- resolution time = the SLA time of the intervals in ``new`` or ``open`` (``ACTIVE``) of a ticket
  that is resolved or closed now; time ``pending``, ``resolved`` or ``closed`` never counts,
  escalated or not, and a reopened ticket adds only its time open again;
- a tier's own time = the same, counting only the intervals that tier held;
- first-response time = the SLA time from creation to the first response (``pending`` does not
  pause that clock; SPEC: it pauses the resolution clock);
- SLA time of an interval = its working time by the calendar of the priority it had then (24/7
  for P1 by default, business hours and holidays for the others where configured). A priority
  change mid-way thus counts the time before it by the old priority's calendar; the ticket is
  judged against the target of the priority it has at the end.

The changes come from the ticket's history (``changes_from_events``): ``status`` events carry
``old``/``new``, ``escalation`` events ``from_tier``/``to_tier``, ``priority`` events ``old``/``new``
(older ones say it in their text, ``P3 -> P1``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .sla import working_time_between

ACTIVE = ("new", "open")
RESOLVED = ("resolved", "closed")
ZERO = timedelta(0)


@dataclass(frozen=True)
class Change:
    at: datetime
    field: str          # status | tier | priority | manager (an escalation past tier 3)
    value: object
    old: object = None


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime
    status: str
    tier: int
    priority: str

    def sla_time(self, policy, start: datetime | None = None, end: datetime | None = None) -> timedelta:
        """Working time of the interval (or of its part between ``start`` and ``end``) by the
        calendar of the priority it had."""
        a = self.start if start is None else max(self.start, start)
        b = self.end if end is None else min(self.end, end)
        return working_time_between(a, b, policy.calendar_for(self.priority))


@dataclass(frozen=True)
class Timeline:
    """One ticket's intervals from creation to ``as_of``, and what they say."""
    created_at: datetime
    intervals: tuple[Interval, ...]
    changes: tuple[Change, ...]
    first_response_at: datetime | None = None

    # ------------------------------------------------------------ the state
    @property
    def status(self) -> str:
        return self.intervals[-1].status

    @property
    def tier(self) -> int:
        return self.intervals[-1].tier

    @property
    def priority(self) -> str:
        return self.intervals[-1].priority

    @property
    def resolved(self) -> bool:
        return self.status in RESOLVED

    @property
    def resolved_at(self) -> datetime | None:
        """When the final run of resolved/closed began; None for a ticket not resolved now."""
        if not self.resolved:
            return None
        at = self.intervals[-1].start
        for interval in reversed(self.intervals):
            if interval.status not in RESOLVED:
                break
            at = interval.start
        return at

    def status_at(self, moment: datetime) -> str | None:
        """The status at ``moment``; None before creation."""
        if moment < self.created_at:
            return None
        for interval in self.intervals:
            if interval.start <= moment < interval.end:
                return interval.status
        return self.status

    # ------------------------------------------------------------ times
    def resolution_time(self, policy, tier: int | None = None) -> timedelta | None:
        """SLA time in ``new``/``open`` (at ``tier`` only, when given) of a resolved ticket."""
        if not self.resolved:
            return None
        return self.active_time(policy, tier)

    def active_time(self, policy, tier: int | None = None) -> timedelta:
        return sum((i.sla_time(policy) for i in self.intervals
                    if i.status in ACTIVE and (tier is None or i.tier == tier)), ZERO)

    def pending_time(self, policy, tier: int | None = None) -> timedelta:
        return sum((i.sla_time(policy) for i in self.intervals
                    if i.status == "pending" and (tier is None or i.tier == tier)), ZERO)

    def first_response_time(self, policy) -> timedelta | None:
        if self.first_response_at is None:
            return None
        return sum((i.sla_time(policy, end=self.first_response_at) for i in self.intervals
                    if i.start < self.first_response_at), ZERO)

    def waiting_for_first_response(self, policy) -> timedelta | None:
        """SLA time so far of an open ticket nobody has answered yet; None otherwise."""
        if self.first_response_at is not None or self.resolved:
            return None
        return sum((i.sla_time(policy) for i in self.intervals), ZERO)

    def first_response_tier(self) -> int | None:
        if self.first_response_at is None:
            return None
        return self._at(self.first_response_at).tier

    def _at(self, moment: datetime) -> Interval:
        for interval in self.intervals:
            if interval.start <= moment < interval.end:
                return interval
        return self.intervals[-1] if moment >= self.intervals[-1].start else self.intervals[0]

    # ------------------------------------------------------------ tiers
    def tiers(self) -> list[int]:
        """The tiers that held the ticket, in order of first arrival."""
        return list(dict.fromkeys(i.tier for i in self.intervals))

    def done_at(self, tier: int) -> bool:
        """The tier's part is over: the ticket is resolved, or has moved to another tier."""
        return self.resolved or self.tier != tier

    def escalations(self) -> list[tuple[int, int | str]]:
        """(from tier, to tier or "manager") of every move up the ladder."""
        return [(c.old, c.value) for c in self.changes
                if (c.field == "tier" and c.old is not None and c.value > c.old)
                or c.field == "manager"]

    def reopens(self) -> int:
        """How many times it went from resolved or closed back to work."""
        return sum(1 for a, b in zip(self.intervals, self.intervals[1:])
                   if a.status in RESOLVED and b.status not in RESOLVED)

    def first_contact_resolution(self) -> bool:
        """Resolved at tier 1 without ever leaving it (no escalation)."""
        return self.resolved and all(i.tier == 1 for i in self.intervals) and not self.escalations()


def build(created_at: datetime, changes: list[Change], as_of: datetime, *, status: str, tier: int,
          priority: str, first_response_at: datetime | None = None,
          settled_at: datetime | None = None) -> Timeline:
    """The timeline of a ticket whose state now is ``status``/``tier``/``priority``.

    The state at creation is worked out backwards from the first change of each field (its
    ``old``), else it is the state now. Where the history does not reach the state now (a ticket
    changed without an event: imported, or older data), the difference is taken to have happened
    at ``settled_at`` (when it was resolved or closed, else last updated). Changes after ``as_of``
    are left out; the last interval runs to ``as_of`` (not before the last change)."""
    changes = sorted(changes, key=lambda c: c.at)
    changes += _unrecorded(changes, status, tier, priority, settled_at or created_at)
    changes = [c for c in changes if c.at <= as_of]
    state = {"status": "new", "tier": _first_old(changes, "tier", tier),
             "priority": _first_old(changes, "priority", priority)}
    intervals, start = [], created_at
    for change in changes:
        if change.field not in state or state[change.field] == change.value:
            continue
        at = max(change.at, created_at)
        if at > start:
            intervals.append(Interval(start, at, state["status"], state["tier"], state["priority"]))
            start = at
        state[change.field] = change.value
    intervals.append(Interval(start, max(as_of, start), state["status"], state["tier"], state["priority"]))
    return Timeline(created_at, tuple(intervals), tuple(changes), first_response_at)


def _unrecorded(changes: list[Change], status: str, tier: int, priority: str, at: datetime) -> list[Change]:
    last = {"status": "new"}
    for change in changes:
        last[change.field] = change.value
    at = max([at] + [c.at for c in changes])
    return [Change(at, field, now, last[field]) for field, now in (("status", status), ("tier", tier),
                                                                   ("priority", priority))
            if field in last and last[field] != now]


def _first_old(changes: list[Change], field: str, now_value):
    for change in changes:
        if change.field == field and change.old is not None:
            return change.old
    return now_value


_PRIORITY_TEXT = re.compile(r"\b(P[1-4])\s*->\s*(P[1-4])\b")


def changes_from_events(events) -> list[Change]:
    """Changes from a ticket's history: ``events`` are (at, kind, data, text) in time order."""
    out = []
    for at, kind, data, text in events:
        data = data or {}
        if kind == "status" and data.get("new"):
            out.append(Change(at, "status", data["new"], data.get("old")))
        elif kind == "escalation" and (data.get("to") == "manager"
                                       or (text or "").startswith("tier 3 -> escalation manager")):
            out.append(Change(at, "manager", "manager", 3))
        elif kind == "escalation" and data.get("from_tier") is not None and data.get("to_tier") is not None:
            out.append(Change(at, "tier", int(data["to_tier"]), int(data["from_tier"])))
        elif kind == "priority":
            old, new = data.get("old"), data.get("new")
            if new is None:
                found = _PRIORITY_TEXT.search(text or "")
                old, new = (found.group(1), found.group(2)) if found else (None, None)
            if new is not None:
                out.append(Change(at, "priority", new, old))
    return out
