"""`mailticket report`: tickets from the database into ``report.summarize``."""

from __future__ import annotations

from datetime import datetime, timedelta

from . import report
from ..models import InboundMail, Ticket


def records(since: datetime | None = None):
    q = Ticket.select(Ticket.id, Ticket.priority, Ticket.tier, Ticket.category, Ticket.created_at,
                      Ticket.first_response_at, Ticket.resolved_at, Ticket.closed_at, Ticket.status, Ticket.type,
                      Ticket.resolution_paused_seconds)
    if since is not None:
        q = q.where(Ticket.created_at >= since)
    for t in q.iterator():
        yield report.Record(number=t.id, priority=t.priority, tier=t.tier, category=t.category,
                            created_at=t.created_at, first_response_at=t.first_response_at,
                            resolved_at=t.resolved_at or (t.closed_at if t.status == "closed" else None),
                            status=t.status, type=t.type, paused=timedelta(seconds=t.resolution_paused_seconds or 0))


def spam_count(since: datetime | None = None, until: datetime | None = None) -> int:
    """Mails set aside on an upstream spam verdict (stored mails in state ``spam``), received in
    [since, until). ``health``, the report and the metrics read this one count."""
    q = InboundMail.select().where(InboundMail.state == "spam")
    if since is not None:
        q = q.where(InboundMail.received_at >= since)
    if until is not None:
        q = q.where(InboundMail.received_at < until)
    return q.count()


def run_report(config, since: datetime | None = None, fmt: str = "text") -> str:
    summary = report.summarize(list(records(since)), config.sla)
    summary["spam"] = spam_count(since)
    return {"text": report.format_text, "json": report.format_json, "csv": report.format_csv}[fmt](summary)
