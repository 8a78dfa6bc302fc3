"""Plain vacation responders cannot start a mail storm (issue 25, point 1), as the desk meets them:
Dovecot in, the daemon in a thread with an injected clock, the SMTP sink out, on SQLite (English)
and PostgreSQL (Swedish).

A scripted responder answers every mail it gets, at once, with the same text, the way an Outlook
rule or an old Exchange does it: ``Re: <subject>`` (``SV:`` in Swedish), threaded, to the
Reply-To, with no ``Auto-Submitted`` and no ``Precedence``. The test plays an hour in rounds of
four minutes of the desk's clock: each round the responders answer what reached them, the desk
processes it and sends what it sends. Counted at the end: at most a handful of mails to each.

- two agents with responders: a note ping-pongs once, then the repeated text stops it;
- the tier address with a responder: its answers open no ticket, join no ticket and cause no
  ``requester_update``; its mail without a ticket is dropped;
- a requester with a responder: the first answer is an update, the rest are recorded only, and a
  resolved ticket stays resolved.
"""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest

from mailticket.clock import FakeClock
from mailticket.models import Event, InboundMail, Participant, Ticket
from tests.harness import DaemonThread, delivery_report, make_mail, wait_until, write_config
from tests.test_conversations_agents import crlf, gmail_reply, plain_text, reply_address

ROUND = timedelta(minutes=4)
ROUNDS = 15  # an hour
HANDFUL = 4  # the most mails any one responder may get in that hour

ANNA = "anna@customer.example"
VACATION = {"en": "Thank you for your mail. I am on vacation until 20 November and read no mail until then.",
            "sv": "Tack för ditt mejl. Jag har semester till den 20 november och läser inga mejl förrän dess."}
PREFIX = {"en": "Re:", "sv": "SV:"}


class Desk:
    """LiveDesk (test_conversations_agents) with a clock the test moves."""

    def __init__(self, tmp_path, user, sink, url, locale):
        self.user, self.sink, self.locale = user, sink, locale
        self.clock = FakeClock()
        self.config_path = write_config(tmp_path, user=user, sink=sink, extra={
            "database": {"url": url}, "service": {"locale": locale}})

    def __enter__(self):
        self.daemon = DaemonThread(self.config_path, clock=self.clock).__enter__()
        return self

    def __exit__(self, *exc):
        self.daemon.__exit__(*exc)

    def deliver(self, raw: bytes) -> None:
        self.user.server.append(self.user.name, "INBOX", raw)
        self.delivered = getattr(self, "delivered", 0) + 1

    def settle(self) -> None:
        """Everything delivered is processed, and everything queued is at the sink."""
        n = getattr(self, "delivered", 0)
        wait_until(lambda: InboundMail.select().where(InboundMail.state != "received").count() >= n,
                   timeout=60, what=f"{n} mails processed")
        from mailticket.models import Outbox
        wait_until(lambda: not Outbox.select().where(Outbox.status == "queued").exists(), timeout=60,
                   what="outbox drained")

    def mails(self, rcpt: str) -> list[EmailMessage]:
        from email import message_from_bytes, policy
        return [message_from_bytes(m.data, policy=policy.default) for m in self.sink.received if rcpt in m.rcpt_tos]


@pytest.fixture(params=[("sqlite", "en"), ("postgresql", "sv")], ids=["sqlite-en", "postgresql-sv"])
def desk(request, tmp_path, mailbox_user, smtp_sink):
    kind, locale = request.param
    url = f"sqlite:///{tmp_path / 'mailticket.db'}" if kind == "sqlite" else request.getfixturevalue("pg_url")
    with Desk(tmp_path, mailbox_user, smtp_sink, url, locale) as live:
        yield live


class Responder:
    """Answers every mail to ``address`` with the same text: plain headers, threaded, to the Reply-To."""

    def __init__(self, desk: Desk, address: str):
        self.desk, self.address, self.seen, self.sent = desk, address, 0, 0

    def answer_new(self) -> None:
        got = self.desk.mails(self.address)
        for mail in got[self.seen:]:
            self.answer(mail)
        self.seen = len(got)

    def answer(self, mail: EmailMessage) -> None:
        msg = EmailMessage()
        msg["From"] = self.address
        msg["To"] = reply_address(mail) if mail["Reply-To"] else str(mail["From"])
        msg["Subject"] = f"{PREFIX[self.desk.locale]} {mail['Subject']}"
        msg["Date"] = format_datetime(self.desk.clock.now())
        msg["Message-ID"] = make_msgid(domain="vacation.example")
        msg["In-Reply-To"] = mail["Message-ID"]
        msg["References"] = mail["Message-ID"]
        msg.set_content(VACATION[self.desk.locale])
        self.desk.deliver(crlf(msg))
        self.sent += 1


def play_an_hour(desk: Desk, responders: list[Responder], during=None) -> None:
    """ROUNDS rounds: the responders answer, the desk settles, the clock moves on. ``during(i)``
    runs at round i (a person's mail in the middle of the hour)."""
    for i in range(ROUNDS):
        if during is not None:
            during(i)
        desk.settle()
        for r in responders:
            r.answer_new()
        desk.settle()
        desk.clock.advance(ROUND)


def open_ticket(desk: Desk, message_id: str) -> Ticket:
    desk.deliver(make_mail(message_id=message_id, subject="Printer broken", date=desk.clock.now()))
    desk.settle()
    return Ticket.get(Ticket.thread_root == message_id.strip("<>"))


def kinds(desk: Desk, rcpt: str, ticket: Ticket) -> list[str]:
    """What reached ``rcpt`` about the ticket, by the kind our outbox recorded."""
    from mailticket.models import Outbox
    ids = {m["Message-ID"].strip("<>") for m in desk.mails(rcpt)}
    return sorted(o.kind for o in Outbox.select().where(Outbox.ticket == ticket) if o.message_id in ids)


def test_two_agents_with_responders_ping_pong_a_note_once(desk):
    ticket = open_ticket(desk, "<notes@customer.example>")
    (notification,) = desk.mails("l1@example.com")
    alice, bob = Responder(desk, "alice@example.com"), Responder(desk, "bob@example.com")
    desk.deliver(gmail_reply(notification, "#note\nI am looking at the print server."))
    desk.settle()
    play_an_hour(desk, [alice, bob])
    to_alice, to_bob = desk.mails("alice@example.com"), desk.mails("bob@example.com")
    assert 1 <= len(to_bob) <= HANDFUL and len(to_alice) <= HANDFUL, (len(to_alice), len(to_bob))
    assert set(kinds(desk, "bob@example.com", ticket)) == {"note"}
    # the responders stopped answering because nothing more came, not because a cap held mail back
    assert alice.sent == len(to_alice) and bob.sent == len(to_bob)
    assert not Event.select().where(Event.ticket == ticket, Event.kind == "suppressed").exists()
    repeats = Event.select().where(Event.ticket == ticket, Event.kind == "auto_reply")
    assert repeats.count() >= 1 and all(e.data["repeat_of"] for e in repeats)
    assert all(VACATION[desk.locale] in e.text for e in repeats)
    # the requester heard nothing of it: the acknowledgement only
    assert len(desk.mails(ANNA)) == 1


def test_a_tier_address_with_a_responder_opens_nothing_and_gets_nothing_back(desk):
    ticket = open_ticket(desk, "<tier@customer.example>")
    tier = Responder(desk, "l1@example.com")

    def requester_writes(i):
        if i == 5:  # a real follow-up in the middle of the hour: the tier is told once
            (ack,) = desk.mails(ANNA)
            desk.deliver(gmail_reply(ack, "It now prints blank pages too.", sender=f"Anna <{ANNA}>"))
    play_an_hour(desk, [tier], during=requester_writes)
    assert kinds(desk, "l1@example.com", ticket) == ["new_ticket", "requester_update"]
    assert tier.sent == 2
    assert Ticket.select().count() == 1 and not Ticket.select().where(Ticket.requester_address == "l1@example.com").exists()
    assert not Participant.select().where(Participant.address == "l1@example.com").exists()
    recorded = Event.select().where(Event.ticket == ticket, Event.kind == "auto_reply", Event.actor == "l1@example.com")
    assert recorded.count() == 2 and all(VACATION[desk.locale] in e.text for e in recorded)
    # a responder that writes a new mail (no tag, no thread) opens no ticket either
    desk.deliver(make_mail(sender="l1@example.com", subject="Re: Printer broken",
                           body=VACATION[desk.locale], date=desk.clock.now()))
    desk.settle()
    assert Ticket.select().count() == 1
    dropped = InboundMail.get(InboundMail.state == "dropped")
    assert dropped.reason == "mail from our own address l1@example.com: opens no ticket, nothing sent"
    assert len(desk.mails("l1@example.com")) == 2


def test_a_requester_with_a_responder_gets_a_handful_and_a_resolved_ticket_stays_resolved(desk):
    ticket = open_ticket(desk, "<requester@customer.example>")
    (notification,) = desk.mails("l1@example.com")
    anna = Responder(desk, ANNA)

    def agent_works(i):
        if i in (2, 6):
            desk.deliver(gmail_reply(notification, f"Please try again now (attempt {i})."))
        if i == 10:
            desk.deliver(gmail_reply(notification, "#status resolved\nThe toner was empty; replaced."))
    play_an_hour(desk, [anna], during=agent_works)
    to_anna = kinds(desk, ANNA, ticket)
    assert to_anna == ["acknowledgement", "agent_reply", "agent_reply", "resolved"], to_anna
    assert anna.sent == 4
    # the responder's first answer is news to the tier (it might be a person's); its repeats are not
    assert kinds(desk, "l1@example.com", ticket) == ["new_ticket", "requester_update"]
    assert Ticket.get_by_id(ticket.id).status == "resolved"
    repeats = Event.select().where(Event.ticket == ticket, Event.kind == "auto_reply", Event.actor == ANNA)
    assert repeats.count() == 3
    assert "vacation" in plain_text(desk.mails("l1@example.com")[-1]) or "semester" in plain_text(
        desk.mails("l1@example.com")[-1])


def test_an_agents_responder_answering_a_notification_never_reaches_the_requester(desk):
    """The tier's list forwards the new-ticket notification to Alice, whose responder answers it at
    once through the signed reply address: a verified agent's reply by every header. Its text says
    she is away, so it stays an internal note; the requester hears nothing of it, and a person's
    reply later, or one with a command on top, goes out as ever."""
    ticket = open_ticket(desk, "<away@customer.example>")
    (notification,) = desk.mails("l1@example.com")
    alice = Responder(desk, "alice@example.com")
    alice.answer(notification)
    desk.settle()
    play_an_hour(desk, [alice])
    assert kinds(desk, ANNA, ticket) == ["acknowledgement"]
    (kept,) = Event.select().where(Event.ticket == ticket, Event.actor == "alice@example.com", Event.kind == "note")
    assert VACATION[desk.locale] in kept.text and kept.data["absence"]
    assert Ticket.get_by_id(ticket.id).first_response_at is None  # an absence notice answers nobody
    # Alice, back, writes the same words herself with a command on top: that is hers, and it goes
    desk.deliver(gmail_reply(notification, "#status pending\n" + VACATION[desk.locale]))
    desk.settle()
    assert kinds(desk, ANNA, ticket) == ["acknowledgement", "agent_reply"]


# ---------------------------------------------------------------- the admin's alerts under heavy traffic

UNANSWERABLE = "From: Nobody Known\r\nReturn-Path: <>\r\n"
DIGEST_SUBJECT = {"en": "more mails quarantined since", "sv": "mejl i karantän sedan"}


def _broken(n: str, desk: Desk) -> bytes:
    return (UNANSWERABLE + f"To: support@example.com\r\nSubject: Invoice {n}\r\nMessage-ID: <{n}@nobody.example>\r\n"
            f"Date: {format_datetime(desk.clock.now())}\r\n\r\nPlease pay.\r\n").encode()


@pytest.fixture(params=[("sqlite", "en"), ("postgresql", "sv")], ids=["sqlite-en", "postgresql-sv"])
def quick_alarms(request, tmp_path, mailbox_user, smtp_sink):
    """The desk with the alarm check (which sends the digest) every second."""
    kind, locale = request.param
    url = f"sqlite:///{tmp_path / 'mailticket.db'}" if kind == "sqlite" else request.getfixturevalue("pg_url")
    live = Desk(tmp_path, mailbox_user, smtp_sink, url, locale)
    live.config_path = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={
        "database": {"url": url}, "service": {"locale": locale, "alarm_after": "4s"}})
    with live:
        yield live


def test_admin_alerts_arrive_as_a_digest_after_heavy_quarantine_traffic(quick_alarms):
    desk = quick_alarms
    cap = desk.daemon.config.rate_limits.quarantine_alerts_day
    # user traffic to the admin's neighbours and a pile of unusable mail at the same time
    for n in range(12):
        desk.deliver(make_mail(sender=f"User {n} <user{n}@customer.example>", subject=f"VPN {n} down",
                               date=desk.clock.now()))
    for n in range(cap + 4):
        desk.deliver(_broken(f"a{n}", desk))
    desk.settle()
    digest = wait_until(lambda: [m for m in desk.mails("admin@example.com")
                                 if DIGEST_SUBJECT[desk.locale] in str(m["Subject"])], timeout=30,
                        what="the first digest")
    alerts = [m for m in desk.mails("admin@example.com") if DIGEST_SUBJECT[desk.locale] not in str(m["Subject"])]
    assert len(alerts) == cap and len(digest) == 1
    text = plain_text(digest[0])
    assert str(digest[0]["Subject"]).startswith("4 " if desk.locale == "en" else "Ytterligare 4 ")
    assert all(f"Invoice a{n}" in text for n in range(cap, cap + 4)) and "Invoice a0" not in text and "mailticket quarantine --reprocess all" in text
    # each mail's reason in the desk's language, as in the alerts (kept translatable: reason_msg)
    reason = {"en": "no usable sender address", "sv": "ingen användbar avsändaradress"}[desk.locale]
    assert text.count(reason) == 4 and all(reason in plain_text(m) for m in alerts), text
    # more within the hour wait for the next digest, held and counted, never dropped
    for n in range(5):
        desk.deliver(_broken(f"b{n}", desk))
    desk.settle()
    from mailticket.desk.quarantinedigest import held, send_digest
    assert held() == 5 and send_digest(desk.daemon.desk, desk.clock.now()) == 0
    assert len(desk.mails("admin@example.com")) == cap + 1
    desk.clock.advance(timedelta(hours=1, minutes=1))
    wait_until(lambda: len(desk.mails("admin@example.com")) == cap + 2, timeout=30, what="the second digest")
    second = desk.mails("admin@example.com")[-1]
    assert DIGEST_SUBJECT[desk.locale] in str(second["Subject"]) and all(f"Invoice b{n}" in plain_text(second) for n in range(5))
    assert held() == 0
    assert InboundMail.select().where(InboundMail.state == "quarantined").count() == cap + 9
    # the users got their acknowledgements all the same
    assert all(len(desk.mails(f"user{n}@customer.example")) == 1 for n in range(12))


DELIVERY_DIGEST_SUBJECT = {"en": "more mails could not be delivered", "sv": "Ytterligare"}


def _dsn(ack) -> bytes:
    """The bounce a forged sender's mail server sends back for our acknowledgement ``ack``."""
    return delivery_report(to=ack.mail_from, original_id=ack.message["Message-ID"], rcpt=ack.rcpt_tos[0],
                           mta="mx.forged.example")


def test_a_backscatter_storm_is_a_days_alerts_and_a_digest_not_a_mail_per_bounce(quick_alarms):
    """Spam with forged senders: every acknowledgement bounces. The admin gets the day's
    delivery_alerts_day alerts one by one, then the rest in one digest, each bounce listed with
    the server's words; every bounce is in its ticket's history. (Before, one mail per bounce.)"""
    desk = quick_alarms
    cap = desk.daemon.config.rate_limits.delivery_alerts_day
    n = cap + 5
    for i in range(n):
        desk.deliver(make_mail(sender=f"Victim {i} <victim{i}@forged.example>", subject=f"Cheap pills {i}",
                               message_id=f"<pills{i}@forged.example>", date=desk.clock.now()))
    desk.settle()
    acks = [m for m in desk.sink.received if m.rcpt_tos[0].endswith("@forged.example")]
    assert len(acks) == n
    for ack in acks:
        desk.deliver(_dsn(ack))
    desk.settle()
    def digests():
        return [m for m in desk.mails("admin@example.com") if DELIVERY_DIGEST_SUBJECT[desk.locale] in str(m["Subject"])]
    wait_until(digests, timeout=30, what="the delivery digest")
    from mailticket.desk.deliveryalerts import held
    if held():  # the alarm check ran while the bounces still came in: the rest wait for the next hour's
        assert len(digests()) == 1
        desk.clock.advance(timedelta(hours=1, minutes=1))
        wait_until(lambda: len(digests()) == 2, timeout=30, what="the second delivery digest")
    assert held() == 0
    alerts = [m for m in desk.mails("admin@example.com") if "@forged.example" in str(m["Subject"])]
    assert len(alerts) == cap
    texts = [plain_text(m) for m in digests()]
    counts = [int(str(m["Subject"]).split()[0 if desk.locale == "en" else 1]) for m in digests()]
    assert sum(counts) == n - cap
    listed = sorted(i for i in range(n) for t in texts if f"victim{i}@forged.example" in t)
    assert listed == list(range(cap, n)), "each bounce past the day's alerts listed once, in a digest"
    assert sum(t.count("Recipient address rejected: User unknown") for t in texts) == n - cap
    assert all("mailticket outbox --retry all" in t and ("Mottagare" in t) == (desk.locale == "sv") for t in texts)
    assert Event.select().where(Event.kind == "delivery_failure").count() == n
    assert len(desk.mails("admin@example.com")) == cap + len(texts)
