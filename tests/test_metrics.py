"""`mailticket health --format prometheus`, read back by prometheus_client's own parser."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prometheus_client.parser import text_string_to_metric_families

from mailticket import db
from mailticket.config import load_config
from mailticket.models import AlarmState, InboundMail, KeyValue, Outbox, SlaMark, Ticket
from tests.harness import run_cli, write_config



def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of every sample, and the family types."""
    out, types = {}, {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out, types


def now() -> datetime:
    return datetime.now(timezone.utc)


def ticket(priority: str, status: str = "open", **kw) -> Ticket:
    return Ticket.create(priority=priority, status=status, requester_address="anna@customer.example",
                         created_at=now() - timedelta(hours=2), updated_at=now(), **kw)


def inbound(state: str, n: int) -> None:
    for i in range(n):
        InboundMail.create(source="listener", raw=b"x", received_at=now(), state=state)


def outbox(status: str, n: int) -> None:
    for i in range(n):
        Outbox.create(kind="acknowledgement", message_id=f"mt.{status}{i}@example.com", mail_from="s@example.com",
                      recipients=["a@example.com"], rcpt_key="a@example.com", raw=b"x", created_at=now(),
                      next_attempt_at=now(), status=status)


def test_prometheus_figures(tmp_path, db_url):
    path = write_config(tmp_path, db_url=db_url, extra={"imap": {
        "host": "imap.example.com", "username": "support@example.com", "password": "unused"}})
    db.connect(load_config(path).database.url)
    NOW = now()
    ticket("P1")
    ticket("P2", first_response_due=NOW - timedelta(minutes=5))  # overdue
    ticket("P2", status="pending")
    late = ticket("P3", resolution_due=NOW - timedelta(hours=1))  # overdue
    ticket("P4", status="closed")
    SlaMark.create(ticket=late, key="breach:resolution:tier1", at=NOW)
    SlaMark.create(ticket=late, key="breach:resolution:tier2", at=NOW)
    SlaMark.create(ticket=late, key="breach:first_response:tier1", at=NOW)
    SlaMark.create(ticket=late, key="warn:resolution:tier1", at=NOW)
    inbound("processed", 5)
    inbound("quarantined", 2)
    inbound("spam", 1)
    outbox("queued", 3)
    outbox("failed", 1)
    outbox("sent", 4)
    fetched = NOW - timedelta(minutes=1)
    KeyValue.create(key="last_fetch_ok", value=fetched.isoformat(), at=fetched)
    AlarmState.create(kind="outgoing", raised_at=NOW, since=NOW - timedelta(minutes=20))

    done = run_cli("health", "--format", "prometheus", config=path)
    assert done.returncode == 0, done.stderr
    got, types = samples(done.stdout)

    def value(name, **labels):
        return got[(name, frozenset(labels.items()))]
    assert value("mailticket_database_up") == 1
    assert types["mailticket_mails_in"] == "counter" and value("mailticket_mails_in_total") == 8
    assert value("mailticket_mails", state="processed") == 5
    assert value("mailticket_mails", state="received") == 0
    assert value("mailticket_quarantined_mails") == 2
    assert value("mailticket_spam_mails") == 1
    assert [value("mailticket_tickets_open", priority=p) for p in ("P1", "P2", "P3", "P4")] == [1, 2, 1, 0]
    assert value("mailticket_tickets_overdue") == 2
    assert value("mailticket_sla_breaches_total", clock="resolution") == 2
    assert value("mailticket_sla_breaches_total", clock="first_response") == 1
    assert value("mailticket_outbox_mails", status="queued") == 3
    assert value("mailticket_outbox_mails", status="failed") == 1
    assert abs(value("mailticket_last_fetch_timestamp_seconds") - fetched.timestamp()) < 1
    assert value("mailticket_alarm", problem="outgoing") == 1
    assert value("mailticket_alarm", problem="mailbox") == 0
    # quarantine, a failed mail and the alarm are problems `health` names; the figure says how many
    assert value("mailticket_health_problems") == 3
    text = run_cli("health", config=path)
    assert text.returncode == 1 and text.stdout.startswith("ALARM outgoing: outgoing mail is failing since")


def test_prometheus_with_the_database_down(tmp_path):
    path = write_config(tmp_path, db_url="postgresql://mailticket:Db-Secret-99@127.0.0.1:1/none")
    done = run_cli("health", "--format", "prometheus", config=path)
    got, _ = samples(done.stdout)
    assert got[("mailticket_database_up", frozenset())] == 0
    assert done.returncode == 4 and "database unreachable" in done.stderr and "Db-Secret-99" not in done.stderr
