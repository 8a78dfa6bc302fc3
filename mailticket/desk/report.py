"""First-response and resolution times against the SLA targets, overall and by group.

Definitions (what ``mailticket report`` prints):
- first-response time = created -> first response; resolution time = created -> resolved, less
  ``paused`` (time spent pending). Both are measured in SLA time: the priority's calendar
  (24/7 by default, business hours where the policy says so).
- within target: time <= the target of the ticket's priority (so groups that mix priorities,
  like a tier or a category, are judged ticket by ticket).
- median: the middle value, or the mean of the two middle values for an even count.
- p90: nearest rank, the ceil(0.9 * n)-th smallest value.
- tickets without the timestamp (not answered, not resolved) are counted but not measured.
- average_resolution: the mean resolution time of resolved incidents (type "incident")
  against the SPEC's 24 h average target.
All times in the summary are seconds (float); ``format_text`` shows them as durations.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..durations import format_duration
from .sla import SlaPolicy, working_time_between

AVERAGE_RESOLUTION_TARGET = timedelta(hours=24)
OPEN_STATUSES = ("new", "open", "pending")
CLOCKS = ("first_response", "resolution")


@dataclass(frozen=True)
class Record:
    """One ticket as the report sees it."""
    number: int
    priority: str
    tier: int
    category: str
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    status: str
    type: str = "incident"
    paused: timedelta = timedelta(0)


def as_record(item) -> Record:
    """A Record from a Record, a mapping or any object with those attributes."""
    if isinstance(item, Record):
        return item
    get = item.get if isinstance(item, dict) else lambda k, d=None: getattr(item, k, d)
    return Record(get("number"), get("priority"), int(get("tier")), get("category"),
                  get("created_at"), get("first_response_at"), get("resolved_at"),
                  get("status"), get("type", "incident") or "incident",
                  get("paused", timedelta(0)) or timedelta(0))


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


def measure(record: Record, clock: str, policy: SlaPolicy) -> float | None:
    """Seconds of SLA time for one clock of one ticket, or None when not reached yet."""
    end = record.first_response_at if clock == "first_response" else record.resolved_at
    if end is None:
        return None
    spent = working_time_between(record.created_at, end, policy.calendar_for(record.priority))
    if clock == "resolution":
        spent = max(timedelta(0), spent - record.paused)
    return spent.total_seconds()


def clock_stats(records: list[Record], clock: str, policy: SlaPolicy) -> dict:
    """Median, p90, average and share within target of one clock over some tickets."""
    pairs = [(measure(r, clock, policy), policy.target(r.priority, clock).total_seconds())
             for r in records]
    pairs = [(v, t) for v, t in pairs if v is not None]
    values = [v for v, _ in pairs]
    within = sum(1 for v, t in pairs if v <= t)
    return {
        "measured": len(values),
        "median": median(values),
        "p90": percentile(values, 90),
        "average": sum(values) / len(values) if values else None,
        "within_target": within,
        "share_within_target": within / len(values) if values else None,
    }


def group_stats(records: list[Record], policy: SlaPolicy) -> dict:
    return {"tickets": len(records),
            **{clock: clock_stats(records, clock, policy) for clock in CLOCKS}}


def average_resolution(records: list[Record], policy: SlaPolicy) -> dict:
    """Mean resolution time of resolved incidents against the 24 h average target."""
    values = [measure(r, "resolution", policy) for r in records if r.type == "incident"]
    values = [v for v in values if v is not None]
    avg = sum(values) / len(values) if values else None
    target = AVERAGE_RESOLUTION_TARGET.total_seconds()
    return {"incidents": len(values), "average": avg, "target": target,
            "met": None if avg is None else avg <= target}


def summarize(records, policy: SlaPolicy, group_by=("priority", "tier", "category")) -> dict:
    """Counts and times against targets: overall, the average target, and by each group."""
    records = [as_record(r) for r in records]
    summary = {
        "tickets": len(records),
        "open": sum(1 for r in records if r.status in OPEN_STATUSES),
        "overall": group_stats(records, policy),
        "average_resolution": average_resolution(records, policy),
    }
    for field in group_by:
        groups: dict[str, list[Record]] = {}
        for r in sorted(records, key=lambda r: (str(getattr(r, field)), r.number)):
            groups.setdefault(str(getattr(r, field)), []).append(r)
        summary[f"by_{field}"] = {name: group_stats(rs, policy) for name, rs in groups.items()}
        if field == "priority":
            for name, stats in summary["by_priority"].items():
                for clock in CLOCKS:
                    stats[clock]["target"] = policy.target(name, clock).total_seconds()
    return summary


# ---------------------------------------------------------------- output

def _dur(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(timedelta(seconds=seconds))


def _share(stats: dict) -> str:
    share = stats["share_within_target"]
    return "-" if share is None else f"{stats['within_target']}/{stats['measured']} {share:.0%}"


def _row(label: str, stats: dict) -> str:
    cells = [f"{label:<14}", f"{stats['tickets']:>7}"]
    for clock in CLOCKS:
        s = stats[clock]
        cells += [f"{_dur(s['median']):>9}", f"{_dur(s['p90']):>9}", f"{_dur(s['average']):>9}",
                  f"{_share(s):>12}"]
    return " ".join(cells)


def format_text(summary: dict) -> str:
    """A plain-text report for the terminal or a mail."""
    avg = summary["average_resolution"]
    verdict = {True: "met", False: "NOT met", None: "no resolved incidents"}[avg["met"]]
    lines = [
        f"Tickets: {summary['tickets']} ({summary['open']} open)",
        f"Average resolution of incidents: {_dur(avg['average'])} over {avg['incidents']}"
        f" against {_dur(avg['target'])}: {verdict}",
        "",
        f"{'':<14} {'tickets':>7} " + " ".join(f"{h:>9}" for h in ("resp med", "resp p90",
                                                                   "resp avg"))
        + f" {'resp within':>12} " + " ".join(f"{h:>9}" for h in ("res med", "res p90", "res avg"))
        + f" {'res within':>12}",
        _row("all", summary["overall"]),
    ]
    if summary.get("spam"):
        lines[1:1] = [f"Set aside as spam (upstream filter's verdict): {summary['spam']} mail(s)"]
    for key, groups in summary.items():
        if key.startswith("by_"):
            lines += ["", f"By {key[3:]}:"]
            lines += [_row(f"  {name}", stats) for name, stats in groups.items()]
    return "\n".join(lines) + "\n"


def format_json(summary: dict) -> str:
    """The summary as JSON (seconds as numbers)."""
    return json.dumps(summary, indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS = ["group_by", "group", "tickets"] + [
    f"{clock}_{field}" for clock in CLOCKS
    for field in ("measured", "median_s", "p90_s", "average_s", "within_target",
                  "share_within_target")]


def format_csv(summary: dict) -> str:
    """One row per group (the first row is ``all``), seconds as numbers."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    rows = [("all", "all", summary["overall"])] + [
        (key[3:], name, stats) for key, groups in summary.items() if key.startswith("by_")
        for name, stats in groups.items()]
    for group_by, name, stats in rows:
        cells = [group_by, name, stats["tickets"]]
        for clock in CLOCKS:
            s = stats[clock]
            cells += [s["measured"], s["median"], s["p90"], s["average"], s["within_target"],
                      s["share_within_target"]]
        writer.writerow(["" if c is None else c for c in cells])
    return out.getvalue()
