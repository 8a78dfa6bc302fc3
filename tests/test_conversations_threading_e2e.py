"""One conversation end to end on real servers: Dovecot in, the daemon, the SMTP sink out.
The requester's replies are built from the mails the sink received, as her client would."""

import email
import email.policy

from mailticket.models import Event, InboundMail, Ticket
from tests.harness import DaemonThread, make_mail, wait_until, write_config
from tests.test_conversations_threading import _dsn, gmail_reply, outlook_reply, text_of


def _parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_outlook_reply_out_of_office_and_bounce_through_the_daemon(tmp_path, mailbox_user, smtp_sink):
    dovecot, user = mailbox_user.server, mailbox_user.name
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    dovecot.append(user, "INBOX", make_mail(message_id="<e2e-first@customer.example>"))
    with DaemonThread(cfg):
        smtp_sink.wait_for(2, timeout=20)
        ack_envelope = next(m for m in smtp_sink.received if m.rcpt_tos == ["anna@customer.example"])
        ack = _parse(ack_envelope.data)
        ticket = Ticket.get()

        # Outlook answers to the Reply-To address with In-Reply-To only
        dovecot.append(user, "INBOX", outlook_reply(ack, "Still broken: error E-203."))
        got = smtp_sink.wait_for(3, timeout=20)
        update = _parse(got[-1].data)
        assert got[-1].rcpt_tos == ["l1@example.com"] and "E-203" in text_of(update)
        assert "Sent: Monday" not in text_of(update)

        # a Gmail reply-all that reaches the desk twice (To the reply address, Cc support@)
        twice = gmail_reply(ack, "Adding a photo later.", to=str(ack["Reply-To"]), cc="support@example.com",
                            message_id="<e2e-twice@customer.example>")
        dovecot.append(user, "INBOX", twice)
        dovecot.append(user, "INBOX", twice)
        wait_until(lambda: InboundMail.select().where(InboundMail.state == "duplicate").count() == 1,
                   what="the second copy seen as a duplicate")

        # her out-of-office answers our acknowledgement: recorded, never answered
        ooo = outlook_reply(ack, "I am out of the office.", prefix="Automatic reply: ").replace(
            b"Thread-Topic:", b"Auto-Submitted: auto-replied\r\nThread-Topic:", 1)
        dovecot.append(user, "INBOX", ooo)
        wait_until(lambda: Event.select().where(Event.ticket == ticket.id, Event.kind == "auto_reply").exists(),
                   what="the out-of-office recorded")

        # her server bounces the acknowledgement to our signed return path, twice
        bounce = _dsn(ack, to=ack_envelope.mail_from, message_id="<e2e-dsn@mx.customer.example>")
        dovecot.append(user, "INBOX", bounce)
        dovecot.append(user, "INBOX", bounce)
        wait_until(lambda: dovecot.folder_count(user, "Processed") == 7, what="every mail moved to Processed")
        wait_until(lambda: any(m.rcpt_tos == ["admin@example.com"] for m in smtp_sink.received),
                   what="the admin told of the failure")
    assert Ticket.select().count() == 1
    kinds = [e.kind for e in Event.select().where(Event.ticket == ticket.id)]
    assert kinds.count("reply_in") == 2 and kinds.count("auto_reply") == 1 and kinds.count("delivery_failure") == 1
    to_admin = [m for m in smtp_sink.received if m.rcpt_tos == ["admin@example.com"]]
    to_anna = [m for m in smtp_sink.received if m.rcpt_tos == ["anna@customer.example"]]
    assert len(to_admin) == 1 and len(to_anna) == 1  # one failure notice; she only ever got the acknowledgement
    assert sorted(r.state for r in InboundMail.select()) == ["duplicate", "duplicate"] + ["processed"] * 5
