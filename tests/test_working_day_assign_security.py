"""#assign routes a ticket's mail to its assignee; #security on|off sets and clears the security
classification. Conversations through Dovecot and the SMTP sink (SQLite in English, PostgreSQL
in Swedish); the clock-driven parts (warnings, the breach deadline) in-process with a fake clock.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailticket.desk import escalation
from mailticket.models import Event, SlaMark, Ticket
from tests.harness import make_mail, wait_until
from tests.test_conversations_agents import (START, Bench, agent_mail, parse, plain_text, reply_address,
                                             thunderbird_reply)
from tests.test_working_day_files import case, live_desk  # noqa: F401 - the (database, language) matrix

ANNA = "Anna Svensson <anna@customer.example>"
ASSIGNED = {"en": "Assigned to you", "sv": "Tilldelat dig"}


def history(ticket, kind):
    return list(Event.select().where(Event.ticket == ticket, Event.kind == kind).order_by(Event.id))


def anna_writes(live, root: str, n: int, text: str) -> None:
    live.deliver(make_mail(sender=ANNA, subject=f"Re: Printer broken", body=text,
                           message_id=f"<anna-{n}-{root.strip('<>')}>", in_reply_to=root, references=root))


# ---------------------------------------------------------------- #assign

def test_assign_tells_carol_once_and_routes_the_requesters_replies_to_her_until_none(
        case, tmp_path, mailbox_user, smtp_sink):
    locale = case[1]
    root = "<assign-root@customer.example>"
    with live_desk(case, tmp_path, mailbox_user, smtp_sink) as live:
        ticket, notification = live.open_ticket(root)
        live.deliver(thunderbird_reply(notification, "#assign carol@example.com", sender="Alice <alice@example.com>"))
        (told,) = live.wait_mail("carol@example.com")
        assert ASSIGNED[locale] in told["Subject"] and f"[SD#{ticket.id}]" in told["Subject"]
        assert "Alice" in plain_text(told) and "#assign none" in plain_text(told)
        assert reply_address(told).startswith("support+t")  # Carol can act by replying to it
        assert Ticket.get_by_id(ticket.id).assignee == "carol@example.com"
        l1_before = len(live.mails("l1@example.com"))
        anna_writes(live, root, 1, "It now prints only every second page.")
        update = live.wait_mail("carol@example.com", contains="every second page")[-1]
        assert [a.addr_spec for a in update["To"].addresses] == ["carol@example.com"]
        live.processed(3)
        live.wait_outbox_sent()
        assert len(live.mails("l1@example.com")) == l1_before  # not to the tier address
        # Carol gives it back to the tier: no mail for that, and the next reply goes to the tier again
        live.deliver(thunderbird_reply(told, "#assign none", sender="Carol <carol@example.com>"))
        wait_until(lambda: Ticket.get_by_id(ticket.id).assignee is None, timeout=30, what="unassigned")
        anna_writes(live, root, 2, "And now it prints nothing at all.")
        live.wait_mail("l1@example.com", contains="prints nothing at all")
        live.processed(5)
        live.wait_outbox_sent()
        assert len(live.mails("carol@example.com")) == 2  # told once, one update while she had it
        assigns = history(ticket, "assign")
        assert [(e.actor, e.data["new"]) for e in assigns] == [("alice@example.com", "carol@example.com"),
                                                               ("carol@example.com", None)]
        assert all(e.at is not None for e in assigns)


@pytest.fixture
def bench(tmp_path):
    return Bench(tmp_path, extra={"sla": {"warn_at": 0.5}})


def test_assigning_yourself_sends_nothing_and_warnings_and_escalations_go_to_assignee_and_tier(bench):
    ticket, notification = bench.open_ticket()
    bench.process(agent_mail(notification, "#assign me", to=reply_address(notification)))
    assert Ticket.get_by_id(ticket.id).assignee == "alice@example.com"
    assert not bench.sent("alice@example.com")  # she assigned herself
    bench.process(agent_mail(notification, "#assign alice@example.com", to=reply_address(notification)))
    assert not bench.sent("alice@example.com", kind="assigned")  # already hers: told no one
    # P3: first response 3 h; warn at half of it, escalate at the end
    bench.clock.advance(timedelta(hours=1, minutes=31))
    escalation.run_sla_check(bench.desk, bench.clock.now())
    (warning,) = bench.sent(kind="warning")
    assert warning.recipients == ["alice@example.com", "l1@example.com"]
    bench.clock.advance(timedelta(hours=1, minutes=30))
    escalation.run_sla_check(bench.desk, bench.clock.now())
    (up,) = bench.sent(kind="escalation")
    assert up.recipients == ["alice@example.com", "l2@example.com"]


# ---------------------------------------------------------------- #security

BREACH = "We had a data breach: the customer list was sent to an outside address."


def test_security_off_by_tier_3_clears_the_deadline_and_by_tier_1_is_refused(case, tmp_path, mailbox_user,
                                                                                smtp_sink):
    root = "<breach-root@customer.example>"
    with live_desk(case, tmp_path, mailbox_user, smtp_sink) as live:
        live.deliver(make_mail(sender=ANNA, subject="Customer list sent out", body=BREACH, message_id=root))
        l3 = live.wait_mail("l3@example.com")[-1]
        l1 = live.wait_mail("l1@example.com")[-1]  # a P1: tier 1 hears of it too
        ticket = Ticket.get(Ticket.thread_root == root.strip("<>"))
        assert ticket.security and ticket.breach_report_deadline is not None and ticket.category == "security"
        deadline = ticket.breach_report_deadline
        # tier 1 may not clear it: a clear reply, the ticket unchanged
        live.deliver(thunderbird_reply(l1, "#security off false alarm", sender="Alice <alice@example.com>"))
        refusal = live.wait_mail("alice@example.com")[-1]
        assert "#security off false alarm" in plain_text(refusal)
        assert {"en": "only tier-3 agents and the security contact (security@example.com)",
                "sv": "bara handläggare på nivå 3 och säkerhetskontakten (security@example.com)"}[case[1]] \
            in " ".join(plain_text(refusal).split())
        t = Ticket.get_by_id(ticket.id)
        assert (t.security, t.breach_report_deadline, t.category) == (True, deadline, "security")
        # tier 3 may
        live.deliver(thunderbird_reply(l3, "#security off false alarm", sender="Dave <dave@example.com>"))
        wait_until(lambda: not Ticket.get_by_id(ticket.id).security, timeout=30, what="security cleared")
        t = Ticket.get_by_id(ticket.id)
        assert t.breach_report_deadline is None and t.category == "general"
        (cleared,) = history(t, "security")[-1:]
        assert cleared.actor == "dave@example.com" and cleared.data["reason"] == "false alarm"
        assert "false alarm" in cleared.text and cleared.data["deadline_was"]
        live.processed(3)
        live.wait_outbox_sent()
        assert not live.mails("dave@example.com")  # no error for Dave


def test_security_flag_by_the_security_contact_and_the_deadline_warnings_stop(tmp_path):
    bench = Bench(tmp_path)
    outcome = bench.process(make_mail(sender=ANNA, subject="Leak", body=BREACH, message_id="<leak@customer.example>",
                                      date=START))
    ticket = Ticket.get_by_id(outcome.ticket)
    (alert,) = [parse(bytes(o.raw)) for o in bench.sent("security@example.com", kind="security_alert")]
    bench.process(agent_mail(alert, "#security off a test mail from the phishing drill",
                             sender="Security <security@example.com>", to=reply_address(alert)))
    t = Ticket.get_by_id(ticket.id)
    assert not t.security and t.breach_report_deadline is None
    assert history(t, "security")[-1].actor == "security@example.com"
    bench.clock.advance(timedelta(hours=71))
    escalation.run_sla_check(bench.desk, bench.clock.now())
    assert not bench.sent(kind="breach_deadline_warning")
    assert not SlaMark.select().where(SlaMark.ticket == t, SlaMark.key.startswith("breach_deadline")).exists()
    # set again by a tier-3 agent: the deadline runs from now and the security contact is told
    (l3,) = [parse(bytes(o.raw)) for o in bench.sent("l3@example.com", kind="new_ticket")]
    bench.process(agent_mail(l3, "#security on", sender="Dave <dave@example.com>", to=reply_address(l3)))
    t = Ticket.get_by_id(ticket.id)
    assert t.security and t.category == "security"
    assert t.breach_report_deadline == bench.clock.now() + timedelta(hours=72)
    assert len(bench.sent("security@example.com", kind="security_alert")) == 2


@pytest.mark.parametrize("line,problem", [
    ("#security", "needs on or off"),
    ("#security maybe", "'maybe' is neither on nor off"),
    ("#security off", "needs a reason after off"),
])
def test_bad_security_lines_are_refused_naming_the_line(tmp_path, line, problem):
    bench = Bench(tmp_path)
    ticket, notification = bench.open_ticket()
    bench.process(agent_mail(notification, f"{line}\n\nLooking at it.", sender="Dave <dave@example.com>",
                             to=reply_address(notification)))
    (error,) = [parse(bytes(o.raw)) for o in bench.sent("dave@example.com", kind="command_error")]
    assert line in plain_text(error) and problem in plain_text(error)
    assert not Ticket.get_by_id(ticket.id).security


def test_a_reopening_reply_goes_to_the_assignee_not_the_tier(bench):
    ticket, notification = bench.open_ticket()
    bench.process(agent_mail(notification, "#assign bob@example.com\n#status resolved\n\nFixed the driver.",
                             to=reply_address(notification)))
    assert [o.kind for o in bench.sent("bob@example.com")] == ["assigned"]
    tier_before = len(bench.sent("l1@example.com"))
    bench.process(make_mail(sender=ANNA, subject=f"Re: [SD#{ticket.id}] Printer 1 broken", body="Still broken.",
                            message_id="<reopen-1@customer.example>", in_reply_to="<bench-1@customer.example>",
                            date=START))
    assert Ticket.get_by_id(ticket.id).status == "open"
    (reopened,) = bench.sent(kind="reopened")
    assert reopened.recipients == ["bob@example.com"]
    assert len(bench.sent("l1@example.com")) == tier_before
