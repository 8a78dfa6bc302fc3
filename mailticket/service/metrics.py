"""`mailticket health --format prometheus`: the desk's figures in the Prometheus text format, for
node_exporter's textfile collector (README: "Monitoring").

The figures are read from the database when asked, so any process can print them, not only the
daemon; ``prometheus_client`` writes the exposition (names, help, types, label escaping).
Counters that retention shrinks (mails and breaches of purged tickets) read as a counter reset.
"""

from __future__ import annotations

from datetime import datetime

import peewee as pw
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..desk.alarms import PROBLEMS
from ..desk.reporting import spam_count
from ..models import AlarmState, InboundMail, KeyValue, Outbox, SlaMark, Ticket

PRIORITIES = ("P1", "P2", "P3", "P4")
MAIL_STATES = ("received", "processed", "duplicate", "dropped", "quarantined", "spam")
OPEN = ("new", "open", "pending")
CLOCKS = ("first_response", "resolution")


class DeskCollector:
    """A prometheus_client collector over the desk's database, as of ``now``."""

    def __init__(self, now: datetime, problems: int):
        self.now, self.problems = now, problems

    def collect(self):
        yield _single(GaugeMetricFamily, "mailticket_database_up", "1: the database answered", 1)
        yield _single(CounterMetricFamily, "mailticket_mails_in", "mails taken in since the desk began",
                      InboundMail.select(pw.fn.MAX(InboundMail.id)).scalar() or 0)
        yield _by("mailticket_mails", "stored incoming mails by state (received = not yet processed)", "state",
                  _counts(InboundMail.select(InboundMail.state, pw.fn.COUNT(InboundMail.id))
                          .group_by(InboundMail.state)), MAIL_STATES)
        yield _single(GaugeMetricFamily, "mailticket_quarantined_mails", "mails in quarantine",
                      InboundMail.select().where(InboundMail.state == "quarantined").count())
        yield _single(GaugeMetricFamily, "mailticket_spam_mails", "mails moved to the spam folder by their verdict",
                      spam_count())
        yield _by("mailticket_tickets_open", "tickets new, open or pending, by priority", "priority",
                  _counts(Ticket.select(Ticket.priority, pw.fn.COUNT(Ticket.id))
                          .where(Ticket.status.in_(OPEN)).group_by(Ticket.priority)), PRIORITIES)
        yield _single(GaugeMetricFamily, "mailticket_tickets_overdue", "open tickets past a due time now",
                      _overdue(self.now))
        yield _by("mailticket_sla_breaches", "SLA targets breached (each ticket, clock and tier once)", "clock",
                  _breaches(), CLOCKS, family=CounterMetricFamily)
        yield _by("mailticket_outbox_mails", "outgoing mails waiting to be sent (queued) or given up (failed)",
                  "status", _counts(Outbox.select(Outbox.status, pw.fn.COUNT(Outbox.id))
                                    .where(Outbox.status.in_(["queued", "failed"])).group_by(Outbox.status)),
                  ("queued", "failed"))
        last = KeyValue.get_or_none(KeyValue.key == "last_fetch_ok")
        yield _single(GaugeMetricFamily, "mailticket_last_fetch_timestamp_seconds",
                      "when mail was last fetched from the IMAP folder (Unix time; 0: never)",
                      last.at.timestamp() if last is not None and last.at else 0)
        raised = {a.kind for a in AlarmState.select().where(AlarmState.raised_at.is_null(False))} \
            if AlarmState.table_exists() else set()
        yield _by("mailticket_alarm", "1 while the admin's alarm about this problem is on", "problem",
                  {p: int(p in raised) for p in PROBLEMS}, PROBLEMS)
        yield _single(GaugeMetricFamily, "mailticket_health_problems", "problems `mailticket health` reports",
                      self.problems)


def _single(family, name: str, documentation: str, value: float):
    metric = family(name, documentation, labels=[])
    metric.add_metric([], value)
    return metric


def _by(name: str, documentation: str, label: str, counts: dict, known: tuple, family=GaugeMetricFamily):
    """One sample per label value: the known ones always (0 when none), others as found."""
    metric = family(name, documentation, labels=[label])
    for value in (*known, *sorted(set(counts) - set(known))):
        metric.add_metric([value], counts.get(value, 0))
    return metric


def _counts(query) -> dict:
    return {key: n for key, n in query.tuples()}


def _breaches() -> dict:
    """Breach marks are keyed ``breach:<clock>:tier<n>`` (desk/sla.py)."""
    return {clock: SlaMark.select().where(SlaMark.key.startswith(f"breach:{clock}:")).count() for clock in CLOCKS}


def _overdue(now: datetime) -> int:
    """Pending tickets are left out: their resolution clock stands still."""
    return Ticket.select().where(Ticket.status.in_(("new", "open")), (
        (Ticket.first_response_at.is_null() & (Ticket.first_response_due < now))
        | (Ticket.resolution_due < now))).count()


def exposition(now: datetime, problems: int) -> bytes:
    """The figures in the Prometheus text format (version 0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeskCollector(now, problems))
    return generate_latest(registry)


def database_down() -> bytes:
    """What is printed when the database does not answer: that alone."""
    registry = CollectorRegistry(auto_describe=False)

    class Down:
        def collect(self):
            yield _single(GaugeMetricFamily, "mailticket_database_up", "1: the database answered", 0)
    registry.register(Down())
    return generate_latest(registry)
