"""Every kind of mail, sent through the real pipeline in both languages with the strict renderer.

One scenario (``STEPS``) drives a desk the way its users do: a requester writes, agents reply with
commands, the SLA scan runs as the clock moves, a security report and a bounce come in, a broken
mail is quarantined. The strict renderer (undefined variables are errors) renders every mail from
the context its code path passes, and each mail is checked: the context is the one documented next
to the template (``template_context.EXTRA_KEYS``), no encoded-word (``=?``) in any text, the text
and HTML parts show the same times, Swedish mails hold none of the event log's English words, and
the security alert names the breach-report deadline as a date and time.

The requesters write in the desk's language (``REQUESTER_TEXT``): each requester is answered in the
language they write in (issue 26), so this scenario, which checks that every mail of a desk is in
its language, has its requesters write that language; the agents' words do not decide anything.

A new kind of mail: add a step that makes the desk send it (a function below, listed in STEPS),
and its template name to TEMPLATE_NAMES with its keys in EXTRA_KEYS; the test then checks it too.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta
from html import unescape

import pytest

from mailticket import db
from mailticket.clock import FakeClock
from mailticket.config import load_config
from mailticket.desk import calls, deliveryalerts, escalation, feedback_links, history, pipeline, quarantinedigest, reporting
from mailticket.i18n import Message
from mailticket.models import Outbox, Ticket
from mailticket.outbound import render_format as fmt
from mailticket.outbound.render import TEMPLATE_NAMES, Renderer
from mailticket.outbound.template_context import documented_keys
from mailticket.service.wiring import build_desk
from tests.harness import bounce_of, make_mail, write_config
from tests.test_conversations_agents import START, gmail_reply

COMMON_KEYS = {"service", "ticket", "timezone", "now"}
ANNA = "Anna Svensson <anna@customer.example>"

# English words of the event log and of the reasons code writes: none may reach a Swedish mail.
EVENT_KINDS = sorted(set(history.WORDS) | history.BOOKKEEPING | {"reply_in", "reply_out", "not-acknowledged"})
SWEDISH_TOO = {"status"}  # an event kind that is also the Swedish word
ENGLISH_LOG_WORDS = [*(k for k in EVENT_KINDS if k not in SWEDISH_TOO), "breached", "used", "is not a", "no rule matched", "subject contains",
                     "matrix", "internal error", "not a mail", "exceeds", "deeper than", "escalated", "tier", "target",
                     "rule", "logged", "categorised", "left", "due"]
_ENGLISH = re.compile(r"(?<![\w#-])(" + "|".join(re.escape(w) for w in ENGLISH_LOG_WORDS) + r")(?![\w-])",
                      re.IGNORECASE)
_TIME = re.compile(r"\b\d{1,2}:\d{2}\b")


# What the requesters write, in the desk's language (their language decides theirs: issue 26).
REQUESTER_TEXT = {
    "sv": {"subject": "Skrivaren skriver tomma sidor",
           "body": "Hej,\n\nskrivaren på plan 3 skriver bara ut tomma sidor.\n\nAnna",
           "still": "Den skriver fortfarande tomma sidor.", "again": "Tyvärr, samma fel igen.",
           "breach_subject": "Dataläcka: kundlistan skickades ut",
           "breach_body": "Hej, vi har en dataläcka, kundlistan gick till fel mottagare.",
           "duplicate_subject": "Skrivaren igen", "duplicate_body": "Samma fel.",
           "password_subject": "Nytt lösenord", "password_body": "Jag behöver ett nytt lösenord.",
           "screen_subject": "Skärmen flimrar", "screen_body": "Skärmen flimrar hela tiden."},
    "en": {"subject": "The printer prints blank pages",
           "body": "Hi,\n\nthe printer on floor 3 only prints blank pages.\n\nAnna",
           "still": "It still prints blank pages.", "again": "Sorry, the same fault again.",
           "breach_subject": "Data leak: the customer list was sent out",
           "breach_body": "Hi, we have a data leak, the customer list went to the wrong people.",
           "duplicate_subject": "The printer again", "duplicate_body": "Same fault.",
           "password_subject": "New password", "password_body": "I need a new password.",
           "screen_subject": "The screen flickers", "screen_body": "The screen flickers all the time."},
}


class RecordingRenderer(Renderer):
    """The strict renderer, remembering the context of every mail it renders."""

    def __init__(self):
        super().__init__(strict=True)
        self.contexts: list[tuple[str, str, dict]] = []

    def render(self, name, locale, context):
        self.contexts.append((name, locale, context))
        return super().render(name, locale, context)


class Desk:
    def __init__(self, tmp_path, locale, db_url: str | None = None):
        self.clock = FakeClock(START)
        self.text = REQUESTER_TEXT[locale]
        self.config = load_config(write_config(tmp_path, db_url=db_url, extra={
            "service": {"locale": locale}, "rate_limits": {"per_sender_day": 100, "global_10min": 1000,
                                                           "quarantine_alerts_day": 1,
                                                           "delivery_alerts_day": 1}}))
        db.connect(self.config.database.url)
        self.renderer = RecordingRenderer()
        self.desk = build_desk(self.config, clock=self.clock, renderer=self.renderer)
        self.ticket_id = None

    def process(self, raw: bytes):
        return pipeline.process_one(self.desk, pipeline.store_raw(raw, source="test", now=self.clock.now()))

    def scan(self, later: timedelta):
        self.clock.advance(later.total_seconds())
        escalation.run_sla_check(self.desk, self.clock.now())

    def last(self, kind: str, ticket_id=None) -> email.message.EmailMessage:
        q = Outbox.select().where(Outbox.kind == kind).order_by(Outbox.id.desc())
        if ticket_id:
            q = q.where(Outbox.ticket == ticket_id)
        return email.message_from_bytes(bytes(q.first().raw), policy=email.policy.default)

    def agent(self, body: str, kind: str = "new_ticket"):
        notification = self.last(kind, self.ticket_id)
        self.clock.advance(60)
        return self.process(gmail_reply(notification, body))

    def requester(self, body: str):
        self.clock.advance(60)
        ticket = Ticket.get_by_id(self.ticket_id)
        return self.process(make_mail(sender=ANNA, subject=f"Re: [SD#{ticket.id}] {ticket.subject}", body=body,
                                      in_reply_to=ticket.thread_root, date=self.clock.now()))


# ---------------------------------------------------------------- the scenario, one step per kind or two

def open_ticket(d):  # acknowledgement, new_ticket
    mail = email.message_from_bytes(make_mail(
        sender=ANNA, cc="Bo Ek <bo.ek@customer.example>", subject=d.text["subject"],
        body=d.text["body"], date=d.clock.now()),
        policy=email.policy.default)
    mail.add_attachment(b"\x89PNG" + b"\0" * 15_000, maintype="image", subtype="png", filename="skärmbild.png")
    d.ticket_id = d.process(mail.as_bytes(policy=mail.policy.clone(linesep="\r\n"))).ticket


def requester_writes(d):  # requester_update
    d.requester(d.text["still"])


def agent_replies(d):  # agent_reply, command_error
    d.agent("#priority P7\n\nHej Anna, vi tittar på det nu.")


def agent_notes(d):  # note (and a forged one: an unverified note in the history)
    d.agent("#note\nToner beställd.")
    notification = d.last("new_ticket", d.ticket_id)
    forged = make_mail(sender="Alice <alice@example.com>", subject=f"Re: {notification['Subject']}",
                       body="#status closed\nKlart.", in_reply_to=notification["Message-ID"], date=d.clock.now())
    d.process(forged)


def agent_books_a_call(d):  # call_invitation
    d.agent("#call 2026-11-30 10:00 30m\n\nJag ringer dig på måndag.")


def the_call_is_answered_moved_reminded_and_cancelled(d):  # call_answer, call_reminder, call_cancelled
    from datetime import datetime, timezone
    from tests.test_calls import calendar_reply
    d.agent("#phone 070-123 45 67")
    d.clock.advance(60)
    d.process(calendar_reply("outlook_declined", d.last("call_invitation"), date=d.clock.now()))
    d.agent("#call 2026-11-30 11:00 30m")  # moved: the invitation again, SEQUENCE 1
    calls.send_reminders(d.desk, datetime(2026, 11, 30, 9, 46, tzinfo=timezone.utc))
    d.agent("#call cancel")


def sla_runs_out(d):  # warning, escalation, escalated, escalation_manager
    d.scan(timedelta(hours=20))
    d.scan(timedelta(hours=10))
    d.agent("#tier 3", "escalation")
    d.scan(timedelta(hours=30))


def agent_resolves(d):  # resolved, reopened, closed
    d.agent("#status resolved\n\nHej Anna, vi har bytt tonerkassetten.", "escalation")
    d.requester(d.text["again"])
    d.agent("#status closed", "escalation")


def security_report(d):  # security_alert, breach_deadline_warning
    d.process(make_mail(sender="Bo Ek <bo.ek@customer.example>", subject=d.text["breach_subject"],
                        body=d.text["breach_body"], date=d.clock.now()))
    d.scan(timedelta(hours=70))


def a_mail_bounces(d):  # delivery_failure
    d.process(bounce_of(Outbox.select().where(Outbox.kind == "acknowledgement").order_by(Outbox.id).first()))


def bounces_pile_up(d):  # delivery_digest: past the day's one alert, the next two bounces come in the digest
    for entry in Outbox.select().where(Outbox.kind.in_(["requester_update", "agent_reply"])).order_by(Outbox.id).limit(2):
        d.process(bounce_of(entry))
    assert deliveryalerts.send_digest(d.desk, d.clock.now()) == 2


def a_broken_mail(d):  # quarantine_alert, with an encoded subject and sender
    d.process(b"From: =?utf-8?q?Bj=C3=B6rn_=C3=85str=C3=B6m?= <bjorn@customer.example>\r\n"
              b"Subject: =?utf-8?q?Fr=C3=A5ga_om_VPN?=\r\nMessage-ID: <broken-1@customer.example>\r\n"
              b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"a0\"\r\n\r\n"
              + b"".join(b"--a%d\r\nContent-Type: multipart/mixed; boundary=\"a%d\"\r\n\r\n" % (i, i + 1)
                         for i in range(60)))


def broken_mails_pile_up(d):  # quarantine_digest: past the day's one alert, the next two come in the digest
    for n in (2, 3):
        d.process(b"From: =?utf-8?q?Bj=C3=B6rn_=C3=85str=C3=B6m?= <bjorn@customer.example>\r\n"
                  b"Subject: =?utf-8?q?Fr=C3=A5ga_om_VPN?=\r\nMessage-ID: <broken-%d@customer.example>\r\n"
                  b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"a0\"\r\n\r\n" % n
                  + b"".join(b"--a%d\r\nContent-Type: multipart/mixed; boundary=\"a%d\"\r\n\r\n" % (i, i + 1)
                             for i in range(60)))
    assert quarantinedigest.send_digest(d.desk, d.clock.now()) == 2


def working_day(d):  # assigned, attachment_refused, query_answer, requester_refused, merged
    d.agent("#assign carol@example.com\n\nCarol tar det här.", "escalation")
    reply = email.message_from_bytes(gmail_reply(d.last("escalation", d.ticket_id), "Här är manualen."),
                                     policy=email.policy.default)
    reply.add_attachment(b"", maintype="application", subtype="pdf", filename="manual.pdf")
    d.clock.advance(60)
    d.process(reply.as_bytes(policy=reply.policy.clone(linesep="\r\n")))
    d.process(make_mail(sender=ANNA, subject="#mytickets", body="", date=d.clock.now()))
    d.process(make_mail(sender="Alice <alice@example.com>", subject="Telefon: Outlook kraschar",
                        body="#requester inte-en-adress\n\nAnna ringde.", date=d.clock.now()))
    duplicate = d.process(make_mail(sender=ANNA, subject=d.text["duplicate_subject"], body=d.text["duplicate_body"],
                                    date=d.clock.now())).ticket
    notification = d.last("new_ticket", duplicate)
    d.clock.advance(60)
    d.process(gmail_reply(notification, f"#merge {d.ticket_id}", sender="Dave <dave@example.com>"))


def pending_goes_quiet(d):  # pending_reminder, pending_resolved
    ticket = d.process(make_mail(sender=ANNA, subject=d.text["password_subject"], body=d.text["password_body"],
                                 date=d.clock.now())).ticket
    notification = d.last("new_ticket", ticket)
    d.clock.advance(60)
    d.process(gmail_reply(notification, "#status pending\n\nVilket konto gäller det?"))
    d.scan(timedelta(days=3, hours=1))
    d.scan(timedelta(days=4, hours=1))


def the_mailbox_fails(d):  # alarm, alarm_cleared
    from mailticket import marks
    from mailticket.desk import alarms
    marks.set_failing("outgoing", d.clock.now(), "451 4.3.0 smtp.example.com: try again later")
    d.clock.advance(16 * 60)
    alarms.check(d.desk, d.clock.now())
    marks.clear_failing("outgoing")
    d.clock.advance(60)
    alarms.check(d.desk, d.clock.now())


def requester_rates(d):  # feedback_rating_invalid, feedback_expired
    ticket = d.process(make_mail(sender=ANNA, subject=d.text["screen_subject"], body=d.text["screen_body"],
                                 date=d.clock.now())).ticket
    d.clock.advance(60)
    d.process(gmail_reply(d.last("new_ticket", ticket), "#status resolved\n\nNy kabel, nu är det bra."))
    rating = feedback_links.links(d.desk, Ticket.get_by_id(ticket), d.clock.now())["rating"]
    d.clock.advance(60)
    d.process(make_mail(sender=ANNA, to=rating, subject=f"[SD#{ticket}] Betyg 6", body="", date=d.clock.now()))
    d.scan(timedelta(days=18))  # closed, and the link's time is up
    d.process(make_mail(sender=ANNA, to=rating, subject=f"[SD#{ticket}] Betyg 5", body="", date=d.clock.now()))


def the_manager_reads(d):  # manager_report
    now = d.clock.now()
    summary = reporting.build_summary(d.config, reporting.Period(None, now, now))
    reporting.mail_report(d.desk, summary, now, kind="weekly")


STEPS = (open_ticket, requester_writes, agent_replies, agent_notes, agent_books_a_call, sla_runs_out,
         the_call_is_answered_moved_reminded_and_cancelled,
         working_day, agent_resolves, security_report, a_mail_bounces, bounces_pile_up, a_broken_mail, broken_mails_pile_up,
         pending_goes_quiet,
         the_mailbox_fails, requester_rates, the_manager_reads)


# ---------------------------------------------------------------- the checks

def parts(msg) -> tuple[str, str, str]:
    text = msg.get_body(("plain",)).get_content()
    html_part = msg.get_body(("html",))
    html = html_part.get_content() if html_part else ""
    return str(msg["Subject"]), text, html


def visible(html: str) -> str:
    """The words a reader of the HTML part sees (no tags, no hidden preheader)."""
    html = re.sub(r'<div style="display:none[^"]*">.*?</div>', " ", html, flags=re.S)
    html = re.sub(r"<(head|style)\b.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))  # the wire writes HTML in ASCII: &#228; for ä


@pytest.fixture(params=["en", "sv"])
def sent(request, tmp_path, db_url):
    d = Desk(tmp_path, request.param, db_url)
    for step in STEPS:
        step(d)
    mails = [(o, email.message_from_bytes(bytes(o.raw), policy=email.policy.default))
             for o in Outbox.select().order_by(Outbox.id)]
    return request.param, d, mails


def test_every_kind_is_sent_and_rendered_strictly(sent):
    locale, d, mails = sent
    assert {o.kind for o, _ in mails} == set(TEMPLATE_NAMES)
    assert {name for name, _, _ in d.renderer.contexts} == set(TEMPLATE_NAMES)
    assert {loc for _, loc, _ in d.renderer.contexts} == {locale}


def test_each_kind_gets_the_context_documented_next_to_its_template(sent):
    _, d, _ = sent
    for name, _, context in d.renderer.contexts:
        always, maybe = documented_keys(name)
        assert always <= set(context) - COMMON_KEYS <= always | maybe, name


def test_no_encoded_words_in_any_text(sent):
    _, _, mails = sent
    for outbox, msg in mails:
        for part in parts(msg):
            assert "=?" not in part, (outbox.kind, part[:300])


def test_text_and_html_show_the_same_times(sent):
    _, _, mails = sent
    for outbox, msg in mails:
        _, text, html = parts(msg)
        if html:
            assert sorted(set(_TIME.findall(text))) == sorted(set(_TIME.findall(visible(html)))), outbox.kind


@pytest.mark.parametrize("sent", ["sv"], indirect=True)  # Swedish mails only
def test_swedish_mails_hold_no_english_from_the_event_log(sent):
    locale, _, mails = sent
    assert locale == "sv"
    for outbox, msg in mails:
        subject, text, html = parts(msg)
        for part in (subject, text, visible(html)):
            found = _ENGLISH.findall(part)
            assert not found, f"{outbox.kind}: {found}"


def test_the_security_alert_names_the_deadline_as_a_date_and_time(sent):
    locale, d, mails = sent
    ticket = Ticket.get(Ticket.security == True)  # noqa: E712 - peewee's comparison
    assert ticket.breach_report_deadline is not None
    deadline = fmt.format_when(ticket.breach_report_deadline, d.config.service.timezone, locale)
    (alert,) = [m for o, m in mails if o.kind == "security_alert"]
    _, text, html = parts(alert)
    assert deadline in " ".join(text.split()) and deadline in " ".join(visible(html).split())


def test_the_history_is_for_people(sent):
    locale, _, mails = sent
    manager = [m for o, m in mails if o.kind == "escalation_manager"][0]
    _, text, html = parts(manager)
    history_text = text.split("History, newest first:" if locale == "en" else "Historik, senaste först:")[1]
    entries = [line for line in history_text.splitlines() if _TIME.search(line)]
    assert 0 < len(entries) <= history.LIMIT
    assert "+00:00" not in text and "reply_out" not in text and "first_response" not in text
    unverified = "UNVERIFIED note" if locale == "en" else "OVERIFIERAD anteckning"
    assert unverified in text and unverified in visible(html)


def test_information_only_copies_say_so_and_leave_out_the_commands(sent):
    locale, _, mails = sent
    security = Ticket.get(Ticket.security == True)  # noqa: E712 - a P1 that went straight to tier 3
    owner, informed = [(o.recipients, m) for o, m in mails if o.kind == "new_ticket" and o.ticket_id == security.id]
    assert owner[0] == ["l3@example.com"] and informed[0] == ["l1@example.com"]
    words = "For your information only" if locale == "en" else "Bara för kännedom"
    for part in (parts(informed[1])[1], visible(parts(informed[1])[2])):
        assert words in part and "#assign" not in part
    for part in (parts(owner[1])[1], visible(parts(owner[1])[2])):
        assert words not in part and "#assign" in part


def test_the_priority_banner_names_the_first_response_due_time(sent):
    locale, d, mails = sent
    security = Ticket.get(Ticket.security == True)  # noqa: E712
    (_, owner), _ = [(o, m) for o, m in mails if o.kind == "new_ticket" and o.ticket_id == security.id]
    due = fmt.format_when(security.created_at + timedelta(hours=1), d.config.service.timezone, locale)
    _, text, html = parts(owner)
    assert text.index(due) < text.index("#assign")  # at the top, before the commands
    assert "#fdecea" in html and due in visible(html)  # the P1 banner's colour


def test_a_message_in_a_draft_is_translated_when_the_sender_writes_it(tmp_path):
    from mailticket.outbound import drafts
    reason = Message("{priority} {clock} target {target} breached at tier {tier} ({used} used)", priority="P2",
                     clock=Message("resolution"), target=timedelta(hours=8), tier=1, used=timedelta(hours=9))
    back = drafts._revive(drafts._plain({"reason": reason}))["reason"]
    assert isinstance(back, Message) and back == reason
    assert back.translated("sv", lambda v: fmt.format_duration_words(v, "sv") if isinstance(v, timedelta) else v) \
        == "P2: tiden för lösning (8 tim) har gått ut på nivå 1; 9 tim har gått"


WHAT_AGENTS_READ = {  # kind: words that must be in it, (en, sv)
    "new_ticket": (("Cc:", "Bo Ek <bo.ek@customer.example>", "Files:", "skärmbild.png (15 KB)"),
                   ("Kopia till:", "Bo Ek <bo.ek@customer.example>", "Filer:", "skärmbild.png (15 KB)")),
    "command_error": (("'P7' is not a priority",), ("”P7” är ingen prioritet",)),
    "note": (("stays internal",), ("stannar internt",)),
    "quarantine_alert": (("Björn Åström <bjorn@customer.example>", "Fråga om VPN", "deeper than max_depth 20"),
                         ("Björn Åström <bjorn@customer.example>", "Fråga om VPN", "nästlade djupare än max_depth 20")),
    "escalation": (("Your target at this tier: resolved by",), ("Nytt mål hos er: löst senast",)),
}


def test_what_the_agents_read(sent):
    locale, _, mails = sent
    for kind, words in WHAT_AGENTS_READ.items():
        text = " ".join(parts(next(m for o, m in mails if o.kind == kind))[1].split())
        for word in words[locale == "sv"]:
            assert word in text, (kind, word)


def test_the_escalation_shows_the_new_tiers_target_not_the_passed_one(sent):
    locale, _, mails = sent
    first = next(m for o, m in mails if o.kind == "escalation")
    text = " ".join(parts(first)[1].split())
    assert ("(passed)" if locale == "en" else "(passerad)") not in text
    # while the manager's mail, sent when the last tier's time is up, says the deadline has passed
    manager = next(m for o, m in mails if o.kind == "escalation_manager")
    assert ("(passed)" if locale == "en" else "(passerad)") in parts(manager)[1]


def test_the_call_invitation_is_in_the_desks_language(sent):
    locale, _, mails = sent
    invitation = next(m for o, m in mails if o.kind == "call_invitation")
    ics = next(p for p in invitation.walk() if p.get_content_type() == "text/calendar").get_content()
    ics = " ".join(line.lstrip() for line in ics.replace("\r\n ", "").splitlines())
    assert ("SUMMARY:Call about [SD#1]" if locale == "en" else "SUMMARY:Samtal om [SD#1]") in ics
    assert ("a call with Alice about your ticket" if locale == "en" else "samtal med Alice om ditt ärende") in ics


def test_one_greeting_in_the_resolved_mail(sent):
    locale, _, mails = sent
    text = parts(next(m for o, m in mails if o.kind == "resolved"))[1]
    assert text.count("Hej") == 1 and "Hi Anna" not in text  # the agent's own greeting, not ours too
