"""End to end on real servers: Dovecot in, the SMTP sink out, nothing lost, nothing twice."""

import email
import email.policy

from mailticket.models import InboundMail, Outbox, Ticket
from tests.harness import DaemonThread, make_mail, write_config, wait_until
from tests.servers.system import free_port


def _parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_appended_mail_becomes_one_ticket_and_one_acknowledgement(tmp_path, mailbox_user, smtp_sink):
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    raw = make_mail(subject="Skrivaren är trasig", message_id="<first@customer.example>",
                    body="Hej! Skrivaren på plan 3 skriver inte ut.")
    dovecot.append(mailbox_user.name, "INBOX", raw)
    with DaemonThread(cfg):
        got = smtp_sink.wait_for(2, timeout=20)
        wait_until(lambda: dovecot.folder_count(mailbox_user.name, "Processed") == 1, what="mail moved to Processed")
    assert Ticket.select().count() == 1
    ticket = Ticket.get()
    assert (ticket.requester_address, ticket.requester_name) == ("anna@customer.example", "Anna Svensson")
    assert ticket.subject == "Skrivaren är trasig" and "plan 3" in ticket.description
    assert (ticket.type, ticket.priority, ticket.status, ticket.tier) == ("incident", "P3", "new", 1)
    assert ticket.events.count() >= 2
    acks = [m for m in got if m.rcpt_tos == ["anna@customer.example"]]
    notes = [m for m in got if m.rcpt_tos == ["l1@example.com"]]
    assert len(acks) == 1 and len(notes) == 1
    ack = _parse(acks[0].data)
    assert f"[SD#{ticket.id}]" in ack["Subject"]
    assert ack["In-Reply-To"] == "<first@customer.example>"
    assert "<first@customer.example>" in ack["References"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Auto-Response-Suppress"] == "All"
    assert ack["Message-ID"].endswith("@example.com>")
    assert ack["Reply-To"].addresses[0].addr_spec.startswith("support+t")
    assert acks[0].mail_from.startswith("support+b.")
    assert dovecot.folder_count(mailbox_user.name, "INBOX") == 0
    assert InboundMail.get().state == "processed"


def test_two_copies_of_one_mail_make_one_ticket(tmp_path, mailbox_user, smtp_sink):
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    raw = make_mail(message_id="<twice@customer.example>")
    dovecot.append(mailbox_user.name, "INBOX", raw)
    dovecot.append(mailbox_user.name, "INBOX", raw)
    with DaemonThread(cfg):
        smtp_sink.wait_for(2, timeout=20)
        wait_until(lambda: dovecot.folder_count(mailbox_user.name, "Processed") == 2, what="both copies moved")
    assert Ticket.select().count() == 1
    assert sorted(r.state for r in InboundMail.select()) == ["duplicate", "processed"]
    assert len(smtp_sink.received) == 2  # one acknowledgement, one notification, not four


def test_uidvalidity_change_does_not_make_a_second_ticket(tmp_path, mailbox_user, smtp_sink):
    """After the server renumbers the folder, the same mail seen again changes nothing."""
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    raw = make_mail(message_id="<renumbered@customer.example>")
    dovecot.append(mailbox_user.name, "INBOX", raw)
    with DaemonThread(cfg):
        smtp_sink.wait_for(2, timeout=20)
        wait_until(lambda: dovecot.folder_count(mailbox_user.name, "Processed") == 1)
    # the same mail is back in the inbox, and our record of the folder is from another UIDVALIDITY
    # (what a server that renumbers its folder looks like to us: every UID is new again)
    from mailticket.models import InboundMail as IM
    IM.update(uidvalidity=IM.uidvalidity - 1).execute()
    dovecot.append(mailbox_user.name, "INBOX", raw)
    with DaemonThread(cfg):
        wait_until(lambda: dovecot.folder_count(mailbox_user.name, "Processed") == 2, what="second copy moved")
    assert Ticket.select().count() == 1
    assert IM.select().where(IM.state == "duplicate").count() == 1
    assert len(smtp_sink.received) == 2


def test_mail_through_the_built_in_listener(tmp_path, smtp_sink):
    import smtplib
    port = free_port()
    cfg = write_config(tmp_path, sink=smtp_sink, listener_port=port)
    with DaemonThread(cfg):
        wait_until(lambda: _accepts(port), what="listener up")
        with smtplib.SMTP("127.0.0.1", port) as s:
            s.sendmail("anna@customer.example", ["support@example.com"],
                       make_mail(message_id="<via-listener@customer.example>"))
        got = smtp_sink.wait_for(2, timeout=20)
    assert Ticket.select().count() == 1
    ack = [m for m in got if m.rcpt_tos == ["anna@customer.example"]]
    assert len(ack) == 1 and _parse(ack[0].data)["In-Reply-To"] == "<via-listener@customer.example>"


def _accepts(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_unusable_mail_is_quarantined_and_the_loop_goes_on(tmp_path, mailbox_user, smtp_sink):
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    dovecot.append(mailbox_user.name, "INBOX", b"\r\n\r\n")  # no headers, no body, no sender
    dovecot.append(mailbox_user.name, "INBOX", make_mail(message_id="<after-bad@customer.example>"))
    with DaemonThread(cfg):
        got = smtp_sink.wait_for(3, timeout=20)
        wait_until(lambda: dovecot.folder_count(mailbox_user.name, "Quarantine") == 1, what="quarantined")
        wait_until(lambda: dovecot.folder_count(mailbox_user.name, "Processed") == 1, what="good mail processed")
    assert Ticket.select().count() == 1
    bad = InboundMail.get(InboundMail.state == "quarantined")
    assert bad.reason
    alerts = [m for m in got if m.rcpt_tos == ["admin@example.com"]]
    assert len(alerts) == 1 and bad.reason.split(":")[0] in alerts[0].data.decode(errors="replace")


def test_mail_pushed_over_lmtp_by_an_mta(tmp_path, smtp_sink):
    """An MTA delivering over LMTP gets one reply per recipient, and only after the mail is stored."""
    import smtplib
    port = free_port()
    cfg = write_config(tmp_path, sink=smtp_sink, extra={"listener": {"enabled": True, "host": "127.0.0.1",
                                                                      "port": port, "protocol": "lmtp"}})
    with DaemonThread(cfg):
        wait_until(lambda: _accepts(port), what="LMTP listener up")
        lmtp = smtplib.LMTP("127.0.0.1", port)
        refused = lmtp.sendmail("anna@customer.example", ["support@example.com", "support+x@example.com"],
                                make_mail(message_id="<via-lmtp@customer.example>"))
        lmtp.quit()
        assert refused == {}
        got = smtp_sink.wait_for(2, timeout=20)
    assert Ticket.select().count() == 1
    stored = InboundMail.get()
    assert stored.source == "listener" and b"Delivered-To: support@example.com" in bytes(stored.raw)
    assert any(m.rcpt_tos == ["anna@customer.example"] for m in got)


def test_listener_refuses_with_451_when_the_mail_cannot_be_stored(tmp_path):
    """The sending MTA keeps the mail and retries: a 451, never a 250 for a mail we did not keep."""
    import smtplib
    import threading
    from mailticket.service.mailbox import _Handler

    def broken_store(raw):
        raise OSError("disk full")

    handler = _Handler(broken_store, threading.Event(), lmtp=False)
    from aiosmtpd.controller import Controller
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as s:
            try:
                s.sendmail("a@customer.example", ["support@example.com"], make_mail())
                raise AssertionError("accepted a mail it could not store")
            except smtplib.SMTPDataError as exc:
                assert exc.smtp_code == 451
    finally:
        controller.stop()


def test_a_mailbox_full_of_old_mail_mails_nobody(tmp_path, mailbox_user, smtp_sink):
    from datetime import datetime, timedelta, timezone
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    old = datetime.now(timezone.utc) - timedelta(days=30)
    for i in range(5):
        dovecot.append(mailbox_user.name, "INBOX", make_mail(sender=f"old{i}@customer.example", date=old,
                                                             message_id=f"<old{i}@customer.example>"))
    dovecot.append(mailbox_user.name, "INBOX", make_mail(message_id="<fresh@customer.example>"))
    with DaemonThread(cfg):
        wait_until(lambda: dovecot.folder_count(mailbox_user.name, "Processed") == 6, timeout=20)
        smtp_sink.wait_for(2, timeout=10)
    assert Ticket.select().count() == 6
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.received) == ["anna@customer.example", "l1@example.com"]
    assert Outbox.select().count() == 2
