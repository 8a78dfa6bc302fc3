"""Asking by mail, tickets on someone's behalf and related tickets, in-process (store_raw +
process_one, a fake clock, the outbox as output): the bad input and the edges, fast. The same
behaviour through Dovecot and the SMTP sink is in test_conversations_working_day.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailticket.desk.queries import find_query
from mailticket.desk.commands import parse_commands
from mailticket.models import Event, InboundMail, Outbox, Participant, Ticket
from tests.harness import make_mail
from tests.test_conversations_agents import (
    ALICE, START, Bench, _with_auth_results, agent_mail, parse, plain_text, reply_address)

PASS = "mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"


@pytest.fixture
def bench(tmp_path):
    return Bench(tmp_path)


@pytest.fixture
def bench_any_db(tmp_path, db_url):
    return Bench(tmp_path, extra={"database": {"url": db_url}})


def agent_new_mail(bench, body, *, subject="Question", sender=ALICE, verified=True) -> bytes:
    raw = make_mail(sender=sender, subject=subject, body=body, date=bench.clock.now())
    return _with_auth_results(raw, [PASS]) if verified else raw


def answers(bench, rcpt) -> list:
    return [parse(bytes(o.raw)) for o in bench.sent(rcpt, kind="query_answer")]


def reply(bench, notification, body, sender=ALICE):
    raw = agent_mail(notification, body, sender=sender, to=reply_address(notification))
    outcome = bench.process(raw)
    assert outcome.state == "processed", outcome
    return parse(raw)


def errors_to(bench, agent="alice@example.com") -> list[str]:
    return [plain_text(parse(bytes(o.raw))) for o in bench.sent(agent, kind="command_error")]


def history(ticket) -> list[Event]:
    return list(Event.select().where(Event.ticket == ticket.id).order_by(Event.at, Event.id))


# ---------------------------------------------------------------- what is a query

@pytest.mark.parametrize("subject,body,expected", [
    ("#mytickets", "", ("mytickets", "", "subject")),
    ("Re: #MyTickets", "", ("mytickets", "", "subject")),
    ("status?", "\n\n#mytickets\nthanks", ("mytickets", "", "body")),
    ("x", "#list 2", ("list", "2", "body")),
    ("#lista", "", ("list", "", "subject")),
    ("#visa 42", "", ("show", "42", "subject")),
    ("x", "#mine", ("mine", "", "body")),
])
def test_a_query_is_the_subject_or_the_first_line(subject, body, expected):
    query = find_query(subject, body)
    assert (query.name, query.argument, query.where) == expected


@pytest.mark.parametrize("subject,body", [
    ("Printer broken", "It does not print.\n#mytickets"),  # not the first line
    ("#1 priority", "please help"), ("Listing #list", ""), ("#status resolved", ""),
    ("x", "> #mytickets"),
])
def test_other_mails_are_no_query(subject, body):
    assert find_query(subject, body) is None


def test_the_new_commands_parse_and_bad_values_name_the_line():
    result = parse_commands("#cc Erik Lund <erik@customer.example>\n#link 12\n#merge [SD#13]\n#parent #14\n"
                            "#broadcast\n\nText", now=START, timezone="UTC", agents=set())
    assert [(c.name, c.args) for c in result.commands] == [
        ("cc", {"address": "erik@customer.example", "name": "Erik Lund"}), ("link", {"number": 12}),
        ("merge", {"number": 13}), ("parent", {"number": 14}), ("broadcast", {})]
    assert result.body.strip() == "Text" and not result.errors
    bad = parse_commands("#cc erik at home\n#merge twelve\n#kopia erik@customer.example Erik\n#länka 3",
                         now=START, timezone="UTC", agents=set())
    assert [(e.line_no, e.line) for e in bad.errors] == [(1, "#cc erik at home"), (2, "#merge twelve")]
    assert "not an email address" in bad.errors[0].problem and "not a ticket number" in bad.errors[1].problem
    assert [c.name for c in bad.commands] == ["cc", "link"]


# ---------------------------------------------------------------- asking by mail

def test_mytickets_answers_the_from_address_only_and_opens_nothing(bench):
    bench.open_ticket(1)
    (ack,) = [parse(bytes(o.raw)) for o in bench.sent(kind="acknowledgement")]
    link = "mailto:support@example.com?subject=%23mytickets"
    assert link in plain_text(ack) and f'href="{link}"' in ack.get_body(("html",)).get_content()
    bench.open_ticket(2)
    before = Outbox.select().count()
    raw = make_mail(subject="#mytickets", body="", date=bench.clock.now(),
                    headers={"Reply-To": "mallory@evil.example"})
    outcome = bench.process(raw)
    assert outcome.state == "processed" and outcome.ticket is None and "answered" in outcome.reason
    assert Ticket.select().count() == 2
    new = list(Outbox.select().where(Outbox.id > 0).order_by(Outbox.id))[before:]
    assert [(o.kind, o.recipients) for o in new] == [("query_answer", ["anna@customer.example"])]
    msg = parse(bytes(new[0].raw))
    assert msg["Auto-Submitted"] == "auto-replied" and msg["Reply-To"] is None
    assert msg["In-Reply-To"] == parse(raw)["Message-ID"]
    text = plain_text(msg)
    assert "[SD#1]" in text and "[SD#2]" in text and "Printer 1 broken" in text
    # the same mail delivered twice is answered once
    assert bench.process(raw).state == "duplicate"
    assert len(answers(bench, "anna@customer.example")) == 1


def test_the_eleventh_query_in_an_hour_is_not_answered_and_the_limit_frees_after_the_hour(bench, caplog):
    for n in range(11):
        outcome = bench.process(make_mail(subject="#mytickets", body="", date=bench.clock.now()))
        bench.clock.advance(timedelta(minutes=1))
    assert len(answers(bench, "anna@customer.example")) == 10
    assert outcome.state == "processed" and "rate limit" in outcome.reason
    assert "queries_per_hour = 10" in caplog.text
    assert Ticket.select().count() == 0
    bench.clock.advance(timedelta(minutes=55))
    bench.process(make_mail(subject="#mytickets", body="", date=bench.clock.now()))
    assert len(answers(bench, "anna@customer.example")) == 11


def test_an_automatic_mail_with_a_query_subject_is_not_answered(bench):
    outcome = bench.process(make_mail(subject="#mytickets", body="", date=bench.clock.now(),
                                      headers={"Auto-Submitted": "auto-replied"}))
    assert outcome.state == "dropped" and not bench.sent()


@pytest.mark.parametrize("line", ["#list", "#list 1", "#mine", "#show 1"])
def test_agent_queries_from_a_non_agent_reveal_nothing(bench, line):
    bench.open_ticket(1)
    bench.process(make_mail(subject="Question", body=line, date=bench.clock.now()))
    (msg,) = answers(bench, "anna@customer.example")
    text = plain_text(msg)
    assert "[SD#1]" not in text + msg["Subject"] and "Printer" not in text and line in text
    assert "#mytickets" in text and Ticket.select().count() == 1


@pytest.mark.parametrize("line", ["#list", "#mine", "#show 1"])
def test_agent_queries_without_proof_reveal_nothing(bench, line):
    bench.open_ticket(1)
    bench.process(agent_new_mail(bench, line, verified=False))
    (msg,) = answers(bench, "alice@example.com")
    assert "[SD#1]" not in plain_text(msg) and "could not be verified" in plain_text(msg)


def test_list_is_most_urgent_first_and_follows_tier_visibility(bench):
    low, _ = bench.open_ticket(1)
    high, note = bench.open_ticket(2)
    reply(bench, note, "#priority P2")
    bench.process(agent_new_mail(bench, "#list"))
    text = plain_text(answers(bench, "alice@example.com")[-1])
    assert text.index(f"[SD#{high.id}]") < text.index(f"[SD#{low.id}]")
    assert text.count("Resolution due") == 2 and text.count("First response due") == 2
    bench.process(agent_new_mail(bench, "#list 2"))
    assert "above your own tier" in plain_text(answers(bench, "alice@example.com")[-1])
    bench.process(agent_new_mail(bench, "#list 2", sender="Dave <dave@example.com>"))
    text = plain_text(answers(bench, "dave@example.com")[-1])
    assert "[SD#" not in text  # tier 2 has nothing open
    bench.process(agent_new_mail(bench, "#list 7", sender="Dave <dave@example.com>"))
    assert '"7" is not a tier' in plain_text(answers(bench, "dave@example.com")[-1])


def test_show_names_the_line_for_unknown_and_invisible_tickets(bench):
    ticket, note = bench.open_ticket(1)
    reply(bench, note, "#tier 3")
    for line, words in (("#show 99", "There is no ticket 99"), (f"#show {ticket.id}", "not one your tier may see"),
                        ("#show abc", "#show needs one ticket number")):
        bench.process(agent_new_mail(bench, line))
        msg = answers(bench, "alice@example.com")[-1]
        assert words in plain_text(msg) and line in plain_text(msg) and line in msg["Subject"]
    bench.process(agent_new_mail(bench, f"#show {ticket.id}", sender="Dave <dave@example.com>"))
    msg = answers(bench, "dave@example.com")[-1]
    text = plain_text(msg)
    assert f"Ticket {ticket.id}:" in msg["Subject"] and "History, newest first:" in text and "Escalated to tier 3" in text


def test_mine_lists_the_agents_own_tickets(bench):
    mine, note = bench.open_ticket(1)
    bench.open_ticket(2)
    reply(bench, note, "#assign me")
    bench.process(agent_new_mail(bench, "#mine"))
    text = plain_text(answers(bench, "alice@example.com")[-1])
    assert f"[SD#{mine.id}]" in text and "Printer 2" not in text


# ---------------------------------------------------------------- on someone's behalf

def test_requester_line_opens_the_ticket_for_the_user(bench_any_db):
    bench = bench_any_db
    outcome = bench.process(agent_new_mail(
        bench, "#requester anna.berg@customer.example Anna Berg\n\nAnna called: Outlook crashes at start.",
        subject="Phone: Outlook crashes"))
    ticket = Ticket.get_by_id(outcome.ticket)
    assert (ticket.requester_address, ticket.requester_name) == ("anna.berg@customer.example", "Anna Berg")
    assert ticket.description.strip() == "Anna called: Outlook crashes at start."
    assert [o.kind for o in bench.sent("anna.berg@customer.example")] == ["acknowledgement"]
    assert not bench.sent("alice@example.com")
    (logged,) = [e for e in history(ticket) if e.kind == "on_behalf"]
    assert logged.actor == "alice@example.com" and "anna.berg@customer.example" in logged.text


@pytest.mark.parametrize("line,words", [
    ("#requester anna.berg@ Anna", "not an email address"),
    ("#requester", "not an email address"),
    ("#requester l1@example.com", "desk's own addresses or an agent"),
])
def test_a_bad_requester_line_opens_nothing_and_returns_the_text(bench, line, words):
    outcome = bench.process(agent_new_mail(bench, f"{line}\n\nAnna called about Outlook."))
    assert outcome.ticket is None and Ticket.select().count() == 0
    (refusal,) = bench.sent("alice@example.com", kind="requester_refused")
    text = plain_text(parse(bytes(refusal.raw)))
    assert "Line 1" in text and line in text and words in text and "Anna called about Outlook." in text
    assert InboundMail.get().state == "processed"  # kept; the reason says why
    assert line in InboundMail.get().reason


def test_an_unverified_requester_line_opens_nothing(bench):
    bench.process(agent_new_mail(bench, "#requester anna.berg@customer.example\n\nHi", verified=False))
    assert Ticket.select().count() == 0 and not bench.sent("anna.berg@customer.example")
    (refusal,) = bench.sent("alice@example.com", kind="requester_refused")
    assert "could not be verified" in plain_text(parse(bytes(refusal.raw)))


def test_a_requester_line_from_a_non_agent_is_ordinary_text(bench):
    outcome = bench.process(make_mail(body="#requester erik@customer.example\n\nPlease help", date=START))
    assert Ticket.get_by_id(outcome.ticket).requester_address == "anna@customer.example"


# ---------------------------------------------------------------- #cc and related tickets

def test_cc_adds_a_participant_who_gets_public_replies(bench):
    ticket, note = bench.open_ticket(1)
    reply(bench, note, "#cc Erik Lund <erik@customer.example>\n\nWe are on it.")
    assert Participant.get(Participant.ticket == ticket.id, Participant.address == "erik@customer.example").name \
        == "Erik Lund"
    (out,) = bench.sent(kind="agent_reply")
    assert out.recipients == ["anna@customer.example", "erik@customer.example"]
    reply(bench, note, "#cc anna@customer.example\n#cc l2@example.com")
    problems = errors_to(bench)[-1]
    assert "already the requester" in problems and "own addresses" not in problems  # #cc given twice
    assert "given twice" in problems


def test_link_records_it_on_both_tickets(bench):
    a, note = bench.open_ticket(1)
    b, _ = bench.open_ticket(2)
    reply(bench, note, f"#link {b.id}")
    assert [e.text for e in history(a) if e.kind == "link"] == [f"linked to [SD#{b.id}] by alice@example.com"]
    assert [e.text for e in history(b) if e.kind == "link"] == [f"linked to [SD#{a.id}] by alice@example.com"]


def test_merge_moves_history_people_and_later_mail(bench_any_db):
    bench = bench_any_db
    a, note = bench.open_ticket(1)
    b, _ = bench.open_ticket(2, sender="Erik <erik@customer.example>")
    (ack_a,) = [parse(bytes(o.raw)) for o in bench.sent("anna@customer.example", kind="acknowledgement")]
    reply(bench, note, f"#merge {b.id}")
    a, b = Ticket.get_by_id(a.id), Ticket.get_by_id(b.id)
    assert (a.status, a.merged_into) == ("closed", b.id)
    assert "Printer 1 broken" in " ".join(e.text for e in history(b))
    assert {p.address for p in b.participants} >= {"anna@customer.example"}
    (told,) = bench.sent("anna@customer.example", kind="merged")
    assert told.ticket_id == b.id
    told = parse(bytes(told.raw))
    assert told["In-Reply-To"] == "<bench-1@customer.example>" and f"[SD#{b.id}]" in told["Subject"]
    # her reply to the old acknowledgement (its reply address, References, tag) lands on the survivor
    bench.process(make_mail(subject=f"Re: {ack_a['Subject']}", body="Still broken.", to=reply_address(ack_a),
                            in_reply_to=ack_a["Message-ID"], references=ack_a["Message-ID"], date=START))
    bench.process(make_mail(subject=f"[SD#{a.id}] one more thing", body="And the scanner.", date=START))
    replies = [e.text.strip() for e in history(b) if e.kind == "reply_in"]
    assert replies == ["Still broken.", "And the scanner."]
    assert Ticket.select().count() == 2


@pytest.mark.parametrize("target,words", [
    ("self", "cannot be merged into itself"), (99, "there is no ticket 99"), ("closed", "is closed"),
])
def test_a_bad_merge_changes_nothing_and_names_the_line(bench, target, words):
    a, note = bench.open_ticket(1)
    b, note_b = bench.open_ticket(2)
    if target == "closed":
        reply(bench, note_b, "#status closed")
    number = {"self": a.id, "closed": b.id}.get(target, target)
    reply(bench, note, f"#merge {number}\n\nThanks.")
    (problems,) = errors_to(bench)
    assert f"#merge {number}" in problems and words in problems
    a = Ticket.get_by_id(a.id)
    assert a.merged_into is None and a.status == "open"  # the reply's text still went out and opened it
    assert not bench.sent(kind="merged")


def test_parent_refuses_a_cycle_and_broadcast_needs_children(bench):
    parent, p_note = bench.open_ticket(1)
    child, c_note = bench.open_ticket(2, sender="Erik <erik@customer.example>")
    reply(bench, c_note, f"#parent {parent.id}")
    assert Ticket.get_by_id(child.id).parent == parent.id
    reply(bench, p_note, f"#parent {child.id}")
    assert "already below this ticket" in errors_to(bench)[-1]
    assert Ticket.get_by_id(parent.id).parent is None
    reply(bench, c_note, "#broadcast\n\nHello")
    assert "no open child tickets" in errors_to(bench)[-1]
    reply(bench, p_note, "#broadcast\n#note\n\nInternal")
    assert "cannot be broadcast" in errors_to(bench)[-1]
    # the child's own reply still reached its requester; the note reached nobody outside
    (hello,) = bench.sent("erik@customer.example", kind="agent_reply")
    assert "Hello" in plain_text(parse(bytes(hello.raw)))


def test_a_tier_1_agent_cannot_relate_a_ticket_it_may_not_see(bench):
    a, note = bench.open_ticket(1)
    b, note_b = bench.open_ticket(2)
    reply(bench, note_b, "#tier 3")
    reply(bench, note, f"#link {b.id}")
    assert f"ticket {b.id} is not one your tier may see" in errors_to(bench)[-1]
    assert not [e for e in history(b) if e.kind == "link"]


def test_swedish_tier_gets_swedish_problems(tmp_path):
    bench = Bench(tmp_path, extra={"service": {"locale": "sv"}})
    a, note = bench.open_ticket(1)
    reply(bench, note, "#merge 99")
    assert "det finns inget ärende 99" in errors_to(bench)[-1]


def test_closing_a_major_incident_closes_its_children_with_its_text(bench_any_db):
    bench = bench_any_db
    parent, p_note = bench.open_ticket(1)
    child, c_note = bench.open_ticket(2, sender="Erik <erik@customer.example>")
    done, d_note = bench.open_ticket(3, sender="Frida <frida@customer.example>")
    for note in (c_note, d_note):
        reply(bench, note, f"#parent {parent.id}")
    reply(bench, d_note, "#status closed")
    reply(bench, p_note, "#status closed\n\nThe network switch was replaced.")
    assert Ticket.get_by_id(child.id).status == "closed"
    (closed,) = bench.sent("erik@customer.example", kind="closed")
    assert "network switch was replaced" in plain_text(parse(bytes(closed.raw)))
    assert len(bench.sent("frida@customer.example", kind="closed")) == 1  # closed before, told once
    (status,) = [e for e in history(child) if e.kind == "status"]
    assert status.actor == "alice@example.com" and f"[SD#{parent.id}]" in status.text


def test_a_hostile_query_line_stays_data(bench):
    bench.process(agent_new_mail(bench, "#show {{7*7}} <script>x</script>\r\nBcc: victim@evil.example"))
    (answer,) = bench.sent("alice@example.com", kind="query_answer")
    assert answer.recipients == ["alice@example.com"]
    msg = parse(bytes(answer.raw))
    text, html = plain_text(msg), msg.get_body(("html",)).get_content()
    assert "{{7*7}}" in text and "49" not in text and "<script" not in html and "&lt;script&gt;" in html
    assert "\n" not in msg["Subject"] and msg["Bcc"] is None
