"""Clock accounting by intervals: hand-worked cases of the ITIL literature (pure, no database)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from mailticket.desk.intervals import Change, build, changes_from_events
from mailticket.desk.report import TicketFacts, figures, measure
from mailticket.desk.sla import load_policy

H = timedelta(hours=1)
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday
POLICY = load_policy({}, "UTC", "t.toml")      # 24/7 clocks, P3: 3 h first response, 24 h resolution


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def status(hours, old, new):
    return Change(at(hours), "status", new, old)


def test_pending_across_an_escalation_is_never_resolution_time():
    # the ticket: 0.5 h open, 10 h pending, escalated while pending, 1 h open at tier 2
    changes = [status(0.5, "new", "pending"), Change(at(5), "tier", 2, 1), status(10.5, "pending", "open"),
               status(11.5, "open", "resolved")]
    tl = build(T0, changes, at(12), status="resolved", tier=2, priority="P3", first_response_at=at(0.5))
    assert tl.resolution_time(POLICY) == 1.5 * H       # not 11.5 h
    assert tl.pending_time(POLICY) == 10 * H
    assert tl.active_time(POLICY, tier=1) == 0.5 * H   # tier 1's own part
    assert tl.active_time(POLICY, tier=2) == 1 * H     # tier 2's own part
    assert tl.pending_time(POLICY, tier=1) == 4.5 * H and tl.pending_time(POLICY, tier=2) == 5.5 * H
    assert tl.escalations() == [(1, 2)]
    assert tl.first_response_time(POLICY) == 0.5 * H and tl.first_response_tier() == 1
    assert not tl.first_contact_resolution()


def test_the_same_ticket_without_escalation_reports_the_same_time():
    changes = [status(0.5, "new", "pending"), status(10.5, "pending", "open"), status(11.5, "open", "resolved")]
    tl = build(T0, changes, at(12), status="resolved", tier=1, priority="P3", first_response_at=at(0.5))
    assert tl.resolution_time(POLICY) == 1.5 * H
    assert tl.first_contact_resolution()


def test_reopen_after_resolution_counts_only_the_time_open_again():
    # open 2 h, resolved for 30 h, reopened, open 1 h, resolved again
    changes = [status(0, "new", "open"), status(2, "open", "resolved"), status(32, "resolved", "open"),
               status(33, "open", "resolved")]
    tl = build(T0, changes, at(40), status="resolved", tier=1, priority="P3", first_response_at=at(1))
    assert tl.resolution_time(POLICY) == 3 * H
    assert tl.reopens() == 1 and tl.resolved_at == at(33)
    m = measure(TicketFacts(1, "incident", "general", tl), POLICY)
    assert m.reopened and m.ever_resolved and m.resolution == 3 * 3600


def test_a_reopened_ticket_still_open_is_not_resolved_but_counts_as_reopened():
    changes = [status(2, "new", "resolved"), status(5, "resolved", "open")]
    tl = build(T0, changes, at(6), status="open", tier=1, priority="P3")
    m = measure(TicketFacts(2, "incident", "general", tl), POLICY)
    assert m.resolution is None and not m.resolved and m.ever_resolved and m.reopened
    f = figures([m])
    assert f["reopen"] == {"resolved": 1, "reopened": 1, "rate": 1.0}
    assert f["first_contact_resolution"]["resolved"] == 0


def test_a_priority_change_midway_counts_each_part_by_its_own_calendar():
    # business hours 08-17 Mon-Fri for P2-P4, P1 24/7. P3 from Mon 08:00, made P1 at 10:00, resolved 20:00.
    policy = load_policy({"business_hours": {"start": "08:00", "end": "17:00"}}, "UTC", "t.toml")
    changes = [Change(at(2), "priority", "P1", "P3"), status(12, "new", "resolved")]
    tl = build(T0, changes, at(13), status="resolved", tier=1, priority="P1", first_response_at=at(1))
    assert [i.priority for i in tl.intervals] == ["P3", "P1", "P1"]
    assert tl.resolution_time(policy) == 2 * H + 10 * H  # 2 h of P3 business time, 10 h of P1 wall time
    m = measure(TicketFacts(3, "incident", "network", tl), policy)
    assert m.resolution_target == 4 * 3600            # judged against the priority it has at the end
    assert figures([m])["resolution"]["within_target"] == 0


def test_business_hours_across_a_weekend_and_a_holiday():
    # P3 created Friday 2026-11-06 16:00 local; Monday 2026-11-09 is a holiday; resolved Tuesday 09:30
    tz = ZoneInfo("Europe/Stockholm")
    policy = load_policy({"business_hours": {"start": "08:00", "end": "17:00", "holidays": ["2026-11-09"]}},
                         "Europe/Stockholm", "t.toml")
    created = datetime(2026, 11, 6, 16, 0, tzinfo=tz)
    changes = [Change(datetime(2026, 11, 6, 16, 30, tzinfo=tz), "status", "open", "new"),
               Change(datetime(2026, 11, 10, 9, 30, tzinfo=tz), "status", "resolved", "open")]
    tl = build(created, changes, datetime(2026, 11, 11, tzinfo=tz), status="resolved", tier=1, priority="P3",
               first_response_at=datetime(2026, 11, 10, 8, 15, tzinfo=tz))
    assert tl.resolution_time(policy) == 2.5 * H              # Fri 16-17, Tue 08-09:30
    assert tl.first_response_time(policy) == 1.25 * H         # Fri 16-17, Tue 08-08:15
    assert tl.resolution_time(POLICY) == timedelta(days=3, hours=17, minutes=30)  # 24/7 it would be


def test_a_monitoring_ticket_is_counted_apart():
    from mailticket.desk.report import summarize
    alert = build(T0, [status(0.25, "new", "resolved")], at(1), status="resolved", tier=1, priority="P2")
    user = build(T0, [status(1, "new", "resolved")], at(2), status="resolved", tier=1, priority="P3",
                 first_response_at=at(1))
    measured = [measure(TicketFacts(1, "incident", "monitoring", alert, monitoring=True), POLICY),
                measure(TicketFacts(2, "incident", "general", user), POLICY)]
    s = summarize(measured, since=T0, until=at(24))
    assert s["overall"]["tickets"] == 1 and s["overall"]["resolution"]["mean"] == 3600
    assert s["monitoring"] == {"tickets": 1, "resolved": 1, "resolution_mean": 900}
    assert s["by"]["category"].keys() == {"general"}


def test_state_at_creation_is_worked_out_from_the_first_change_of_each_field():
    changes = [Change(at(1), "tier", 3, 2), Change(at(2), "priority", "P2", "P4")]
    tl = build(T0, changes, at(3), status="open", tier=3, priority="P2")
    assert [(i.tier, i.priority) for i in tl.intervals] == [(2, "P4"), (3, "P4"), (3, "P2")]
    assert tl.tiers() == [2, 3]


def test_changes_after_as_of_are_left_out():
    tl = build(T0, [status(5, "new", "resolved")], at(3), status="resolved", tier=1, priority="P3")
    assert tl.status == "new" and tl.intervals[-1].end == at(3)


def test_changes_from_the_history():
    events = [
        (at(0), "logged", None, "incident logged"),
        (at(0.5), "status", {"old": "new", "new": "open"}, "new -> open"),
        (at(1), "priority", None, "P3 -> P2"),                       # older events: the text says it
        (at(1.5), "priority", {"old": "P2", "new": "P1"}, "impact high: P2 -> P1"),
        (at(2), "escalation", {"from_tier": 1, "to_tier": 3}, "tier 1 -> tier 3"),
        (at(2), "escalation", {"to_tier": 3}, "P1: straight to tier 3, tier 1 informed"),
        (at(3), "escalation", {"from_tier": 3, "to": "manager"}, "tier 3 -> escalation manager m@x: late"),
        (at(4), "escalation", None, "tier 3 -> escalation manager m@x: older event"),
    ]
    assert changes_from_events(events) == [
        Change(at(0.5), "status", "open", "new"), Change(at(1), "priority", "P2", "P3"),
        Change(at(1.5), "priority", "P1", "P2"), Change(at(2), "tier", 3, 1),
        Change(at(3), "manager", "manager", 3), Change(at(4), "manager", "manager", 3)]
    tl = build(T0, changes_from_events(events), at(5), status="open", tier=3, priority="P1")
    assert tl.escalations() == [(1, 3), (3, "manager"), (3, "manager")]


def test_a_change_the_history_does_not_record_is_taken_at_settled_at():
    # resolved by hand in the database (no status event): resolved at settled_at, counted to there
    tl = build(T0, [status(1, "new", "open")], at(10), status="resolved", tier=1, priority="P3",
               settled_at=at(4))
    assert [(i.status, i.end) for i in tl.intervals] == [("new", at(1)), ("open", at(4)), ("resolved", at(10))]
    assert tl.resolution_time(POLICY) == 4 * H
