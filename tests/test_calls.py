"""Calls that happen (issue 27): where to join, the requester's number, moving and cancelling a
call, the requester's answer from Outlook, Gmail and Apple Calendar, the agent's reminder.

The conversations run through Dovecot and the SMTP sink (SQLite in English, PostgreSQL in
Swedish); bad input, the reminder and the configuration in-process with a fake clock. The
calendar answers are the constructed fixture mails in tests/data/calendar_replies/ (see its
README), filled in with the invitation they answer.
"""

from __future__ import annotations

import base64
import email.quoprimime
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from mailticket import db
from mailticket.clock import FakeClock
from mailticket.config import load_config
from mailticket.desk import calls
from mailticket.errors import ConfigError, ConfigErrors
from mailticket.inbound.phones import international, numbers_in_signature, parse_number
from mailticket.models import Event, Outbox, Ticket
from mailticket.service.wiring import build_desk
from tests.harness import make_mail, wait_until, write_config
from tests.test_conversations_agents import (START, Bench, LiveDesk, agent_mail, gmail_reply, parse, plain_text,
                                             reply_address)
from tests.test_working_day_files import case  # noqa: F401 - the (database, language) matrix

FIXTURES = Path(__file__).parent / "data" / "calendar_replies"
ZONE = ZoneInfo("Europe/Stockholm")
ANNA = "Anna Svensson <anna@customer.example>"
CALLS_TOML = '''
[calls]
link = "https://meet.example.com/{agent}?t={ticket}"
phone = "08-123 00 00"
remind_before = "15m"

[calls.agents."carol@example.com"]
link = "https://video.example.com/carol"
'''
SIGNED = ("Hej,\n\nskrivaren på plan 3 skriver bara ut tomma sidor.\n\nMed vänlig hälsning\nAnna Svensson\n"
          "Ekonomiavdelningen, Exempel AB\ntfn 08-123 45 67\n")


# ---------------------------------------------------------------- helpers

def calendar_of(msg) -> tuple[str, icalendar.Calendar, icalendar.Event]:
    """The text/calendar alternative of an invitation: its method parameter, the calendar, the event."""
    (part,) = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    cal = icalendar.Calendar.from_ical(part.get_content())
    (event,) = cal.walk("VEVENT")
    return part.get_param("method"), cal, event


def calendar_reply(name: str, invitation, *, attendee: str = "anna@customer.example", uid: str | None = None,
                   sequence: int | None = None, proposed: datetime | None = None, message_id: str | None = None,
                   date: datetime | None = None) -> bytes:
    """The fixture mail ``name`` answering ``invitation`` (a parsed mail), placeholders filled in."""
    _, _, event = calendar_of(invitation)
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    proposed = proposed or start + timedelta(days=1)
    proposed_end = proposed + (end - start)
    stamp = date or datetime.now(timezone.utc)
    values = {
        "@@UID@@": uid or str(event["UID"]), "@@SEQUENCE@@": str(event.get("SEQUENCE") if sequence is None else sequence),
        "@@ATTENDEE@@": attendee, "@@ATTENDEE_NAME@@": "Anna Svensson", "@@ORGANIZER@@": "support@example.com",
        "@@START_UTC@@": _utc(start), "@@END_UTC@@": _utc(end), "@@START_LOCAL@@": _local(start),
        "@@END_LOCAL@@": _local(end), "@@PROPOSED_START_UTC@@": _utc(proposed),
        "@@PROPOSED_END_UTC@@": _utc(proposed_end), "@@PROPOSED_START_LOCAL@@": _local(proposed),
        "@@PROPOSED_END_LOCAL@@": _local(proposed_end), "@@DTSTAMP@@": _utc(stamp),
        "@@SUMMARY@@": str(event["SUMMARY"]), "@@MESSAGE_ID@@": message_id or make_msgid(domain="customer.example"),
        "@@DATE@@": format_datetime(stamp), "@@SUBJECT_WHEN@@": f"{start.astimezone(ZONE):%a %d %b %Y %H:%M} (CET)",
    }
    ics = _fill((FIXTURES / f"{name}.ics").read_text(encoding="utf-8"), values)
    mail = _fill((FIXTURES / f"{name}.eml").read_text(encoding="utf-8"), values)
    b64 = base64.b64encode(ics.encode()).decode()
    mail = mail.replace("@@ICS_BASE64@@", "\r\n".join(b64[i:i + 76] for i in range(0, len(b64), 76)))
    utf8_octets = ics.replace("\r\n", "\n").encode("utf-8").decode("latin-1")  # one character per octet
    mail = mail.replace("@@ICS_QP@@", email.quoprimime.body_encode(utf8_octets, eol="\r\n"))
    return mail.replace("@@ICS@@", ics.rstrip("\r\n")).encode("utf-8")


def _fill(text: str, values: dict) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"


def _local(moment: datetime) -> str:
    return f"{moment.astimezone(ZONE):%Y%m%dT%H%M%S}"


def move_to(clock, when: datetime) -> None:
    clock.advance(when - clock.now())


def history(ticket, kind):
    return list(Event.select().where(Event.ticket == ticket, Event.kind == kind).order_by(Event.id))


def one_line(text: str) -> str:
    return " ".join(text.split())


def call_live(case, tmp_path, mailbox_user, smtp_sink) -> LiveDesk:
    url, locale = case
    live = LiveDesk(tmp_path, mailbox_user, smtp_sink, extra={"database": {"url": url}, "service": {"locale": locale}})
    live.config_path.write_text(live.config_path.read_text(encoding="utf-8") + CALLS_TOML, encoding="utf-8")
    return live


def open_signed(live, root: str, language: str, body: str = SIGNED):
    before = len(live.mails("l1@example.com"))
    # Anna writes Swedish; her mail's Content-Language names the desk's language (it wins over the text), so
    # the requester's mails are in the desk's language here and one set of words checks both sides
    live.deliver(make_mail(sender=ANNA, subject="Skrivaren skriver tomma sidor", body=body, message_id=root,
                           headers={"Content-Language": language}))
    notes = wait_until(lambda: (lambda m: m if len(m) > before else None)(live.mails("l1@example.com")),
                       timeout=30, what="the tier notification")
    return Ticket.get(Ticket.thread_root == root.strip("<>")), notes[-1]


def day_ahead(days: int = 3):
    return (datetime.now(ZONE) + timedelta(days=days)).date()


WORDS = {
    "en": {"join": "join the call at", "moved": "Call moved", "cancelled": "cancelled", "accepted": "accepted",
           "declined": "declined", "counter": "proposed another time", "tentative": "tentatively accepted",
           "calls_you": "Carol will call you on", "phone_label": "Requester's phone:"},
    "sv": {"join": "anslut till samtalet på", "moved": "Samtalet flyttat", "cancelled": "inställt",
           "accepted": "tackat ja", "declined": "tackat nej", "counter": "föreslår en annan tid",
           "tentative": "kanske deltar", "calls_you": "Carol ringer dig på", "phone_label": "Anmälarens telefon:"},
}


# ---------------------------------------------------------------- the conversation

def test_a_call_is_booked_where_to_join_moved_answered_and_cancelled(case, tmp_path, mailbox_user, smtp_sink):
    locale = case[1]
    words = WORDS[locale]
    with call_live(case, tmp_path, mailbox_user, smtp_sink) as live:
        ticket, notification = open_signed(live, "<call-flow@customer.example>", locale)
        # the number in Anna's Swedish signature, in international form, in the agents' mail
        assert Ticket.get_by_id(ticket.id).language == locale, Ticket.get_by_id(ticket.id).language
        assert Ticket.get_by_id(ticket.id).requester_phone == "+4681234567"
        assert words["phone_label"] + " +46 8 123 45 67" in one_line(plain_text(notification))
        assert "+46 8 123 45 67" in notification.get_body(("html",)).get_content()
        day = day_ahead()
        live.deliver(gmail_reply(notification, f"#call {day:%Y-%m-%d} 14:00 30m"))
        (first,) = live.wait_mail("anna@customer.example", contains="Alice")[-1:]
        method, cal, event = calendar_of(first)
        link = f"https://meet.example.com/alice?t={ticket.id}"
        assert method == "REQUEST" and str(cal["METHOD"]) == "REQUEST"
        assert str(event["LOCATION"]) == link and str(event["URL"]) == link
        assert link in str(event["DESCRIPTION"]) and "+46 8 123 00 00" in str(event["DESCRIPTION"])
        assert event.decoded("DTSTART") == datetime(day.year, day.month, day.day, 14, tzinfo=ZONE)
        assert int(event["SEQUENCE"]) == 0 and str(event["ORGANIZER"]) == "mailto:support@example.com"
        text = one_line(plain_text(first))
        assert f"{words['join']} {link}" in text and "+46 8 123 00 00" in text
        uid = str(event["UID"])
        # a second #call moves the same meeting
        live.deliver(gmail_reply(notification, f"#call {day:%Y-%m-%d} 15:00 45m"))
        moved = live.wait_mail("anna@customer.example", contains=words["moved"])[-1]
        method, cal, event = calendar_of(moved)
        assert (method, str(cal["METHOD"]), str(event["UID"]), int(event["SEQUENCE"])) == ("REQUEST", "REQUEST", uid, 1)
        assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=45)
        assert len(history(ticket, "call")) == 1 and len(history(ticket, "call_moved")) == 1
        # Anna accepts in Outlook: recorded, Alice told once; the same answer again tells nobody
        live.deliver(calendar_reply("outlook_accepted", moved))
        told = live.wait_mail("alice@example.com", contains=words["accepted"])[-1]
        assert f"[SD#{ticket.id}]" in told["Subject"]
        live.deliver(calendar_reply("gmail_accepted", moved))
        wait_until(lambda: len(history(ticket, "call_answer")) == 2, timeout=30, what="the second answer recorded")
        call = Ticket.get_by_id(ticket.id).call
        assert (call["state"], call["sequence"], call["uid"]) == ("accepted", 1, uid)
        # #call cancel: METHOD:CANCEL with the same UID
        live.deliver(gmail_reply(notification, "#call cancel"))
        cancel = live.wait_mail("anna@customer.example", contains=words["cancelled"])[-1]
        method, cal, event = calendar_of(cancel)
        assert (method, str(cal["METHOD"]), str(event["UID"]), str(event["STATUS"])) == (
            "CANCEL", "CANCEL", uid, "CANCELLED")
        assert int(event["SEQUENCE"]) == 2
        assert len(history(ticket, "call_cancelled")) == 1
        # Carol's own link, then a call where she rings Anna's number
        live.deliver(gmail_reply(notification, f"#call {day:%Y-%m-%d} 10:00 20m", sender="Carol <carol@example.com>"))
        carols = live.wait_mail("anna@customer.example", contains="Carol")[-1]
        _, _, event = calendar_of(carols)
        assert str(event["URL"]) == str(event["LOCATION"]) == "https://video.example.com/carol"
        assert str(event["UID"]) != uid and int(event["SEQUENCE"]) == 0
        live.deliver(gmail_reply(notification, f"#call {day:%Y-%m-%d} 11:00 20m phone",
                                 sender="Carol <carol@example.com>"))
        rings = live.wait_mail("anna@customer.example", contains=words["calls_you"])[-1]
        _, _, phone_event = calendar_of(rings)
        assert "+46 8 123 45 67" in str(phone_event["LOCATION"]) and "URL" not in phone_event
        assert str(phone_event["UID"]) == str(event["UID"]) and int(phone_event["SEQUENCE"]) == 1
        assert words["calls_you"] + " +46 8 123 45 67" in one_line(plain_text(rings))
        live.processed(8)
        live.wait_outbox_sent()
        assert len(live.mails("alice@example.com")) == 1  # the one answer mail; nothing else
        assert not [m for m in live.mails("l1@example.com") if "accepted" in plain_text(m).lower()
                    or "Accepted" in str(m["Subject"])]  # an answer is no requester update
        assert Ticket.get_by_id(ticket.id).status == "new"


ANSWERS = {  # client: its answers in the order Anna sends them, and what Alice's mail says
    "outlook": [("outlook_accepted", "accepted"), ("outlook_declined", "declined"), ("outlook_counter", "counter")],
    "gmail": [("gmail_accepted", "accepted"), ("gmail_declined", "declined"), ("gmail_tentative", "tentative")],
    "apple": [("apple_accepted", "accepted"), ("apple_declined", "declined")],
}


def test_each_clients_answers_are_recorded_and_the_agent_told_once_each(case, tmp_path, mailbox_user, smtp_sink):
    locale = case[1]
    words = WORDS[locale]
    with call_live(case, tmp_path, mailbox_user, smtp_sink) as live:
        day = day_ahead(4)
        booked = {}
        for n, client in enumerate(ANSWERS):
            ticket, notification = open_signed(live, f"<answers-{client}@customer.example>", locale)
            live.deliver(gmail_reply(notification, f"#call {day:%Y-%m-%d} {9 + n}:00 30m"))
            invitation = wait_until(lambda: [m for m in live.mails("anna@customer.example")
                                             if f"[SD#{ticket.id}]" in str(m["Subject"])
                                             and any(p.get_content_type() == "text/calendar" for p in m.walk())],
                                    timeout=30, what="the invitation")[-1]
            booked[client] = (ticket, invitation)
        proposed = datetime.combine(day + timedelta(days=1), datetime.min.time(), ZONE).replace(hour=13)
        told_before = 0
        for client, answers in ANSWERS.items():
            ticket, invitation = booked[client]
            for name, answer in answers:
                live.deliver(calendar_reply(name, invitation, proposed=proposed))
                told_before += 1
                mails = live.wait_mail("alice@example.com", count=told_before)
                told = mails[-1]
                text = one_line(plain_text(told))
                assert f"[SD#{ticket.id}]" in told["Subject"] and words[answer] in str(told["Subject"]) + text
                assert words["phone_label"] + " +46 8 123 45 67" in text
                if name == "outlook_declined":
                    assert "Tisdag eftermiddag går bra." in text
                if name == "gmail_declined":
                    assert "Kan vi ta det på tisdag i stället?" in text
                if name == "outlook_counter":
                    assert f"{proposed:%H}:00" in text and "Kan vi ta det lite senare?" in text
                call = Ticket.get_by_id(ticket.id).call
                assert call["state"] == {"counter": "countered"}.get(answer, answer)
            # the last answer once more (a calendar resends it): recorded, nobody told again
            live.deliver(calendar_reply(answers[-1][0], invitation, proposed=proposed))
            wait_until(lambda: len(history(ticket, "call_answer")) == len(answers) + 1, timeout=30,
                       what="the resent answer recorded")
        live.processed(3 + 3 + 9)
        live.wait_outbox_sent()
        assert len(live.mails("alice@example.com")) == 8
        for client, (ticket, _) in booked.items():
            kinds = [e.data["answer"] for e in history(ticket, "call_answer")]
            assert kinds[:-1] == [{"counter": "COUNTER"}.get(a, a.upper()) for _, a in ANSWERS[client]]
            assert not history(ticket, "reply_in") and not history(ticket, "auto_reply")
            assert Ticket.get_by_id(ticket.id).status == "new"
        assert not Outbox.select().where(Outbox.kind.in_(["requester_update", "reopened"])).exists()


# ---------------------------------------------------------------- in-process: bad input, reminders

class CallBench(Bench):
    def __init__(self, tmp_path, db_url=None, locale="en", calls_toml=CALLS_TOML):
        self.clock = FakeClock(START)
        path = write_config(tmp_path, db_url=db_url, extra={
            "service": {"locale": locale},
            "rate_limits": {"per_ticket": 20, "per_sender_day": 100, "global_10min": 1000}})
        path.write_text(path.read_text(encoding="utf-8") + calls_toml, encoding="utf-8")
        self.config = load_config(path)
        db.connect(self.config.database.url)
        self.desk = build_desk(self.config, clock=self.clock)

    def signed_ticket(self, body=SIGNED, n=1):
        outcome = self.process(make_mail(sender=ANNA, message_id=f"<signed-{n}@customer.example>",
                                         subject=f"Skrivaren {n}", body=body, date=self.clock.now()))
        ticket = Ticket.get_by_id(outcome.ticket)
        (note,) = [o for o in self.sent(kind="new_ticket") if o.ticket_id == ticket.id]
        return ticket, parse(bytes(note.raw))

    def reply(self, notification, body, sender="Alice <alice@example.com>"):
        self.clock.advance(60)
        outcome = self.process(agent_mail(notification, body, sender=sender, to=reply_address(notification)))
        assert outcome.state == "processed", outcome
        return outcome

    def last(self, kind, rcpt=None):
        found = self.sent(rcpt, kind=kind)
        return parse(bytes(found[-1].raw)) if found else None


@pytest.fixture
def cbench(tmp_path, db_url):
    return CallBench(tmp_path, db_url)


def errors_to_alice(bench):
    return [plain_text(parse(bytes(o.raw))) for o in bench.sent("alice@example.com", kind="command_error")]


def test_bad_commands_get_a_clear_reply_and_change_nothing(cbench):
    ticket, notification = cbench.signed_ticket(body="Hej,\n\nskrivaren krånglar.\n\nAnna")
    assert ticket.requester_phone is None
    cbench.reply(notification, "#call cancel")
    cbench.reply(notification, "#phone hello")
    cbench.reply(notification, "#call 2026-11-30 10:00 30m phone")
    cbench.reply(notification, "#call 2026-11-20 10:00")
    errors = [one_line(e) for e in errors_to_alice(cbench)]
    assert len(errors) == 4
    assert "no call is arranged on this ticket, so there is none to cancel" in errors[0]
    assert "'hello' is not a phone number" in errors[1] and "#phone NUMBER" in errors[1]
    assert "the requester's phone number is not known; give it first with #phone NUMBER" in errors[2]
    assert "is in the past" in errors[3]
    t = Ticket.get_by_id(ticket.id)
    assert (t.call, t.requester_phone, t.call_remind_at) == (None, None, None)
    assert not cbench.sent(kind="call_invitation") and not cbench.sent(kind="call_cancelled")
    assert not history(t, "call") and not history(t, "phone")


def test_phone_sets_the_number_shown_in_every_agent_mail(cbench):
    ticket, notification = cbench.signed_ticket(body="Hej,\n\nskrivaren krånglar.\n\nAnna")
    cbench.reply(notification, "#phone 070-123 45 67")
    assert Ticket.get_by_id(ticket.id).requester_phone == "+46701234567"
    (event,) = history(ticket, "phone")
    assert event.actor == "alice@example.com" and event.data["new"] == "+46701234567"
    cbench.reply(notification, "#note\nRinger henne i eftermiddag.")
    note = cbench.last("note")
    assert "Requester's phone:  +46 70 123 45 67" in plain_text(note)
    cbench.reply(notification, "#phone none")
    assert Ticket.get_by_id(ticket.id).requester_phone is None


def test_answers_that_are_not_ours_are_ordinary_text(cbench):
    ticket, notification = cbench.signed_ticket()
    cbench.reply(notification, "#call 2026-11-30 10:00 30m")
    invitation = cbench.last("call_invitation")
    before = dict(Ticket.get_by_id(ticket.id).call)
    # a UID we never sent
    unknown = calendar_reply("outlook_accepted", invitation, uid=f"call-{ticket.id}-00000000deadbeef@example.com")
    assert cbench.process(unknown).state == "processed"
    # from someone who is not the attendee (Bo answers Anna's invitation)
    stranger = calendar_reply("gmail_accepted", invitation, attendee="bo.ek@customer.example")
    cbench.process(stranger)
    # Anna's answer to a version that has since been moved: recorded, nobody told
    cbench.reply(notification, "#call 2026-11-30 11:00 30m")
    stale = calendar_reply("apple_declined", invitation, sequence=0)
    moved = cbench.last("call_invitation")
    assert calendar_of(moved)[2]["SEQUENCE"] == 1
    assert cbench.process(stale).state == "processed"
    t = Ticket.get_by_id(ticket.id)
    assert t.call["state"] == "requested" and t.call["uid"] == before["uid"] and t.call["answer"] is None
    assert not cbench.sent(kind="call_answer")
    (recorded,) = history(t, "call_answer")
    assert recorded.data["stale"] is True and recorded.data["answer"] == "DECLINED"
    # the two others were read as mail, the way any mail is: Anna's own as a follow-up
    assert len(history(t, "reply_in")) == 1


def test_the_agent_is_reminded_once_before_the_call_and_at_the_new_time_when_moved(cbench):
    ticket, notification = cbench.signed_ticket()
    cbench.reply(notification, "#call 2026-11-30 10:00 30m")  # 09:00 UTC
    start = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    assert Ticket.get_by_id(ticket.id).call_remind_at == start - timedelta(minutes=15)
    move_to(cbench.clock, start - timedelta(minutes=16))
    assert calls.send_reminders(cbench.desk, cbench.clock.now()) == 0
    move_to(cbench.clock, start - timedelta(minutes=15))
    assert calls.send_reminders(cbench.desk, cbench.clock.now()) == 1
    assert calls.send_reminders(cbench.desk, cbench.clock.now()) == 0
    (reminder,) = cbench.sent(kind="call_reminder")
    assert reminder.recipients == ["alice@example.com"]
    text = one_line(plain_text(parse(bytes(reminder.raw))))
    assert f"https://meet.example.com/alice?t={ticket.id}" in text and "+46 8 123 45 67" in text
    # moved to the afternoon: reminded again, at the new time
    cbench.reply(notification, "#call 2026-11-30 15:00 30m")
    move_to(cbench.clock, start + timedelta(minutes=10))
    assert calls.send_reminders(cbench.desk, cbench.clock.now()) == 0
    move_to(cbench.clock, datetime(2026, 11, 30, 13, 46, tzinfo=timezone.utc))
    assert calls.send_reminders(cbench.desk, cbench.clock.now()) == 1
    # cancelled: never reminded
    cbench.reply(notification, "#call 2026-12-01 15:00 30m")
    cbench.reply(notification, "#call cancel")
    assert Ticket.get_by_id(ticket.id).call_remind_at is None
    move_to(cbench.clock, datetime(2026, 12, 1, 13, 50, tzinfo=timezone.utc))
    assert calls.send_reminders(cbench.desk, cbench.clock.now()) == 0
    assert len(cbench.sent(kind="call_reminder")) == 2
    assert [e.data.get("sequence") for e in history(ticket, "call_reminder")] == [0, 1]


def test_the_daemon_runs_the_reminder_job_on_the_desks_clock(tmp_path):
    from mailticket.service.daemon import Daemon
    bench = CallBench(tmp_path)
    ticket, notification = bench.signed_ticket()
    bench.reply(notification, "#call 2026-11-30 10:00 30m")
    daemon = Daemon(bench.desk, worker="test-calls")
    assert any(getattr(job.job_func, "__name__", "") == "check_calls"
               or getattr(getattr(job.job_func, "func", None), "__name__", "") == "check_calls"
               for job in daemon.scheduler.jobs)
    move_to(bench.clock, datetime(2026, 11, 30, 8, 50, tzinfo=timezone.utc))
    assert daemon.check_calls() == 1 and daemon.check_calls() == 0


def test_a_reminder_for_a_call_already_over_is_not_sent(cbench):
    ticket, notification = cbench.signed_ticket()
    cbench.reply(notification, "#call 2026-11-30 10:00 30m")
    move_to(cbench.clock, datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc))  # the daemon was down meanwhile
    assert calls.send_reminders(cbench.desk, cbench.clock.now()) == 0
    assert not cbench.sent(kind="call_reminder")
    assert history(ticket, "call_reminder")[0].data["skipped"] is True


# ---------------------------------------------------------------- the requester's number

@pytest.mark.parametrize("signature,region,expected", [
    ("Anna Svensson\ntfn 08-123 45 67", "SE", ["+4681234567"]),
    ("Anna Svensson\nMobil: +46 70 123 45 67", "SE", ["+46701234567"]),
    ("Anna Svensson\n070-123 45 67", "SE", ["+46701234567"]),
    ("Anna\nTel. 08-123 45 67 | Mobil 073-987 65 43", "SE", ["+4681234567", "+46739876543"]),
    ("John Smith\nPhone: +1 415 555 2671", "SE", ["+14155552671"]),
    ("John Smith\nPhone: +44 20 7946 0958", None, ["+442079460958"]),
    ("Anna\n070-123 45 67", None, []),  # no country to read it in: only +CC numbers count
    ("Anna\nOrg.nr 556677-8899, order 2026-11-27, postnr 114 55", "SE", []),
])
def test_numbers_in_a_signature(signature, region, expected):
    assert numbers_in_signature(f"Hej,\n\nskrivaren krånglar.\n\n{signature}\n", region) == expected


def test_a_number_in_the_quoted_text_or_above_the_signature_is_not_the_requesters():
    body = "Ring leverantören på 08-555 123 45 i morgon.\n" + "text\n" * 20 + "-- \nAnna Svensson\nEkonomi\n"
    assert numbers_in_signature(body, "SE") == []
    assert parse_number("+46 8 123 45 67", None) == "+4681234567" and international("+4681234567") == "+46 8 123 45 67"


def test_a_number_in_an_english_desks_mail_and_an_agents_on_behalf_ticket(tmp_path):
    bench = CallBench(tmp_path)  # an English desk in Stockholm: the zone says SE
    assert bench.config.calls.region == "SE"
    ticket, notification = bench.signed_ticket(body="Hi,\n\nthe VPN drops.\n\nAnna\n+46 70 123 45 67\n")
    assert Ticket.get_by_id(ticket.id).requester_phone == "+46701234567"
    assert "Requester's phone:  +46 70 123 45 67" in plain_text(notification)
    # a later mail of hers does not overwrite a number the ticket has
    bench.clock.advance(60)
    bench.process(make_mail(sender=ANNA, subject=f"Re: [SD#{ticket.id}] Skrivaren 1", body="Nu igen.\n\nAnna\n08-999 99 99",
                            in_reply_to=ticket.thread_root, date=bench.clock.now()))
    assert Ticket.get_by_id(ticket.id).requester_phone == "+46701234567"


# ---------------------------------------------------------------- check-config

@pytest.mark.parametrize("toml,key,words", [
    ('[calls]\nlink = "https://meet.example.com/{user}"\n', "calls.link", "{user} is not a placeholder"),
    ('[calls]\nlink = "https://meet.example.com/{agent:>10}"\n', "calls.link", "placeholders take no format"),
    ('[calls]\nlink = "https://meet.example.com/{agent"\n', "calls.link", "is not a valid template"),
    ('[calls]\nlink = "meet.example.com/{agent}"\n', "calls.link", "is not a web address"),
    ('[calls]\nphone = "call me"\n', "calls.phone", "is not a phone number"),
    ('[calls]\nphone = "08-12"\n', "calls.phone", "is not a phone number"),
    ('[calls]\nremind_before = "0s"\n', "calls.remind_before", "is outside 1m..1d"),
    ('[calls]\nremind_before = "3d"\n', "calls.remind_before", "is outside 1m..1d"),
    ('[calls]\nremind_before = "soon"\n', "calls.remind_before", ""),
    ('[calls]\nwhere = "here"\n', "calls.where", "unknown key"),
    ('[calls.agents."eve@example.com"]\nlink = "https://x.example.com/"\n', 'calls.agents."eve@example.com"',
     "is not an agent"),
    ('[calls.agents."carol@example.com"]\nphone = "12"\n', 'calls.agents."carol@example.com".phone',
     "is not a phone number"),
])
def test_check_config_names_the_file_and_key(tmp_path, toml, key, words):
    path = write_config(tmp_path)
    path.write_text(path.read_text(encoding="utf-8") + "\n" + toml, encoding="utf-8")
    with pytest.raises((ConfigError, ConfigErrors)) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and key in message and words in message, message


def test_the_example_config_of_calls_is_valid(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text(encoding="utf-8") + CALLS_TOML, encoding="utf-8")
    cfg = load_config(path).calls
    assert cfg.place_for("alice@example.com").phone == "+46 8 123 00 00"
    assert cfg.place_for("carol@example.com").link == "https://video.example.com/carol"
    assert cfg.place_for("carol@example.com").phone == "+46 8 123 00 00"  # the desk's, not set for her
    assert cfg.remind_before == timedelta(minutes=15)


def test_erasing_the_requester_takes_the_number_and_the_call(cbench):
    from mailticket.desk import erasure
    ticket, notification = cbench.signed_ticket()
    cbench.reply(notification, "#call 2026-11-30 10:00 30m")
    t = Ticket.get_by_id(ticket.id)
    assert t.requester_phone and t.call and t.call_remind_at
    erasure.erase(cbench.config, "anna@customer.example", cbench.clock.now())
    t = Ticket.get_by_id(ticket.id)
    assert (t.requester_phone, t.call, t.call_remind_at) == (None, None, None)
    assert calls.send_reminders(cbench.desk, datetime(2026, 11, 30, 8, 50, tzinfo=timezone.utc)) == 0


def test_a_counter_proposal_in_floating_time_is_read_in_the_desks_zone():
    """A COUNTER whose DTSTART has neither TZID nor Z: the desk's zone (the invitation's), not UTC."""
    from email.message import EmailMessage as Mail
    from mailticket.inbound.imip import find_answer
    ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:COUNTER\r\nBEGIN:VEVENT\r\n"
           "UID:call-1-abc@example.com\r\nSEQUENCE:0\r\nDTSTAMP:20261206T080000Z\r\n"
           "DTSTART:20261220T100000\r\nDTEND:20261220T103000\r\n"
           "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:anna@customer.example\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    mail = Mail()
    mail["From"] = "anna@customer.example"
    mail.set_content(ics, subtype="calendar", params={"method": "COUNTER"})
    answer = find_answer(mail, "Europe/Stockholm")
    assert answer.method == "COUNTER"
    assert answer.proposed_start == datetime(2026, 12, 20, 9, 0, tzinfo=timezone.utc)
    assert find_answer(mail, "No/Such_Zone").proposed_start == datetime(2026, 12, 20, 10, 0, tzinfo=timezone.utc)
