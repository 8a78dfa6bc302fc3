"""The admin's alerts of mail that could not be delivered (desk/deliveryalerts.py), on SQLite and
PostgreSQL: one alert per failed mail for the first ``delivery_alerts_day`` of a day, whichever
way it failed (the relay refused it, or a bounce came back), never starved by the day's other
alerts to the admin; the rest held, counted and listed in an hourly digest. The storm as the admin
meets it, through Dovecot and the sink, is in test_conversations_vacation_loops.py."""

from __future__ import annotations

import email
import email.policy
import logging
from datetime import timedelta

import pytest

from mailticket.desk import deliveryalerts
from mailticket.models import Outbox
from mailticket.outbound import outbox
from mailticket.service.sender import tell_admin_failed
from tests.harness import bounce_of, make_mail
from tests.test_conversations_agents import Bench

ADMIN = "admin@example.com"
REFUSED = "550 5.1.1 <{}>: Recipient address rejected: User unknown"


@pytest.fixture
def bench(tmp_path, db_url):
    # the shipped rate limits: per_sender_day = 10 is what ten quarantine alerts used to fill
    return Bench(tmp_path, extra={"database": {"url": db_url}, "rate_limits": {}})


def _acknowledged(bench, n: int) -> list[Outbox]:
    """``n`` new tickets from ``n`` senders: their acknowledgements."""
    for i in range(n):
        assert bench.process(make_mail(sender=f"Victim {i} <victim{i}@forged.example>", subject=f"Cheap pills {i}",
                                       message_id=f"<spam{i}@forged.example>", date=bench.clock.now())).ticket
    return bench.sent(kind="acknowledgement")


def _refused(entry: Outbox) -> Outbox:
    """The relay refused ``entry`` for good, as the sender records it."""
    Outbox.update(status="failed", last_error=REFUSED.format(entry.recipients[0])).where(
        Outbox.id == entry.id).execute()
    return Outbox.get_by_id(entry.id)


def _broken(bench, n: int) -> None:
    assert bench.process(f"From: Nobody\r\nSubject: Invoice {n}\r\nMessage-ID: <inv{n}@nobody.example>\r\n\r\n"
                         "Pay.\r\n".encode()).state == "quarantined"


def test_refused_mail_is_told_past_a_day_of_quarantine_alerts_and_the_rest_come_in_a_digest(bench, caplog):
    caplog.set_level(logging.WARNING, "mailticket")
    cap = bench.config.rate_limits.delivery_alerts_day
    for n in range(bench.config.rate_limits.quarantine_alerts_day):
        _broken(bench, n)
    assert len(bench.sent(ADMIN, "quarantine_alert")) == 10
    acks = _acknowledged(bench, cap + 3)
    for entry in acks:
        tell_admin_failed(bench.desk, _refused(entry))
    alerts = bench.sent(ADMIN, "delivery_failure")
    assert len(alerts) == cap, "the day's quarantine alerts used to fill per_sender_day and silence these"
    assert [a.ticket_id for a in alerts] == [e.ticket_id for e in acks[:cap]]
    first = email.message_from_bytes(bytes(alerts[0].raw), policy=email.policy.default)
    text = first.get_body(("plain",)).get_content()
    assert "victim0@forged.example" in str(first["Subject"]) and "User unknown" in text
    assert "has stopped trying" in text and f"mailticket outbox --retry {acks[0].id}" in text
    assert deliveryalerts.held() == 3
    assert sum("held for the admin's digest" in r.getMessage() and "rate_limits.delivery_alerts_day = 10" in r.getMessage()
               for r in caplog.records) == 3
    # told once per mail, however often it is asked
    tell_admin_failed(bench.desk, Outbox.get_by_id(acks[0].id))
    tell_admin_failed(bench.desk, Outbox.get_by_id(acks[-1].id))
    assert len(bench.sent(ADMIN, "delivery_failure")) == cap and deliveryalerts.held() == 3

    assert deliveryalerts.send_digest(bench.desk, bench.clock.now()) == 3
    [digest] = bench.sent(ADMIN, "delivery_digest")
    text = email.message_from_bytes(bytes(digest.raw), policy=email.policy.default).get_body(("plain",)).get_content()
    for entry in acks[cap:]:
        assert entry.recipients[0] in text and f"[SD#{entry.ticket_id}]" in text
    assert text.count("User unknown") == 3 and "mailticket outbox --retry all" in text
    assert deliveryalerts.held() == 0 and deliveryalerts.send_digest(bench.desk, bench.clock.now()) == 0


def test_bounces_count_with_refusals_and_a_second_digest_waits_an_hour(bench):
    cap = bench.config.rate_limits.delivery_alerts_day
    acks = _acknowledged(bench, cap + 4)
    for entry in acks[:cap]:
        tell_admin_failed(bench.desk, _refused(entry))
    # the rest bounce after they left: the same day's count, the bounce's words as the reason
    for entry in acks[cap:cap + 2]:
        assert bench.process(bounce_of(entry)).state == "processed"
    assert len(bench.sent(ADMIN, "delivery_failure")) == cap and deliveryalerts.held() == 2
    assert "Recipient address rejected" in Outbox.get_by_id(acks[cap].id).last_error
    assert deliveryalerts.send_digest(bench.desk, bench.clock.now()) == 2
    # the same bounce delivered again is a duplicate: no second alert, nothing held
    assert bench.process(bounce_of(acks[cap])).state == "duplicate"
    for entry in acks[cap + 2:]:
        bench.process(bounce_of(entry))
    assert deliveryalerts.held() == 2
    bench.clock.advance(timedelta(minutes=59))
    assert deliveryalerts.send_digest(bench.desk, bench.clock.now()) == 0
    bench.clock.advance(timedelta(minutes=2))
    assert deliveryalerts.send_digest(bench.desk, bench.clock.now()) == 2
    assert len(bench.sent(ADMIN, "delivery_digest")) == 2
    # a day later the alerts come one by one again
    bench.clock.advance(timedelta(days=1))
    [later] = _acknowledged_more(bench)
    tell_admin_failed(bench.desk, _refused(later))
    assert len(bench.sent(ADMIN, "delivery_failure")) == cap + 1


def _acknowledged_more(bench) -> list[Outbox]:
    before = {o.id for o in bench.sent(kind="acknowledgement")}
    assert bench.process(make_mail(sender="Bo <bo@customer.example>", subject="VPN", date=bench.clock.now())).ticket
    return [o for o in bench.sent(kind="acknowledgement") if o.id not in before]


def test_a_retried_mail_that_fails_again_is_told_again(bench):
    [entry] = _acknowledged(bench, 1)
    tell_admin_failed(bench.desk, _refused(entry))
    assert outbox.retry(str(entry.id), bench.clock.now()) == 1
    assert Outbox.get_by_id(entry.id).admin_alert is None
    tell_admin_failed(bench.desk, _refused(entry))
    assert len(bench.sent(ADMIN, "delivery_failure")) == 2


def test_mail_to_the_admin_that_fails_mails_nobody(bench):
    _broken(bench, 1)
    [alert] = bench.sent(ADMIN, "quarantine_alert")
    tell_admin_failed(bench.desk, _refused(alert))
    assert bench.sent(ADMIN, "delivery_failure") == [] and deliveryalerts.held() == 0
