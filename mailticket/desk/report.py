"""The manager's figures: what ``mailticket report`` and the report mail show.

Every figure comes from each ticket's intervals (``intervals.Timeline``): see that module for what
counts as first-response, resolution and a tier's own time. Over the tickets created in the
period (user-generated ones; monitoring alerts are counted apart, as the turnaround targets are
about users' tickets):

- first response: measured where given; within target = time <= the target of the ticket's
  priority (the priority it has now); median (the mean of the two middle values for an even
  count), mean and p90 (nearest rank: the ceil(0.9 n)-th smallest);
- resolution: of resolved (or closed) tickets, pending time left out; within target likewise;
- average resolution: the mean resolution of resolved incidents against the 24 h average target;
- breaches: tickets whose first response or resolution took longer than the target, or whose
  running clock (unanswered, or not resolved) has already used more than it (``ongoing``), each
  listed;
- escalations per tier: moves up out of each tier (out of tier 3 = to the escalation manager);
- first-contact resolution: resolved tickets that were resolved at tier 1 without escalation,
  over the resolved tickets;
- reopen rate: tickets reopened at least once, over the tickets ever resolved;
- satisfaction: the mean rating (1-5) and the share of tickets ever resolved that were rated;
- backlog: the tickets open (new, open, pending) at the end of the period, by age then.

By tier, each tier's figures count its own intervals: a ticket is in the group of every tier that
held it, its resolution figure there is the time that tier held it (new or open, once the tier's
part is over), and its first response counts for the tier that gave it.

All times are seconds (float); the formats show them as hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from .intervals import RESOLVED, Timeline

AVERAGE_RESOLUTION_TARGET = timedelta(hours=24)
GROUPS = ("priority", "tier", "category", "type", "agent", "language")
OPEN_STATUSES = ("new", "open", "pending")
BACKLOG_BUCKETS = (("0-1d", timedelta(days=1)), ("1-3d", timedelta(days=3)), ("3-7d", timedelta(days=7)),
                   ("7-30d", timedelta(days=30)), ("30d+", None))
NO_AGENT = "-"


@dataclass(frozen=True)
class TicketFacts:
    """One ticket as the report sees it: what it is, and its timeline."""
    number: int
    type: str
    category: str
    timeline: Timeline
    assignee: str | None = None
    monitoring: bool = False
    rating: int | None = None
    language: str = "-"    # the language the requester is written to in (the desk's for older tickets)


@dataclass(slots=True)
class Measured:
    """The figures of one ticket, worked out once (small: the bench holds a million of them)."""
    number: int
    created_at: datetime
    type: str
    category: str
    agent: str
    priority: str
    tier: int
    monitoring: bool
    resolved: bool
    ever_resolved: bool
    first_response: float | None
    first_response_tier: int | None
    first_response_target: float
    unanswered: float | None       # SLA time so far of an open ticket nobody has answered
    resolution: float | None
    resolution_target: float
    active: float                  # new/open time so far (the running clock of an open ticket)
    pending: float
    escalated_from: tuple[int, int, int]   # moves up out of tier 1, 2 and 3 (3: to the manager)
    reopened: bool
    fcr: bool
    rating: int | None
    language: str
    tier_time: tuple       # each tier's own new/open seconds (None: never held it); three floats, no dict

    def visited(self) -> list[int]:
        return [n for n, t in zip((1, 2, 3), self.tier_time) if t is not None]

    def own(self, tier: int) -> tuple[float, bool] | None:
        """(the tier's own time, whether its part is over), or None when it never held the ticket."""
        spent = self.tier_time[tier - 1] if 1 <= tier <= 3 else None
        return None if spent is None else (spent, self.resolved or self.tier != tier)


def measure(facts: TicketFacts, policy) -> Measured:
    tl = facts.timeline
    held = set(tl.tiers())
    tier_time = tuple(tl.active_time(policy, t).total_seconds() if t in held else None for t in (1, 2, 3))
    escalated = [0, 0, 0]
    for old, _new in tl.escalations():
        if 1 <= old <= 3:
            escalated[old - 1] += 1
    first = tl.first_response_time(policy)
    unanswered = tl.waiting_for_first_response(policy)
    resolution = tl.resolution_time(policy)
    reopens = tl.reopens()
    return Measured(
        number=facts.number, created_at=tl.created_at, type=facts.type, category=facts.category,
        agent=facts.assignee or NO_AGENT, priority=tl.priority, tier=tl.tier, monitoring=facts.monitoring,
        resolved=tl.resolved, ever_resolved=tl.resolved or reopens > 0,
        first_response=None if first is None else first.total_seconds(),
        first_response_tier=tl.first_response_tier(),
        first_response_target=policy.target(tl.priority, "first_response").total_seconds(),
        unanswered=None if unanswered is None else unanswered.total_seconds(),
        resolution=None if resolution is None else resolution.total_seconds(),
        resolution_target=policy.target(tl.priority, "resolution").total_seconds(),
        active=sum(t for t in tier_time if t is not None), pending=tl.pending_time(policy).total_seconds(),
        escalated_from=tuple(escalated), reopened=reopens > 0, fcr=tl.first_contact_resolution(),
        rating=facts.rating, language=facts.language, tier_time=tier_time)


# ---------------------------------------------------------------- statistics

def median(values: list[float]) -> float | None:
    """The middle value (mean of the two middle ones for an even count); None when empty."""
    if not values:
        return None
    s, mid = sorted(values), len(values) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the ceil(p/100 * n)-th smallest value; None when empty."""
    if not values:
        return None
    s = sorted(values)
    return s[max(1, math.ceil(p / 100 * len(s))) - 1]


def mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def clock_stats(pairs: list[tuple[float, float]]) -> dict:
    """(value, target) pairs -> count, share within target, median, mean, p90."""
    values = [v for v, _ in pairs]
    within = sum(1 for v, t in pairs if v <= t)
    return {"measured": len(values), "within_target": within, "share_within_target": share(within, len(values)),
            "median": median(values), "mean": mean(values), "p90": percentile(values, 90)}


# ---------------------------------------------------------------- figures of a group

def figures(tickets: list[Measured], tier: int | None = None) -> dict:
    """The figures of some tickets; with ``tier``, the time-based ones count only that tier's part."""
    if tier is None:
        first = [(m.first_response, m.first_response_target) for m in tickets if m.first_response is not None]
        resolution = [(m.resolution, m.resolution_target) for m in tickets if m.resolution is not None]
    else:
        first = [(m.first_response, m.first_response_target) for m in tickets
                 if m.first_response is not None and m.first_response_tier == tier]
        resolution = [(own[0], m.resolution_target) for m in tickets
                      for own in (m.own(tier),) if own is not None and own[1]]
    resolved = [m for m in tickets if m.resolved]
    ever = [m for m in tickets if m.ever_resolved]
    rated = [m.rating for m in tickets if m.rating is not None]
    escalations = {f"tier{t}": sum(m.escalated_from[t - 1] for m in tickets) for t in (1, 2, 3)}
    fcr = sum(1 for m in resolved if m.fcr)
    reopened = sum(1 for m in ever if m.reopened)
    return {
        "tickets": len(tickets),
        "resolved": len(resolved),
        "first_response": clock_stats(first),
        "resolution": clock_stats(resolution),
        "pending": {"tickets": sum(1 for m in tickets if m.pending > 0), "total": sum(m.pending for m in tickets)},
        "escalations": escalations,
        "escalated_tickets": sum(1 for m in tickets if any(m.escalated_from)),
        "first_contact_resolution": {"resolved": len(resolved), "first_contact": fcr, "share": share(fcr, len(resolved))},
        "reopen": {"resolved": len(ever), "reopened": reopened, "rate": share(reopened, len(ever))},
        "satisfaction": {"asked": len(ever), "answered": len(rated), "share_answered": share(len(rated), len(ever)),
                         "mean": mean(rated), "ratings": {str(n): rated.count(n) for n in range(1, 6)}},
    }


def average_resolution(tickets: list[Measured]) -> dict:
    values = [m.resolution for m in tickets if m.type == "incident" and m.resolution is not None]
    avg = mean(values)
    target = AVERAGE_RESOLUTION_TARGET.total_seconds()
    return {"incidents": len(values), "mean": avg, "target": target, "met": None if avg is None else avg <= target}


def breaches(tickets: list[Measured]) -> list[dict]:
    """Each ticket whose first response or resolution went past its target (or has already)."""
    out = []
    for m in tickets:
        if m.first_response is not None and m.first_response > m.first_response_target:
            out.append(_breach(m, "first_response", m.first_response, m.first_response_target, False))
        elif m.unanswered is not None and m.unanswered > m.first_response_target:
            out.append(_breach(m, "first_response", m.unanswered, m.first_response_target, True))
        if m.resolution is not None and m.resolution > m.resolution_target:
            out.append(_breach(m, "resolution", m.resolution, m.resolution_target, False))
        elif m.resolution is None and not m.resolved and m.active > m.resolution_target:
            out.append(_breach(m, "resolution", m.active, m.resolution_target, True))
    return sorted(out, key=lambda b: (b["number"], b["clock"]))


def _breach(m: Measured, clock: str, used: float, target: float, ongoing: bool) -> dict:
    return {"number": m.number, "priority": m.priority, "tier": m.tier, "category": m.category, "clock": clock,
            "used": used, "target": target, "ongoing": ongoing}


def backlog(open_at_end: list[tuple[int, datetime]], until: datetime) -> dict:
    """(number, created_at) of the tickets open at ``until`` -> counts by age then."""
    counts = {name: 0 for name, _ in BACKLOG_BUCKETS}
    for _, created in open_at_end:
        age = until - created
        for name, limit in BACKLOG_BUCKETS:
            if limit is None or age < limit:
                counts[name] += 1
                break
    return {"open": len(open_at_end), "by_age": counts}


def group_key(m: Measured, by: str) -> list:
    if by == "tier":
        return m.visited()
    return [getattr(m, by)]


def by_group(tickets: list[Measured], by: str) -> dict:
    groups: dict = {}
    for m in tickets:
        for key in group_key(m, by):
            groups.setdefault(key, []).append(m)
    return {str(key): figures(groups[key], tier=key if by == "tier" else None)
            for key in sorted(groups, key=lambda k: (str(type(k)), k))}


def weekly(tickets: list[Measured], weeks: list[tuple[datetime, datetime]]) -> list[dict]:
    """Per week (by creation): tickets, first responses within target, mean resolution, satisfaction."""
    out = []
    for start, end in weeks:
        these = [m for m in tickets if start <= m.created_at < end]
        first = clock_stats([(m.first_response, m.first_response_target) for m in these
                             if m.first_response is not None])
        rated = [m.rating for m in these if m.rating is not None]
        resolved = [m.resolution for m in these if m.resolution is not None]
        out.append({"week_start": start.date().isoformat(), "week": start.isocalendar()[1], "tickets": len(these),
                    "first_response_within": first["within_target"], "first_response_measured": first["measured"],
                    "first_response_share": first["share_within_target"], "resolution_mean": mean(resolved),
                    "satisfaction_mean": mean(rated), "satisfaction_answered": len(rated)})
    return out


def summarize(measured: list[Measured], *, since: datetime | None, until: datetime,
              by: tuple[str, ...] = GROUPS, open_at_end: list[tuple[int, datetime]] = (),
              trend: list[Measured] | None = None, weeks: list[tuple[datetime, datetime]] = (),
              now: datetime | None = None) -> dict:
    """The whole report: the period's user tickets, monitoring apart, groups, breaches, backlog."""
    users = [m for m in measured if not m.monitoring]
    alerts = [m for m in measured if m.monitoring]
    summary = {
        "period": {"since": since.isoformat() if since else None, "until": until.isoformat(),
                   "generated": (now or until).isoformat()},
        "empty": not measured,
        "overall": figures(users),
        "average_resolution": average_resolution(users),
        "breaches": breaches(users),
        "backlog": backlog(list(open_at_end), until),
        "monitoring": {"tickets": len(alerts), "resolved": sum(1 for m in alerts if m.resolved),
                       "resolution_mean": mean(m.resolution for m in alerts if m.resolution is not None)},
        "by": {name: by_group(users, name) for name in by},
        "weekly": weekly(trend if trend is not None else measured, list(weeks)),
    }
    summary["overall"]["breaches"] = len(summary["breaches"])
    return summary


def open_at(timeline: Timeline, moment: datetime) -> bool:
    """Open (new, open or pending) at ``moment``."""
    status = timeline.status_at(moment)
    return status is not None and status not in RESOLVED
