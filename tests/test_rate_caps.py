"""The caps that target loops and floods, not everybody (issue 25), on SQLite and PostgreSQL:

- a flood from one sender opens every ticket but tells the tier of the first few an hour, and
  says so in each held ticket's history; another sender's ticket is told at once;
- the global fuse holds back automatic mail in a storm, but never a new sender's first
  acknowledgement;
- every kind of mail about one ticket to one address is capped per hour, an agent's reply too,
  visibly (history and log), and the cap lets go an hour later;
- mail from our own addresses (tier, admin, manager, security contact) opens no ticket, and an
  agent's own new ticket gets no acknowledgement back.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from mailticket.models import Event, InboundMail, Ticket
from tests.harness import make_mail
from tests.test_conversations_agents import Bench, gmail_reply, parse


@pytest.fixture
def bench(tmp_path, db_url):
    return Bench(tmp_path, extra={"database": {"url": db_url}, "service": {"manager_address": "manager@example.com"}})


def _new(bench, n, sender="Anna Svensson <anna@customer.example>", subject=None):
    return bench.process(make_mail(sender=sender, message_id=f"<flood-{n}@customer.example>",
                                   subject=subject or f"Printer {n} broken", date=bench.clock.now()))


def test_one_senders_flood_tells_the_tier_of_the_first_few_an_hour(bench, caplog):
    cap = bench.config.rate_limits.tier_notices_per_sender_hour
    caplog.set_level(logging.WARNING, "mailticket")
    outcomes = [_new(bench, n, sender="Script <script@customer.example>") for n in range(30)]
    assert all(o.state == "processed" and o.ticket for o in outcomes)
    assert Ticket.select().count() == 30
    notices = bench.sent("l1@example.com", "new_ticket")
    assert len(notices) == cap
    held = Event.select().where(Event.kind == "not-notified")
    assert held.count() == 30 - cap
    assert all(f"rate_limits.tier_notices_per_sender_hour = {cap}" in e.text for e in held)
    assert sum("the tier was not told" in r.getMessage() for r in caplog.records) == 30 - cap
    # another sender is not held back by the first one's flood
    _new(bench, "other", sender="Bo <bo@customer.example>")
    assert len(bench.sent("l1@example.com", "new_ticket")) == cap + 1
    # an hour later the flood's sender is told of again
    bench.clock.advance(timedelta(hours=1, minutes=1))
    _new(bench, "later", sender="Script <script@customer.example>")
    assert len(bench.sent("l1@example.com", "new_ticket")) == cap + 2


def test_the_global_fuse_never_holds_a_new_senders_first_acknowledgement(tmp_path, db_url):
    bench = Bench(tmp_path, extra={"database": {"url": db_url},
                                   "rate_limits": {"global_10min": 3, "per_sender_day": 100}})
    for n in range(8):  # a mass incident: eight people write at once
        _new(bench, n, sender=f"User {n} <user{n}@customer.example>")
    assert len(bench.sent(kind="acknowledgement")) == 8
    # a second ticket from one of them is past the fuse: held back, and the ticket says so
    outcome = _new(bench, "again", sender="User 1 <user1@customer.example>")
    assert len(bench.sent(kind="acknowledgement")) == 8
    (held,) = Event.select().where(Event.ticket == outcome.ticket, Event.kind == "suppressed")
    assert "rate_limits.global_10min = 3" in held.text
    assert Event.select().where(Event.ticket == outcome.ticket, Event.kind == "acknowledged").count() == 0


def test_every_kind_about_one_ticket_to_one_address_is_capped_per_hour(bench, caplog):
    caplog.set_level(logging.WARNING, "mailticket")
    cap = bench.config.rate_limits.per_thread_hour
    ticket, notification = bench.open_ticket()
    for n in range(cap + 2):  # an agent (or a responder in their name) replying again and again
        bench.clock.advance(60)
        bench.process(gmail_reply(notification, f"Update number {n}: still working on it."))
    replies = bench.sent("anna@customer.example", "agent_reply")
    assert len(replies) == cap
    held = Event.select().where(Event.ticket == ticket, Event.kind == "suppressed")
    assert held.count() == 2 and all(f"rate_limits.per_thread_hour = {cap}" in e.text for e in held)
    assert sum("agent_reply to anna@customer.example not sent" in r.getMessage() for r in caplog.records) == 2
    # every reply is on the ticket all the same
    assert Event.select().where(Event.ticket == ticket, Event.kind == "reply_out").count() == cap + 2
    bench.clock.advance(timedelta(hours=1))
    bench.process(gmail_reply(notification, "Fixed now."))
    assert len(bench.sent("anna@customer.example", "agent_reply")) == cap + 1


@pytest.mark.parametrize("address", ["l2@example.com", "admin@example.com", "security@example.com",
                                     "manager@example.com"])
def test_mail_from_our_own_addresses_opens_no_ticket(bench, address):
    outcome = bench.process(make_mail(sender=address, subject="Re: Printer broken", body="I am away.",
                                      date=bench.clock.now()))
    assert outcome.state == "dropped" and outcome.ticket is None
    assert outcome.reason == f"mail from our own address {address}: opens no ticket, nothing sent"
    assert Ticket.select().count() == 0 and not bench.sent()
    assert InboundMail.get().state == "dropped"


def test_an_agents_own_new_ticket_gets_no_acknowledgement_back(bench):
    outcome = bench.process(make_mail(sender="Bob <bob@example.com>", subject="My laptop does not start",
                                      date=bench.clock.now()))
    ticket = Ticket.get_by_id(outcome.ticket)
    assert ticket.requester_address == "bob@example.com"
    assert not bench.sent("bob@example.com")
    (skipped,) = Event.select().where(Event.ticket == ticket, Event.kind == "not-acknowledged")
    assert skipped.text == "no acknowledgement: the requester is one of our agents"


def test_a_repeated_requester_text_is_kept_but_not_passed_on(bench):
    ticket, _ = bench.open_ticket()
    ack = parse(bytes(bench.sent("anna@customer.example", "acknowledgement")[0].raw))
    for _ in range(3):
        bench.clock.advance(60)
        bench.process(gmail_reply(ack, "Any news?", sender="Anna <anna@customer.example>"))
    assert len(bench.sent("l1@example.com", "requester_update")) == 1
    repeats = Event.select().where(Event.ticket == ticket, Event.kind == "auto_reply")
    assert repeats.count() == 2 and all(e.text == "Any news?" for e in repeats)
    # one word more is news
    bench.process(gmail_reply(ack, "Any news? It is urgent now.", sender="Anna <anna@customer.example>"))
    assert len(bench.sent("l1@example.com", "requester_update")) == 2
    # and so is the same text a day later
    bench.clock.advance(timedelta(days=1, minutes=1))
    bench.process(gmail_reply(ack, "Any news? It is urgent now.", sender="Anna <anna@customer.example>"))
    assert len(bench.sent("l1@example.com", "requester_update")) == 3
