"""Conversations through the real pipeline: every reply is built from the mail the outbox holds,
the way Outlook, Gmail, Apple Mail, Thunderbird and other clients write it, and goes through
store_raw + process_one (SQLite and PostgreSQL, FakeClock, the real renderer and templates)."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest

from mailticket import db

from mailticket.desk import pipeline
from mailticket.clock import FakeClock
from mailticket.config import load_config
from mailticket.service.wiring import build_desk
from mailticket.models import Event, InboundMail, MessageRef, Outbox, Participant, Ticket
from tests.harness import make_mail, write_config

ANNA = "Anna Svensson <anna@customer.example>"
CRLF = email.policy.default.clone(linesep="\r\n")


@pytest.fixture
def desk(tmp_path, db_url):
    cfg = load_config(write_config(tmp_path, db_url=db_url, extra={
        "service": {"reopen_window": "14d"},
        "rate_limits": {"global_10min": 1000, "per_sender_day": 1000, "per_ticket": 1000}}))
    db.connect(cfg.database.url)
    return build_desk(cfg, clock=FakeClock())


# ---------------------------------------------------------------- helpers

_uid = iter(range(1, 1_000_000))


def deliver(desk, raw: bytes) -> pipeline.Outcome:
    """One mail arrives in the mailbox (a new UID) and is processed."""
    row = pipeline.store_raw(raw, source="imap:INBOX", uidvalidity=1, uid=next(_uid), now=desk.clock.now())
    return pipeline.process_one(desk, row)


def mails(kind: str, to: str | None = None) -> list[EmailMessage]:
    """The mails of one kind the outbox holds (optionally to one address), oldest first."""
    rows = Outbox.select().where(Outbox.kind == kind).order_by(Outbox.id)
    return [email.message_from_bytes(bytes(r.raw), policy=email.policy.default)
            for r in rows if to is None or to in r.recipients]


def outbox_row(msg: EmailMessage) -> Outbox:
    return Outbox.get(Outbox.message_id == msg["Message-ID"].strip("<>"))


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def events(ticket_id: int, kind: str | None = None) -> list[Event]:
    q = Event.select().where(Event.ticket == ticket_id).order_by(Event.id)
    return [e for e in q if kind is None or e.kind == kind]


def open_first_ticket(desk, *, cc=None, subject="Printer broken", body="The printer on floor 3 does not print."):
    """Anna writes to the desk; returns (ticket id, the acknowledgement she received)."""
    out = deliver(desk, make_mail(sender=ANNA, subject=subject, body=body, cc=cc, date=desk.clock.now(),
                                  message_id="<first.anna@customer.example>"))
    assert out.state == "processed" and out.ticket
    ack = mails("acknowledgement", "anna@customer.example")
    assert len(ack) == 1
    return out.ticket, ack[0]


def reply_mail(original: EmailMessage, *, sender: str, body: str, subject: str, to: str | None = None,
               in_reply_to: bool = True, references: bool = True, cc: str | None = None,
               headers: dict | None = None, html: str | None = None, message_id: str | None = None,
               date=None) -> bytes:
    """A reply to ``original``: to its Reply-To (as every client does) unless ``to`` is given."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to or str(original["Reply-To"] or original["From"])
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date) if date else original["Date"]
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain="customer.example")
    parent = original["Message-ID"]
    if in_reply_to:
        msg["In-Reply-To"] = parent
    if references:
        msg["References"] = " ".join(filter(None, [str(original["References"] or ""), parent])).strip()
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes(policy=CRLF)


def quoted(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


def outlook_reply(ack, new_text, *, prefix="RE: ", to=None, sender=ANNA, block=None):
    """Outlook: "RE: " + subject, In-Reply-To only (no References), the original under a header block."""
    block = block or ("From: Service Desk <support@example.com>\nSent: Monday, November 2, 2026 10:00 AM\n"
                      f"To: {sender}\nSubject: {ack['Subject']}")
    body = f"{new_text}\n\n________________________________\n{block}\n\n{text_of(ack)}"
    return reply_mail(ack, sender=sender, body=body, subject=prefix + ack["Subject"], references=False, to=to,
                      headers={"Thread-Topic": ack["Subject"], "Thread-Index": "AdnBx2ZzQ1V0c3RpbmdUaHJlYWQ=",
                               "X-Mailer": "Microsoft Outlook 16.0"})


def gmail_reply(original, new_text, *, sender=ANNA, to=None, cc=None, message_id=None, date=None):
    quote = f"On Mon, 2 Nov 2026 at 10:00, Service Desk <support@example.com> wrote:\n{quoted(text_of(original))}"
    html = (f'<div dir="ltr">{new_text}</div><br><div class="gmail_quote"><div class="gmail_attr">'
            f'On Mon, 2 Nov 2026 at 10:00, Service Desk wrote:</div><blockquote class="gmail_quote">'
            f'{text_of(original)}</blockquote></div>')
    return reply_mail(original, sender=sender, body=f"{new_text}\n\n{quote}\n", subject="Re: " + original["Subject"],
                      to=to, cc=cc, html=html, message_id=message_id, date=date)


# ---------------------------------------------------------------- replies from the common clients

def test_outlook_reply_without_references_lands_on_its_ticket_without_the_quote(desk):
    ticket, ack = open_first_ticket(desk)
    desk.clock.advance(timedelta(minutes=20))
    raw = outlook_reply(ack, "It still does not print, the display says E-203.", to="support@example.com")
    assert b"References:" not in raw
    out = deliver(desk, raw)
    assert (out.state, out.ticket) == ("processed", ticket)
    assert out.reason == "threaded by references"
    assert Ticket.select().count() == 1
    update = mails("requester_update", "l1@example.com")
    assert len(update) == 1
    seen = text_of(update[0])
    assert "E-203" in seen
    assert "Sent: Monday" not in seen and "Thanks for getting in touch" not in seen
    assert events(ticket, "reply_in")[-1].text.strip() == "It still does not print, the display says E-203."
    assert len(mails("acknowledgement")) == 1  # a follow-up is never acknowledged again


def test_outlook_reply_to_the_signed_reply_address_lands_by_token(desk):
    ticket, ack = open_first_ticket(desk)
    assert "support+" in str(ack["Reply-To"])
    out = deliver(desk, outlook_reply(ack, "Here is the model number: HP M404."))
    assert (out.state, out.ticket, out.reason) == ("processed", ticket, "threaded by token")


def test_outlook_reply_with_neither_token_nor_headers_lands_by_its_tag(desk):
    ticket, ack = open_first_ticket(desk)
    raw = reply_mail(ack, sender=ANNA, body="Any news?", subject="RE: " + ack["Subject"], to="support@example.com",
                     in_reply_to=False, references=False)
    out = deliver(desk, raw)
    assert (out.state, out.ticket, out.reason) == ("processed", ticket, "threaded by tag")


def test_gmail_reply_with_references_chain_lands_and_the_agents_see_only_the_new_text(desk):
    ticket, ack = open_first_ticket(desk)
    desk.clock.advance(timedelta(hours=1))
    raw = gmail_reply(ack, "I restarted it, same problem.", to="support@example.com")
    out = deliver(desk, raw)
    assert (out.state, out.ticket, out.reason) == ("processed", ticket, "threaded by references")
    seen = text_of(mails("requester_update", "l1@example.com")[0])
    assert "I restarted it, same problem." in seen
    assert "wrote:" not in seen and "> " not in seen and "Thanks for getting in touch" not in seen


def test_apple_mail_reply_lands_with_the_quote_removed(desk):
    ticket, ack = open_first_ticket(desk)
    body = ("Thanks, the queue is empty now.\n\nSent from my iPhone\n\n"
            f"> On 2 Nov 2026, at 10:00, Service Desk <support@example.com> wrote:\n>\n{quoted(text_of(ack))}\n")
    raw = reply_mail(ack, sender=ANNA, body=body, subject="Re: " + ack["Subject"], to="support@example.com",
                     headers={"X-Mailer": "iPhone Mail (20A362)"})
    out = deliver(desk, raw)
    assert (out.state, out.ticket) == ("processed", ticket)
    new = events(ticket, "reply_in")[-1].text
    assert "queue is empty" in new and "wrote:" not in new and "logged your request" not in new


def test_thunderbird_reply_lands(desk):
    ticket, ack = open_first_ticket(desk)
    body = f"The toner was empty, it works again.\n\nOn 02/11/2026 10:00, Service Desk wrote:\n{quoted(text_of(ack))}\n"
    raw = reply_mail(ack, sender=ANNA, body=body, subject="Re: " + ack["Subject"], to="support@example.com",
                     headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Thunderbird/115.5.0"})
    out = deliver(desk, raw)
    assert (out.state, out.ticket, out.reason) == ("processed", ticket, "threaded by references")
    assert events(ticket, "reply_in")[-1].text.strip() == "The toner was empty, it works again."


def test_swedish_sv_reply_lands_by_its_tag(desk):
    ticket, ack = open_first_ticket(desk)
    block = ("Från: Service Desk <support@example.com>\nSkickat: den 2 november 2026 10:00\n"
             f"Till: {ANNA}\nÄmne: {ack['Subject']}")
    raw = outlook_reply(ack, "Skrivaren fungerar fortfarande inte.", prefix="SV: ", to="support@example.com",
                        block=block)
    # a client that lost every header but the subject: only the tag can thread it
    raw = raw.replace(b"In-Reply-To:", b"X-Old-In-Reply-To:")
    out = deliver(desk, raw)
    assert (out.state, out.ticket, out.reason) == ("processed", ticket, "threaded by tag")
    seen = text_of(mails("requester_update", "l1@example.com")[0])
    assert "Skrivaren fungerar fortfarande inte." in seen and "Skickat:" not in seen


@pytest.mark.parametrize("prefix", ["回复：", "回复: ", "Re: AW: ", "RE[2]: ", "[EXTERNAL] Re: ", "Antw: ", "VS: ",
                                    "VB: ", "R: ", "RIF: ", "Fwd: Re: ", "WG: ", "AW: AW: "])
def test_every_common_reply_prefix_keeps_the_tag(desk, prefix):
    ticket, ack = open_first_ticket(desk)
    raw = reply_mail(ack, sender=ANNA, body="Update from me.", subject=prefix + ack["Subject"],
                     to="support@example.com", in_reply_to=False, references=False)
    out = deliver(desk, raw)
    assert (out.state, out.ticket, out.reason) == ("processed", ticket, "threaded by tag")
    assert Ticket.select().count() == 1


# ---------------------------------------------------------------- duplicates and colleagues

def test_reply_all_received_twice_is_one_follow_up(desk):
    ticket, ack = open_first_ticket(desk)
    raw = gmail_reply(ack, "Adding my colleague.", cc="support@example.com", message_id="<twice@customer.example>")
    first, second = deliver(desk, raw), deliver(desk, raw)
    assert (first.state, first.ticket) == ("processed", ticket)
    assert (second.state, second.ticket) == ("duplicate", ticket)
    assert Ticket.select().count() == 1
    assert len(events(ticket, "reply_in")) == 1
    assert len(mails("requester_update")) == 1
    assert [r.state for r in InboundMail.select().order_by(InboundMail.id)][-2:] == ["processed", "duplicate"]


def test_a_new_mail_received_twice_opens_one_ticket(desk):
    raw = make_mail(sender=ANNA, cc="support@example.com", date=desk.clock.now(), message_id="<new2@customer.example>")
    assert deliver(desk, raw).state == "processed"
    assert deliver(desk, raw).state == "duplicate"
    assert Ticket.select().count() == 1 and len(mails("acknowledgement")) == 1


def test_a_ccd_colleagues_reply_all_is_a_follow_up_on_the_same_ticket(desk):
    ticket, ack = open_first_ticket(desk, cc="Carl Berg <carl@customer.example>")
    assert Participant.select().where(Participant.ticket == ticket, Participant.address == "carl@customer.example").exists()
    anna_first = email.message_from_bytes(bytes(InboundMail.get(InboundMail.ticket == ticket).raw),
                                          policy=email.policy.default)
    # Carl answers Anna's mail with reply-all: To Anna, Cc the desk, In-Reply-To Anna's Message-ID
    raw = reply_mail(anna_first, sender="Carl Berg <carl@customer.example>", to=ANNA, cc="support@example.com",
                     body="Same here on floor 3.\n\nOn Mon, Anna wrote:\n> The printer on floor 3 does not print.",
                     subject="Re: Printer broken", date=desk.clock.now())
    out = deliver(desk, raw)
    assert (out.state, out.ticket, out.reason) == ("processed", ticket, "threaded by references")
    assert Ticket.select().count() == 1
    note = events(ticket, "reply_in")[-1]
    assert note.actor == "carl@customer.example" and note.text.strip() == "Same here on floor 3."
    assert len(mails("acknowledgement")) == 1


def test_a_colleague_answering_our_mail_becomes_a_participant(desk):
    """Anna forwarded our mail to Maria, who replies to it: to its signed reply address (its
    Reply-To), which proves she got it from the ticket's people."""
    ticket, ack = open_first_ticket(desk)
    assert ack["Reply-To"].addresses[0].addr_spec.startswith("support+t")
    out = deliver(desk, gmail_reply(ack, "I am Anna's manager, this is urgent for us.",
                                    sender="Maria Lind <maria@customer.example>"))
    assert (out.state, out.ticket, out.reason) == ("processed", ticket, "threaded by token")
    assert Ticket.select().count() == 1
    assert Participant.get(Participant.ticket == ticket, Participant.address == "maria@customer.example").name == "Maria Lind"
    assert "urgent" in text_of(mails("requester_update", "l1@example.com")[0])


def test_a_stranger_naming_our_message_id_adds_text_but_does_not_join(desk):
    """The same reply to the plain support address (In-Reply-To/References only): a Message-ID is
    no proof, so Maria's text reaches the tier, marked, but she gets none of the replies."""
    ticket, ack = open_first_ticket(desk)
    out = deliver(desk, gmail_reply(ack, "I am Anna's manager, this is urgent for us.",
                                    sender="Maria Lind <maria@customer.example>", to="support@example.com"))
    assert (out.state, out.ticket, out.reason) == ("processed", ticket, "threaded by references")
    assert not Participant.select().where(Participant.ticket == ticket).exists()
    reply = events(ticket, "reply_in")[-1]
    assert reply.actor == "maria@customer.example" and reply.data["unverified"] is True
    update = text_of(mails("requester_update", "l1@example.com")[0])
    assert "urgent" in update and "NOT ADDED to the ticket (1): maria@customer.example." in update
    assert "signed reply address" in update
    left = events(ticket, "participants_left_out")
    assert [(e.data["reason"], e.data["count"], e.data["addresses"]) for e in left] == [
        ("unverified", 1, ["maria@customer.example"])]


@pytest.mark.parametrize("subject", ["Re: [SD#{n}] I have this too", "回复：AW: [SD#{n}] I have this too",
                                     "[SD#{n}] RE: I have this too", "SV: SV: I have this too [SD#{n}]"])
def test_a_stranger_with_only_the_tag_opens_a_new_linked_ticket(desk, subject):
    ticket, ack = open_first_ticket(desk)
    raw = make_mail(sender="Eve <eve@elsewhere.example>", subject=subject.format(n=ticket),
                    body="My printer is also broken.", date=desk.clock.now())
    out = deliver(desk, raw)
    assert out.state == "processed" and out.ticket != ticket
    new = Ticket.get_by_id(out.ticket)
    assert new.linked_to == ticket and new.requester_address == "eve@elsewhere.example"
    assert new.subject == "I have this too"
    assert not Participant.select().where(Participant.ticket == ticket,
                                          Participant.address == "eve@elsewhere.example").exists()
    assert events(ticket, "link") and events(new.id, "link")
    assert not events(ticket, "reply_in")  # nothing of hers on the old ticket


# ---------------------------------------------------------------- resolved and closed tickets

def _resolve_by_agent(desk, ticket):
    """Alice answers the new-ticket notification with #status resolved."""
    notice = mails("new_ticket", "l1@example.com")[-1]
    raw = reply_mail(notice, sender="Alice <alice@example.com>", subject="Re: " + notice["Subject"],
                     body="#status resolved\nReplaced the toner.", date=desk.clock.now())
    out = deliver(desk, raw)
    assert (out.state, out.ticket) == ("processed", ticket)
    assert Ticket.get_by_id(ticket).status == "resolved"
    resolved = mails("resolved", "anna@customer.example")
    assert resolved
    return resolved[-1]


def test_a_reply_to_a_resolved_ticket_reopens_it(desk):
    ticket, ack = open_first_ticket(desk)
    resolved = _resolve_by_agent(desk, ticket)
    desk.clock.advance(timedelta(days=2))
    out = deliver(desk, gmail_reply(resolved, "Sorry, it broke again this morning.", to="support@example.com"))
    assert (out.state, out.ticket) == ("processed", ticket)
    assert Ticket.get_by_id(ticket).status == "open" and Ticket.select().count() == 1
    assert events(ticket, "reopen")
    seen = text_of(mails("reopened", "l1@example.com")[0])
    assert "broke again" in seen and "wrote:" not in seen


def test_a_reply_to_a_ticket_closed_longer_than_the_reopen_window_opens_a_new_linked_ticket(desk):
    from mailticket.desk import tickets
    ticket, ack = open_first_ticket(desk)
    resolved = _resolve_by_agent(desk, ticket)
    with Ticket._meta.database.atomic():
        tickets.set_status(desk, Ticket.get_by_id(ticket), "closed", desk.clock.now(), actor="system", notify=False)
    desk.clock.advance(timedelta(days=15))
    out = deliver(desk, gmail_reply(resolved, "The same printer is broken again.", to="support@example.com",
                                   date=desk.clock.now()))
    assert out.state == "processed" and out.ticket != ticket
    assert Ticket.get_by_id(ticket).status == "closed"
    new = Ticket.get_by_id(out.ticket)
    assert new.linked_to == ticket and new.requester_address == "anna@customer.example"
    assert len(mails("acknowledgement", "anna@customer.example")) == 2  # she learns the new number


def test_a_reply_to_a_ticket_closed_within_the_window_reopens_it(desk):
    from mailticket.desk import tickets
    ticket, ack = open_first_ticket(desk)
    resolved = _resolve_by_agent(desk, ticket)
    with Ticket._meta.database.atomic():
        tickets.set_status(desk, Ticket.get_by_id(ticket), "closed", desk.clock.now(), actor="system", notify=False)
    desk.clock.advance(timedelta(days=3))
    out = deliver(desk, gmail_reply(resolved, "Broken again.", to="support@example.com"))
    assert (out.state, out.ticket) == ("processed", ticket)
    assert Ticket.get_by_id(ticket).status == "open"


# ---------------------------------------------------------------- automatic mail

def test_an_out_of_office_answer_to_our_acknowledgement_is_recorded_and_never_answered(desk):
    ticket, ack = open_first_ticket(desk)
    sent_before = Outbox.select().count()
    raw = reply_mail(ack, sender=ANNA, to="support@example.com", subject="Automatic reply: " + ack["Subject"],
                     body="I am out of the office until Monday.", references=False,
                     headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"})
    out = deliver(desk, raw)
    assert (out.state, out.ticket) == ("processed", ticket)
    assert events(ticket, "auto_reply")
    assert Outbox.select().count() == sent_before  # no acknowledgement, no agent notification
    assert not events(ticket, "reply_in")


def test_an_out_of_office_on_a_resolved_ticket_does_not_reopen_it(desk):
    ticket, ack = open_first_ticket(desk)
    resolved = _resolve_by_agent(desk, ticket)
    raw = reply_mail(resolved, sender=ANNA, to="support@example.com", subject="Out of Office: " + resolved["Subject"],
                     body="I am away.", headers={"Auto-Submitted": "auto-replied"})
    out = deliver(desk, raw)
    assert (out.state, out.ticket) == ("processed", ticket)
    assert Ticket.get_by_id(ticket).status == "resolved"
    assert not events(ticket, "reopen")


def test_an_auto_reply_about_no_ticket_is_dropped_unanswered(desk):
    raw = make_mail(sender="Bob <bob@customer.example>", subject="Out of office", body="Away.",
                    headers={"Auto-Submitted": "auto-replied"}, date=desk.clock.now())
    out = deliver(desk, raw)
    assert out.state == "dropped" and Ticket.select().count() == 0 and Outbox.select().count() == 0


def _dsn(ack: EmailMessage, *, to: str, message_id: str, with_headers: bool = True) -> bytes:
    """A Postfix delivery status notification for ``ack`` (RFC 3464 / RFC 6522), as Postfix writes it."""
    head = "".join(f"{k}: {v}\n" for k, v in ack.items())
    parts = [
        "Content-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n"
        "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n"
        "<anna@customer.example>: host mx.customer.example said: 550 5.1.1\n"
        "    <anna@customer.example>: Recipient address rejected: User unknown\n",
        "Content-Description: Delivery report\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.customer.example\nArrival-Date: Mon,  2 Nov 2026 10:00:01 +0100 (CET)\n\n"
        "Final-Recipient: rfc822; anna@customer.example\nOriginal-Recipient: rfc822;anna@customer.example\n"
        "Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.customer.example\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <anna@customer.example>: Recipient address rejected: User unknown\n",
    ]
    if with_headers:
        parts.append(f"Content-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\n\n{head}")
    body = "".join(f"--BOUNDARY.1\n{p}\n" for p in parts) + "--BOUNDARY.1--\n"
    mail = (f"Return-Path: <>\nDelivered-To: {to}\nFrom: MAILER-DAEMON@mx.customer.example (Mail Delivery System)\n"
            f"To: {to}\nSubject: Undelivered Mail Returned to Sender\nDate: {ack['Date']}\nMessage-ID: {message_id}\n"
            "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY.1"\n\n'
            f"This is a MIME-encapsulated message.\n\n{body}")
    return mail.replace("\n", "\r\n").encode()


def test_a_bounce_of_our_acknowledgement_is_a_delivery_failure_and_the_admin_hears_once(desk):
    ticket, ack = open_first_ticket(desk)
    entry = outbox_row(ack)
    raw = _dsn(ack, to=entry.mail_from, message_id="<dsn1@mx.customer.example>")
    first, again = deliver(desk, raw), deliver(desk, raw)
    assert (first.state, first.ticket) == ("processed", ticket)
    assert (again.state, again.ticket) == ("duplicate", ticket)
    failures = events(ticket, "delivery_failure")
    assert len(failures) == 1 and "anna@customer.example" in failures[0].text and "acknowledgement" in failures[0].text
    [told] = mails("delivery_failure", "admin@example.com")
    text = told.get_body(("plain",)).get_content()
    # it left and came back: no "--retry", which would answer "already sent"
    assert "(a bounce)" in text and "Recipient address rejected" in text and "--retry" not in text
    # a second, different report of the same failure (the MTA retried): still one mail to the admin
    deliver(desk, _dsn(ack, to=entry.mail_from, message_id="<dsn2@mx.customer.example>"))
    assert len(mails("delivery_failure", "admin@example.com")) == 1
    assert len(mails("acknowledgement")) == 1  # a bounce is never acknowledged
    assert Ticket.select().count() == 1


def test_a_bounce_found_by_the_original_message_id_alone(desk):
    ticket, ack = open_first_ticket(desk)
    out = deliver(desk, _dsn(ack, to="support@example.com", message_id="<dsn3@mx.customer.example>"))
    assert (out.state, out.ticket) == ("processed", ticket)
    assert len(events(ticket, "delivery_failure")) == 1


def test_a_bounce_found_by_the_signed_return_address_alone(desk):
    ticket, ack = open_first_ticket(desk)
    out = deliver(desk, _dsn(ack, to=outbox_row(ack).mail_from, message_id="<dsn4@mx.customer.example>",
                             with_headers=False))
    assert (out.state, out.ticket) == ("processed", ticket)
    assert len(mails("delivery_failure", "admin@example.com")) == 1


def test_a_bounce_with_a_forged_return_address_is_not_ours(desk):
    ticket, ack = open_first_ticket(desk)
    forged = outbox_row(ack).mail_from.replace(".", "x", 2)
    out = deliver(desk, _dsn(ack, to=forged, message_id="<dsn5@mx.customer.example>", with_headers=False))
    assert out.state == "dropped" and not events(ticket, "delivery_failure")
    assert not mails("delivery_failure")


def test_our_own_outgoing_mail_coming_back_is_dropped(desk):
    ticket, ack = open_first_ticket(desk)
    sent_before = Outbox.select().count()
    out = deliver(desk, bytes(outbox_row(ack).raw))
    assert out.state == "dropped"
    notice = Outbox.get(Outbox.kind == "new_ticket")
    assert deliver(desk, bytes(notice.raw)).state == "dropped"
    assert Outbox.select().count() == sent_before and Ticket.select().count() == 1
    assert MessageRef.get(MessageRef.message_id == notice.message_id).direction == "out"


def test_after_a_new_linked_ticket_her_next_reply_stays_on_the_new_ticket(desk):
    from mailticket.desk import tickets
    ticket, ack = open_first_ticket(desk)
    resolved = _resolve_by_agent(desk, ticket)
    with Ticket._meta.database.atomic():
        tickets.set_status(desk, Ticket.get_by_id(ticket), "closed", desk.clock.now(), actor="system", notify=False)
    desk.clock.advance(timedelta(days=30))
    first = deliver(desk, gmail_reply(resolved, "Broken again.", to="support@example.com", date=desk.clock.now()))
    new_ack = mails("acknowledgement", "anna@customer.example")[-1]
    assert str(first.ticket) in new_ack["Subject"]
    # her answer to the new acknowledgement carries the whole old thread in References
    desk.clock.advance(timedelta(hours=1))
    out = deliver(desk, gmail_reply(new_ack, "More details: paper jam.", to="support@example.com",
                                    date=desk.clock.now()))
    assert (out.state, out.ticket) == ("processed", first.ticket)
    assert Ticket.select().count() == 2 and Ticket.get_by_id(ticket).status == "closed"


def test_an_outlook_answer_to_the_agents_public_reply_lands_on_the_ticket(desk):
    ticket, ack = open_first_ticket(desk)
    notice = mails("new_ticket", "l1@example.com")[-1]
    deliver(desk, reply_mail(notice, sender="Alice <alice@example.com>", subject="Re: " + notice["Subject"],
                             body="Please switch it off and on again.", date=desk.clock.now()))
    public = [m for m in Outbox.select().where(Outbox.ticket == ticket).order_by(Outbox.id)
              if "anna@customer.example" in m.recipients and m.kind != "acknowledgement"]
    assert public, "the agent's reply reached the requester"
    reply = email.message_from_bytes(bytes(public[-1].raw), policy=email.policy.default)
    assert "switch it off and on again" in text_of(reply)
    out = deliver(desk, outlook_reply(reply, "Done, it works now. Thanks!"))
    assert (out.state, out.ticket) == ("processed", ticket)
    seen = text_of(mails("requester_update", "l1@example.com")[-1])
    assert "Done, it works now." in seen and "switch it off" not in seen


def test_an_rfc3834_vacation_sent_to_our_return_path_is_recorded_on_the_ticket(desk):
    ticket, ack = open_first_ticket(desk)
    sent_before = Outbox.select().count()
    # RFC 3834 responders answer the envelope sender and often keep neither the subject tag nor In-Reply-To
    raw = make_mail(sender=ANNA, to=outbox_row(ack).mail_from, subject="Out of office", body="Back on Monday.",
                    headers={"Auto-Submitted": "auto-replied"}, date=desk.clock.now())
    out = deliver(desk, raw)
    assert (out.state, out.ticket) == ("processed", ticket)
    assert events(ticket, "auto_reply") and Outbox.select().count() == sent_before


def test_our_own_mail_coming_back_under_a_new_message_id_is_dropped_as_a_loop(desk):
    ticket, ack = open_first_ticket(desk)
    raw = bytes(outbox_row(ack).raw).replace(b"Message-ID: <mt.", b"Message-ID: <list-rewrote.", 1)
    out = deliver(desk, raw)
    assert out.state == "dropped" and "loop" in out.reason
    assert Ticket.select().count() == 1 and len(mails("acknowledgement")) == 1


# ---------------------------------------------------------------- replies written by real mail clients

def _realclients():
    from tests.test_pipeline_corpora import CORPORA
    return CORPORA / "realclients"


_QUOTE_LINE = re.compile(r"^\s*>|wrote:\s*$|^-+ ?Original Message ?-+$", re.M)


@pytest.mark.skipif(not _realclients().is_dir(), reason="realclients corpus not found")
def test_replies_written_by_mutt_neomutt_s_nail_aerc_and_alpine_land_on_their_ticket_without_quotes(desk):
    """realclients/in/*.eml stand for mails we sent on five tickets; every client's reply must find its own."""
    base = _realclients()
    ticket_of = {}
    for i, sent in enumerate(sorted((base / "in").glob("*.eml"))):
        out = deliver(desk, make_mail(sender="Bob <bob@customer.test>", subject=f"Problem {i}",
                                      date=desk.clock.now(), message_id=f"<start{i}@customer.test>"))
        ours = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)["Message-ID"].strip("<>")
        MessageRef.create(message_id=ours, ticket=out.ticket, direction="out", at=desk.clock.now())
        ticket_of[ours] = out.ticket
    replies = sorted(p for p in (base / "out").glob("*/*.eml") if "-reply" in p.name)
    assert len(replies) >= 30
    wrong, cluttered = [], []
    for path in replies:
        raw = path.read_bytes()
        parent = email.message_from_bytes(raw, policy=email.policy.default)["In-Reply-To"].strip().strip("<>")
        out = deliver(desk, raw)
        if (out.state, out.ticket) != ("processed", ticket_of[parent]):
            wrong.append(f"{path.parent.name}/{path.name}: {out}")
            continue
        # the clients write the same words to one ticket: from the second on it is a repeat (desk/echo.py),
        # recorded with its text all the same
        text = Event.select().where(Event.inbound == InboundMail.get(InboundMail.state == "processed",
                                                                    InboundMail.raw == raw)).where(
            Event.kind.in_(["reply_in", "auto_reply"])).get().text
        if not text.strip() or _QUOTE_LINE.search(text):
            cluttered.append(f"{path.parent.name}/{path.name}: {text[:200]!r}")
    print(f"\nrealclients: {len(replies)} replies, {len(wrong)} on a wrong ticket, {len(cluttered)} with quote clutter")
    assert wrong == []
    assert cluttered == []
    assert Ticket.select().count() == len(ticket_of)


def test_a_ccd_colleague_writing_a_new_mail_with_only_the_tag_lands_on_the_ticket(desk):
    ticket, ack = open_first_ticket(desk, cc="Carl Berg <carl@customer.example>")
    raw = make_mail(sender="Carl Berg <carl@customer.example>", subject=f"[SD#{ticket}] photo of the display",
                    body="The display shows E-203 here too.", date=desk.clock.now())
    out = deliver(desk, raw)
    assert (out.state, out.ticket, out.reason) == ("processed", ticket, "threaded by tag")
    assert Ticket.select().count() == 1 and events(ticket, "reply_in")[-1].actor == "carl@customer.example"


# ---------------------------------------------------------------- old mail

def test_old_mail_mails_nobody_but_a_breach_report_still_reaches_security_and_tier_3(desk):
    """Mail older than ack_max_age gets no acknowledgement (SPEC) and no routine tier notice (a
    mailbox of old mail would mail the tier once per past mail); a data-breach report is still
    told to the security contact and tier 3, however old its Date says it is."""
    old = desk.clock.now() - timedelta(days=3)
    routine = deliver(desk, make_mail(sender="Old <old@customer.example>", date=old,
                                      message_id="<routine.old@customer.example>"))
    breach = deliver(desk, make_mail(sender="Dpo <dpo@customer.example>", subject="Data breach: customer list leaked",
                                     body="Our customer list was posted on a forum.", date=old,
                                     message_id="<breach.old@customer.example>"))
    assert not Outbox.select().where(Outbox.ticket == routine.ticket).exists()
    assert [e.kind for e in events(routine.ticket) if e.kind.startswith("not-")] == ["not-acknowledged",
                                                                                      "not-notified"]
    ticket = Ticket.get_by_id(breach.ticket)
    assert (ticket.security, ticket.priority, ticket.tier) == (True, "P1", 3)
    sent = sorted((r.kind, r.recipients[0]) for r in Outbox.select().where(Outbox.ticket == breach.ticket))
    assert sent == [("new_ticket", "l1@example.com"), ("new_ticket", "l3@example.com"),
                    ("security_alert", "security@example.com")]
    assert [e.kind for e in events(breach.ticket) if e.kind.startswith("not-")] == ["not-acknowledged"]
