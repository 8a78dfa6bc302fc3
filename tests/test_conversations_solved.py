"""Was it solved? The resolved mail's links as the requester uses them.

Through the real servers (Dovecot in, the daemon in a thread, the SMTP sink out): "Yes, solved"
closes the ticket, "No, still broken" reopens it and tells the tier, a rating is recorded and
reported, a link of one ticket used on another does nothing, "Tack, nu fungerar det!" does not
reopen; in English and Swedish. In-process with a fake clock (the pipeline as the daemon runs it):
an expired link gets a polite answer, ratings of 0, 6 or words get a clear one, strangers and
forged links change nothing, the last rating counts; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote

import pytest

from mailticket.models import Event, Satisfaction, Ticket
from tests.harness import make_mail, wait_until
from tests.test_conversations_agents import (
    Bench, LiveDesk, agent_mail, crlf, parse, plain_text, reply_address, thunderbird_reply)

ANNA = "anna@customer.example"
LINK = re.compile(r"mailto:(support\+[^?\s]+@example\.com)\?subject=(\S+)")


def links(resolved: EmailMessage) -> list[tuple[str, str]]:
    """(address, subject) of each mailto link in the resolved mail's text part, in order: yes, no, 5..1."""
    return [(address, unquote(subject)) for address, subject in LINK.findall(plain_text(resolved))]


def click(address: str, subject: str, body: str = "", sender: str = f"Anna Svensson <{ANNA}>") -> bytes:
    """The mail a mail client writes for a mailto link: To the address, the subject, the body typed."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, address, subject
    msg["Message-ID"] = make_msgid(domain="customer.example")
    msg.set_content(body or "\n")
    return crlf(msg)


def status_of(ticket: Ticket) -> str:
    return Ticket.get_by_id(ticket.id).status


def events(ticket: Ticket, kind: str) -> list[Event]:
    return list(Event.select().where(Event.ticket == ticket.id, Event.kind == kind).order_by(Event.id))


# ---------------------------------------------------------------- live, through Dovecot and the sink

@pytest.fixture(params=["en", "sv"])
def live(request, tmp_path, mailbox_user, smtp_sink):
    with LiveDesk(tmp_path, mailbox_user, smtp_sink, extra={"service": {"locale": request.param}}) as desk:
        desk.locale = request.param
        yield desk


# The requester writes in the desk's language (else they are answered in their own: issue 26).
OPENING = {"en": "The printer on floor 3 does not print.", "sv": "Skrivaren på plan 3 skriver inte ut."}
WORDS = {"en": ("Was it solved?", "Solved", "Not solved", "Rating"),
         "sv": ("Är problemet löst?", "Löst", "Inte löst", "Betyg")}


def resolve(live, n: int) -> tuple[Ticket, EmailMessage, list]:
    """A requester's ticket, resolved by an agent; returns it, the resolved mail and its links."""
    ticket, notification = live.open_ticket(f"<solved-{n}-{live.locale}@customer.example>", subject=f"Printer {n}",
                                            body=OPENING[live.locale])
    live.deliver(thunderbird_reply(notification, "#status resolved\n\nThe toner was empty; replaced."))
    resolved = live.wait_mail(ANNA, contains=f"[SD#{ticket.id}]", count=2)[-1]  # the acknowledgement, then this
    assert status_of(ticket) == "resolved"
    found = links(resolved)
    question, yes, no, rating = WORDS[live.locale]
    assert question in plain_text(resolved) and question in html.unescape(resolved.get_body(("html",)).get_content())
    assert [s for _, s in found] == [f"[SD#{ticket.id}] {yes}", f"[SD#{ticket.id}] {no}"] + [
        f"[SD#{ticket.id}] {rating} {n}" for n in (5, 4, 3, 2, 1)]
    return ticket, resolved, found


def test_yes_closes_at_once(live):
    ticket, _, found = resolve(live, 1)
    live.deliver(click(*found[0]))
    wait_until(lambda: status_of(ticket) == "closed", timeout=30, what="the ticket closed")
    [status] = [e for e in events(ticket, "status") if "closed" in e.text]
    assert status.actor == ANNA and "confirmed it is solved" in status.text
    live.wait_outbox_sent()
    assert not live.mails("l1@example.com", "Reopened")


def test_no_reopens_and_tells_the_tier(live):
    ticket, _, found = resolve(live, 2)
    before = len(live.mails("l1@example.com"))
    live.deliver(click(*found[1], body="It prints blank pages again."))
    wait_until(lambda: status_of(ticket) == "open", timeout=30, what="the ticket reopened")
    tier = wait_until(lambda: live.mails("l1@example.com")[before:] or None, timeout=30, what="the tier told")
    assert "It prints blank pages again." in plain_text(tier[-1])
    assert events(ticket, "reopen")


def test_a_rating_is_recorded_and_reported(live):
    from mailticket.desk.reporting import Period, build_summary
    ticket, _, found = resolve(live, 3)
    four = found[2 + (5 - 4)]
    live.deliver(click(*four, body="Quick and friendly, thanks!"))
    rated = wait_until(lambda: Satisfaction.get_or_none(Satisfaction.ticket == ticket.id), timeout=30,
                       what="the rating")
    assert (rated.rating, rated.comment, rated.actor) == (4, "Quick and friendly, thanks!", ANNA)
    assert status_of(ticket) == "resolved"  # a rating neither closes nor reopens
    now = live.daemon.desk.clock.now()
    summary = build_summary(live.daemon.config, Period(now - timedelta(days=1), now + timedelta(minutes=1), now))
    assert summary["overall"]["satisfaction"]["mean"] == 4 and summary["overall"]["satisfaction"]["answered"] == 1


def test_a_link_of_one_ticket_used_on_another_does_nothing(live):
    five, _, five_links = resolve(live, 5)
    six, _, _ = resolve(live, 6)
    address, _ = five_links[0]
    live.deliver(click(address, f"Re: [SD#{six.id}] Solved"))
    wait_until(lambda: events(six, "feedback"), timeout=30, what="the mail recorded on the other ticket")
    assert status_of(five) == "resolved" and status_of(six) == "resolved"
    assert f"link of ticket {five.id} was used on ticket {six.id}" in events(six, "feedback")[0].text
    # a link whose ticket number is changed by hand is not ours at all: a plain new mail
    forged = address.replace(f"+t{five.id}-", f"+t{six.id}-")
    live.deliver(click(forged, "Solved"))
    live.processed(6)  # two requests, two agents' replies, the two link mails
    assert status_of(five) == "resolved" and status_of(six) == "resolved"
    [new] = Ticket.select().where(Ticket.id.not_in([five.id, six.id]))
    assert new.subject == "Solved" and new.status == "new"


@pytest.mark.parametrize("words", ["Tack, nu fungerar det!", "thanks, works now", "Tack så mycket!\n\n/Anna"])
def test_a_reply_that_only_thanks_does_not_reopen(live, words):
    ticket, resolved, _ = resolve(live, 7)
    before = len(live.mails("l1@example.com"))
    live.deliver(thunderbird_reply(resolved, words, sender=f"Anna Svensson <{ANNA}>"))
    wait_until(lambda: [e for e in events(ticket, "reply_in") if (e.data or {}).get("thanks")], timeout=30,
               what="the thank-you recorded")
    live.wait_outbox_sent()
    assert status_of(ticket) == "resolved"
    assert len(live.mails("l1@example.com")) == before


def test_a_reply_that_says_more_than_thanks_still_reopens(live):
    ticket, resolved, _ = resolve(live, 8)
    live.deliver(thunderbird_reply(resolved, "Thanks, but it still prints blank pages.",
                                   sender=f"Anna Svensson <{ANNA}>"))
    wait_until(lambda: status_of(ticket) == "open", timeout=30, what="the ticket reopened")


# ---------------------------------------------------------------- in-process, a fake clock, both databases

@pytest.fixture
def bench(tmp_path, db_url):
    return Bench(tmp_path, extra={"database": {"url": db_url}})


def resolved_on_bench(bench, n: int = 1) -> tuple[Ticket, list]:
    ticket, notification = bench.open_ticket(n)
    bench.process(agent_mail(notification, "#status resolved\n\nReplaced the toner.", to=reply_address(notification)))
    (entry,) = [o for o in bench.sent(kind="resolved") if o.ticket_id == ticket.id]
    return Ticket.get_by_id(ticket.id), links(parse(bench.desk.mailer.mail_bytes(entry)))


def test_an_expired_link_gets_a_polite_answer(bench):
    ticket, found = resolved_on_bench(bench)
    cfg = bench.config
    bench.clock.advance(cfg.sla.auto_close_after + cfg.service.reopen_window + timedelta(seconds=1))
    outcome = bench.process(click(*found[0]))
    assert outcome.reason == "expired solved link: answered politely"
    (answer,) = bench.sent(ANNA, kind="feedback_expired")
    text = plain_text(parse(bench.desk.mailer.mail_bytes(answer)))
    assert "has expired" in parse(bench.desk.mailer.mail_bytes(answer))["Subject"]
    assert f"[SD#{ticket.id}]" in text and "write a new mail to" in text
    assert status_of(ticket) == "resolved"
    assert "expired 'solved' link" in events(ticket, "feedback")[0].text


def test_the_link_works_just_before_it_expires(bench):
    ticket, found = resolved_on_bench(bench)
    cfg = bench.config
    bench.clock.advance(cfg.sla.auto_close_after + cfg.service.reopen_window - timedelta(seconds=1))
    assert bench.process(click(*found[0])).reason == "solved: closed at once"
    assert status_of(ticket) == "closed"


@pytest.mark.parametrize("subject, given", [("Rating 0", "0"), ("Rating 6", "6"), ("Rating great", "Rating great"),
                                            ("Rating 4.5", "4.5"), ("Betyg -1", "-1")])
def test_a_rating_outside_1_to_5_gets_a_clear_answer(bench, subject, given):
    ticket, found = resolved_on_bench(bench)
    address = found[2][0]
    outcome = bench.process(click(address, f"[SD#{ticket.id}] {subject}"))
    assert outcome.reason == f"rating {given!r} is not 1-5: answered"
    assert Satisfaction.get_or_none(Satisfaction.ticket == ticket.id) is None
    (answer,) = bench.sent(ANNA, kind="feedback_rating_invalid")
    mail = parse(bench.desk.mailer.mail_bytes(answer))
    assert "Please rate from 1 to 5" in mail["Subject"]
    text = plain_text(mail).replace("\r\n", "\n")
    assert f'("{given}")' in text and "whole number from\n1 (bad) to 5 (good)" in text
    assert status_of(ticket) == "resolved"


def test_the_rating_may_stand_in_the_text_and_the_last_one_counts(bench):
    ticket, found = resolved_on_bench(bench)
    address = found[2][0]
    bench.process(click(address, "Feedback", body="2\nThe printer took a week."))
    assert Satisfaction.get(Satisfaction.ticket == ticket.id).rating == 2
    assert Satisfaction.get(Satisfaction.ticket == ticket.id).comment == "The printer took a week."
    bench.process(click(address, f"[SD#{ticket.id}] Rating 5", body="Actually, all good now."))
    rows = list(Satisfaction.select().where(Satisfaction.ticket == ticket.id))
    assert [(r.rating, r.comment) for r in rows] == [(5, "Actually, all good now.")]
    assert [e.text.splitlines()[0] for e in events(ticket, "feedback")] == [
        f"rated 2 of 5 by {ANNA}", f"rated 5 of 5 by {ANNA}"]


def test_only_the_requester_or_a_participant_can_answer(bench):
    ticket, found = resolved_on_bench(bench)
    outcome = bench.process(click(*found[0], sender="Mallory <mallory@elsewhere.example>"))
    assert outcome.reason == "solved link from a stranger: ignored"
    assert status_of(ticket) == "resolved"
    assert "neither requester nor participant" in events(ticket, "feedback")[0].text


def test_no_after_closing_within_the_window_reopens(bench):
    ticket, found = resolved_on_bench(bench)
    bench.process(click(*found[0]))
    assert status_of(ticket) == "closed"
    bench.clock.advance(timedelta(days=1))
    assert bench.process(click(*found[1], body="It broke again.")).reason == "not solved: reopened"
    assert status_of(ticket) == "open"
    assert [o.kind for o in bench.sent("l1@example.com") if o.ticket_id == ticket.id][-1] == "reopened"


def test_escalation_past_tier_3_goes_to_the_manager_address(tmp_path, db_url):
    bench = Bench(tmp_path, extra={"database": {"url": db_url}, "service": {"manager_address": "boss@example.com"}})
    ticket, notification = bench.open_ticket()
    bench.process(agent_mail(notification, "#tier 3", to=reply_address(notification)))
    bench.process(agent_mail(notification, "#escalate the vendor does not answer", sender="Dave <dave@example.com>",
                             to=reply_address(notification)))
    (mail,) = bench.sent(kind="escalation_manager")
    assert mail.recipients == ["boss@example.com"] and mail.ticket_id == ticket.id
    [event] = [e for e in events(ticket, "escalation") if (e.data or {}).get("to") == "manager"]
    assert "boss@example.com" in event.text and event.data["from_tier"] == 3
