"""Agents work from their mail client: conversations through the real pipeline (Dovecot in,
the SMTP sink out), the attacks on "acting in an agent's name", and bad commands.

The conversations run the daemon in a thread: a requester's mail is APPENDed, the tier's
notification arrives at the sink, the agent's reply is built from that notification the way
Outlook, Gmail and Thunderbird write one (the Reply-To address as To, In-Reply-To/References,
the notification quoted below the new text) and APPENDed in turn.
The attacks and bad input run the same pipeline in-process (store_raw + process_one) with a
fake clock, which is faster and lets a token expire.

Decision on our own headers from outside: every inbound X-Mailticket-* header is stripped before
anything reads the mail, except that X-Mailticket-Loop is looked at first, and counts only when it
names our own address (our mail coming back under a new Message-ID); another desk's marker does not
drop its mail, and a human who copies our exact marker drops only their own mail (kept, logged).
"""

from __future__ import annotations

import email
import email.policy
import random
import re
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

import pytest

from mailticket import db

from mailticket.desk import pipeline
from mailticket.clock import FakeClock
from mailticket.config import load_config
from mailticket.service.wiring import build_desk
from mailticket.models import Event, InboundMail, Outbox, Ticket
from mailticket.desk.rules import priority_for
from tests.harness import ConversationDesk, make_mail, wait_until, write_config

SUPPORT = "support@example.com"
ALICE = "Alice <alice@example.com>"
ZONE = ZoneInfo("Europe/Stockholm")


# ---------------------------------------------------------------- mail helpers

def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def plain_text(msg: EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


def reply_address(msg: EmailMessage) -> str:
    return msg["Reply-To"].addresses[0].addr_spec


def crlf(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def _quoted(text: str) -> str:
    return "\n".join(("> " + line) if line else ">" for line in text.splitlines())


def _reply_headers(msg: EmailMessage, notification: EmailMessage, sender: str, to: str | None, subject_prefix: str):
    msg["From"] = sender
    msg["To"] = to or reply_address(notification)
    msg["Subject"] = f"{subject_prefix} {notification['Subject']}"
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg["In-Reply-To"] = notification["Message-ID"]
    msg["References"] = " ".join(filter(None, [str(notification.get("References") or ""),
                                               notification["Message-ID"]]))


def gmail_reply(notification: EmailMessage, new_text: str, *, sender: str = ALICE, to: str | None = None) -> bytes:
    """Gmail: new text, 'On <date> <name> <addr> wrote:', the notification quoted with '> ',
    plain and HTML (gmail_quote blockquote)."""
    msg = EmailMessage()
    _reply_headers(msg, notification, sender, to, "Re:")
    quoted = plain_text(notification)
    attribution = (f"On Fri, Nov 27, 2026 at 9:00 AM Service Desk <{reply_address(notification)}> wrote:")
    msg.set_content(f"{new_text}\n\n{attribution}\n\n{_quoted(quoted)}\n")
    html_new = "".join(f"<div>{line or '<br>'}</div>" for line in new_text.splitlines())
    msg.add_alternative(
        f'<div dir="ltr">{html_new}</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        f"{attribution.replace('<', '&lt;').replace('>', '&gt;')}<br></div>"
        f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
        f'rgb(204,204,204);padding-left:1ex"><pre>{quoted}</pre></blockquote></div>', subtype="html")
    return crlf(msg)


def outlook_reply(notification: EmailMessage, new_text: str, *, sender: str = ALICE, to: str | None = None) -> bytes:
    """Outlook: new text, a rule of underscores, the From/Sent/To/Subject block, the
    notification unquoted below it; HTML with divRplyFwdMsg."""
    msg = EmailMessage()
    _reply_headers(msg, notification, sender, to, "RE:")
    block = (f"________________________________\nFrom: Service Desk <{reply_address(notification)}>\n"
             f"Sent: Friday, November 27, 2026 09:00\nTo: Service desk <l1@example.com>\n"
             f"Subject: {notification['Subject']}\n\n{plain_text(notification)}")
    msg.set_content(f"{new_text}\n\n{block}\n")
    msg["Thread-Index"] = "AdnBq8Zf3n2kYbQ5T0uV0c1xq8Zf3w=="
    msg["X-MS-Has-Attach"] = ""
    html_new = "".join(f'<div class="elementToProof">{line or "<br>"}</div>' for line in new_text.splitlines())
    msg.add_alternative(
        f"<html><body>{html_new}<div id=\"appendonsend\"></div><hr style=\"display:inline-block;width:98%\">"
        f"<div id=\"divRplyFwdMsg\" dir=\"ltr\"><b>From:</b> Service Desk &lt;{reply_address(notification)}&gt;"
        f"<br><b>Sent:</b> Friday, November 27, 2026 09:00<br><b>Subject:</b> {notification['Subject']}</div>"
        f"<div><pre>{plain_text(notification)}</pre></div></body></html>", subtype="html")
    return crlf(msg)


def thunderbird_reply(notification: EmailMessage, new_text: str, *, sender: str = ALICE,
                      to: str | None = None) -> bytes:
    """Thunderbird: plain text only, 'On 27/11/2026 09:00, Service Desk wrote:' and '> ' quotes."""
    msg = EmailMessage()
    _reply_headers(msg, notification, sender, to, "Re:")
    msg["User-Agent"] = "Mozilla Thunderbird"
    msg.set_content(f"{new_text}\n\nOn 27/11/2026 09:00, Service Desk wrote:\n{_quoted(plain_text(notification))}\n")
    return crlf(msg)


def outlook_html_reply(notification: EmailMessage, new_text: str, *, sender: str = ALICE,
                       to: str | None = None) -> bytes:
    """Outlook set to HTML only: no text/plain part at all."""
    msg = parse(outlook_reply(notification, new_text, sender=sender, to=to))
    html = msg.get_body(("html",)).get_content()
    msg.clear_content()
    msg.set_content(html, subtype="html")
    return crlf(msg)


CLIENTS = {"outlook": outlook_reply, "gmail": gmail_reply, "thunderbird": thunderbird_reply,
           "outlook-html-only": outlook_html_reply}


# ---------------------------------------------------------------- the desk on real servers

class LiveDesk(ConversationDesk):
    """Dovecot in, the daemon in a thread, the sink out; helpers to talk to it."""

    def __init__(self, tmp_path, user, sink, extra=None):
        super().__init__(tmp_path, user, sink, extra=extra)

    def mails(self, rcpt: str, kind_subject: str | None = None) -> list[EmailMessage]:
        out = [parse(m.data) for m in self.sink.received if rcpt in m.rcpt_tos]
        return [m for m in out if kind_subject is None or kind_subject in str(m["Subject"])]

    def wait_mail(self, rcpt: str, count: int = 1, contains: str | None = None) -> list[EmailMessage]:
        return wait_until(lambda: (lambda found: found if len(found) >= count else None)(
            [m for m in self.mails(rcpt) if contains is None or contains in str(m["Subject"]) + plain_text(m)]),
            timeout=30, what=f"{count} mail(s) to {rcpt}" + (f" with {contains!r}" if contains else ""))

    def wait_outbox_sent(self) -> None:
        wait_until(lambda: not Outbox.select().where(Outbox.status == "queued").exists(), timeout=30,
                   what="outbox drained")

    def open_ticket(self, message_id: str, subject: str = "Printer broken",
                    body: str = "The printer on floor 3 does not print.") -> tuple[Ticket, EmailMessage]:
        """A requester's mail -> a ticket; returns it and the tier-1 notification."""
        before = len(self.mails("l1@example.com"))
        self.deliver(make_mail(message_id=message_id, subject=subject, body=body))
        notes = wait_until(lambda: (lambda m: m if len(m) > before else None)(self.mails("l1@example.com")),
                           timeout=30, what="the tier notification")
        notification = notes[-1]
        ticket = Ticket.get(Ticket.thread_root == message_id.strip("<>"))
        assert f"[SD#{ticket.id}]" in notification["Subject"]
        return ticket, notification


@pytest.fixture
def live(tmp_path, mailbox_user, smtp_sink):
    with LiveDesk(tmp_path, mailbox_user, smtp_sink) as desk:
        yield desk


def events(ticket: Ticket, kind: str | None = None) -> list[Event]:
    q = Event.select().where(Event.ticket == ticket)
    if kind:
        q = q.where(Event.kind == kind)
    return list(q.order_by(Event.at, Event.id))


# ---------------------------------------------------------------- public replies from three clients

NEW_TEXT = "Hi Anna,\n\nI have restarted the print server. Please try again and tell me if it works.\n\nAlice"


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_agent_reply_reaches_the_requester_without_quoted_clutter(live, client):
    root = f"<{client}-root@customer.example>"
    ticket, notification = live.open_ticket(root)
    assert ticket.status == "new" and ticket.first_response_at is None
    assert reply_address(notification).startswith("support+t")
    live.deliver(CLIENTS[client](notification, "#priority P2\n\n" + NEW_TEXT))
    got = live.wait_mail("anna@customer.example", contains="restarted the print server")
    reply = got[-1]
    assert reply["From"].addresses[0].display_name == "Alice via Service Desk"
    assert reply["From"].addresses[0].addr_spec == SUPPORT
    assert reply["In-Reply-To"] == root
    assert root in reply["References"]
    assert f"[SD#{ticket.id}]" in reply["Subject"]
    text = plain_text(reply)
    assert "I have restarted the print server" in text and "Hi Anna," in text
    for clutter in ("wrote:", "#priority", "> ", "________", "A new ticket has come in", "floor 3",
                    "Sent: Friday"):
        assert clutter not in text, f"{clutter!r} leaked into the requester's mail from {client}"
    # the requester's copy never carries a token that lets anyone act as an agent
    claim = live.daemon.desk.signer.verify(reply_address(reply).split("+", 1)[1].split("@")[0],
                                           datetime.now(timezone.utc))
    assert claim is not None and claim.purpose == "requester" and claim.ticket == ticket.id
    html = reply.get_body(("html",))
    if html is not None:
        assert "floor 3" not in html.get_content() and "#priority" not in html.get_content()
    ticket = Ticket.get_by_id(ticket.id)
    assert ticket.first_response_at is not None and ticket.response_stopped_at is not None
    assert ticket.status == "open" and ticket.priority == "P2"
    kinds = [e.kind for e in events(ticket)]
    assert "first_response" in kinds and "reply_out" in kinds
    out = events(ticket, "reply_out")[-1]
    assert out.actor == "alice@example.com" and out.text.strip() == NEW_TEXT


# ---------------------------------------------------------------- internal notes

def test_note_and_comment_address_stay_internal(live):
    ticket, notification = live.open_ticket("<note-root@customer.example>")
    live.wait_mail("anna@customer.example")  # the acknowledgement
    live.deliver(thunderbird_reply(notification,
                                   "#note\nThe spooler log shows a corrupt driver.\nDo not tell the user yet."))
    note = live.wait_mail("bob@example.com", contains="corrupt driver")[-1]
    assert [a.addr_spec for a in note["To"].addresses] == ["bob@example.com"]
    assert "Internal note" in note["Subject"] and f"[SD#{ticket.id}]" in note["Subject"]
    assert "#note\nThe spooler" not in plain_text(note) and "Do not tell the user yet." in plain_text(note)
    token = reply_address(note).split("+", 1)[1].split("@")[0]
    assert live.daemon.desk.signer.verify(token, datetime.now(timezone.utc)).purpose == "note"
    # Bob answers the note at its comment address: no #note needed, it stays internal too
    live.deliver(gmail_reply(note, "I will reinstall the driver tonight.", sender="Bob <bob@example.com>"))
    answer = live.wait_mail("alice@example.com", contains="reinstall the driver tonight")[-1]
    assert [a.addr_spec for a in answer["To"].addresses] == ["alice@example.com"]
    live.processed(3)
    live.wait_outbox_sent()
    assert len([m for m in live.sink.received if "anna@customer.example" in m.rcpt_tos]) == 1
    assert [e.kind for e in Outbox.select().where(Outbox.rcpt_key == "anna@customer.example")] == ["acknowledgement"]
    for m in live.sink.received:  # no internal text reached anyone outside the desk
        if "corrupt driver" in m.data.decode(errors="replace") or "reinstall" in m.data.decode(errors="replace"):
            assert set(m.rcpt_tos) <= {"alice@example.com", "bob@example.com"}
    ticket = Ticket.get_by_id(ticket.id)
    assert ticket.status == "new" and ticket.first_response_at is None
    notes = events(ticket, "note")
    assert [(n.actor, n.text.strip()) for n in notes] == [
        ("alice@example.com", "The spooler log shows a corrupt driver.\nDo not tell the user yet."),
        ("bob@example.com", "I will reinstall the driver tonight.")]
    assert not any((n.data or {}).get("unverified") for n in notes)


# ---------------------------------------------------------------- every command acts

def _command_events(ticket):
    return {e.text: e for e in events(ticket, "command")}


def test_each_command_acts_and_is_in_the_history(live):
    ticket, notification = live.open_ticket("<cmd-root@customer.example>")
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    live.deliver(outlook_reply(notification, "#assign me\n#impact high\n#urgency medium\n#category network\n"
                                             "#type request\n#status pending\n\nCould you send me the printer's name?"))
    live.wait_mail("anna@customer.example", contains="printer's name")
    t = Ticket.get_by_id(ticket.id)
    assert (t.assignee, t.impact, t.urgency, t.category, t.type, t.status) == (
        "alice@example.com", "high", "medium", "network", "request", "pending")
    # the matrix decides (P2 here: a P1 would go straight to tier 3, see the tests below)
    assert t.priority == priority_for("high", "medium", live.daemon.config.rules.matrix) == "P2"
    assert t.tier == 1
    assert t.resolution_paused_since is not None  # pending pauses the resolution clock
    live.deliver(gmail_reply(notification, "#priority P3\n#assign bob@example.com\n#escalate needs the vendor"))
    escalation = live.wait_mail("l2@example.com")[-1]
    assert "needs the vendor" in plain_text(escalation), plain_text(escalation)
    t = Ticket.get_by_id(ticket.id)
    assert (t.priority, t.assignee, t.tier) == ("P3", "bob@example.com", 2)
    live.deliver(thunderbird_reply(escalation, "#tier 3\n#status resolved\n\nThe vendor patch fixed it.",
                                   sender="Carol <carol@example.com>"))
    resolved = live.wait_mail("anna@customer.example", contains="vendor patch fixed it")[-1]
    assert "#status" not in plain_text(resolved)
    t = Ticket.get_by_id(ticket.id)
    assert (t.tier, t.status) == (3, "resolved") and t.resolved_at is not None
    third = live.wait_mail("l3@example.com")[-1]
    live.deliver(gmail_reply(third, "#status closed", sender="Dave <dave@example.com>"))
    wait_until(lambda: Ticket.get_by_id(ticket.id).status == "closed", timeout=30, what="closed")
    history = _command_events(ticket)
    expected = {"#assign me": "alice", "#impact high": "alice", "#urgency medium": "alice",
                "#category network": "alice", "#type request": "alice", "#status pending": "alice",
                "#priority P3": "alice", "#assign bob@example.com": "alice", "#escalate needs the vendor": "alice",
                "#tier 3": "carol", "#status resolved": "carol", "#status closed": "dave"}
    assert set(history) == set(expected)
    for line, who in expected.items():
        assert history[line].actor == f"{who}@example.com"
        assert history[line].at >= started
    statuses = [e.text.split(":")[0] for e in events(ticket, "status")]
    assert statuses == ["new -> pending", "pending -> resolved", "resolved -> closed"]
    assert [e.data["to_tier"] for e in events(ticket, "escalation")] == [2, 3]
    assert not events(ticket, "command_error")


# ---------------------------------------------------------------- #call

def calendar_parts(msg: EmailMessage) -> list[EmailMessage]:
    return [p for p in msg.walk() if p.get_content_type() == "text/calendar"]


def test_call_sends_the_requester_a_parseable_invitation(live):
    import icalendar
    ticket, notification = live.open_ticket("<call-root@customer.example>")
    day = (datetime.now(ZONE) + timedelta(days=3)).date()
    live.deliver(gmail_reply(notification, f"#call {day:%Y-%m-%d} 14:00 45m\n\nI will call you about the printer."))
    invite = live.wait_mail("anna@customer.example", contains="Call with Alice")[-1]
    assert invite["From"].addresses[0].display_name == "Alice via Service Desk"
    assert invite["In-Reply-To"] == "<call-root@customer.example>"
    (part,) = calendar_parts(invite)
    assert part.get_param("method") == "REQUEST"
    cal = icalendar.Calendar.from_ical(part.get_content())
    assert str(cal["METHOD"]) == "REQUEST"
    (event,) = cal.walk("VEVENT")
    # the desk's address, under the agent's name: the requester's calendar answers the organiser
    assert str(event["ORGANIZER"]).lower() == "mailto:support@example.com"
    assert event["ORGANIZER"].params["CN"] == "Alice"
    assert str(event["ATTENDEE"]).lower() == "mailto:anna@customer.example"
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert event["DTSTART"].params["TZID"] == "Europe/Stockholm"  # the service's zone
    assert start == datetime(day.year, day.month, day.day, 14, 0, tzinfo=ZONE)
    assert end - start == timedelta(minutes=45)
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Stockholm"]
    # the text of the same reply went to the requester as a normal reply, without the command
    said = live.wait_mail("anna@customer.example", contains="I will call you about the printer")[-1]
    assert "#call" not in plain_text(said) and not calendar_parts(said)
    call = events(ticket, "call")
    assert len(call) == 1 and call[0].actor == "alice@example.com"
    assert [e.text for e in events(ticket, "command")] == [f"#call {day:%Y-%m-%d} 14:00 45m"]


# ---------------------------------------------------------------- an agent forwards a user's mail

def _gmail_forward() -> bytes:
    return make_mail(sender=ALICE, subject="Fwd: VPN does not connect", message_id="<fwd-gmail@example.com>", body=(
        "Can you log this for Erik?\n\n---------- Forwarded message ---------\n"
        "From: Erik Lund <erik@customer.example>\nDate: Thu, 26 Nov 2026 at 16:12\n"
        "Subject: VPN does not connect\nTo: Alice <alice@example.com>\n\n"
        "Hi Alice, the VPN client says error 809.\n"))


def _outlook_forward() -> bytes:
    return make_mail(sender=ALICE, subject="FW: Screen flickers", message_id="<fwd-outlook@example.com>", body=(
        "Please handle.\n\n________________________________\n"
        "From: Frida Berg <frida@customer.example>\nSent: Thursday, November 26, 2026 4:12 PM\n"
        "To: Alice <alice@example.com>\nSubject: Screen flickers\n\n"
        "My second screen flickers since this morning.\n"))


def _attached_forward() -> bytes:
    inner = EmailMessage()
    inner["From"] = "Gustav Ek <gustav@customer.example>"
    inner["To"] = ALICE
    inner["Subject"] = "Cannot log in to the portal"
    inner["Date"] = "Thu, 26 Nov 2026 16:12:00 +0100"
    inner["Message-ID"] = "<inner-gustav@customer.example>"
    inner.set_content("The portal says my account is locked.\n")
    outer = EmailMessage()
    outer["From"] = ALICE
    outer["To"] = SUPPORT
    outer["Subject"] = "Cannot log in to the portal"
    outer["Date"] = format_datetime(datetime.now(timezone.utc))
    outer["Message-ID"] = "<fwd-attached@example.com>"
    outer.set_content("See the attached mail from Gustav.\n")
    outer.add_attachment(inner)
    return crlf(outer)


def test_forwarded_mails_open_tickets_for_the_original_senders(live):
    for raw in (_gmail_forward(), _outlook_forward(), _attached_forward()):
        live.deliver(raw)
    for person in ("erik", "frida", "gustav"):
        live.wait_mail(f"{person}@customer.example")
    live.processed(3)
    live.wait_outbox_sent()
    got = {t.requester_address: t for t in Ticket.select()}
    assert set(got) == {"erik@customer.example", "frida@customer.example", "gustav@customer.example"}
    assert (got["erik@customer.example"].requester_name, got["frida@customer.example"].requester_name,
            got["gustav@customer.example"].requester_name) == ("Erik Lund", "Frida Berg", "Gustav Ek")
    assert "error 809" in got["erik@customer.example"].description
    for address, ticket in got.items():
        acks = live.mails(address)
        assert len(acks) == 1 and f"[SD#{ticket.id}]" in acks[0]["Subject"]
        assert "forwarded by agent alice@example.com" in [e.text for e in events(ticket, "note")]
    # the agent who forwarded is no requester and gets no acknowledgement
    assert not live.mails("alice@example.com")
    assert len(live.mails("l1@example.com")) == 3


# ================================================================ in-process: attacks and bad input

START = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)


class Bench:
    """The same pipeline without the servers: store_raw + process_one, a fake clock, the outbox as output."""

    def __init__(self, tmp_path, extra=None):
        self.clock = FakeClock(START)
        self.config = load_config(write_config(tmp_path, extra={
            "rate_limits": {"per_sender_day": 100, "global_10min": 1000}, **(extra or {})}))
        db.connect(self.config.database.url)
        self.desk = build_desk(self.config, clock=self.clock)

    def process(self, raw: bytes) -> pipeline.Outcome:
        return pipeline.process_one(self.desk, pipeline.store_raw(raw, source="test", now=self.clock.now()))

    def sent(self, rcpt: str | None = None, kind: str | None = None) -> list[Outbox]:
        q = Outbox.select().order_by(Outbox.id)
        if kind:
            q = q.where(Outbox.kind == kind)
        return [o for o in q if rcpt is None or rcpt in o.recipients]

    def open_ticket(self, n: int | str = 1,
                    sender="Anna Svensson <anna@customer.example>") -> tuple[Ticket, EmailMessage]:
        root = f"<bench-{n}@customer.example>"
        outcome = self.process(make_mail(sender=sender, message_id=root, subject=f"Printer {n} broken",
                                         date=self.clock.now()))
        assert outcome.state == "processed", outcome
        ticket = Ticket.get_by_id(outcome.ticket)
        (note,) = [o for o in self.sent(kind="new_ticket") if o.ticket_id == ticket.id]
        return ticket, parse(bytes(note.raw))

    def token_of(self, msg: EmailMessage) -> str:
        return reply_address(msg).split("+", 1)[1].split("@")[0]


@pytest.fixture
def bench(tmp_path):
    return Bench(tmp_path)


def agent_mail(notification: EmailMessage | None, body: str, *, sender: str = ALICE, to: str = SUPPORT,
               subject: str | None = None, headers: dict | None = None, in_reply_to: bool = True) -> bytes:
    """A mail that says it is from an agent, about the ticket of ``notification``."""
    return make_mail(sender=sender, to=to, subject=subject or f"Re: {notification['Subject']}", body=body,
                     in_reply_to=notification["Message-ID"] if in_reply_to and notification else None,
                     references=notification["Message-ID"] if in_reply_to and notification else None,
                     headers=headers, date=START)


def assert_untouched(bench, ticket: Ticket, *, status="new", priority="P3") -> None:
    t = Ticket.get_by_id(ticket.id)
    assert (t.status, t.priority, t.assignee, t.tier, t.first_response_at) == (status, priority, None, 1, None)
    assert not events(t, "command") and not events(t, "reply_out")
    assert [o.kind for o in bench.sent(t.requester_address) if o.ticket_id == t.id] == ["acknowledgement"]


def assert_unverified_note(bench, ticket: Ticket, text: str) -> None:
    (note,) = events(ticket, "note")
    assert note.data["unverified"] is True and note.actor == "alice@example.com"
    assert text in note.text  # nothing of the mail is lost
    warned = [o for o in bench.sent(kind="note") if o.ticket_id == ticket.id]
    assert len(warned) == 1 and set(warned[0].recipients) <= {"bob@example.com", "l1@example.com"}
    msg = parse(bytes(warned[0].raw))
    assert "UNVERIFIED" in msg["Subject"] and text.splitlines()[-1] in plain_text(msg)


FORGED = "#status closed\n#assign me\n\nAll fixed, closing this."


# ---------------------------------------------------------------- nobody acts in an agent's name

def test_forged_agent_from_with_a_command_changes_nothing(bench):
    ticket, notification = bench.open_ticket()
    assert bench.process(agent_mail(notification, FORGED)).state == "processed"
    assert_untouched(bench, ticket)
    assert_unverified_note(bench, ticket, FORGED)
    # the subject tag alone is no better than the references
    bench.process(agent_mail(notification, "#status resolved\n\nDone.", in_reply_to=False))
    t = Ticket.get_by_id(ticket.id)
    assert t.status == "new" and len(events(t, "note")) == 2 and all(n.data["unverified"] for n in events(t, "note"))


PASS = "mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
A_R_REFUSED = {
    "another server id": ["evil.example; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"],
    "trusted id below a forged top": ["evil.example; spf=pass smtp.mailfrom=example.com", PASS],
    "forged pass below the trusted fail": [
        "mx.example.com; dkim=fail header.d=example.com; dmarc=fail header.from=example.com", PASS],
    "dkim of an unaligned domain": [
        "mx.example.com; dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=example.com"],
    "dmarc pass for another domain": ["mx.example.com; dmarc=pass header.from=evil.example"],
    "spf only": ["mx.example.com; spf=pass smtp.mailfrom=example.com"],
}


def _with_auth_results(raw: bytes, values: list[str]) -> bytes:
    """Authentication-Results on top of the header block, in the order given (the first is topmost)."""
    return b"".join(b"Authentication-Results: " + v.encode() + b"\r\n" for v in values) + raw


@pytest.mark.parametrize("case", sorted(A_R_REFUSED))
def test_forged_authentication_results_change_nothing(bench, case):
    ticket, notification = bench.open_ticket()
    raw = _with_auth_results(agent_mail(notification, FORGED), A_R_REFUSED[case])
    assert bench.process(raw).state == "processed"
    assert_untouched(bench, ticket)
    assert_unverified_note(bench, ticket, FORGED)


def test_trusted_authentication_results_do_let_the_agent_act(bench):
    """The control for the cases above: the same mail with the trusted server's verdict on top acts."""
    ticket, notification = bench.open_ticket()
    raw = _with_auth_results(agent_mail(notification, FORGED),
                             ["mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com",
                              "evil.example; dmarc=fail"])
    bench.process(raw)
    t = Ticket.get_by_id(ticket.id)
    assert (t.status, t.assignee) == ("closed", "alice@example.com")
    assert not events(t, "note")


def test_the_requesters_token_never_authorises_an_agent(bench):
    ticket, notification = bench.open_ticket()
    (ack,) = bench.sent("anna@customer.example", kind="acknowledgement")
    ack = parse(bytes(ack.raw))
    claim = bench.desk.signer.verify(bench.token_of(ack), START)
    assert claim.purpose == "requester" and claim.ticket == ticket.id
    bench.process(agent_mail(ack, FORGED, to=reply_address(ack), in_reply_to=False))
    assert_untouched(bench, ticket)
    assert_unverified_note(bench, ticket, FORGED)


def test_every_mail_to_a_requester_carries_only_a_requester_token(bench):
    """Even a mail that goes to an agent and a requester together (an agent on Cc) gets the weaker token."""
    bench.open_ticket()
    for entry in bench.sent():
        msg = parse(bytes(entry.raw))
        if msg["Reply-To"] is None:
            continue
        purpose = bench.desk.signer.verify(bench.token_of(msg), START).purpose
        internal = all(bench.desk.config.is_internal_address(r) for r in entry.recipients)
        assert purpose == ("reply" if internal else "requester"), (entry.kind, entry.recipients)


def test_a_token_for_ticket_5_does_not_work_on_ticket_6(bench):
    opened = [bench.open_ticket(n) for n in range(1, 7)]
    (t5, n5), (t6, n6) = opened[4], opened[5]
    assert (t5.id, t6.id) == (5, 6)
    token5 = bench.token_of(n5)
    # ticket 6's subject and thread, ticket 5's signed address: the token speaks only for ticket 5
    outcome = bench.process(agent_mail(n6, "#priority P1", to=reply_address(n5)))
    assert outcome.ticket == 5
    assert Ticket.get_by_id(6).priority == "P3" and not events(t6, "command")
    # the token rewritten to name ticket 6 fails its MAC: the mail is an unverified note on 6
    forged = token5.replace("t5-", "t6-", 1)
    assert bench.desk.signer.verify(forged, START) is None
    bench.process(agent_mail(n6, FORGED, to=f"support+{forged}@example.com"))
    assert_untouched(bench, t6)
    assert_unverified_note(bench, t6, FORGED)


def test_an_expired_token_is_refused(bench):
    ticket, notification = bench.open_ticket()
    token = bench.token_of(notification)
    bench.clock.advance(bench.config.service.token_lifetime + timedelta(minutes=1))
    assert bench.desk.signer.verify(token, bench.clock.now()) is None
    bench.process(agent_mail(notification, FORGED, to=reply_address(notification)))
    assert_untouched(bench, ticket)
    assert_unverified_note(bench, ticket, FORGED)


def test_100000_random_tokens_are_all_refused(bench):
    signer, rng = bench.desk.signer, random.Random(5)
    b32 = "abcdefghijklmnopqrstuvwxyz234567"
    genuine = signer.make(5, "reply", START + timedelta(days=30))
    assert signer.verify(genuine, START) is not None  # the control
    expiry = genuine.split("-")[2]
    refused = 0
    for i in range(100_000):
        kind = i % 4
        if kind == 0:    # well formed, random MAC
            token = f"t{rng.randint(1, 10**6)}-{rng.choice('rnq')}-{expiry}-{''.join(rng.choices(b32, k=16))}"
        elif kind == 1:  # the genuine token with one character changed
            pos = rng.randrange(len(genuine))
            token = genuine[:pos] + rng.choice(b32.replace(genuine[pos], "") if genuine[pos] in b32 else b32) \
                + genuine[pos + 1:]
        elif kind == 2:  # the genuine MAC on another ticket, purpose or expiry
            token = genuine.replace("t5-", f"t{rng.randint(6, 10**6)}-", 1) if rng.random() < .5 else \
                genuine.replace("-r-", f"-{rng.choice('nq')}-", 1)
        else:            # junk
            token = "".join(rng.choices(b32 + "-t0189", k=rng.randint(1, 60)))
        refused += signer.verify(token, START) is None
    assert refused == 100_000


@pytest.mark.parametrize("sender", [
    "alice@example.com <evil@x.example>",
    "Alice <alice@example.com>, Mallory <mallory@evil.example>",
    "alice@example.com, mallory@evil.example",
    "Alice <alice@example.com> mallory@evil.example",
    '"Alice" <alice@example.com',
])
def test_a_from_with_parse_defects_never_maps_to_an_agent(bench, sender):
    ticket, notification = bench.open_ticket()
    raw = agent_mail(notification, FORGED, to=reply_address(notification))
    raw = re.sub(rb"(?m)^From: .*\r\n", lambda _: b"From: " + sender.encode() + b"\r\n", raw, count=1)
    assert parse(raw)["From"] is not None and sender.encode() in raw  # written as given, not repaired
    bench.process(raw)
    t = Ticket.get_by_id(ticket.id)
    assert (t.status, t.assignee) == ("new", None)
    assert not events(t, "command") and not events(t, "reply_out")
    assert [o.kind for o in bench.sent("anna@customer.example")] == ["acknowledgement"]
    # kept (the tier sees it), but a broken From is never added to the people who get the replies
    assert FORGED.splitlines()[-1] in " ".join(e.text for e in events(t))
    assert [p.address for p in t.participants] == []


# ---------------------------------------------------------------- our own headers from outside

def test_inbound_headers_that_look_like_ours_are_stripped_and_have_no_power(bench, caplog):
    first, notification = bench.open_ticket()
    raw = make_mail(sender="Mallory <mallory@evil.example>", subject="Please add me", date=START,
                    message_id="<mallory@evil.example>",
                    headers={"X-Mailticket-Ticket": str(first.id), "x-mailticket-VERIFIED": "alice@example.com"})
    outcome = bench.process(raw)
    assert outcome.state == "processed" and outcome.ticket != first.id  # a new ticket, not first's thread
    assert Ticket.get_by_id(outcome.ticket).requester_address == "mallory@evil.example"
    assert "X-Mailticket-Ticket" in caplog.text and "x-mailticket-VERIFIED" in caplog.text
    # an agent's forged "internal" header proves nothing either
    bench.process(agent_mail(notification, FORGED, headers={"X-Mailticket-Ticket": str(first.id),
                                                            "X-Mailticket-Verified": "yes"}))
    assert_untouched(bench, first)
    assert_unverified_note(bench, first, FORGED)


def test_our_own_mail_coming_back_is_dropped(bench):
    ticket, notification = bench.open_ticket()
    (entry,) = [o for o in bench.sent(kind="new_ticket") if o.ticket_id == ticket.id]
    outcome = bench.process(bytes(entry.raw))
    assert (outcome.state, outcome.reason) == ("dropped", "our own outgoing mail came back")


def test_our_loop_marker_still_catches_our_mail_under_a_new_message_id(bench):
    """A list that re-sends our notification with its own Message-ID and From still carries our marker:
    the marker is read before the inbound X-Mailticket-* headers are stripped."""
    ticket, notification = bench.open_ticket()
    msg = parse(bytes([o for o in bench.sent(kind="new_ticket") if o.ticket_id == ticket.id][0].raw))
    del msg["Message-ID"], msg["From"]
    msg["Message-ID"] = "<resent-by-list@lists.example.com>"
    msg["From"] = "Service Desk via Staff <staff@lists.example.com>"
    outcome = bench.process(crlf(msg))
    assert outcome.state == "dropped" and "loop" in outcome.reason
    assert Ticket.select().count() == 1 and len(events(ticket)) == len(events(Ticket.get_by_id(ticket.id)))


def test_another_desks_loop_marker_does_not_drop_its_mail(bench):
    """Another mailticket desk marks its mail with its own address: that is not our loop."""
    raw = make_mail(sender="Vendor Desk <support@vendor.example>", subject="Your RMA", date=START,
                    headers={"X-Mailticket-Loop": "support@vendor.example"})
    outcome = bench.process(raw)
    assert outcome.state == "processed"
    assert Ticket.get_by_id(outcome.ticket).requester_address == "support@vendor.example"


def test_a_copy_of_our_exact_loop_marker_drops_that_mail_and_keeps_it(bench):
    """Decision: our marker (X-Mailticket-Loop naming our address) drops a mail even when a human
    wrote it; only the writer's own mail is affected, it is kept (state dropped, reason) and logged."""
    raw = make_mail(sender="Mallory <mallory@evil.example>", subject="Loop me", date=START,
                    headers={"X-Mailticket-Loop": "support@example.com"})
    outcome = bench.process(raw)
    assert outcome.state == "dropped" and "loop marker" in outcome.reason
    row = InboundMail.get(InboundMail.state == "dropped")
    assert bytes(row.raw) == raw and "loop marker" in row.reason
    assert Ticket.select().count() == 0 and not bench.sent()


# ---------------------------------------------------------------- bad commands: a clear reply, nothing lost

def _reply(bench, notification, body, *, sender=ALICE) -> tuple[bytes, EmailMessage]:
    raw = agent_mail(notification, body, sender=sender, to=reply_address(notification))
    outcome = bench.process(raw)
    assert outcome.state == "processed", outcome
    return raw, parse(raw)


def command_errors(bench, ticket) -> list[EmailMessage]:
    return [parse(bytes(o.raw)) for o in bench.sent("alice@example.com", kind="command_error")
            if o.ticket_id == ticket.id]


def to_requester(bench, ticket, kind="agent_reply") -> list[EmailMessage]:
    return [parse(bytes(o.raw)) for o in bench.sent(ticket.requester_address, kind=kind) if o.ticket_id == ticket.id]


def assert_one_error_reply(bench, ticket, mail: EmailMessage, *needles: str) -> str:
    (error,) = command_errors(bench, ticket)
    text = plain_text(error)
    assert error["In-Reply-To"] == mail["Message-ID"] and [a.addr_spec for a in error["To"].addresses] == [
        "alice@example.com"]
    assert error["Auto-Submitted"] == "auto-replied"
    for needle in needles:
        assert needle in text, f"{needle!r} not in the error reply:\n{text}"
    assert bench.desk.signer.verify(bench.token_of(error), bench.clock.now()).purpose == "reply"
    return text


def test_a_command_in_the_middle_of_the_text_is_not_run_and_stays_in_the_text(bench):
    ticket, notification = bench.open_ticket()
    body = "Hello Anna,\n\nI looked at it.\n#status closed\nPlease restart the printer once more."
    _, mail = _reply(bench, notification, body)
    t = Ticket.get_by_id(ticket.id)
    assert t.status == "open" and t.closed_at is None  # opened by the reply, not closed by the line
    assert_one_error_reply(bench, ticket, mail, "#status closed", "commands must be at the top",
                           "first lines of the reply")
    (reply,) = to_requester(bench, ticket)
    assert "Please restart the printer once more." in plain_text(reply) and "I looked at it." in plain_text(reply)
    assert events(t, "reply_out")[-1].text.strip() == body
    assert not events(t, "command")


def test_an_unknown_command_is_named_and_the_valid_ones_still_apply(bench):
    ticket, notification = bench.open_ticket()
    _, mail = _reply(bench, notification, "#frobnicate now\n#status pending\n\nPlease send me the log file.")
    t = Ticket.get_by_id(ticket.id)
    assert t.status == "pending"
    text = assert_one_error_reply(bench, ticket, mail, "#frobnicate now", "is not a command", "#status", "#assign",
                                  "#call")
    (reply,) = to_requester(bench, ticket)
    assert "Please send me the log file." in plain_text(reply) and "#frobnicate" not in plain_text(reply)
    assert [e.text for e in events(t, "command")] == ["#status pending"]
    (err,) = events(t, "command_error")
    assert "#frobnicate now" in err.text and err.actor == "alice@example.com"  # the line itself is kept
    assert len(text) < 2000  # short


@pytest.mark.parametrize("line,problem", [
    ("#call 2026-11-20 10:00", "in the past"),
    ("#call 2026-11-27 08:30", "in the past"),      # earlier today in Stockholm (it is 09:00 there)
    ("#call 2026-11-30 14:00 Mars/Olympus", "'Mars/Olympus' is not a time zone"),
    ("#call 2026-11-30 14:00 +25:00", "is not a UTC offset"),
    ("#call tomorrow afternoon", "is not a date"),
    ("#call 2026-11-30 14:00 14h", "is not possible"),
])
def test_a_bad_call_sends_no_invitation_and_says_why(bench, line, problem):
    ticket, notification = bench.open_ticket()
    _, mail = _reply(bench, notification, f"{line}\n#priority P2\n\nLet us talk about it.")
    assert_one_error_reply(bench, ticket, mail, line, problem, "#call YYYY-MM-DD HH:MM")
    assert not to_requester(bench, ticket, kind="call_invitation") and not events(ticket, "call")
    assert Ticket.get_by_id(ticket.id).priority == "P2"
    (reply,) = to_requester(bench, ticket)
    assert "Let us talk about it." in plain_text(reply) and "#call" not in plain_text(reply)


def test_a_call_without_a_zone_is_in_the_services_zone(bench):
    import icalendar
    ticket, notification = bench.open_ticket()
    _reply(bench, notification, "#call 2026-11-30 14:00")
    (invite,) = to_requester(bench, ticket, kind="call_invitation")
    (part,) = calendar_parts(invite)
    (event,) = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
    assert event.decoded("DTSTART") == datetime(2026, 11, 30, 14, 0, tzinfo=ZONE)
    assert event["DTSTART"].params["TZID"] == "Europe/Stockholm"
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=30)
    assert not command_errors(bench, ticket) and not to_requester(bench, ticket)  # no text, no reply


def test_assign_to_someone_who_is_not_an_agent_is_refused(bench):
    ticket, notification = bench.open_ticket()
    _, mail = _reply(bench, notification, "#assign mallory@evil.example\n#priority P2\n\nI am on it.")
    t = Ticket.get_by_id(ticket.id)
    assert t.assignee is None and t.priority == "P2"
    assert_one_error_reply(bench, ticket, mail, "#assign mallory@evil.example", "mallory@evil.example is not an agent",
                           "#assign me, #assign none, or #assign ADDRESS of an agent")
    assert "I am on it." in plain_text(to_requester(bench, ticket)[0])


def test_several_bad_lines_make_one_reply_naming_each(bench):
    ticket, notification = bench.open_ticket()
    body = "#status sleeping\n#tier 7\n#type problem\n#impact high\n\nLooking into it.\n#priority P1"
    _, mail = _reply(bench, notification, body)
    assert_one_error_reply(bench, ticket, mail, "#status sleeping", "'sleeping' is not a status", "#tier 7",
                           "'7' is not a tier", "#type problem", "#priority P1", "commands must be at the top")
    t = Ticket.get_by_id(ticket.id)
    assert (t.status, t.tier, t.type, t.impact, t.priority) == ("open", 1, "incident", "high", "P2")
    out = events(t, "reply_out")[-1].text
    assert "Looking into it." in out and "#priority P1" in out  # the misplaced line is kept in the text
    (err,) = events(t, "command_error")
    for line in ("#status sleeping", "#tier 7", "#type problem", "#priority P1"):
        assert line in err.text


def test_a_status_the_ticket_cannot_take_keeps_the_text_and_sends_it(bench):
    ticket, notification = bench.open_ticket()
    _reply(bench, notification, "#status closed")
    assert Ticket.get_by_id(ticket.id).status == "closed"
    _, mail = _reply(bench, notification, "#status resolved\n\nThe root cause was a bad driver.")
    t = Ticket.get_by_id(ticket.id)
    assert t.status == "closed"
    assert_one_error_reply(bench, ticket, mail, "#status resolved", "a ticket that is closed cannot be set to resolved")
    (reply,) = to_requester(bench, ticket)  # the text is not lost with the command
    assert "The root cause was a bad driver." in plain_text(reply)
    assert not [e for e in events(t, "reply_out") if (e.data or {}).get("resolution")]


def test_error_replies_are_rate_limited_but_every_mail_is_still_handled(bench):
    ticket, notification = bench.open_ticket()
    for i in range(6):
        bench.clock.advance(timedelta(minutes=1))
        _reply(bench, notification, f"#frobnicate {i}\n\nUpdate number {i}.")
    limit = bench.config.rate_limits.per_ticket
    assert len(command_errors(bench, ticket)) == limit < 6
    t = Ticket.get_by_id(ticket.id)
    assert len(events(t, "command_error")) == 6  # each is in the history even when not mailed
    assert len([e for e in events(t, "suppressed") if "command_error" in e.text]) == 6 - limit
    assert len(to_requester(bench, ticket)) == 6


def test_a_failure_inside_a_command_rolls_the_whole_mail_back(bench, monkeypatch):
    """Only a bad command is the agent's mistake; a failure while carrying one out (here a mail
    that cannot be made) quarantines the mail with nothing half done, and the admin is told."""
    ticket, notification = bench.open_ticket()
    real_send = bench.desk.mailer.send

    def send(kind, **kw):
        if kind == "escalation":
            raise ValueError("the escalation template broke")
        return real_send(kind, **kw)

    monkeypatch.setattr(bench.desk.mailer, "send", send)
    outcome = bench.process(agent_mail(notification, "#priority P2\n#escalate vendor\n\nOn it.",
                                       to=reply_address(notification)))
    assert outcome.state == "quarantined" and "the escalation template broke" in outcome.reason
    t = Ticket.get_by_id(ticket.id)
    assert (t.tier, t.priority, t.status, t.first_response_at) == (1, "P3", "new", None)
    assert not events(t, "command") and not events(t, "escalation") and not command_errors(bench, ticket)
    assert not to_requester(bench, ticket)
    assert len(bench.sent("admin@example.com", kind="quarantine_alert")) == 1


# ---------------------------------------------------------------- a command that makes a ticket P1

def _escalations(bench, ticket, rcpt: str) -> list[Outbox]:
    return [o for o in bench.sent(rcpt, kind="escalation") if o.ticket_id == ticket.id]


def _assert_straight_to_tier_3(bench, ticket, lines: str, moved_at: datetime) -> None:
    """Tier 3, one escalation mail to its address, one event naming the command, clocks from ``moved_at``."""
    t = Ticket.get_by_id(ticket.id)
    assert (t.priority, t.tier, t.tier_since) == ("P1", 3, moved_at)
    (mail,) = _escalations(bench, ticket, "l3@example.com")
    assert mail.recipients == ["l3@example.com"]
    assert not _escalations(bench, ticket, "l2@example.com")
    (moved,) = events(t, "escalation")
    assert (moved.data["from_tier"], moved.data["to_tier"], moved.actor) == (1, 3, "alice@example.com")
    assert "P1: straight to tier 3" in moved.text and lines in moved.text, moved.text
    assert t.resolution_started_at == moved_at and t.resolution_paused_seconds == 0  # the new tier's own window
    assert t.resolution_due == moved_at + timedelta(hours=4)  # P1's resolution target, 24/7
    assert [o.kind for o in bench.sent(t.requester_address, kind="escalated") if o.ticket_id == t.id] == ["escalated"]


def test_priority_p1_sends_a_tier_1_ticket_to_tier_3_at_once(bench):
    ticket, notification = bench.open_ticket()
    assert (ticket.tier, ticket.priority) == (1, "P3")
    bench.clock.advance(timedelta(minutes=20))
    _reply(bench, notification, "#priority P1\n\nWe are on it.")
    _assert_straight_to_tier_3(bench, ticket, "#priority P1", bench.clock.now())
    assert not command_errors(bench, ticket)


def test_impact_and_urgency_that_make_p1_send_the_ticket_to_tier_3(bench):
    assert priority_for("high", "high", bench.config.rules.matrix) == "P1"
    ticket, notification = bench.open_ticket()
    bench.clock.advance(timedelta(minutes=20))
    _reply(bench, notification, "#urgency high\n#impact high")
    _assert_straight_to_tier_3(bench, ticket, "#impact high", bench.clock.now())
    assert "#urgency high" in events(ticket, "escalation")[0].text


@pytest.mark.parametrize("body", ["#priority P1\n#tier 2", "#tier 2\n#priority P1",
                                  "#impact high\n#tier 2\n#urgency high"])
def test_an_explicit_tier_in_the_same_mail_wins_over_p1s_move(bench, body):
    ticket, notification = bench.open_ticket(1)
    _reply(bench, notification, body)
    t = Ticket.get_by_id(ticket.id)
    assert (t.priority, t.tier) == ("P1", 2)
    assert len(_escalations(bench, ticket, "l2@example.com")) == 1 and not _escalations(bench, ticket, "l3@example.com")
    assert [e.data["to_tier"] for e in events(t, "escalation")] == [2]
    # the control: the same mail without #tier moves a ticket to tier 3
    other, other_note = bench.open_ticket(2)
    _reply(bench, other_note, "\n".join(line for line in body.splitlines() if not line.startswith("#tier")))
    assert Ticket.get_by_id(other.id).tier == 3


def test_a_ticket_already_at_tier_3_gets_no_second_escalation_and_lower_priority_keeps_the_tier(bench):
    ticket, notification = bench.open_ticket()
    _reply(bench, notification, "#priority P1")
    assert Ticket.get_by_id(ticket.id).tier == 3 and len(_escalations(bench, ticket, "l3@example.com")) == 1
    bench.clock.advance(timedelta(minutes=5))
    _reply(bench, notification, "#priority P3")  # lowering the priority does not lower the tier
    assert (Ticket.get_by_id(ticket.id).priority, Ticket.get_by_id(ticket.id).tier) == ("P3", 3)
    bench.clock.advance(timedelta(minutes=5))
    _reply(bench, notification, "#impact high\n#urgency high")  # P1 again, at tier 3 already
    t = Ticket.get_by_id(ticket.id)
    assert (t.priority, t.tier) == ("P1", 3)
    assert len(_escalations(bench, ticket, "l3@example.com")) == 1
    assert [e.data["to_tier"] for e in events(t, "escalation")] == [3]
    assert not bench.sent("admin@example.com", kind="escalation_manager")


def test_p2_does_not_move_the_ticket_and_p1_later_does(bench):
    ticket, notification = bench.open_ticket()
    _reply(bench, notification, "#priority P2")
    t = Ticket.get_by_id(ticket.id)
    assert (t.priority, t.tier) == ("P2", 1)
    assert not bench.sent(kind="escalation") and not events(t, "escalation")
    _reply(bench, notification, "#priority P1")
    assert Ticket.get_by_id(ticket.id).tier == 3 and len(_escalations(bench, ticket, "l3@example.com")) == 1


def test_p1_on_a_ticket_resolved_in_the_same_mail_does_not_escalate_it(bench):
    ticket, notification = bench.open_ticket()
    _reply(bench, notification, "#priority P1\n#status resolved\n\nThe vendor patch fixed it.")
    t = Ticket.get_by_id(ticket.id)
    assert (t.priority, t.status, t.tier) == ("P1", "resolved", 1)
    assert not bench.sent(kind="escalation") and not events(t, "escalation")


# ---------------------------------------------------------------- who gets the reply, in which thread

def test_reply_goes_to_requester_and_participants_in_the_requesters_latest_thread(bench):
    root = "<part-root@customer.example>"
    outcome = bench.process(make_mail(message_id=root, date=START,
                                      cc="Bo Ek <bo@customer.example>, Bob <bob@example.com>"))
    ticket = Ticket.get_by_id(outcome.ticket)
    (note,) = [parse(bytes(o.raw)) for o in bench.sent(kind="new_ticket")]
    _, agents_mail = _reply(bench, note, "First answer.")
    first_at = Ticket.get_by_id(ticket.id).first_response_at
    (ack,) = bench.sent("anna@customer.example", kind="acknowledgement")
    bench.clock.advance(timedelta(hours=1))
    follow = make_mail(message_id="<part-2@customer.example>", to=reply_address(parse(bytes(ack.raw))),
                       subject=f"Re: [SD#{ticket.id}] Printer broken", in_reply_to=root, references=root,
                       body="It still does not print.", date=bench.clock.now())
    assert bench.process(follow).ticket == ticket.id
    bench.clock.advance(timedelta(hours=1))
    _reply(bench, note, "Second answer.")
    replies = [o for o in bench.sent(kind="agent_reply") if o.ticket_id == ticket.id]
    assert [sorted(o.recipients) for o in replies] == [["anna@customer.example", "bo@customer.example"]] * 2
    first, second = (parse(bytes(o.raw)) for o in replies)
    assert [a.addr_spec for a in second["To"].addresses] == ["anna@customer.example"]
    assert [a.addr_spec for a in second["Cc"].addresses] == ["bo@customer.example"]
    assert first["In-Reply-To"] == root and second["In-Reply-To"] == "<part-2@customer.example>"
    assert root in second["References"] and "<part-2@customer.example>" in second["References"]
    # the requester's thread holds no internal message ids (the agents' mails, the notifications)
    internal = {f"<{o.message_id}>" for o in bench.sent() if o.kind in ("new_ticket", "requester_update")}
    internal.add(agents_mail["Message-ID"])
    assert len(internal) == 3 and all(i.startswith("<") and not i.startswith("<<") for i in internal)
    assert not any(i in second["References"] for i in internal)
    t = Ticket.get_by_id(ticket.id)
    assert t.first_response_at == first_at and len(events(t, "first_response")) == 1


@pytest.mark.parametrize("headers,subject", [
    ({"Auto-Submitted": "auto-replied"}, None),
    ({"X-Autoreply": "yes"}, None),
    ({}, "Automatic reply: {subject}"),
    ({"Precedence": "auto_reply"}, "Out of office: {subject}"),
])
def test_an_agents_out_of_office_reply_to_a_notification_reaches_nobody(bench, headers, subject):
    """The vacation responder answers the signed reply address: it must not become a public reply."""
    ticket, notification = bench.open_ticket()
    raw = agent_mail(notification, "I am out of office until Monday.\n#status closed",
                     to=reply_address(notification), headers=headers,
                     subject=subject.format(subject=notification["Subject"]) if subject else None)
    outcome = bench.process(raw)
    assert outcome.state == "processed" and outcome.ticket == ticket.id
    assert_untouched(bench, ticket)
    assert [e.kind for e in events(ticket, "auto_reply")] == ["auto_reply"]
    assert not bench.sent("bob@example.com") and not command_errors(bench, ticket)


@pytest.fixture
def bench_any_db(tmp_path, db_url):
    return Bench(tmp_path, extra={"database": {"url": db_url}})


def test_forged_and_genuine_agent_mail_on_each_database(bench_any_db):
    bench = bench_any_db
    ticket, notification = bench.open_ticket()
    bench.process(agent_mail(notification, FORGED))
    assert_untouched(bench, ticket)
    assert_unverified_note(bench, ticket, FORGED)
    _, mail = _reply(bench, notification, "#frobnicate\n#status pending\n#assign me\n\nPlease send the log.")
    t = Ticket.get_by_id(ticket.id)
    assert (t.status, t.assignee) == ("pending", "alice@example.com") and t.first_response_at is not None
    assert_one_error_reply(bench, ticket, mail, "#frobnicate", "is not a command")
    assert "Please send the log." in plain_text(to_requester(bench, ticket)[0])


# ---------------------------------------------------------------- more quoting styles (in-process)

def _quote_styles(notification: EmailMessage) -> dict[str, str]:
    addr, subject, text = reply_address(notification), notification["Subject"], plain_text(notification)
    return {
        "gmail wrapped attribution": (f"On Fri, Nov 27, 2026 at 9:00 AM Service Desk <\n{addr}> wrote:\n\n"
                                      f"{_quoted(text)}"),
        "apple mail": f"On 27 Nov 2026, at 09:00, Service Desk <{addr}> wrote:\n\n{_quoted(text)}",
        "outlook swedish": (f"________________________________\nFrån: Service Desk <{addr}>\n"
                            f"Skickat: den 27 november 2026 09:00\nTill: Service desk <l1@example.com>\n"
                            f"Ämne: {subject}\n\n{text}"),
        "outlook original message": (f"-----Original Message-----\nFrom: Service Desk <{addr}>\n"
                                     f"Sent: Friday, November 27, 2026 9:00 AM\nTo: l1@example.com\n"
                                     f"Subject: {subject}\n\n{text}"),
        "thunderbird swedish": f"Den 2026-11-27 kl. 09:00, skrev Service Desk:\n{_quoted(text)}",
        "german outlook": (f"-----Ursprüngliche Nachricht-----\nVon: Service Desk <{addr}>\n"
                           f"Gesendet: Freitag, 27. November 2026 09:00\nAn: l1@example.com\n"
                           f"Betreff: {subject}\n\n{text}"),
    }


QUOTE_STYLES = ("gmail wrapped attribution", "apple mail", "outlook swedish", "outlook original message",
                "thunderbird swedish", "german outlook")


@pytest.mark.parametrize("style", QUOTE_STYLES)
def test_more_quoting_styles_leave_only_the_new_text(bench, style):
    ticket, notification = bench.open_ticket()
    quoted = _quote_styles(notification)[style]
    _reply(bench, notification, "#assign me\n\n" + NEW_TEXT + "\n\n" + quoted)
    (reply,) = to_requester(bench, ticket)
    assert plain_text(reply).replace("\r\n", "\n").split("\n-- \n")[0].strip() == NEW_TEXT
    assert events(ticket, "reply_out")[-1].text.strip() == NEW_TEXT
    assert Ticket.get_by_id(ticket.id).assignee == "alice@example.com"


# ---------------------------------------------------------------- forwards: who may open a ticket for whom

def test_only_an_agents_forward_opens_the_ticket_for_the_original_sender(bench):
    agent = bench.process(_gmail_forward())
    assert Ticket.get_by_id(agent.ticket).requester_address == "erik@customer.example"
    # a requester forwarding a colleague's mail stays the requester: nobody else opens tickets in Erik's name
    raw = _gmail_forward().replace(b"From: Alice <alice@example.com>", b"From: Anna Svensson <anna@customer.example>") \
        .replace(b"<fwd-gmail@example.com>", b"<fwd-by-anna@customer.example>")
    user = bench.process(raw)
    t = Ticket.get_by_id(user.ticket)
    assert (t.requester_address, t.requester_name) == ("anna@customer.example", "Anna Svensson")
    assert [o.kind for o in bench.sent("erik@customer.example")] == ["acknowledgement"]  # only the agent's


def test_an_agents_forward_without_a_readable_sender_stays_the_agents(bench):
    raw = make_mail(sender=ALICE, subject="Fwd: printer", message_id="<fwd-noheader@example.com>", date=START,
                    body="Forwarded message from Erik on Thu 26 Nov:\n\nThe printer jams.\n")
    t = Ticket.get_by_id(bench.process(raw).ticket)
    assert t.requester_address == "alice@example.com" and "The printer jams." in t.description
    assert not any("forwarded by agent" in e.text for e in events(t, "note"))


def test_resolving_with_text_sends_the_text_in_the_resolved_mail_and_counts_as_first_response(bench):
    ticket, notification = bench.open_ticket()
    _reply(bench, notification, "#status resolved\n\nThe driver is reinstalled; it prints again.")
    t = Ticket.get_by_id(ticket.id)
    assert t.status == "resolved" and t.first_response_at == START and t.response_stopped_at == START
    (resolved,) = to_requester(bench, ticket, kind="resolved")
    assert "The driver is reinstalled; it prints again." in plain_text(resolved)
    assert "#status" not in plain_text(resolved)
    assert not to_requester(bench, ticket)  # one mail, not a reply and a resolved notice
    assert events(t, "reply_out")[-1].data["resolution"] is True
    assert [e.actor for e in events(t, "first_response")] == ["alice@example.com"]  # in the history too


def test_commands_sent_to_the_comment_address_act_and_the_text_stays_internal(bench):
    ticket, notification = bench.open_ticket()
    _reply(bench, notification, "#note\nAsked the vendor.")
    (note,) = [parse(bytes(o.raw)) for o in bench.sent("bob@example.com", kind="note")]
    assert bench.desk.signer.verify(bench.token_of(note), START).purpose == "note"
    _reply(bench, note, "#status pending\n#priority P2\n\nWaiting for the vendor, do not chase the user.",
           sender="Bob <bob@example.com>")
    t = Ticket.get_by_id(ticket.id)
    assert (t.status, t.priority, t.first_response_at) == ("pending", "P2", None)
    assert not to_requester(bench, ticket)
    assert events(t, "note")[-1].text.strip() == "Waiting for the vendor, do not chase the user."
    assert [e.actor for e in events(t, "command")] == ["bob@example.com", "bob@example.com"]
