"""The incident process end to end: Dovecot in, the SMTP sink out, the real daemon loop, real seconds.

SLA targets are seconds long so the whole ladder runs in a few seconds: no agent answers ->
warning to tier 1, escalation to tier 2, its warning, escalation to tier 3, its warning, the
escalation manager; each mail once, also across a daemon restart. P1 and security mail go to
tier 3 at once, monitoring alerts open and resolve one incident, the requester hears about
escalation, resolution and closing in their own thread.
"""

from __future__ import annotations

import email
import re
import email.policy
import time
from collections import Counter
from datetime import timedelta

from mailticket.clock import FakeClock
from mailticket.models import Event, Outbox, SlaMark, Ticket
from tests.harness import DaemonThread, make_mail, wait_until, write_config

REQUESTER = "anna@customer.example"
INTERNAL = {"l1@example.com", "l2@example.com", "l3@example.com", "admin@example.com", "security@example.com"}


def _parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def sent(sink) -> list[tuple[str, str, object]]:
    """(kind, recipient, message) of every mail the sink got, in arrival order; kind from our outbox."""
    out = []
    for got in list(sink.received):
        msg = _parse(got.data)
        row = Outbox.get(Outbox.message_id == msg["Message-ID"].strip("<>"))
        out.append((row.kind, ",".join(got.rcpt_tos), msg))
    return out


def kinds(sink, *, to: str | None = None) -> list[tuple[str, str]]:
    return [(k, r) for k, r, _ in sent(sink) if to is None or r == to]


def wait_for_mail(sink, kind: str, to: str, count: int = 1, timeout: float = 20):
    return wait_until(lambda: len([1 for k, r in kinds(sink) if (k, r) == (kind, to)]) >= count,
                      timeout=timeout, what=f"{count} {kind} mail(s) to {to}")


def assert_each_once(sink) -> None:
    """No mail went out twice: every Message-ID once, and the sink got exactly what the outbox sent."""
    ids = Counter(m["Message-ID"] for _, _, m in sent(sink))
    assert [i for i, n in ids.items() if n > 1] == []
    assert Outbox.select().where(Outbox.status == "sent").count() == len(ids)


def ladder_config(tmp_path, user, sink, first_response: str, **extra_sla):
    sla = {"check_interval": "1s", "warn_at": 0.5,
           "P3": {"first_response": first_response, "resolution": "1h"}, **extra_sla}
    return write_config(tmp_path, user=user, sink=sink, sla=sla)


# ---------------------------------------------------------------- the ladder

def test_unanswered_ticket_climbs_the_ladder_each_mail_once(tmp_path, mailbox_user, smtp_sink):
    dovecot = mailbox_user.server
    cfg = ladder_config(tmp_path, mailbox_user, smtp_sink, "2s")
    dovecot.append(mailbox_user.name, "INBOX", make_mail(message_id="<ladder@customer.example>"))
    with DaemonThread(cfg):
        wait_for_mail(smtp_sink, "escalation_manager", "admin@example.com", timeout=30)
        time.sleep(2.5)  # two more scans: nothing more may be sent
    internal = [(k, r) for k, r in kinds(smtp_sink) if r in INTERNAL]
    assert internal == [
        ("new_ticket", "l1@example.com"),
        ("warning", "l1@example.com"),
        ("escalation", "l2@example.com"),
        ("warning", "l2@example.com"),
        ("escalation", "l3@example.com"),
        ("warning", "l3@example.com"),
        ("escalation_manager", "admin@example.com"),
    ]
    assert kinds(smtp_sink, to=REQUESTER) == [("acknowledgement", REQUESTER), ("escalated", REQUESTER),
                                              ("escalated", REQUESTER)]
    assert_each_once(smtp_sink)
    ticket = Ticket.get()
    assert ticket.tier == 3 and ticket.status == "new"
    assert sorted(m.key for m in SlaMark.select()) == sorted(
        [f"warn:first_response:tier{n}" for n in (1, 2, 3)] + [f"breach:first_response:tier{n}" for n in (1, 2, 3)])
    history = [e.text for e in ticket.events.order_by(Event.id) if e.kind == "escalation"]
    assert [h.split(":")[0] for h in history] == ["tier 1 -> tier 2", "tier 2 -> tier 3",
                                                   "tier 3 -> escalation manager admin@example.com"]


def test_escalation_mail_says_why_how_long_and_how_to_act(tmp_path, mailbox_user, smtp_sink):
    dovecot = mailbox_user.server
    cfg = ladder_config(tmp_path, mailbox_user, smtp_sink, "2s")
    dovecot.append(mailbox_user.name, "INBOX", make_mail(message_id="<why@customer.example>",
                                                         body="The printer on floor 3 jams on every page."))
    with DaemonThread(cfg):
        wait_for_mail(smtp_sink, "escalation", "l2@example.com")
    [msg] = [m for k, r, m in sent(smtp_sink) if (k, r) == ("escalation", "l2@example.com")]
    text = msg.get_body(("plain",)).get_content()
    ticket = Ticket.get()
    assert f"[SD#{ticket.id}]" in msg["Subject"]
    assert "first response target 2 s breached at tier 1" in text         # the reason
    assert re.search(r"Time used so far: [2-9] s\r?\n", text)               # time used
    assert "jams on every page" in text                                     # summary / description
    assert "Ticket logged from the requester's mail · anna@customer.example" in text  # the history
    assert "#status" in text                                                # how to act by reply
    assert msg["Reply-To"].addresses[0].addr_spec.startswith("support+t")   # ... to a signed address
    assert msg["In-Reply-To"] == "<why@customer.example>"


def test_warning_and_escalation_happen_once_across_daemon_restarts(tmp_path, mailbox_user, smtp_sink):
    """Stop the daemon after the warning and again after the escalation: nothing is sent twice.
    The desk's clock is the test's (the SLA target 6 s, the warning at 3 s): each daemon sees
    only the moment the test moved it to, however slowly the machine restarts it."""
    dovecot = mailbox_user.server
    cfg = ladder_config(tmp_path, mailbox_user, smtp_sink, "6s")
    clock = FakeClock()
    dovecot.append(mailbox_user.name, "INBOX", make_mail(message_id="<restart@customer.example>"))
    with DaemonThread(cfg, clock=clock):
        wait_for_mail(smtp_sink, "new_ticket", "l1@example.com")
        clock.advance(4)  # past the warning at 3 s, short of the breach at 6 s
        wait_for_mail(smtp_sink, "warning", "l1@example.com")
    assert not [k for k, _ in kinds(smtp_sink) if k == "escalation"], "breach came before the restart"
    with DaemonThread(cfg, clock=clock):  # a new daemon: it knows only what the database says
        time.sleep(2.5)  # two SLA scans at 4 s: the warning is not sent again
        assert [k for k, r in kinds(smtp_sink) if r in INTERNAL].count("warning") == 1
        clock.advance(3)  # 7 s: breached
        wait_for_mail(smtp_sink, "escalation", "l2@example.com")
    assert ("warning", "l2@example.com") not in kinds(smtp_sink), "tier 2 warning came before the restart"
    with DaemonThread(cfg, clock=clock):
        clock.advance(4)  # tier 2's clock started at the escalation (7 s): 11 s is past its warning, short of 13 s
        wait_for_mail(smtp_sink, "warning", "l2@example.com")
        time.sleep(2.5)  # two more scans: nothing more
    assert [(k, r) for k, r in kinds(smtp_sink) if r in INTERNAL] == [
        ("new_ticket", "l1@example.com"), ("warning", "l1@example.com"),
        ("escalation", "l2@example.com"), ("warning", "l2@example.com")]
    assert_each_once(smtp_sink)
    assert Ticket.get().tier == 2


# ---------------------------------------------------------------- P1, security

def test_p1_mail_goes_to_tier_3_at_once_and_tier_1_is_informed(tmp_path, mailbox_user, smtp_sink):
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={
        "service": {"vip": ["ceo@customer.example"]},
        "rules": [{"name": "vip-outage", "vip": True, "subject": "(?i)down", "impact": "high", "urgency": "high"},
                  {"name": "everything-else", "impact": "low", "urgency": "low"}]})
    dovecot.append(mailbox_user.name, "INBOX", make_mail(sender="Chief <ceo@customer.example>",
                                                         subject="Mail server is down", message_id="<p1@c.example>"))
    with DaemonThread(cfg):
        smtp_sink.wait_for(3, timeout=20)
    assert sorted(kinds(smtp_sink)) == [("acknowledgement", "ceo@customer.example"),
                                        ("new_ticket", "l1@example.com"), ("new_ticket", "l3@example.com")]
    ticket = Ticket.get()
    assert (ticket.priority, ticket.tier, ticket.decided_by) == ("P1", 3, "vip-outage")
    categorised = ticket.events.where(Event.kind == "categorised").get()
    assert "(rule vip-outage)" in categorised.text and "-> P1" in categorised.text
    assert ticket.events.where(Event.kind == "escalation", Event.text.contains("tier 1 informed")).count() == 1


def test_first_matching_rule_wins_and_is_named_in_the_history(tmp_path, mailbox_user, smtp_sink):
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={
        "rules": [{"name": "printers", "from": "@customer.example", "body": "(?i)toner", "category": "printing",
                   "impact": "low", "urgency": "medium"},
                  {"name": "customer-default", "from": "@customer.example", "impact": "high", "urgency": "high"}]})
    dovecot.append(mailbox_user.name, "INBOX", make_mail(body="Out of toner again", message_id="<r1@c.example>"))
    with DaemonThread(cfg):
        smtp_sink.wait_for(2, timeout=20)
    ticket = Ticket.get()
    assert (ticket.decided_by, ticket.category, ticket.impact, ticket.urgency, ticket.priority, ticket.tier) == (
        "printers", "printing", "low", "medium", "P4", 1)
    assert "(rule printers)" in ticket.events.where(Event.kind == "categorised").get().text


def _security_case(tmp_path, user, sink, subject, body, sla=None):
    dovecot = user.server
    cfg = write_config(tmp_path, user=user, sink=sink, sla=sla)
    dovecot.append(user.name, "INBOX", make_mail(subject=subject, body=body, message_id="<sec@customer.example>"))
    return cfg


def test_english_breach_mail_tells_the_security_contact_and_warns_before_the_deadline(
        tmp_path, mailbox_user, smtp_sink):
    sla = {"check_interval": "1s", "breach_report": {"deadline": "4s", "warn_before": ["3s", "1s"]}}
    cfg = _security_case(tmp_path, mailbox_user, smtp_sink, "Data breach: customer list leaked",
                         "Our customer list was posted on a forum this morning.", sla=sla)
    with DaemonThread(cfg):
        wait_for_mail(smtp_sink, "breach_deadline_warning", "security@example.com", count=2)
        time.sleep(1.2)  # one more scan: no third warning
    ticket = Ticket.get()
    assert (ticket.category, ticket.priority, ticket.tier, ticket.security) == ("security", "P1", 3, True)
    assert ticket.breach_report_deadline == ticket.created_at + timedelta(seconds=4)
    got = kinds(smtp_sink)
    assert got.count(("security_alert", "security@example.com")) == 1
    assert got.count(("new_ticket", "l3@example.com")) == 1 and got.count(("new_ticket", "l1@example.com")) == 1
    assert got.count(("breach_deadline_warning", "security@example.com")) == 2
    assert Outbox.get(Outbox.kind == "security_alert").created_at == ticket.created_at  # told at once
    assert sorted(m.key for m in SlaMark.select()) == ["breach_deadline:1s", "breach_deadline:3s"]
    assert_each_once(smtp_sink)


def test_swedish_breach_mail_carries_the_72h_reporting_deadline(tmp_path, mailbox_user, smtp_sink):
    cfg = _security_case(tmp_path, mailbox_user, smtp_sink, "Personuppgiftsincident",
                         "Hej! Vi har skickat ut en kundlista med personnummer till fel mottagare.")
    with DaemonThread(cfg):
        wait_for_mail(smtp_sink, "security_alert", "security@example.com")
    ticket = Ticket.get()
    assert (ticket.category, ticket.priority, ticket.tier, ticket.security) == ("security", "P1", 3, True)
    assert ticket.breach_report_deadline == ticket.created_at + timedelta(hours=72)
    assert ticket.next_check_at <= ticket.breach_report_deadline - timedelta(hours=24)
    [alert] = [m for k, _, m in sent(smtp_sink) if k == "security_alert"]
    assert f"[SD#{ticket.id}]" in alert["Subject"]


def test_swedish_threat_mail_is_security_without_a_deadline(tmp_path, mailbox_user, smtp_sink):
    cfg = _security_case(tmp_path, mailbox_user, smtp_sink, "Misstänkt nätfiske",
                         "Jag fick ett mejl som ber mig logga in på en konstig sida.")
    with DaemonThread(cfg):
        wait_for_mail(smtp_sink, "security_alert", "security@example.com")
    ticket = Ticket.get()
    assert (ticket.category, ticket.priority, ticket.tier) == ("security", "P1", 3)
    assert ticket.breach_report_deadline is None


# ---------------------------------------------------------------- monitoring

def _nagios(state: str, status: str, message_id: str, auto: bool = False) -> bytes:
    headers = {"Auto-Submitted": "auto-generated"} if auto else None
    return make_mail(sender="Nagios <nagios@mon.example.com>", message_id=message_id,
                     subject=f"** {state} Service Alert: web01/HTTP is {status} **",
                     body=f"Notification Type: {state}\nService: HTTP\nHost: web01\nState: {status}\n",
                     headers=headers)


def test_monitoring_problem_repeat_and_recovery_make_one_resolved_incident(tmp_path, mailbox_user, smtp_sink):
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={
        "monitoring": [{"name": "nagios", "from": "nagios@mon.example.com", "impact": "high"}]})
    dovecot.append(mailbox_user.name, "INBOX", _nagios("PROBLEM", "CRITICAL", "<n1@mon.example.com>"))
    dovecot.append(mailbox_user.name, "INBOX", _nagios("PROBLEM", "CRITICAL", "<n2@mon.example.com>", auto=True))
    dovecot.append(mailbox_user.name, "INBOX", _nagios("RECOVERY", "OK", "<n3@mon.example.com>"))
    with DaemonThread(cfg):
        wait_until(lambda: dovecot.folder_count(mailbox_user.name, "Processed") == 3, what="three alerts processed")
        smtp_sink.wait_for(1, timeout=20)
        time.sleep(0.5)
    assert Ticket.select().count() == 1
    ticket = Ticket.get()
    assert (ticket.alert_key, ticket.status, ticket.type, ticket.category) == ("web01/http", "resolved", "incident",
                                                                               "monitoring")
    assert ticket.priority == "P2" and ticket.decided_by == "monitoring:nagios"
    alerts = [e.text.split(":")[0] for e in ticket.events.where(Event.kind == "alert").order_by(Event.id)]
    assert alerts == ["repeated PROBLEM", "RECOVERY"]
    assert ticket.events.where(Event.kind == "status", Event.text.startswith("new -> resolved")).count() == 1
    # the machine gets no acknowledgement and no resolved notice; tier 1 hears of the incident once
    assert kinds(smtp_sink) == [("new_ticket", "l1@example.com")]


def test_a_new_problem_after_recovery_opens_a_new_incident(tmp_path, mailbox_user, smtp_sink):
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={
        "monitoring": [{"name": "nagios", "from": "nagios@mon.example.com"}]})
    for i, (state, status) in enumerate((("PROBLEM", "CRITICAL"), ("RECOVERY", "OK"), ("PROBLEM", "WARNING"))):
        dovecot.append(mailbox_user.name, "INBOX", _nagios(state, status, f"<again{i}@mon.example.com>"))
    with DaemonThread(cfg):
        wait_until(lambda: dovecot.folder_count(mailbox_user.name, "Processed") == 3, what="three alerts processed")
        smtp_sink.wait_for(2, timeout=20)
    assert [(t.status, t.alert_key) for t in Ticket.select().order_by(Ticket.id)] == [
        ("resolved", "web01/http"), ("new", "web01/http")]


# ---------------------------------------------------------------- what the requester hears

def _reply_from_agent(agent: str, to_mail, body: str, message_id: str) -> bytes:
    """What an agent's mail client sends when they answer one of our notifications."""
    reply_to = to_mail["Reply-To"].addresses[0].addr_spec
    return make_mail(sender=agent, to=reply_to, subject="Re: " + to_mail["Subject"], body=body,
                     message_id=message_id, in_reply_to=to_mail["Message-ID"],
                     references=to_mail["Message-ID"])


def test_requester_hears_of_escalation_resolution_and_closing_in_their_thread(tmp_path, mailbox_user, smtp_sink):
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink,
                       sla={"check_interval": "1s", "auto_close_after": "2s"})
    dovecot.append(mailbox_user.name, "INBOX", make_mail(message_id="<thread@customer.example>"))
    with DaemonThread(cfg):
        wait_for_mail(smtp_sink, "new_ticket", "l1@example.com")
        [note] = [m for k, _, m in sent(smtp_sink) if k == "new_ticket"]
        dovecot.append(mailbox_user.name, "INBOX", _reply_from_agent(
            "Alice <alice@example.com>", note, "#escalate needs a technician on site\n", "<esc@example.com>"))
        wait_for_mail(smtp_sink, "escalation", "l2@example.com")
        [esc] = [m for k, _, m in sent(smtp_sink) if k == "escalation"]
        dovecot.append(mailbox_user.name, "INBOX", _reply_from_agent(
            "Carol <carol@example.com>", esc, "#status resolved\n\nThe fuser was replaced.\n", "<fix@example.com>"))
        wait_for_mail(smtp_sink, "closed", REQUESTER)
    to_requester = [(k, m) for k, r, m in sent(smtp_sink) if r == REQUESTER]
    assert [k for k, _ in to_requester] == ["acknowledgement", "escalated", "resolved", "closed"]
    for kind, msg in to_requester:
        assert msg["In-Reply-To"] == "<thread@customer.example>", kind
        assert "<thread@customer.example>" in msg["References"], kind
    resolved = dict(to_requester)["resolved"].get_body(("plain",)).get_content()
    assert "The fuser was replaced." in resolved
    resolved = " ".join(resolved.split())
    assert "If it is not fixed, just reply to this mail and we will reopen it." in resolved
    assert "the ticket closes by itself in 2 s" in resolved
    ticket = Ticket.get()
    assert (ticket.status, ticket.tier) == ("closed", 2)
    assert ticket.closed_at - ticket.resolved_at >= timedelta(seconds=2)
    statuses = [e.text for e in ticket.events.where(Event.kind == "status").order_by(Event.id)]
    assert statuses[-2].startswith("new -> resolved") and statuses[-1].startswith("resolved -> closed")
    assert "auto-close after 2s" in statuses[-1]
    assert_each_once(smtp_sink)


# ---------------------------------------------------------------- clocks, in process with a fake clock

def _desk_at(tmp_path, sla):
    from mailticket import db
    from mailticket.clock import FakeClock
    from mailticket.config import load_config
    from mailticket.service.wiring import build_desk
    config = load_config(write_config(tmp_path, sla=sla, listener_port=1))
    db.connect(config.database.url)
    return build_desk(config, clock=FakeClock())


def _open_ticket(desk) -> Ticket:
    from mailticket.service import intake
    from mailticket.desk import pipeline
    pipeline.store_raw(make_mail(message_id="<clock@customer.example>", date=desk.clock.now()), source="test",
                       now=desk.clock.now())
    intake.process_pending(desk, "test")
    return Ticket.get()


def _set_clock(desk, moment) -> None:
    desk.clock.advance(moment - desk.clock.now())


def _scan_at(desk, minutes_after: float, created) -> list[str]:
    """Move the clock, scan, return the kinds of the mails the scan queued."""
    from mailticket.desk.escalation import run_sla_check
    _set_clock(desk, created + timedelta(minutes=minutes_after))
    before = Outbox.select().count()
    run_sla_check(desk, desk.clock.now())
    return [o.kind for o in Outbox.select().order_by(Outbox.id).offset(before)]


def test_pending_pauses_the_resolution_clock_and_open_runs_it_on(tmp_path):
    from mailticket.desk import slaclock
    from mailticket.desk import tickets
    desk = _desk_at(tmp_path, {"warn_at": 0.5, "P3": {"first_response": "1h", "resolution": "10m"}})
    ticket = _open_ticket(desk)
    created = ticket.created_at
    assert ticket.resolution_due == created + timedelta(minutes=10)
    desk.clock.advance(60)                                   # 1 min: an agent answers
    slaclock.first_response(ticket, desk.config, desk.clock.now())
    tickets.set_status(desk, ticket, "open", desk.clock.now(), actor="alice@example.com")
    desk.clock.advance(60)                                   # 2 min: waiting for the requester
    tickets.set_status(desk, ticket, "pending", desk.clock.now(), actor="alice@example.com")
    assert ticket.resolution_due is None
    assert _scan_at(desk, 60, created) == []                 # an hour on: nothing, the clock stood still
    ticket = Ticket.get()
    _set_clock(desk, created + timedelta(minutes=60))        # the requester answers after 58 min paused
    tickets.set_status(desk, ticket, "open", desk.clock.now(), actor=REQUESTER)
    assert ticket.resolution_due == created + timedelta(minutes=10 + 58)
    assert ticket.next_check_at == created + timedelta(minutes=5 + 58)
    assert _scan_at(desk, 62.9, created) == []
    assert _scan_at(desk, 63, created) == ["warning"]
    assert _scan_at(desk, 67.9, created) == []
    assert _scan_at(desk, 68, created) == ["escalation", "escalated"]
    assert Ticket.get().tier == 2


def test_due_times_follow_a_priority_change(tmp_path):
    from mailticket.desk import slaclock
    desk = _desk_at(tmp_path, {"P2": {"first_response": "30m", "resolution": "2h"},
                               "P3": {"first_response": "1h", "resolution": "8h"}})
    ticket = _open_ticket(desk)
    created = ticket.created_at
    assert (ticket.first_response_due, ticket.resolution_due) == (created + timedelta(hours=1),
                                                                  created + timedelta(hours=8))
    ticket.priority = "P2"
    slaclock.on_priority(ticket, desk.config)
    assert (ticket.first_response_due, ticket.resolution_due) == (created + timedelta(minutes=30),
                                                                  created + timedelta(hours=2))
    ticket.save()
    assert _scan_at(desk, 22.5, created) == ["warning"]      # 75 % of the new 30 min target


def test_business_hours_and_holidays_move_the_due_times(tmp_path):
    """Mon 2 Nov 2026 09:00 UTC = 10:00 Stockholm; 8 working hours 08-17 Mon-Fri, Tue a holiday."""
    desk = _desk_at(tmp_path, {"business_hours": {"start": "08:00", "end": "17:00", "holidays": ["2026-11-03"]},
                               "P3": {"first_response": "4h", "resolution": "8h"}})
    ticket = _open_ticket(desk)
    assert ticket.created_at.isoformat() == "2026-11-02T09:00:00+00:00"
    assert ticket.first_response_due.isoformat() == "2026-11-02T13:00:00+00:00"   # 14:00 local, same day
    # 7 h left on Monday (10-17), Tuesday off, 1 h on Wednesday: 09:00 local = 08:00 UTC
    assert ticket.resolution_due.isoformat() == "2026-11-04T08:00:00+00:00"


def test_a_ticket_the_scan_is_done_with_is_not_due_at_every_scan(tmp_path):
    """After the last escalation of a clock, the ticket waits for its next real moment (the
    resolution warning), instead of being looked at again at every scan for ever."""
    from mailticket.desk.escalation import due_tickets, run_sla_check
    desk = _desk_at(tmp_path, {"warn_at": 0.5, "P3": {"first_response": "10m", "resolution": "10h"}})
    created = _open_ticket(desk).created_at
    ladder = [_scan_at(desk, minute, created) for minute in (5, 10, 15, 20, 25, 30)]
    assert ladder == [["warning"], ["escalation", "escalated"], ["warning"], ["escalation", "escalated"],
                      ["warning"], ["escalation_manager"]]
    assert Ticket.get().next_check_at == created + timedelta(hours=5)
    later = created + timedelta(minutes=31)
    assert list(due_tickets(later)) == []
    assert run_sla_check(desk, later).looked_at == 0
    assert _scan_at(desk, 5 * 60, created) == ["warning"]      # the resolution clock still speaks up


def test_a_monitoring_system_gets_no_escalated_or_closed_notices(tmp_path, mailbox_user, smtp_sink):
    """The requester of an alert incident is a machine: tiers hear of escalation, the machine hears nothing."""
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={
        "monitoring": [{"name": "nagios", "from": "nagios@mon.example.com", "impact": "high"}]},
        sla={"check_interval": "1s", "auto_close_after": "1s", "warn_at": 0.5,
             "P2": {"first_response": "2s", "resolution": "1h"}})
    dovecot.append(mailbox_user.name, "INBOX", _nagios("PROBLEM", "CRITICAL", "<m1@mon.example.com>"))
    with DaemonThread(cfg):
        wait_for_mail(smtp_sink, "escalation", "l2@example.com")
        dovecot.append(mailbox_user.name, "INBOX", _nagios("RECOVERY", "OK", "<m2@mon.example.com>"))
        wait_until(lambda: Ticket.get().status == "closed", what="incident closed after recovery")
        time.sleep(0.5)
    assert [r for _, r in kinds(smtp_sink) if r not in INTERNAL] == []
    ticket = Ticket.get()
    assert ticket.tier >= 2 and ticket.closed_at - ticket.resolved_at >= timedelta(seconds=1)
