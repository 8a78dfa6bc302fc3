"""The outbox is drained by a thread of its own, so incoming mail is processed while the SMTP
server takes its time (PostgreSQL: row locks; SQLite: the sent log beside the database)."""

from mailticket.models import InboundMail, Outbox
from tests.harness import DaemonThread, make_mail, wait_until, write_config


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
        at_the_sink = len(smtp_sink.received)
        # the first mail's acknowledgement and tier notice (4 s at this server) were not waited for
        assert at_the_sink <= 1, f"{at_the_sink} mails had to reach the sink before the second mail was processed"
        wait_until(lambda: len(smtp_sink.received) == 4, timeout=30, what="all four mails sent")
        wait_until(lambda: Outbox.select().where(Outbox.status == "sent").count() == 4, what="all marked sent")
    assert not d.thread.is_alive() and not d.daemon.sender.is_alive(), "the sender stopped with the daemon"


def test_on_sqlite_too_mail_is_processed_while_a_slow_server_takes_the_previous_mails(
        tmp_path, mailbox_user, smtp_sink):
    """The sender thread never waits for the main thread's write lock: it records what it sent in
    the sent log beside the database, which the main thread folds into the outbox."""
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


def test_the_thread_retries_a_refusing_server_and_reports_a_rejection(tmp_path, mailbox_user, smtp_sink, db_url):
    """451s are retried with back-off until the server takes the mail, once each; a 550 fails the
    entry for good and the admin is told, all from the sender thread of a running daemon."""
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
