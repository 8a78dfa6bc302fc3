"""The working day by mail, as requesters and agents meet it: Dovecot in, the daemon in a thread,
the SMTP sink out, on SQLite (in English) and PostgreSQL (in Swedish).

Asking by mail (#mytickets, #list, #mine, #show), a ticket on someone's behalf (#requester), #cc,
#merge, and a major incident (#parent, #broadcast, #status resolved on the parent). An agent's new
mail proves itself with the trusted server's Authentication-Results; a reply to a notification
with its signed reply address, as always.
"""

from __future__ import annotations

from email.utils import make_msgid

import pytest

from mailticket.models import Event, InboundMail, Outbox, Ticket
from tests.harness import make_mail, wait_until
from tests.test_conversations_agents import (
    ALICE, LiveDesk, _with_auth_results, gmail_reply, outlook_reply, parse, plain_text, reply_address,
    thunderbird_reply)

PASS = "mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
ANNA = "Anna Svensson <anna@customer.example>"
WORDS = {
    "en": {"mytickets": "Your tickets", "list": "Open tickets at tier", "mine": "Tickets assigned to you",
           "show": "Ticket", "refused": "Not answered", "open": "New", "resolved": "Resolved",
           "due": "Resolution due", "agents_only": "for the service desk's agents", "history": "History, newest first:",
           "no_ticket": "There is no ticket 999", "merged": "continues here", "resolved_subject": "Resolved:",
           "bad_address": "not an email address", "mailto": "mailto:support@example.com?subject=%23mytickets"},
    "sv": {"mytickets": "Dina ärenden", "list": "Öppna ärenden på nivå", "mine": "Ärenden som är tilldelade dig",
           "show": "Ärende", "refused": "Kunde inte besvaras", "open": "Nytt", "resolved": "Löst",
           "due": "Löst senast", "agents_only": "till för servicedeskens handläggare", "history": "Historik, senaste först:",
           "no_ticket": "Det finns inget ärende 999", "merged": "fortsätter här", "resolved_subject": "Löst:",
           "bad_address": "det är ingen mejladress",
           "mailto": "mailto:support@example.com?subject=%23mytickets"},
}


@pytest.fixture(params=[("sqlite", "en"), ("postgresql", "sv")], ids=["sqlite-en", "postgresql-sv"])
def day(request, tmp_path, mailbox_user, smtp_sink):
    backend, locale = request.param
    extra = {"service": {"locale": locale}}
    if backend == "postgresql":
        extra["database"] = {"url": request.getfixturevalue("pg_url")}
    with LiveDesk(tmp_path, mailbox_user, smtp_sink, extra=extra) as desk:
        desk.words = WORDS[locale]
        yield desk


def new_ticket(day, sender=ANNA, subject="Printer broken", body="It does not print.") -> tuple[Ticket, object]:
    """A requester's new mail -> its ticket and the tier-1 notification about it."""
    mid = make_msgid(domain="customer.example")
    day.deliver(make_mail(sender=sender, subject=subject, body=body, message_id=mid))
    ticket = wait_until(lambda: Ticket.get_or_none(Ticket.thread_root == mid.strip("<>")), timeout=30,
                        what=f"the ticket for {subject!r}")
    note = day.wait_mail("l1@example.com", contains=f"[SD#{ticket.id}]")[-1]
    return ticket, note


def agent_asks(day, body, *, sender=ALICE, subject="Question", verified=True) -> None:
    raw = make_mail(sender=sender, subject=subject, body=body, message_id=make_msgid(domain="example.com"))
    day.deliver(_with_auth_results(raw, [PASS]) if verified else raw)


def answers_to(day, address) -> list:
    return [m for m in day.mails(address) if "X-Mailticket-Ticket" not in m]


def settled(day) -> None:
    """Every delivered mail processed and every mail it caused at the sink."""
    wait_until(lambda: day.user.server.folder_count(day.user.name, "INBOX") == 0, timeout=30, what="inbox empty")
    wait_until(lambda: not InboundMail.select().where(InboundMail.state == "received").exists(), timeout=30,
               what="every mail processed")
    day.wait_outbox_sent()
    wait_until(lambda: len(day.sink.received) >= Outbox.select().where(Outbox.status == "sent").count(),
               timeout=30, what="the sink has every sent mail")


def events(ticket, kind) -> list[Event]:
    return list(Event.select().where(Event.ticket == ticket.id, Event.kind == kind).order_by(Event.at, Event.id))


# ---------------------------------------------------------------- asking by mail

def test_mytickets_forged_from_and_the_rate_limit(day):
    w = day.words
    tickets = [new_ticket(day, subject=f"Printer {n} broken")[0] for n in (1, 2, 3)]
    acks = day.wait_mail("anna@customer.example", count=3)
    assert all(w["mailto"] in plain_text(ack) for ack in acks)  # every acknowledgement says how to ask
    note = day.wait_mail("l1@example.com", contains=f"[SD#{tickets[0].id}]")[-1]
    day.deliver(gmail_reply(note, "#status resolved\n\nThe toner was empty."))
    day.wait_mail("anna@customer.example", contains="toner was empty")
    settled(day)
    before = len(day.mails("anna@customer.example"))

    day.deliver(make_mail(sender=ANNA, subject="#mytickets", body=""))
    (answer,) = day.wait_mail("anna@customer.example", count=before + 1)[before:]
    settled(day)
    text = plain_text(answer)
    assert w["mytickets"] in answer["Subject"] and answer["Auto-Submitted"] == "auto-replied"
    for ticket in tickets:
        assert f"[SD#{ticket.id}] {ticket.subject}" in text
    assert text.count(w["open"] + ",") == 2 and text.count(w["resolved"] + ",") == 1
    assert text.count(w["due"]) == 2  # due times of the two open ones
    assert Ticket.select().count() == 3 and len(day.mails("anna@customer.example")) == before + 1
    assert Outbox.select().where(Outbox.kind == "acknowledgement").count() == 3

    # someone else puts Anna's address in From and their own in Reply-To: only Anna hears of it
    day.deliver(make_mail(sender=ANNA, subject="#mytickets", body="",
                          headers={"Reply-To": "Mallory <mallory@evil.example>"}))
    day.wait_mail("anna@customer.example", count=before + 2)
    settled(day)
    assert not day.mails("mallory@evil.example")
    assert all(m.rcpt_tos == ["anna@customer.example"] for m in day.sink.received
               if "mallory" in m.data.decode(errors="replace"))

    # eight more are answered (ten in the hour), the eleventh is not, and nothing else happens
    for _ in range(9):
        day.deliver(make_mail(sender=ANNA, subject="Re: #mytickets", body=""))
    settled(day)
    assert len(day.mails("anna@customer.example")) == before + 10
    assert Outbox.select().where(Outbox.kind == "query_answer").count() == 10
    last = InboundMail.select().order_by(InboundMail.id.desc()).first()
    assert "rate limit" in last.reason and last.ticket_id is None
    assert Ticket.select().count() == 3


def test_agent_queries_each_answered_in_one_mail_and_strangers_see_nothing(day):
    w = day.words
    low, _ = new_ticket(day, subject="Scanner slow")
    high, note = new_ticket(day, subject="Mail server down")
    day.deliver(outlook_reply(note, "#priority P2\n#assign me"))
    third, note3 = new_ticket(day, subject="VPN flaps")
    day.deliver(thunderbird_reply(note3, "#tier 2"))
    day.wait_mail("l2@example.com", contains=f"[SD#{third.id}]")
    settled(day)

    def ask(body, sender=ALICE, address="alice@example.com", verified=True):
        before = len(answers_to(day, address))
        agent_asks(day, body, sender=sender, verified=verified)
        got = wait_until(lambda: answers_to(day, address)[before:] or None, timeout=30, what=f"the answer to {body}")
        settled(day)
        assert len(answers_to(day, address)) == before + 1, f"{body} was answered more than once"
        return got[0], plain_text(got[0])

    msg, text = ask("#list")
    assert w["list"] in msg["Subject"]
    assert text.index(f"[SD#{high.id}]") < text.index(f"[SD#{low.id}]") and f"[SD#{third.id}]" not in text
    assert text.count(w["due"]) == 2
    msg, text = ask("#list 2", sender="Dave <dave@example.com>", address="dave@example.com")
    assert f"[SD#{third.id}]" in text and f"[SD#{high.id}]" not in text
    msg, text = ask("#mine")
    assert w["mine"] in msg["Subject"] and f"[SD#{high.id}]" in text and f"[SD#{low.id}]" not in text
    msg, text = ask(f"#show {high.id}")
    assert msg["Subject"].startswith(f"{w['show']} {high.id}:") and w["history"] in text
    assert text.rindex("alice@example.com") > text.index(w["history"])  # her #assign me, in the history
    msg, text = ask("#show 999")
    assert w["refused"] in msg["Subject"] and w["no_ticket"] in text and "#show 999" in text
    # from a requester, and from an agent address without proof: nothing about any ticket
    for sender, address, verified in ((ANNA, "anna@customer.example", True), (ALICE, "alice@example.com", False)):
        for line in ("#list", "#mine", f"#show {high.id}"):
            msg, text = ask(line, sender=sender, address=address, verified=verified)
            assert w["refused"] in msg["Subject"] and "[SD#" not in text + msg["Subject"], text
            assert "Mail server down" not in text
    assert Ticket.select().count() == 3  # no query opened a ticket


# ---------------------------------------------------------------- on someone's behalf, #cc

def test_requester_on_behalf_and_cc(day):
    w = day.words
    agent_asks(day, "#requester anna.berg@customer.example Anna Berg\n\nAnna called: Outlook crashes at start.",
               subject="Phone: Outlook crashes")
    (ack,) = day.wait_mail("anna.berg@customer.example")
    ticket = Ticket.get(Ticket.requester_address == "anna.berg@customer.example")
    assert ticket.requester_name == "Anna Berg" and f"[SD#{ticket.id}]" in ack["Subject"]
    assert "Outlook crashes at start" in ticket.description and "#requester" not in ticket.description
    (logged,) = events(ticket, "on_behalf")
    assert logged.actor == "alice@example.com"
    note = day.wait_mail("l1@example.com", contains=f"[SD#{ticket.id}]")[-1]
    day.deliver(gmail_reply(note, "#cc Erik Lund <erik@customer.example>\n\nWe will replace your profile."))
    got = day.wait_mail("erik@customer.example", contains="replace your profile")[-1]
    assert [a.addr_spec for a in got["Cc"].addresses] == ["erik@customer.example"]
    assert [a.addr_spec for a in got["To"].addresses] == ["anna.berg@customer.example"]
    day.deliver(gmail_reply(note, "Done, please log in again."))
    day.wait_mail("erik@customer.example", contains="log in again")
    # a malformed address opens nothing and gives the agent the text back
    agent_asks(day, "#requester anna.berg(at)customer Anna\n\nCall about the printer.", subject="Phone")
    refusal = wait_until(lambda: [m for m in answers_to(day, "alice@example.com")] or None, timeout=30,
                         what="the refusal")[0]
    settled(day)
    assert w["bad_address"] in plain_text(refusal) and "Call about the printer." in plain_text(refusal)
    assert "#requester anna.berg(at)customer Anna" in plain_text(refusal)
    assert Ticket.select().count() == 1 and len(day.mails("anna.berg@customer.example")) == 3
    assert not day.mails("alice@example.com", f"[SD#{ticket.id}]")  # the agent got no acknowledgement


# ---------------------------------------------------------------- related tickets

def test_merge_moves_everything_and_later_replies_thread_to_the_survivor(day):
    w = day.words
    dup, dup_note = new_ticket(day, subject="Wifi down on floor 2")
    (old_ack,) = day.wait_mail("anna@customer.example")
    keep, _ = new_ticket(day, sender="Erik Lund <erik@customer.example>", subject="No wifi floor 2")
    day.deliver(gmail_reply(dup_note, f"#merge {keep.id}"))
    (told,) = day.wait_mail("anna@customer.example", contains=w["merged"])
    assert f"[SD#{keep.id}]" in told["Subject"] and told["In-Reply-To"] == f"<{dup.thread_root}>"
    settled(day)
    dup, keep = Ticket.get_by_id(dup.id), Ticket.get_by_id(keep.id)
    assert (dup.status, dup.merged_into) == ("closed", keep.id)
    assert "anna@customer.example" in {p.address for p in keep.participants}
    texts = " ".join(e.text for e in Event.select().where(Event.ticket == keep.id))
    assert "Wifi down on floor 2" in texts and f"[SD#{dup.id}]" in texts
    # Anna answers the old acknowledgement of the merged ticket: it lands on the survivor
    day.deliver(outlook_reply(old_ack, "It is still down.", sender=ANNA))
    update = day.wait_mail("l1@example.com", contains="It is still down.")[-1]
    assert f"[SD#{keep.id}]" in update["Subject"]
    settled(day)
    assert [e.text.strip() for e in events(keep, "reply_in")] == ["It is still down."]
    assert len(day.mails("anna@customer.example", w["merged"])) == 1  # told once
    # bad input: into itself, and an unknown number; nothing changes
    other, other_note = new_ticket(day, subject="Printer jam")
    day.deliver(gmail_reply(other_note, f"#merge {other.id}\n#link 999"))
    error = day.wait_mail("alice@example.com", contains=f"#merge {other.id}")[-1]
    assert "#link 999" in plain_text(error)
    settled(day)
    assert Ticket.get_by_id(other.id).merged_into is None


def test_major_incident_broadcast_and_resolution_reach_every_child_once(day):
    w = day.words
    parent, parent_note = new_ticket(day, sender="Nagios <nagios@monitor.example>", subject="Mail server down")
    people = ["Anna <anna@customer.example>", "Erik <erik@customer.example>", "Frida <frida@customer.example>"]
    children = []
    for person in people:
        child, note = new_ticket(day, sender=person, subject="Cannot send mail")
        day.deliver(gmail_reply(note, f"#parent {parent.id}"))
        children.append(child)
    wait_until(lambda: Ticket.select().where(Ticket.parent == parent.id).count() == 3, timeout=30,
               what="three children")
    day.deliver(gmail_reply(parent_note, "#broadcast\n\nThe mail server is down; we are restoring it."))
    for child in children:
        day.wait_mail(child.requester_address, contains="restoring it")
    settled(day)
    for child in children:
        (got,) = [m for m in day.mails(child.requester_address) if "restoring it" in plain_text(m)]
        assert got["In-Reply-To"] == f"<{child.thread_root}>" and f"[SD#{child.id}]" in got["Subject"]
        assert f"<{child.thread_root}>" in got["References"]
    day.deliver(gmail_reply(parent_note, "#status resolved\n\nThe mail server is back."))
    for child in children:
        day.wait_mail(child.requester_address, contains="server is back")
    settled(day)
    for child in children:
        child = Ticket.get_by_id(child.id)
        assert child.status == "resolved"
        resolved = [m for m in day.mails(child.requester_address) if "server is back" in plain_text(m)]
        assert len(resolved) == 1 and w["resolved_subject"] in resolved[0]["Subject"]
        assert f"[SD#{child.id}]" in resolved[0]["Subject"]
    assert Ticket.get_by_id(parent.id).status == "resolved"
    # a cycle is refused, naming the line
    day.deliver(gmail_reply(parent_note, f"#parent {children[0].id}"))
    day.wait_mail("alice@example.com", contains=f"#parent {children[0].id}")
    assert Ticket.get_by_id(parent.id).parent is None
