"""`mailticket report` and the report mail: tickets and their history from the database into ``report``.

The period's tickets and their status, tier and priority events are read a range of ticket numbers
at a time (plain rows, not model instances); each ticket becomes a ``report.Measured`` at once, so
only the figures of a ticket are kept, not its history.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from . import intervals, report
from ..db import run
from ..models import AwareDateTimeField, InboundMail

log = logging.getLogger("mailticket.reporting")

TREND_WEEKS = 8
_EVENT_KINDS = ("status", "escalation", "priority")


@dataclass(frozen=True)
class Period:
    since: datetime | None
    until: datetime
    now: datetime


def spam_count(since: datetime | None = None, until: datetime | None = None) -> int:
    """Mails set aside on an upstream spam verdict (stored mails in state ``spam``), received in
    [since, until). ``health``, the report and the metrics read this one count."""
    q = InboundMail.select().where(InboundMail.state == "spam")
    if since is not None:
        q = q.where(InboundMail.received_at >= since)
    if until is not None:
        q = q.where(InboundMail.received_at < until)
    return q.count()


# Read by ranges of ticket numbers, in number order through the primary key and the event index
# (ticket_id, at): a filter on created_at made SQLite sort every row of the period in a temporary
# B-tree first (1.7 GB for a million tickets), and kept PostgreSQL's result in the client.
_ID_RANGE = 'SELECT MIN("id"), MAX("id") FROM "ticket" WHERE "created_at" >= ? AND "created_at" < ?'
_TICKETS = ('SELECT t."id", t."type", t."category", t."status", t."tier", t."priority", t."created_at",'
            ' t."first_response_at", t."assignee", t."alert_key", s."rating", t."language",'
            ' COALESCE(t."resolved_at", t."closed_at", t."updated_at")'
            ' FROM "ticket" AS t LEFT JOIN "satisfaction" AS s ON s."ticket_id" = t."id"'
            ' WHERE t."id" >= ? AND t."id" < ? ORDER BY t."id"')
_EVENTS = ('SELECT e."ticket_id", e."at", e."kind", e."data", CASE WHEN e."data" IS NULL THEN e."text" END'
           ' FROM "event" AS e WHERE e."ticket_id" >= ? AND e."ticket_id" < ? AND e."kind" IN (?, ?, ?)'
           ' ORDER BY e."ticket_id", e."at", e."id"')
CHUNK = 5000  # ticket numbers a query
# tickets created before the period that may still have been open at its end (any change moves updated_at)
_OLDER_OPEN = ('SELECT t."id", t."status", t."created_at", t."updated_at" FROM "ticket" AS t WHERE t."created_at" < ? AND t."alert_key" IS NULL'
               ' AND (t."status" IN (?, ?, ?) OR t."updated_at" >= ?)')

def _ts(value) -> datetime | None:
    """A stored time as an aware UTC datetime: SQLite gives the text peewee wrote (ISO, naive UTC),
    PostgreSQL a naive datetime. (peewee's own conversion cost a fifth of the report's time.)"""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _data(value):
    if value is None or isinstance(value, dict):
        return value
    return json.loads(value)


def stream_facts(since: datetime, until: datetime, as_of: datetime, ids: list[int] | None = None,
                 language: str = "-"):
    """``report.TicketFacts`` of each ticket created in [since, until) (and among ``ids``, when
    given), in number order, read ``CHUNK`` ticket numbers at a time. ``language``: that of the
    tickets that have none (from before languages were kept: the desk's)."""
    db_value = AwareDateTimeField().db_value
    low, high = run(_ID_RANGE, (db_value(since), db_value(until))).fetchone()
    if low is None:
        return
    wanted = set(ids) if ids else None
    for start in range(low, high + 1, CHUNK):
        end = start + CHUNK
        if wanted is not None and not any(start <= n < end for n in wanted):
            continue
        yield from _facts_of(start, end, since, until, as_of, wanted, language)


def _facts_of(start: int, end: int, since, until, as_of, wanted, language="-"):
    events: dict[int, list] = {}
    for number, at, kind, data, text in run(_EVENTS, (start, end, *_EVENT_KINDS)).fetchall():
        events.setdefault(number, []).append((_ts(at), kind, _data(data), text))
    for (number, type_, category, status, tier, priority, created, first, assignee, alert_key,
         rating, written_in, settled) in run(_TICKETS, (start, end)).fetchall():
        created = _ts(created)
        if not since <= created < until or (wanted is not None and number not in wanted):
            continue
        timeline = intervals.build(created, intervals.changes_from_events(events.get(number, ())),
                                   max(as_of, created), status=status, tier=tier, priority=priority,
                                   first_response_at=_ts(first), settled_at=_ts(settled))
        yield report.TicketFacts(number, type_ or "incident", category, timeline, assignee,
                                 alert_key is not None, rating, written_in or language)


EARLIEST = datetime(1970, 1, 2, tzinfo=timezone.utc)


def build_summary(config, period: Period, by=report.GROUPS) -> dict:
    """The report of the tickets created in the period, with the weekly trend and the backlog at its
    end; read in one transaction (one consistent view of a desk that goes on working)."""
    with _read_transaction():
        return _build_summary(config, period, by)


def _read_transaction():
    """A transaction, or none more when one is open already."""
    from contextlib import nullcontext
    from ..models import Ticket
    database = Ticket._meta.database
    return nullcontext() if database.in_transaction() else database.atomic()


def _build_summary(config, period: Period, by) -> dict:
    policy = config.sla
    weeks = trend_weeks(period.until, config.service.timezone)
    load_from = min(period.since or EARLIEST, weeks[0][0]) if weeks else (period.since or EARLIEST)
    in_period, trend, open_at_end = [], [], []
    for facts in stream_facts(load_from, period.until, period.now, language=config.service.locale):
        measured = report.measure(facts, policy)
        if period.since is None or facts.timeline.created_at >= period.since:
            in_period.append(measured)
        if weeks and facts.timeline.created_at >= weeks[0][0]:
            trend.append(measured)
        if not facts.monitoring and report.open_at(facts.timeline, period.until):
            open_at_end.append((facts.number, facts.timeline.created_at))
    open_at_end += _older_open(load_from, period)
    summary = report.summarize(in_period, since=period.since, until=period.until, by=tuple(by),
                               open_at_end=open_at_end, trend=trend, weeks=weeks, now=period.now)
    summary["spam"] = spam_count(period.since, period.until)  # mails, not tickets: counted apart
    return summary


def _older_open(before: datetime, period: Period) -> list[tuple[int, datetime]]:
    """Tickets created before what was loaded that were open at the period's end: open now and not
    changed since then, or changed since (their history says)."""
    if before <= EARLIEST:
        return []
    db = AwareDateTimeField().db_value
    found, changed = [], []
    for number, status, created, updated in run(_OLDER_OPEN, (db(before), "new", "open", "pending",
                                                              db(period.until))).fetchall():
        if _ts(updated) < period.until:
            found.append((number, _ts(created)))
        else:
            changed.append(number)
    for chunk in range(0, len(changed), 500):
        ids = changed[chunk:chunk + 500]
        found += [(f.number, f.timeline.created_at) for f in stream_facts(EARLIEST, before, period.now, ids)
                  if report.open_at(f.timeline, period.until)]
    return found


def trend_weeks(until: datetime, tz_name: str, count: int = TREND_WEEKS) -> list[tuple[datetime, datetime]]:
    """The ``count`` weeks (Monday to Monday, local time) up to ``until``, oldest first; the last one
    ends at ``until`` when that falls inside a week."""
    from zoneinfo import ZoneInfo
    local = until.astimezone(ZoneInfo(tz_name))
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), datetime.min.time(), local.tzinfo)
    last = monday if monday < local else monday - timedelta(weeks=1)
    starts = [last - timedelta(weeks=n) for n in reversed(range(count))]
    return [(start, min(start + timedelta(weeks=1), until)) for start in starts]


# ---------------------------------------------------------------- output

FORMATS = ("text", "json", "csv", "html")


def report_context(summary: dict, kind: str | None) -> dict:
    """What the ``manager_report`` templates get: the summary, the kind of report, the charts' scales."""
    weekly = summary["weekly"]
    target = summary["average_resolution"]["target"]
    ratings = summary["overall"]["satisfaction"]["ratings"]
    return {"report": summary, "kind": kind or "now",
            "scale": {"target": target,
                      "resolution": max([target] + [w["resolution_mean"] or 0 for w in weekly]),
                      "backlog": max(summary["backlog"]["by_age"].values(), default=0) or 1,
                      "ratings": max(ratings.values(), default=0) or 1}}


def render_report(desk_renderer, config, summary: dict, kind: str | None = None, now: datetime | None = None):
    """The report as a mail's subject, text part and HTML part, in the service's language."""
    svc = config.service
    context = {"service": {"name": svc.name, "address": svc.address, "tag_prefix": svc.tag_prefix},
               "timezone": svc.timezone, "now": now or datetime.now(timezone.utc), "ticket": None,
               **report_context(summary, kind)}
    return desk_renderer.render("manager_report", svc.locale, context)


def format_json(summary: dict) -> str:
    return json.dumps(summary, indent=2, ensure_ascii=False) + "\n"


CSV_FIGURES = (
    ("tickets", ("tickets",)), ("resolved", ("resolved",)),
    *((f"first_response_{k}", ("first_response", k)) for k in
      ("measured", "within_target", "share_within_target", "median", "mean", "p90")),
    *((f"resolution_{k}", ("resolution", k)) for k in
      ("measured", "within_target", "share_within_target", "median", "mean", "p90")),
    ("pending_total", ("pending", "total")),
    ("escalations_tier1", ("escalations", "tier1")), ("escalations_tier2", ("escalations", "tier2")),
    ("escalations_tier3", ("escalations", "tier3")),
    ("first_contact", ("first_contact_resolution", "first_contact")),
    ("first_contact_share", ("first_contact_resolution", "share")),
    ("reopened", ("reopen", "reopened")), ("reopen_rate", ("reopen", "rate")),
    ("satisfaction_answered", ("satisfaction", "answered")),
    ("satisfaction_share_answered", ("satisfaction", "share_answered")),
    ("satisfaction_mean", ("satisfaction", "mean")),
)


def format_csv(summary: dict) -> str:
    """One row per group (the first is ``all``); times in seconds, shares from 0 to 1."""
    import csv
    import io
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group_by", "group"] + [name for name, _ in CSV_FIGURES])
    rows = [("all", "all", summary["overall"])] + [
        (by, key, figures) for by, groups in summary["by"].items() for key, figures in groups.items()]
    for by, key, figures in rows:
        cells = []
        for _, path in CSV_FIGURES:
            value = figures
            for part in path:
                value = value[part]
            cells.append("" if value is None else value)
        writer.writerow([by, key, *cells])
    return out.getvalue()


def format_report(summary: dict, fmt: str, config, renderer=None, kind: str | None = None) -> str:
    """``summary`` as text (the report mail's text part), JSON, CSV or HTML (the mail's HTML part)."""
    if fmt == "json":
        return format_json(summary)
    if fmt == "csv":
        return format_csv(summary)
    if renderer is None:
        from ..outbound.render import Renderer
        renderer = Renderer(config.service.templates_dir)
    rendered = render_report(renderer, config, summary, kind)
    return rendered.html if fmt == "html" else f"{rendered.subject}\n\n{rendered.text}"


def mail_report(desk, summary: dict, now: datetime, kind: str | None = None):
    """Queue the report mail to the manager (``[service] manager_address``); the outbox entry."""
    from ..outbound.notify import Recipient
    context = report_context(summary, kind)
    return desk.mailer.send("manager_report", to=[Recipient(desk.config.service.manager_address)], now=now,
                            context=context, reply_purpose=None, automatic=True)


def send_scheduled(desk, now: datetime) -> list[str]:
    """Queue each scheduled report (``[reports]``) whose moment has come and that no daemon has sent;
    the keys of those queued. The report is computed outside the write transaction; the mark that
    it was sent (a KeyValue row) and the mail go in one, so two daemons never both send it."""
    from zoneinfo import ZoneInfo
    from ..db import insert_or_ignore, write_transaction
    from ..models import KeyValue
    from .reportschedule import due_reports
    config = desk.config
    queued = []
    for due in due_reports(config.reports, now, ZoneInfo(config.service.timezone)):
        if KeyValue.get_or_none(KeyValue.key == due.key) is not None:
            continue
        summary = build_summary(config, Period(due.since, due.until, now))
        with write_transaction():
            taken = run(insert_or_ignore('"key_value" ("key", "value", "at") VALUES (?, ?, ?)'),
                        (due.key, config.service.manager_address, KeyValue.at.db_value(now))).rowcount
            if taken != 1:
                continue
            mail_report(desk, summary, now, kind=due.kind)
        queued.append(due.key)
        log.info("%s report for %s .. %s queued to %s", due.kind, due.since.date(), due.until.date(),
                 config.service.manager_address)
    return queued
