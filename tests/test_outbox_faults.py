"""The outbox against an SMTP server that refuses, rejects, drops and stalls: nothing is lost,
nothing is sent twice, permanent failures stop at once and reach the admin."""

import email
import email.policy
from collections import Counter
from datetime import timedelta

import pytest

from mailticket import db

from mailticket.outbound import outbox

from mailticket.desk import pipeline
from mailticket.clock import FakeClock
from mailticket.config import load_config
from mailticket.service.daemon import Daemon
from mailticket.service.wiring import build_desk
from mailticket.models import Outbox
from tests.harness import make_mail, write_config


@pytest.fixture
def desk_and_daemon(tmp_path, smtp_sink):
    cfg = load_config(write_config(tmp_path, sink=smtp_sink, extra={
        "smtp": {"timeout": "1s"}, "outbox": {"retry_base": "10s", "retry_max": "1m", "max_attempts": 8},
        "rate_limits": {"global_10min": 1000, "per_sender_day": 1000}}))
    db.connect(cfg.database.url)
    clock = FakeClock()
    desk = build_desk(cfg, clock=clock)
    return desk, Daemon(desk), clock


def _queue_acks(desk, n):
    for i in range(n):
        raw = make_mail(sender=f"user{i}@customer.example", subject=f"Issue {i}", message_id=f"<q{i}@customer.example>",
                        date=desk.clock.now())
        assert pipeline.process_one(desk, pipeline.store_raw(raw, source="test", now=desk.clock.now())).state == "processed"


def _drain_until_empty(daemon, clock, rounds=50):
    for _ in range(rounds):
        if not Outbox.select().where(Outbox.status == "queued").exists():
            return
        clock.advance(timedelta(minutes=2))
        daemon.drain()
    raise AssertionError("outbox not empty")


def _message_ids(sink, rcpt_suffix="@customer.example"):
    return Counter(email.message_from_bytes(m.data, policy=email.policy.default)["Message-ID"]
                   for m in sink.received if m.rcpt_tos[0].endswith(rcpt_suffix))


def test_200_acknowledgements_survive_refusals_drops_and_stalls(desk_and_daemon, smtp_sink):
    desk, daemon, clock = desk_and_daemon
    _queue_acks(desk, 200)
    assert Outbox.select().where(Outbox.kind == "acknowledgement").count() == 200

    smtp_sink.mode = "tempfail"                       # 451 for every mail
    result = daemon.drain()
    assert result.sent == 0 and result.retried > 0 and not result.failed
    assert Outbox.select().where(Outbox.status == "failed").count() == 0

    smtp_sink.mode = "drop"                           # the server hangs up
    clock.advance(timedelta(minutes=2))
    result = daemon.drain()
    assert result.sent == 0 and result.postponed > 0, "a dropped connection postpones the rest"

    smtp_sink.stall_seconds = 3                       # the server stops answering (client timeout 1 s)
    smtp_sink.mode = "stall"
    clock.advance(timedelta(minutes=2))
    result = daemon.drain()
    assert result.sent == 0 and result.postponed > 0
    queued = Outbox.select().where(Outbox.status == "queued")
    assert queued.count() == 400 and all(o.last_error for o in queued if o.attempts)
    backoffs = [o.next_attempt_at for o in queued]
    assert len(set(backoffs)) > 1, "retries are spread out (jitter)"

    smtp_sink.mode = "ok"
    _drain_until_empty(daemon, clock)
    ids = _message_ids(smtp_sink)
    assert len(ids) == 200 and set(ids.values()) == {1}, "every acknowledgement delivered exactly once"
    assert Outbox.select().where(Outbox.status == "sent").count() == 400


def test_permanent_rejection_stops_at_once_and_tells_the_admin(desk_and_daemon, smtp_sink):
    desk, daemon, clock = desk_and_daemon
    _queue_acks(desk, 3)
    smtp_sink.mode = "reject"                         # 550 for every mail
    result = daemon.drain()
    assert len(result.failed) == 6 and result.retried == 0
    failed = list(Outbox.select().where(Outbox.status == "failed"))
    assert all(o.attempts == 1 and o.last_error.startswith("550") for o in failed)
    admin = Outbox.select().where(Outbox.kind == "delivery_failure")
    assert admin.count() == 6 and {o.recipients[0] for o in admin} == {"admin@example.com"}
    smtp_sink.mode = "ok"
    clock.advance(timedelta(minutes=1))
    daemon.drain()
    told = [m for m in smtp_sink.received if m.rcpt_tos == ["admin@example.com"]]
    assert len(told) == 6 and b"550" in told[0].data
    # `mailticket outbox --retry all` puts them back; now they go
    assert outbox.retry("all", clock.now()) == 6
    daemon.drain()
    assert len(_message_ids(smtp_sink)) == 3
    assert Outbox.select().where(Outbox.status == "failed").count() == 0


def test_a_failure_of_the_admin_alert_itself_does_not_loop(desk_and_daemon, smtp_sink):
    desk, daemon, clock = desk_and_daemon
    _queue_acks(desk, 1)
    smtp_sink.mode = "reject"
    daemon.drain()                                    # 2 fail -> 2 admin alerts queued
    clock.advance(timedelta(minutes=1))
    daemon.drain()                                    # the alerts fail too: no alert about alerts
    assert Outbox.select().where(Outbox.kind == "delivery_failure").count() == 2
    assert Outbox.select().where(Outbox.status == "queued").count() == 0


def test_retry_gives_up_after_max_attempts(tmp_path, smtp_sink):
    cfg = load_config(write_config(tmp_path, sink=smtp_sink, extra={
        "outbox": {"retry_base": "1s", "retry_max": "2s", "max_attempts": 3}}))
    db.connect(cfg.database.url)
    clock = FakeClock()
    desk = build_desk(cfg, clock=clock)
    daemon = Daemon(desk)
    _queue_acks(desk, 1)
    smtp_sink.mode = "tempfail"
    for _ in range(3):
        daemon.drain()
        clock.advance(timedelta(seconds=5))
    ack = Outbox.get(Outbox.kind == "acknowledgement")
    assert (ack.status, ack.attempts) == ("failed", 3)
    assert "451" in ack.last_error


def test_backoff_grows_and_is_capped():
    import random
    from mailticket.config import OutboxConfig
    cfg = OutboxConfig(retry_base=timedelta(seconds=30), retry_max=timedelta(minutes=10))
    rng = random.Random(1)
    waits = [outbox.backoff(n, cfg, rng).total_seconds() for n in range(1, 12)]
    assert 15 <= waits[0] <= 30 and 30 <= waits[1] <= 60 and 60 <= waits[2] <= 120
    assert all(300 <= w <= 600 for w in waits[6:])
