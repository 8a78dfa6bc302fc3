"""Admin safety at the mailbox, as the desk meets it: Dovecot in, the daemon in a thread, the SMTP sink
out, on SQLite and PostgreSQL, in English and Swedish.

- each upstream spam verdict -> the mail in the spam folder, no ticket, nothing sent, counted;
- each broken sender shape -> a ticket for the recovered address (the choice in its history), or
  the quarantine with the reason when no header names a usable address;
- a mail with junk before its header block -> a ticket;
- each loop header of another system -> a ticket, no acknowledgement;
- a verified agent's reply with a spam verdict still reaches the requester.
"""

from __future__ import annotations

import re

from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from mailticket.desk.reporting import spam_count
from mailticket.models import Event, InboundMail, Outbox, Ticket
from tests.harness import make_mail, run_cli, wait_until
from tests.test_conversations_agents import LiveDesk, gmail_reply, plain_text

SPAM_HEADERS = {
    "spamassassin-flag": ("X-Spam-Flag", "YES"),
    "spamassassin-status": ("X-Spam-Status", "Yes, score=9.3 required=5.0 tests=BAYES_99,URIBL_BLACK"),
    "rspamd": ("X-Spam", "Yes"),
    "exchange-scl": ("X-MS-Exchange-Organization-SCL", "7"),
}
NOT_SPAM = {
    "spamassassin-no": ("X-Spam-Status", "No, score=-0.1 required=5.0"),
    "exchange-scl-1": ("X-MS-Exchange-Organization-SCL", "1"),
}

# (name, headers of the mail as raw lines, the address the ticket must be for)
BROKEN_SENDERS = [
    ("empty-from+sender", "From: \r\nSender: Anna Svensson <anna@customer.example>\r\n", "anna@customer.example"),
    ("null-from+reply-to", "From: <>\r\nReply-To: bertil@customer.example\r\n", "bertil@customer.example"),
    ("bare-name+second-from", "From: Cecilia Holm\r\nFrom: Cecilia Holm <cecilia@customer.example>\r\n",
     "cecilia@customer.example"),
    ("malformed+return-path", "From: David <david at customer>\r\nReturn-Path: <david@customer.example>\r\n",
     "david@customer.example"),
    ("loose-address", "From: Erik Lund erik@customer.example\r\n", "erik@customer.example"),
    ("order:sender-before-reply-to", "From: Frida\r\nReply-To: <frida.private@home.example>\r\n"
                                     "Sender: frida@customer.example\r\n", "frida@customer.example"),
]
UNANSWERABLE = "From: Nobody Known\r\nReturn-Path: <>\r\n"

# the loop / auto-submission headers of other systems (a table in inbound/classify.py)
LOOP_HEADERS = {
    "procmail": ("X-Loop", "helpdesk@other.example"),
    "otrs": ("X-OTRS-Loop", "yes"),
    "rt": ("RT-Loop-Prevention", "rt.other.example"),
    "rt-old": ("X-RT-Loop-Prevention", "rt.other.example"),
    "zendesk": ("X-Zendesk-From-Account-Id", "68b8aed"),
    "jira": ("X-JIRA-FingerPrint", "3f0c1a9d2b7e"),
}


def _raw(headers: str, n: str, body: str = "The printer on floor 3 does not print.") -> bytes:
    return (headers + f"To: support@example.com\r\nSubject: Printer {n}\r\nMessage-ID: <{n}@customer.example>\r\n"
            f"Date: {_now()}\r\n\r\n{body}\r\n").encode()


def _now() -> str:
    return format_datetime(datetime.now(timezone.utc))  # older than ack_max_age would get no acknowledgement


@pytest.fixture(params=[("sqlite", "en"), ("postgresql", "sv")], ids=["sqlite-en", "postgresql-sv"])
def desk(request, tmp_path, mailbox_user, smtp_sink):
    kind, locale = request.param
    url = f"sqlite:///{tmp_path / 'mailticket.db'}" if kind == "sqlite" else request.getfixturevalue("pg_url")
    with LiveDesk(tmp_path, mailbox_user, smtp_sink, extra={
            "database": {"url": url}, "service": {"locale": locale}}) as live:
        live.locale = locale
        yield live


def _requester_mails(live) -> list[str]:
    internal = {"l1@example.com", "l2@example.com", "l3@example.com", "admin@example.com", "security@example.com"}
    return [r for m in live.sink.received for r in m.rcpt_tos if r not in internal]


def test_each_spam_verdict_goes_to_the_spam_folder_and_nothing_goes_out(desk):
    for n, (name, value) in {**SPAM_HEADERS, **NOT_SPAM}.items():
        desk.deliver(make_mail(sender=f"{n} <{n}@spammer.example>", subject="Cheap printers!!!",
                               message_id=f"<{n}@spammer.example>", headers={name: value}))
    desk.processed(len(SPAM_HEADERS) + len(NOT_SPAM))
    wait_until(lambda: desk.user.server.folder_count(desk.user.name, "Junk") == len(SPAM_HEADERS),
               what="the spam in the Junk folder")
    wait_until(lambda: desk.user.server.folder_count(desk.user.name, "INBOX") == 0, what="the inbox emptied")
    desk.wait_mail("l1@example.com", count=len(NOT_SPAM))
    desk.wait_outbox_sent()
    assert {t.requester_address for t in Ticket.select()} == {f"{n}@spammer.example" for n in NOT_SPAM}
    spam = {r.message_id: r.reason for r in InboundMail.select().where(InboundMail.state == "spam")}
    assert set(spam) == {f"{n}@spammer.example" for n in SPAM_HEADERS}
    for n, (name, value) in SPAM_HEADERS.items():
        assert spam[f"{n}@spammer.example"].startswith(f"spam verdict of the upstream filter: {name}: {value}")
    assert sorted(_requester_mails(desk)) == sorted(f"{n}@spammer.example" for n in NOT_SPAM)  # acks only
    assert not Outbox.select().where(Outbox.kind == "quarantine_alert").exists()  # no admin alert
    assert spam_count() == len(SPAM_HEADERS)


def test_each_broken_sender_gets_a_ticket_for_the_recovered_address_or_quarantine_with_the_reason(desk):
    for name, headers, _ in BROKEN_SENDERS:
        desk.deliver(_raw(headers, name.replace(":", "-")))
    desk.deliver(_raw(UNANSWERABLE, "nobody"))
    for _, _, address in BROKEN_SENDERS:
        (ack,) = desk.wait_mail(address)
        ticket = Ticket.get(Ticket.requester_address == address)
        assert f"[SD#{ticket.id}]" in ack["Subject"]
        (recovered,) = Event.select().where(Event.ticket == ticket, Event.kind == "sender_recovered")
        assert address == recovered.data["address"] and recovered.data["source"] in recovered.text
    sources = {Ticket.get(Ticket.requester_address == a).id: s for (_, _, a), s in zip(
        BROKEN_SENDERS, ["Sender", "Reply-To", "second From", "Return-Path", "From", "Sender"])}
    for ticket_id, source in sources.items():
        assert Event.get(Event.ticket == ticket_id, Event.kind == "sender_recovered").data["source"] == source
    wait_until(lambda: desk.user.server.folder_count(desk.user.name, "Quarantine") == 1, what="the quarantine")
    quarantined = InboundMail.get(InboundMail.state == "quarantined")
    assert quarantined.reason == ("no usable sender address: From 'Nobody Known' has no usable address, "
                                  "and none in second From, Sender, Reply-To, Return-Path")
    (alert,) = desk.wait_mail("admin@example.com")
    assert "Nobody Known" in plain_text(alert) and "Return-Path" in plain_text(alert)
    # none of them counts as an agent, whatever the header said
    assert all(Ticket.get(Ticket.requester_address == a).status == "new" for _, _, a in BROKEN_SENDERS)


def test_a_mail_with_junk_before_its_header_block_becomes_a_ticket(desk):
    dump = ("-----Original Message-----\r\nSaved by Outlook on 30 Nov 2026\r\n\r\n"
            "From: Greta Nyberg <greta@customer.example>\r\nTo: support@example.com\r\nSubject: VPN down\r\n"
            f"Message-ID: <dump@customer.example>\r\nDate: {_now()}\r\n\r\n"
            "The VPN does not connect since this morning.\r\n").encode()
    desk.deliver(dump)
    (ack,) = desk.wait_mail("greta@customer.example")
    ticket = Ticket.get(Ticket.requester_address == "greta@customer.example")
    assert ticket.subject == "VPN down" and "does not connect" in ticket.description
    assert f"[SD#{ticket.id}]" in ack["Subject"]


def test_each_loop_header_of_another_system_opens_a_ticket_without_an_acknowledgement(desk):
    for n, (name, value) in LOOP_HEADERS.items():
        desk.deliver(make_mail(sender=f"{n}@other.example", subject=f"Ticket from {n}",
                               message_id=f"<{n}@other.example>", headers={name: value}))
    desk.deliver(make_mail(sender="control@customer.example", message_id="<control@customer.example>"))
    desk.wait_mail("control@customer.example")  # the control mail is acknowledged
    desk.wait_mail("l1@example.com", count=len(LOOP_HEADERS) + 1)  # every one is a ticket for the tier
    desk.wait_outbox_sent()
    assert Ticket.select().count() == len(LOOP_HEADERS) + 1
    assert _requester_mails(desk) == ["control@customer.example"]
    for n, (name, _) in LOOP_HEADERS.items():
        ticket = Ticket.get(Ticket.requester_address == f"{n}@other.example")
        skipped = [e.text for e in Event.select().where(Event.ticket == ticket)]
        assert any(name.lower() in text for text in skipped), (n, skipped)


def test_a_verified_agent_reply_with_a_spam_verdict_still_reaches_the_requester(desk):
    ticket, notification = desk.open_ticket("<spamreply@customer.example>")
    desk.wait_mail("anna@customer.example")  # the acknowledgement
    # the filter in front of the mailbox puts its verdict on top of the agent's reply
    desk.deliver(b"X-Spam-Flag: YES\r\n" + gmail_reply(notification, "Restart the printer and try again."))
    answer = desk.wait_mail("anna@customer.example", count=2)[-1]
    assert "Restart the printer" in plain_text(answer)
    assert not InboundMail.select().where(InboundMail.state == "spam").exists()
    # an unproven "agent" mail with a verdict is spam like any other
    desk.deliver(make_mail(sender="Alice <alice@example.com>", subject=f"Re: [SD#{ticket.id}] x",
                           message_id="<forged@example.com>", headers={"X-Spam-Flag": "YES"},
                           body="#status closed"))
    wait_until(lambda: InboundMail.select().where(InboundMail.state == "spam").count() == 1, what="spam")
    assert Ticket.get_by_id(ticket.id).status != "closed"


def test_health_and_report_count_the_spam(desk):
    desk.deliver(make_mail(sender="x@spammer.example", message_id="<s1@spammer.example>",
                           headers={"X-Spam-Flag": "YES"}))
    desk.processed(1)
    health = run_cli("health", config=desk.config_path)
    assert "spam set aside (folder Junk): 1 in the last 24 h, 1 in all" in health.stdout.splitlines()
    report = run_cli("report", config=desk.config_path)
    label = {"en": "Mail set aside as spam:", "sv": "Skräppost som sorterats bort:"}[desk.locale]
    assert re.search(re.escape(label) + r" +1\n", report.stdout), report.stdout
