"""The admin's alarms: mailed once when a problem has lasted alarm_after, once when it clears.

Conversation tests against a real Dovecot and SMTP sink with alarm_after = "3s", and the pure
decision in unit tests."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from mailticket.desk.alarms import Observation, decide
from tests.conftest import new_mailbox_user, unavailable
from tests.harness import DaemonThread, make_mail, run_cli, wait_until, write_config
from tests.servers.dovecot import Dovecot, ensure_dovecot_installed

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
AFTER = timedelta(minutes=15)


# ---------------------------------------------------------------- the decision, pure

def state(raised_at=None, since=None, last_raised_at=None):
    return SimpleNamespace(raised_at=raised_at, since=since, last_raised_at=last_raised_at)


def test_a_problem_younger_than_alarm_after_is_no_alarm():
    assert decide([Observation("mailbox", T0)], {}, T0 + AFTER - timedelta(seconds=1), AFTER) == []


def test_a_problem_as_old_as_alarm_after_raises_once():
    [change] = decide([Observation("mailbox", T0, "refused")], {}, T0 + AFTER, AFTER)
    assert (change.problem, change.action, change.since, change.detail) == ("mailbox", "raise", T0, "refused")
    raised = {"mailbox": state(raised_at=T0 + AFTER, since=T0, last_raised_at=T0 + AFTER)}
    assert decide([Observation("mailbox", T0)], raised, T0 + 3 * AFTER, AFTER) == []


def test_a_raised_alarm_clears_once_the_problem_is_gone():
    raised = {"outgoing": state(raised_at=T0 + AFTER, since=T0, last_raised_at=T0 + AFTER)}
    [change] = decide([Observation("outgoing", None)], raised, T0 + 2 * AFTER, AFTER)
    assert (change.action, change.since) == ("clear", T0)
    cleared = {"outgoing": state(since=T0, last_raised_at=T0 + AFTER)}
    assert decide([Observation("outgoing", None)], cleared, T0 + 3 * AFTER, AFTER) == []


def test_never_more_often_than_alarm_after():
    """A new episode right after the last alarm waits until alarm_after has passed since it."""
    recent = {"inbox": state(last_raised_at=T0)}
    episode = Observation("inbox", T0 - AFTER)
    assert decide([episode], recent, T0 + AFTER / 2, AFTER) == []
    assert [c.action for c in decide([episode], recent, T0 + AFTER, AFTER)] == ["raise"]


def test_problems_are_independent():
    changes = decide([Observation("mailbox", T0), Observation("inbox", None), Observation("outgoing", T0)],
                     {}, T0 + AFTER, AFTER)
    assert [(c.problem, c.action) for c in changes] == [("mailbox", "raise"), ("outgoing", "raise")]


# ---------------------------------------------------------------- conversations

FAST = {"service": {"alarm_after": "3s"}}


def alarm_mails(sink, subject_start: str) -> list:
    return [m for m in sink.received if str(m.message["Subject"]).startswith(subject_start)
            and m.rcpt_tos == ["admin@example.com"]]


def wait_for_alarm(sink, subject_start: str, timeout: float = 30):
    return wait_until(lambda: alarm_mails(sink, subject_start), timeout=timeout, what=f"a mail {subject_start!r}")


def cut_session(daemon) -> None:
    """Dovecot lets running sessions outlive its master: cut ours, as a network failure would."""
    client = daemon.daemon.source.client
    if client is not None:
        try:
            client._imap.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@pytest.fixture
def own_dovecot():
    """A Dovecot of this test's own, which it stops and starts."""
    if not ensure_dovecot_installed():
        unavailable("Dovecot is not installed")
    server = Dovecot().start()
    yield server
    server.close()


def test_mailbox_down_raises_one_alarm_and_one_cleared(own_dovecot, smtp_sink, tmp_path):
    user = new_mailbox_user(own_dovecot)
    path = write_config(tmp_path, user=user, sink=smtp_sink, extra=FAST)
    with DaemonThread(path) as daemon:
        wait_until(lambda: daemon.daemon.ready, what="the daemon ready")
        own_dovecot.stop()
        cut_session(daemon)
        [alarm] = wait_for_alarm(smtp_sink, "Alarm: mailbox unreachable", timeout=60)
        body = alarm.message.get_body(("plain",)).get_content()
        assert "The mailbox on 127.0.0.1 cannot be reached" in body and "Last error:" in body
        health = run_cli("health", config=path)
        assert health.returncode == 1 and "ALARM mailbox: the mailbox is unreachable" in health.stdout
        time.sleep(4)  # longer than alarm_after: still one alarm for the one episode
        assert len(alarm_mails(smtp_sink, "Alarm:")) == 1
        own_dovecot.start()
        [cleared] = wait_for_alarm(smtp_sink, "Cleared: mailbox unreachable")
        assert "lasted" in str(cleared.message["Subject"])
        own_dovecot.append(user.name, "INBOX", make_mail(subject="After the outage"))
        wait_until(lambda: [m for m in smtp_sink.received if "After the outage" in str(m.message["Subject"])],
                   what="the acknowledgement of mail after the outage")
        time.sleep(1)
    assert len(alarm_mails(smtp_sink, "Alarm:")) == 1 and len(alarm_mails(smtp_sink, "Cleared:")) == 1
    assert "ALARM" not in run_cli("health", config=path).stdout


def test_a_failing_token_command_raises_the_mailbox_alarm(dovecot_oauth2, smtp_sink, tmp_path):
    user = new_mailbox_user(dovecot_oauth2)
    token_file = tmp_path / "token"  # missing: the command fails
    path = write_config(tmp_path, sink=smtp_sink, extra={**FAST, "service": {"alarm_after": "3s", "locale": "sv"},
                                                           "imap": {
        "host": "127.0.0.1", "port": dovecot_oauth2.imaps_port, "security": "ssl", "ca_file": dovecot_oauth2.ca_file,
        "username": user.name, "auth": "oauth2", "oauth2_token_command": f"cat {token_file}",
        "poll_interval": "1s", "timeout": "10s"}})
    with DaemonThread(path):
        [alarm] = wait_for_alarm(smtp_sink, "Larm: brevlådan går inte att nå")
        body = alarm.message.get_body(("plain",)).get_content()
        assert "oauth2_token_command failed with exit code 1" in body and "Senaste fel" in body
        token_file.write_text(dovecot_oauth2.token_authority.issue(user.name))
        wait_for_alarm(smtp_sink, "Åtgärdat: brevlådan går inte att nå")
    assert len(alarm_mails(smtp_sink, "Larm:")) == 1


def test_outgoing_mail_failing_is_told_once_it_can_be_and_cleared(mailbox_user, smtp_sink, tmp_path):
    """A 451 server: the alarm waits in the outbox (never given up) and goes out, with the
    cleared mail after it, once the server takes mail again."""
    path = write_config(tmp_path, user=mailbox_user, sink=smtp_sink,
                        extra={**FAST, "outbox": {"retry_base": "1s", "retry_max": "2s", "max_attempts": 2}})
    smtp_sink.mode = "tempfail"
    with DaemonThread(path):
        mailbox_user.server.append(mailbox_user.name, "INBOX", make_mail(subject="Printer broken"))
        health = wait_until(lambda: (lambda h: "ALARM outgoing" in h.stdout and h)(run_cli("health", config=path)),
                            timeout=30, what="the outgoing alarm in health")
        assert "451" in health.stdout
        time.sleep(5)  # the alarm mail has failed more than max_attempts times by now
        assert smtp_sink.received == []
        smtp_sink.mode = "ok"
        [cleared] = wait_for_alarm(smtp_sink, "Cleared: outgoing mail failing")
        [alarm] = alarm_mails(smtp_sink, "Alarm: outgoing mail failing")
        assert smtp_sink.received.index(alarm) < smtp_sink.received.index(cleared)
        assert "451" in alarm.message.get_body(("plain",)).get_content()
        assert "Lasted:" in cleared.message.get_body(("plain",)).get_content()
        time.sleep(1)
    assert len(alarm_mails(smtp_sink, "Alarm:")) == 1 and len(alarm_mails(smtp_sink, "Cleared:")) == 1


# ---------------------------------------------------------------- mail waiting in the inbox

def test_mail_waiting_in_the_inbox_raises_and_clears(tmp_path, db_url):
    """Stored and not processed, or processed and not moved out of the IMAP folder: either is mail
    waiting; a listener's mail is never "moved" and does not count."""
    from mailticket import db
    from mailticket.clock import FakeClock
    from mailticket.config import load_config
    from mailticket.desk import alarms
    from mailticket.models import InboundMail, Outbox
    from mailticket.service.wiring import build_desk
    path = write_config(tmp_path, db_url=db_url, extra={"service": {"alarm_after": "15m"}, "imap": {
        "host": "imap.example.com", "username": "support@example.com", "password": "unused"}})
    config = load_config(path)
    db.connect(config.database.url)
    desk = build_desk(config, clock=FakeClock(T0))
    InboundMail.create(source="listener", raw=b"x", received_at=T0 - AFTER * 4, state="processed",
                       processed_at=T0 - AFTER * 4)
    assert alarms.check(desk, T0) == []
    stuck = InboundMail.create(source="imap:INBOX", uidvalidity=1, uid=7, raw=b"x", received_at=T0, state="received")
    assert alarms.check(desk, T0 + AFTER - timedelta(seconds=1)) == []
    [change] = alarms.check(desk, T0 + AFTER)
    assert (change.problem, change.action, change.since) == ("inbox", "raise", T0)
    InboundMail.update(state="processed", processed_at=T0 + AFTER).where(InboundMail.id == stuck.id).execute()
    assert alarms.check(desk, T0 + 2 * AFTER) == []  # processed, but still in the folder: still waiting
    InboundMail.update(moved=True).where(InboundMail.id == stuck.id).execute()
    [change] = alarms.check(desk, T0 + 2 * AFTER + timedelta(seconds=5))
    assert change.action == "clear"
    kinds = [(o.kind, o.recipients) for o in Outbox.select().order_by(Outbox.id)]
    assert kinds == [("alarm", ["admin@example.com"]), ("alarm_cleared", ["admin@example.com"])]


# ---------------------------------------------------------------- the alarm mail itself

class Flaky:
    """A transport that fails with 451 until told otherwise, then records."""

    def __init__(self):
        self.down, self.sent = True, []

    def send(self, mail_from, recipients, raw):
        from mailticket.errors import TemporaryDeliveryError
        if self.down:
            raise TemporaryDeliveryError("451 4.3.0 try again later")
        self.sent.append(raw)

    def close(self):
        pass


def test_alarm_mails_are_never_given_up_and_go_first_once_the_server_is_back(tmp_path, db_url):
    from mailticket import db, marks
    from mailticket.config import load_config
    from mailticket.models import Outbox
    from mailticket.outbound import outbox
    config = load_config(write_config(tmp_path, db_url=db_url, extra={"outbox": {"max_attempts": 2}}))
    db.connect(config.database.url)

    def queue(kind, n):
        return Outbox.create(kind=kind, message_id=f"mt.{kind}{n}@example.com", mail_from="s@example.com",
                             recipients=["admin@example.com"], rcpt_key="admin@example.com", raw=b"x\r\n",
                             created_at=T0, next_attempt_at=T0)
    alarm, ack = queue("alarm", 1), queue("acknowledgement", 2)
    server = Flaky()
    for minute in range(5):
        outbox.drain(server, T0 + timedelta(hours=minute), config.outbox)
    assert Outbox.get_by_id(ack.id).status == "failed"
    waiting = Outbox.get_by_id(alarm.id)
    assert waiting.status == "queued" and waiting.attempts == 5 and marks.failing("outgoing") is not None
    later = queue("acknowledgement", 3)
    server.down = False
    now = T0 + timedelta(hours=5)
    Outbox.update(next_attempt_at=now).where(Outbox.id == later.id).execute()
    Outbox.update(next_attempt_at=now + timedelta(hours=1)).where(Outbox.id == alarm.id).execute()  # retry_max 1h
    outbox.drain(server, now, config.outbox, limit=1)  # the new mail goes: the alarm is due at once
    assert marks.failing("outgoing") is None
    assert Outbox.get_by_id(alarm.id).next_attempt_at == now
    outbox.drain(server, now, config.outbox)
    assert Outbox.get_by_id(alarm.id).status == "sent"


def test_alarm_after_is_read_and_checked(tmp_path):
    from mailticket.config import load_config
    assert load_config(write_config(tmp_path, extra=FAST)).service.alarm_after == timedelta(seconds=3)
    assert load_config(write_config(tmp_path)).service.alarm_after == timedelta(minutes=15)
    done = run_cli("check-config", config=write_config(tmp_path, extra={"service": {"alarm_after": "0s"}}))
    assert done.returncode == 3 and "service.alarm_after: must be more than zero: '0s' is outside 1s..7d" in done.stderr
