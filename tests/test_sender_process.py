"""The outbox is drained by a process of its own, so incoming mail is processed while the SMTP
server takes its time (PostgreSQL: row locks; SQLite: the sent log beside the database), and the
process lives and dies with the daemon."""

import os
import re
import signal
import sys

from mailticket.service import daemon as daemon_module
from mailticket.models import InboundMail, Outbox
from tests.harness import DaemonThread, make_mail, start_daemon_process, wait_until, write_config
from tests.servers.system import is_alive


def _two_mails_waiting(mailbox_user):
    for i in (1, 2):
        mailbox_user.server.append(mailbox_user.name, "INBOX",
                                   make_mail(subject=f"Request {i}", message_id=f"<req{i}@customer.example>"))


def test_on_postgresql_mail_is_processed_while_a_slow_server_takes_the_previous_mails(
        tmp_path, mailbox_user, smtp_sink, pg_url):
    smtp_sink.mode, smtp_sink.stall_seconds = "stall", 2.0  # every DATA answered after 2 s
    _two_mails_waiting(mailbox_user)
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, db_url=pg_url, extra={"imap": {"batch_size": 1}})
    with DaemonThread(cfg) as d:
        wait_until(lambda: InboundMail.select().where(InboundMail.state == "processed").count() == 2,
                   timeout=20, interval=0.05, what="both mails processed")
        sender = d.daemon.sender
        assert sender.is_alive() and sender.pid != os.getpid(), "the sender is a process of its own"
        at_the_sink = len(smtp_sink.received)
        # the first mail's acknowledgement and tier notice (4 s at this server) were not waited for
        assert at_the_sink <= 1, f"{at_the_sink} mails had to reach the sink before the second mail was processed"
        wait_until(lambda: len(smtp_sink.received) == 4, timeout=30, what="all four mails sent")
        wait_until(lambda: Outbox.select().where(Outbox.status == "sent").count() == 4, what="all marked sent")
    assert not d.thread.is_alive() and not sender.is_alive(), "the sender stopped with the daemon"
    assert sender.proc.returncode == 0


def test_on_sqlite_too_mail_is_processed_while_a_slow_server_takes_the_previous_mails(
        tmp_path, mailbox_user, smtp_sink):
    """The sender process never waits for the daemon's write lock: it records what it sent in
    the sent log beside the database, which the daemon folds into the outbox."""
    smtp_sink.mode, smtp_sink.stall_seconds = "stall", 2.0
    _two_mails_waiting(mailbox_user)
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={"imap": {"batch_size": 1}})
    with DaemonThread(cfg) as d:
        wait_until(lambda: InboundMail.select().where(InboundMail.state == "processed").count() == 2,
                   timeout=20, interval=0.05, what="both mails processed")
        assert len(smtp_sink.received) <= 1
        wait_until(lambda: len(smtp_sink.received) == 4, timeout=30, what="all four mails sent")
        wait_until(lambda: Outbox.select().where(Outbox.status == "sent").count() == 4, what="all folded in as sent")
    assert (tmp_path / "mailticket.db.sent").exists()
    assert not d.daemon.sent_log.pending(), "the log is empty once folded"


def test_the_sender_retries_a_refusing_server_and_reports_a_rejection(tmp_path, mailbox_user, smtp_sink, db_url):
    """451s are retried with back-off until the server takes the mail, once each; a 550 fails the
    entry for good and the admin is told, all from the sender process of a running daemon."""
    smtp_sink.mode = "tempfail"
    mailbox_user.server.append(mailbox_user.name, "INBOX",
                               make_mail(subject="Printer", message_id="<retry@customer.example>"))
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, db_url=db_url)
    with DaemonThread(cfg):
        wait_until(lambda: Outbox.select().where(Outbox.attempts >= 1, Outbox.status == "queued").count() == 2,
                   timeout=20, what="both notices refused once and waiting")
        assert smtp_sink.received == []
        smtp_sink.mode = "ok"
        wait_until(lambda: Outbox.select().where(Outbox.status == "sent").count() == 2, timeout=20,
                   what="both sent after the back-off")
        assert sorted(r.rcpt_tos[0] for r in smtp_sink.received) == ["anna@customer.example", "l1@example.com"]
        smtp_sink.mode = "reject"
        mailbox_user.server.append(mailbox_user.name, "INBOX",
                                   make_mail(subject="Network", message_id="<reject@customer.example>"))
        notices = Outbox.select().where(Outbox.kind.in_(["acknowledgement", "new_ticket"]))
        wait_until(lambda: notices.where(Outbox.status == "failed").count() == 2, timeout=20,
                   what="the second mail's notices rejected for good")
        # the admin is told of each, once; an alert that is rejected too raises no alert of its own
        wait_until(lambda: Outbox.select().where(Outbox.kind == "delivery_failure").count() == 2, timeout=20,
                   what="two alerts to the admin queued")
        assert all(o.attempts == 1 for o in notices.where(Outbox.status == "failed"))
    assert Outbox.select().where(Outbox.kind == "delivery_failure").count() == 2
    assert sorted(r.rcpt_tos[0] for r in smtp_sink.received if r.rcpt_tos != ["admin@example.com"]) == \
        ["anna@customer.example", "l1@example.com"], "the first notices arrived once each, the rejected never"


# ---------------------------------------------------------------- the process's life

def _sender_pids(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"sender process (\d+) started", text)]


def test_a_killed_daemon_takes_its_sender_with_it(tmp_path, mailbox_user, smtp_sink):
    """SIGKILL leaves the daemon no time to stop its sender: the sender sees its input close and
    stops by itself, so a restarted daemon never has two senders sending the same queue."""
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    log = tmp_path / "daemon.log"
    proc = start_daemon_process(cfg, log=log)
    try:
        pids = wait_until(lambda: _sender_pids(log.read_text()), timeout=30, what="the sender started")
        sender = pids[0]
        assert sender != proc.pid and is_alive(sender)
        proc.kill()
        proc.wait(10)
        wait_until(lambda: not is_alive(sender), timeout=10, what="the orphaned sender to stop")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"INFO mailticket.sender: sender process {sender} stopped" in log.read_text()


def test_a_sender_that_dies_is_started_again_and_the_mail_goes_out(tmp_path, mailbox_user, smtp_sink, monkeypatch,
                                                                    caplog):
    monkeypatch.setattr(daemon_module, "SENDER_RESTART_EVERY", 0.2)
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    with DaemonThread(cfg) as d:
        wait_until(lambda: d.daemon.sender is not None and d.daemon.sender.is_alive(), what="the sender started")
        old = d.daemon.sender
        first = old.pid
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not is_alive(first), what="the sender killed")
        mailbox_user.server.append(mailbox_user.name, "INBOX",
                                   make_mail(subject="After the kill", message_id="<after-kill@customer.example>"))
        smtp_sink.wait_for(2, timeout=30)
        assert d.daemon.sender.pid != first and d.daemon.sender.is_alive()
        assert old.proc.stdin.closed and old.proc.stdout.closed, "the dead sender's pipes were released"
    assert f"the sender process {first} had stopped (exit status -9); starting it again" in caplog.text
    assert Outbox.select().where(Outbox.status == "sent").count() == 2


def test_a_sender_that_cannot_start_is_reported_and_tried_again(tmp_path, mailbox_user, smtp_sink, monkeypatch,
                                                                 caplog):
    """The mail is still taken in and its notices wait in the outbox; once the sender can start
    (here: once it is started with a working interpreter again), they go out."""
    monkeypatch.setattr(daemon_module, "SENDER_RESTART_EVERY", 0.2)
    python = sys.executable
    monkeypatch.setattr(sys, "executable", "/bin/false")  # what the daemon starts the sender with
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    with DaemonThread(cfg):
        wait_until(lambda: "exited at start with status 1" in caplog.text, what="the failed start reported")
        mailbox_user.server.append(mailbox_user.name, "INBOX",
                                   make_mail(subject="No sender yet", message_id="<nosender@customer.example>"))
        wait_until(lambda: InboundMail.select().where(InboundMail.state == "processed").count() == 1,
                   timeout=20, what="the mail taken in all the same")
        assert Outbox.select().where(Outbox.status == "queued").count() == 2 and smtp_sink.received == []
        monkeypatch.setattr(sys, "executable", python)
        smtp_sink.wait_for(2, timeout=30)
        wait_until(lambda: Outbox.select().where(Outbox.status == "sent").count() == 2, what="both marked sent")
    assert "starting it again" in caplog.text
