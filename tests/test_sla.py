from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailticket.errors import ConfigError
from mailticket.desk.sla import (
    Clock, add_working_time, always, check, due_actions, escalated,
    load_policy, new_ticket_state, retarget, with_priority, working_time_between,
)

F = "mailticket.toml"
STHLM = ZoneInfo("Europe/Stockholm")
H = timedelta(hours=1)
HOURS = {"business_hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00",
                            "end": "17:00", "holidays": ["2026-12-24", "2026-12-25"]}}


def local(*args):
    return datetime(*args, tzinfo=STHLM)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def cal():
    return load_policy(HOURS, "Europe/Stockholm", F).business


# ---------------------------------------------------------------- calendar maths

def test_due_time_skips_the_weekend(cal):
    # Friday 2026-11-27 16:00 + 2 working hours -> Monday 09:00
    assert add_working_time(local(2026, 11, 27, 16), 2 * H, cal) == local(2026, 11, 30, 9)


def test_start_outside_hours_begins_at_opening(cal):
    assert add_working_time(local(2026, 11, 28, 12), H, cal) == local(2026, 11, 30, 9)
    assert add_working_time(local(2026, 11, 30, 6), H, cal) == local(2026, 11, 30, 9)


def test_due_time_skips_holidays(cal):
    # Wed 23 Dec 16:00 + 2h: Thu 24 and Fri 25 are holidays, then the weekend -> Mon 28 09:00
    assert add_working_time(local(2026, 12, 23, 16), 2 * H, cal) == local(2026, 12, 28, 9)


def test_working_time_between_over_weekend_and_holidays(cal):
    assert working_time_between(local(2026, 11, 27, 16), local(2026, 11, 30, 9), cal) == 2 * H
    assert working_time_between(local(2026, 12, 23, 8), local(2026, 12, 28, 17), cal) == 18 * H
    assert working_time_between(local(2026, 11, 30, 9), local(2026, 11, 27, 16), cal) == timedelta(0)


def test_dst_autumn_business_hours(cal):
    # Fri 23 Oct 2026 16:00 CEST (14:00 UTC) + 2h -> Mon 26 Oct 09:00 CET (08:00 UTC)
    due = add_working_time(local(2026, 10, 23, 16), 2 * H, cal)
    assert due == utc(2026, 10, 26, 8)
    assert due.astimezone(STHLM).hour == 9


def test_dst_autumn_24_7_day_is_25_hours():
    cal = always("Europe/Stockholm")
    assert working_time_between(local(2026, 10, 24, 12), local(2026, 10, 25, 12), cal) == 25 * H
    assert add_working_time(local(2026, 10, 24, 12), 24 * H, cal) == local(2026, 10, 25, 11)


def test_dst_spring_all_day_window_is_23_hours():
    policy = load_policy({"business_hours": {"days": ["sun"], "start": "00:00", "end": "24:00"}},
                         "Europe/Stockholm", F)
    cal = policy.business
    assert working_time_between(local(2026, 3, 28), local(2026, 3, 31), cal) == 23 * H


@settings(max_examples=200, deadline=None)
@given(start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                          timezones=st.just(UTC)),
       minutes=st.integers(min_value=0, max_value=60 * 24 * 10))
def test_add_and_between_agree(start, minutes):
    cal = load_policy(HOURS, "Europe/Stockholm", F).business
    due = add_working_time(start, timedelta(minutes=minutes), cal)
    assert working_time_between(start, due, cal) == timedelta(minutes=minutes)


ODD_CALENDAR = load_policy(
    {"business_hours": {"days": ["mon", "sat", "sun"], "start": "01:30", "end": "24:00",
                        "holidays": ["2026-03-29", "2026-10-24..2026-10-26"]}},
    "Europe/Stockholm", F).business


@settings(max_examples=300, deadline=None)
@given(a=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                      timezones=st.just(UTC)),
       span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=500)))
def test_long_spans_equal_the_day_by_day_sum(a, span):
    cal = ODD_CALENDAR  # shared, so the memoised prefix sums grow both ways between examples
    b, total, day = a + span, timedelta(0), a.astimezone(STHLM).date()
    while day <= b.astimezone(STHLM).date():
        win = cal.window(day)
        if win and min(win[1], b) > max(win[0], a):
            total += min(win[1], b) - max(win[0], a)
        day += timedelta(days=1)
    assert working_time_between(a, b, cal) == total


def test_naive_datetimes_are_refused(cal):
    with pytest.raises(ValueError, match="naive"):
        add_working_time(datetime(2026, 1, 1), H, cal)


# ---------------------------------------------------------------- clocks

def test_clock_states():
    cal = always()
    c = Clock(utc(2026, 1, 1, 10), 4 * H)
    assert check(c, utc(2026, 1, 1, 12), cal, 0.75) == "ok"
    assert check(c, utc(2026, 1, 1, 13), cal, 0.75) == "warning"
    assert check(c, utc(2026, 1, 1, 14), cal, 0.75) == "breach"
    assert check(c.stop(utc(2026, 1, 1, 11)), utc(2026, 1, 1, 20), cal, 0.75) == "stopped"
    assert c.due(cal) == utc(2026, 1, 1, 14)


def test_pause_and_resume_over_a_weekend(cal):
    c = Clock(local(2026, 11, 27, 9), 8 * H)           # Fri 09:00
    c = c.pause(local(2026, 11, 27, 12))                # pending at 12:00 (3h used)
    assert c.used(local(2026, 11, 30, 15), cal) == 3 * H
    assert c.due(cal) is None
    c = c.resume(local(2026, 11, 30, 10), cal)          # Mon 10:00: paused 5h + 2h working
    assert c.paused_total == 7 * H
    assert c.used(local(2026, 11, 30, 12), cal) == 5 * H
    assert c.due(cal) == local(2026, 11, 30, 15)
    assert check(c, local(2026, 11, 30, 15), cal, 0.75) == "breach"


def test_pause_is_idempotent_and_resume_without_pause_is_noop():
    cal = always()
    c = Clock(utc(2026, 1, 1), H).pause(utc(2026, 1, 1, 0, 10))
    assert c.pause(utc(2026, 1, 1, 0, 20)).paused_since == utc(2026, 1, 1, 0, 10)
    assert Clock(utc(2026, 1, 1), H).resume(utc(2026, 1, 2), cal) == Clock(utc(2026, 1, 1), H)


def test_reopen_counts_the_stopped_time_as_paused():
    cal = always()
    c = Clock(utc(2026, 1, 1, 0), 4 * H).stop(utc(2026, 1, 1, 1))
    c = c.reopen(utc(2026, 1, 1, 5), cal)
    assert c.stopped_at is None and c.used(utc(2026, 1, 1, 6), cal) == 2 * H


def test_retarget_on_priority_change():
    cal = always()
    c = Clock(utc(2026, 1, 1, 0), 24 * H)
    now = utc(2026, 1, 1, 5)
    assert check(c, now, cal, 0.75) == "ok"
    assert check(retarget(c, 4 * H), now, cal, 0.75) == "breach"
    assert retarget(c, 8 * H).due(cal) == utc(2026, 1, 1, 8)


def test_with_priority_uses_new_targets_and_calendar(cal):
    policy = load_policy(HOURS, "Europe/Stockholm", F)
    state = new_ticket_state("P3", 1, local(2026, 11, 27, 16), policy)
    p1 = with_priority(state, "P1", policy)
    assert (p1.response.target, p1.resolution.target) == (H, 4 * H)
    # P1 runs 24/7: Friday 16:00 + 1h breaches on Friday evening, P3 would wait for Monday
    assert p1.response.due(policy.calendar_for("P1")) == local(2026, 11, 27, 17)
    assert state.response.due(policy.calendar_for("P3")) == local(2026, 11, 30, 10)


# ---------------------------------------------------------------- the scan

def fast_policy(**sla):
    return load_policy({"P3": {"first_response": "3s", "resolution": "1h"}, **sla}, "UTC", F)


def run_scans(state, policy, start, seconds, record=None):
    """Scan once a second like the daemon: perform each action, record its key."""
    done = []
    for s in range(seconds + 1):
        now = start + timedelta(seconds=s)
        for action in due_actions(state, now, policy):
            done.append((s, action.kind, action.key))
            state = replace(state, already_sent=state.already_sent | {action.key})
            if action.kind == "escalate":
                state = escalated(state, now, policy)
            if record is not None:
                record.append(action)
    return state, done


def test_unanswered_ticket_climbs_the_ladder_once_each():
    policy = fast_policy()
    t0 = utc(2026, 11, 27, 8)
    state = new_ticket_state("P3", 1, t0, policy)
    state, done = run_scans(state, policy, t0, 30)
    assert [(k, key) for _, k, key in done] == [
        ("warn", "warn:first_response:tier1"),
        ("escalate", "breach:first_response:tier1"),
        ("warn", "warn:first_response:tier2"),
        ("escalate", "breach:first_response:tier2"),
        ("warn", "warn:first_response:tier3"),
        ("escalate_manager", "breach:first_response:tier3"),
    ]
    # one-second scans miss the 2.25 s warning point: the warning goes out with the breach
    assert [s for s, _, _ in done] == [3, 3, 6, 6, 9, 9]
    assert state.tier == 3


def test_one_warning_per_clock_when_warn_each_tier_is_off():
    policy = fast_policy(warn_each_tier=False)
    t0 = utc(2026, 11, 27, 8)
    _, done = run_scans(new_ticket_state("P3", 1, t0, policy), policy, t0, 30)
    assert [key for _, _, key in done] == [
        "warn:first_response", "breach:first_response:tier1", "breach:first_response:tier2",
        "breach:first_response:tier3"]


def test_ladder_timing_with_warning_before_breach():
    policy = load_policy({"P3": {"first_response": "4s"}}, "UTC", F)
    t0 = utc(2026, 11, 27, 8)
    _, done = run_scans(new_ticket_state("P3", 1, t0, policy), policy, t0, 20)
    assert [(s, k) for s, k, _ in done] == [
        (3, "warn"), (4, "escalate"), (7, "warn"), (8, "escalate"), (11, "warn"),
        (12, "escalate_manager")]


def test_restart_between_warning_and_breach_repeats_nothing():
    policy = load_policy({"P3": {"first_response": "4s"}}, "UTC", F)
    t0 = utc(2026, 11, 27, 8)
    state = new_ticket_state("P3", 1, t0, policy)
    first = due_actions(state, t0 + timedelta(seconds=3), policy)
    assert [a.key for a in first] == ["warn:first_response:tier1"]
    # the daemon stops here; the key was recorded; a new daemon scans again
    state = replace(state, already_sent=frozenset({"warn:first_response:tier1"}))
    assert due_actions(state, t0 + timedelta(seconds=3.5), policy) == []
    after = due_actions(state, t0 + timedelta(seconds=4), policy)
    assert [(a.kind, a.key, a.to_tier) for a in after] == [
        ("escalate", "breach:first_response:tier1", 2)]
    # and after the escalation key is recorded (crash before the tier was saved): nothing twice
    state = replace(state, already_sent=state.already_sent | {after[0].key})
    assert due_actions(state, t0 + timedelta(seconds=5), policy) == []


def test_answered_ticket_stops_the_response_clock():
    policy = fast_policy()
    t0 = utc(2026, 11, 27, 8)
    state = new_ticket_state("P3", 1, t0, policy)
    state = replace(state, status="open", response=state.response.stop(t0 + timedelta(seconds=1)))
    assert due_actions(state, t0 + timedelta(minutes=10), policy) == []
    kinds = [a.key for a in due_actions(state, t0 + timedelta(minutes=50), policy)]
    assert kinds == ["warn:resolution:tier1"]


def test_both_clocks_breached_escalate_once_and_both_restart():
    policy = load_policy({"P3": {"first_response": "3s", "resolution": "3s"}}, "UTC", F)
    t0 = utc(2026, 11, 27, 8)
    state = new_ticket_state("P3", 1, t0, policy)
    now = t0 + timedelta(seconds=5)
    actions = due_actions(state, now, policy)
    assert [(a.kind, a.clock) for a in actions] == [
        ("warn", "first_response"), ("warn", "resolution"), ("escalate", "first_response")]
    assert "resolution" in actions[-1].reason
    state = escalated(state, now, policy)
    assert state.tier == 2 and state.response.started_at == now and state.resolution.started_at == now


def test_pending_pauses_the_resolution_clock():
    policy = fast_policy()
    t0 = utc(2026, 11, 27, 8)
    state = new_ticket_state("P3", 1, t0, policy)
    state = replace(state, status="pending", response=state.response.stop(t0),
                    resolution=state.resolution.pause(t0 + timedelta(minutes=10)))
    assert due_actions(state, t0 + timedelta(hours=5), policy) == []
    resumed = replace(state, status="open",
                      resolution=state.resolution.resume(t0 + timedelta(hours=5), always()))
    assert due_actions(resumed, t0 + timedelta(hours=5, minutes=30), policy) == []
    acts = due_actions(resumed, t0 + timedelta(hours=5, minutes=40), policy)
    assert [a.key for a in acts] == ["warn:resolution:tier1"]


def test_p1_at_tier_3_breach_goes_to_the_manager_per_clock():
    policy = load_policy({}, "UTC", F)
    t0 = utc(2026, 11, 27, 8)
    state = new_ticket_state("P1", 3, t0, policy)
    acts = due_actions(state, t0 + 5 * H, policy)
    assert [(a.kind, a.key) for a in acts if a.kind != "warn"] == [
        ("escalate_manager", "breach:first_response:tier3"),
        ("escalate_manager", "breach:resolution:tier3")]


def test_auto_close_after_resolved():
    policy = load_policy({"auto_close_after": "3d"}, "UTC", F)
    t0 = utc(2026, 11, 1, 8)
    state = replace(new_ticket_state("P3", 1, t0, policy), status="resolved",
                    resolved_at=t0 + H)
    assert due_actions(state, t0 + H + timedelta(days=2, hours=23), policy) == []
    acts = due_actions(state, t0 + H + timedelta(days=3), policy)
    assert [(a.kind, a.key) for a in acts] == [("auto_close", "auto_close:20261101T090000Z")]
    assert due_actions(replace(state, already_sent=frozenset({acts[0].key})),
                       t0 + timedelta(days=4), policy) == []
    assert due_actions(replace(state, status="closed"), t0 + timedelta(days=9), policy) == []


def test_breach_report_deadline_warnings():
    policy = load_policy({}, "UTC", F)
    t0 = utc(2026, 11, 1, 8)
    state = new_ticket_state("P1", 3, t0, policy, breach_report=True)
    state = replace(state, status="resolved", resolved_at=t0 + H,
                    already_sent=frozenset({"auto_close:20261101T090000Z"}))
    assert state.breach_report_deadline == t0 + 72 * H
    assert due_actions(state, t0 + 47 * H, policy) == []
    acts = due_actions(state, t0 + 48 * H, policy)
    assert [(a.kind, a.key) for a in acts] == [("breach_deadline_warning", "breach_deadline:1d")]
    state = replace(state, already_sent=state.already_sent | {acts[0].key})
    assert due_actions(state, t0 + 60 * H, policy) == []
    acts = due_actions(state, t0 + 69 * H, policy)
    assert [a.key for a in acts] == ["breach_deadline:4h"]
    assert "3h left" in acts[0].reason


def test_late_scan_sends_only_the_most_urgent_deadline_warning():
    policy = load_policy({}, "UTC", F)
    t0 = utc(2026, 11, 1, 8)
    state = replace(new_ticket_state("P4", 1, t0, policy, breach_report=True), status="open",
                    response=Clock(t0, H).stop(t0))
    acts = [a for a in due_actions(state, t0 + 80 * H, policy) if a.kind.startswith("breach_")]
    assert [a.key for a in acts] == ["breach_deadline:4h"] and "overdue by 8h" in acts[0].reason


# ---------------------------------------------------------------- config

def test_policy_defaults():
    p = load_policy({}, "Europe/Stockholm", F)
    assert {k: (t.first_response, t.resolution) for k, t in p.targets.items()} == {
        "P1": (H, 4 * H), "P2": (2 * H, 8 * H), "P3": (3 * H, 24 * H), "P4": (3 * H, 72 * H)}
    assert (p.warn_at, p.auto_close_after, p.check_interval) == (
        0.75, timedelta(days=3), timedelta(seconds=60))
    assert not p.business.business and not p.calendar_for("P3").business


def test_business_hours_apply_to_p2_p4_and_p1_can_opt_in():
    p = load_policy({**HOURS, "P3": {"business_hours": False}}, "Europe/Stockholm", F)
    assert [p.calendar_for(x).business for x in ("P1", "P2", "P3", "P4")] == [
        False, True, False, True]
    p = load_policy({**HOURS, "P1": {"business_hours": True}}, "Europe/Stockholm", F)
    assert p.calendar_for("P1").business


def test_holiday_ranges():
    p = load_policy({"business_hours": {"holidays": ["2026-12-24..2026-12-26", "2027-01-01"]}},
                    "UTC", F)
    assert len(p.business.holidays) == 4


@pytest.mark.parametrize("data,key,words", [
    ({"P1": {"first_response": "0s"}}, "sla.P1.first_response", "more than zero"),
    ({"P2": {"resolution": 0}}, "sla.P2.resolution", "more than zero"),
    ({"P2": {"resolution": -5}}, "sla.P2.resolution", "negative"),
    ({"P3": {"resolution": "soon"}}, "sla.P3.resolution", "not a duration"),
    ({"P3": {"goal": "1h"}}, "sla.P3.goal", "unknown key"),
    ({"P3": {"business_hours": "yes"}}, "sla.P3.business_hours", "true or false"),
    ({"P3": {"business_hours": True}}, "sla.P3.business_hours", "not set"),
    ({"P3": "1h"}, "sla.P3", "must be a table"),
    ({"P5": {}}, "sla.P5", "unknown key"),
    ({"warn_at": 1}, "sla.warn_at", "between 0 and 1"),
    ({"warn_at": 0}, "sla.warn_at", "between 0 and 1"),
    ({"warn_at": 1.5}, "sla.warn_at", "between 0 and 1"),
    ({"warn_at": "75%"}, "sla.warn_at", "between 0 and 1"),
    ({"warn_at": True}, "sla.warn_at", "between 0 and 1"),
    ({"check_interval": "0s"}, "sla.check_interval", "more than zero"),
    ({"auto_close_after": "never"}, "sla.auto_close_after", "not a duration"),
    ({"business_hours": {"start": "8"}}, "sla.business_hours.start", "not a time"),
    ({"business_hours": {"end": "25:00"}}, "sla.business_hours.end", "not a time"),
    ({"business_hours": {"end": "17:60"}}, "sla.business_hours.end", "not a time"),
    ({"business_hours": {"start": "24:00", "end": "24:00"}}, "sla.business_hours.start",
     "only be an end"),
    ({"business_hours": {"start": "24:00", "end": "17:00"}}, "sla.business_hours.end",
     "must be after"),
    ({"business_hours": {"start": "17:00", "end": "08:00"}}, "sla.business_hours.end",
     "must be after"),
    ({"business_hours": {"start": "08:00", "end": "08:00"}}, "sla.business_hours.end",
     "must be after"),
    ({"business_hours": {"days": []}}, "sla.business_hours.days", "non-empty"),
    ({"business_hours": {"days": ["mon", "funday"]}}, "sla.business_hours.days[1]", "not a day"),
    ({"business_hours": {"days": ["mon", "Monday"]}}, "sla.business_hours.days[1]", "twice"),
    ({"business_hours": {"holidays": ["2026-12-24", "2026-12-24"]}},
     "sla.business_hours.holidays[1]", "overlaps '2026-12-24' on 2026-12-24"),
    ({"business_hours": {"holidays": ["2026-12-24..2026-12-26", "2026-12-26..2026-12-31"]}},
     "sla.business_hours.holidays[1]", "overlaps '2026-12-24..2026-12-26' on 2026-12-26"),
    ({"business_hours": {"holidays": ["2026-13-01"]}}, "sla.business_hours.holidays[0]",
     "not a date"),
    ({"business_hours": {"holidays": ["2026-12-26..2026-12-24"]}},
     "sla.business_hours.holidays[0]", "ends before"),
    ({"business_hours": {"holidays": ["2026-01-01..2028-01-01"]}},
     "sla.business_hours.holidays[0]", "longer than a year"),
    ({"business_hours": {"holidays": "2026-12-24"}}, "sla.business_hours.holidays", "list"),
    ({"business_hours": {"open": "08:00"}}, "sla.business_hours.open", "unknown key"),
    ({"business_hours": "weekdays"}, "sla.business_hours", "must be a table"),
    ({"breach_report": {"deadline": "0h"}}, "sla.breach_report.deadline", "more than zero"),
    ({"breach_report": {"warn_before": ["4h", "4h"]}}, "sla.breach_report.warn_before",
     "duplicate"),
    ({"breach_report": {"warn_before": "4h"}}, "sla.breach_report.warn_before", "list"),
    ({"breach_report": {"notify": "x"}}, "sla.breach_report.notify", "unknown key"),
    ({"timeout": "1h"}, "sla.timeout", "unknown key"),
    ({"warn_each_tier": "no"}, "sla.warn_each_tier", "true or false"),
])
def test_config_errors_name_file_and_key(data, key, words):
    with pytest.raises(ConfigError) as exc:
        load_policy(data, "Europe/Stockholm", F)
    assert exc.value.file == F and exc.value.key == key
    assert words in exc.value.problem


def test_unknown_time_zone():
    with pytest.raises(ConfigError) as exc:
        load_policy({}, "Mars/Olympus", F)
    assert exc.value.key == "service.timezone"


def test_calendar_without_working_time_is_refused():
    from datetime import date
    from mailticket.desk.sla import Calendar
    every_day = frozenset(date(2026, 1, 1) + timedelta(days=i) for i in range(3800))
    cal = Calendar(STHLM, True, frozenset({0}), holidays=every_day)
    with pytest.raises(ValueError, match="no working time"):
        add_working_time(local(2026, 1, 1), H, cal)


def test_spans_far_from_the_memoised_range_are_still_exact():
    cal = load_policy(HOURS, "Europe/Stockholm", F).business
    assert working_time_between(local(2026, 11, 23, 8), local(2026, 11, 30, 8), cal) == 45 * H
    # 1990 is over ten years from the days already summed: counted day by day instead
    assert cal.working_before(local(1990, 1, 1).date()) is None
    assert working_time_between(local(1990, 1, 1, 8), local(1990, 1, 8, 8), cal) == 45 * H
