"""Time ``sla.due_actions`` over 100,000 in-memory ticket states (a stand-in for the DB scan).

Run: .venv/bin/python bench/sla_check.py [N]
The mix: a quarter each of P1..P4, ages from minutes to two weeks, half answered, some
pending or resolved, one in fifty a data breach; 24/7 and business-hours policies are timed
separately. "first scan" finds everything due at once; "steady scan" is the next scan after
the lead performed those actions (keys recorded, escalations applied, tickets closed), which
is what a daemon running every minute sees. CPU time is reported: wall time on a busy
machine says little.
"""

import random
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from mailticket.desk.sla import due_actions, escalated, load_policy, new_ticket_state  # noqa: E402

NOW = datetime(2026, 11, 27, 10, tzinfo=UTC)


def make_states(n: int, policy, seed: int = 1) -> list:
    rng = random.Random(seed)
    states = []
    for i in range(n):
        priority = ("P1", "P2", "P3", "P4")[i % 4]
        created = NOW - timedelta(minutes=rng.randint(1, 60 * 24 * 14))
        state = new_ticket_state(priority, 3 if priority == "P1" else rng.randint(1, 2),
                                 created, policy, breach_report=(i % 50 == 0))
        roll = rng.random()
        if roll < 0.5:
            state = replace(state, status="open",
                            response=state.response.stop(created + timedelta(minutes=30)))
        elif roll < 0.6:
            state = replace(state, status="pending",
                            resolution=state.resolution.pause(created + timedelta(hours=1)))
        elif roll < 0.8:
            resolved = created + (NOW - created) / 2
            state = replace(state, status="resolved", resolved_at=resolved,
                            response=state.response.stop(created),
                            resolution=state.resolution.stop(resolved))
        if rng.random() < 0.3:
            state = replace(state, already_sent=frozenset({"warn:first_response:tier1",
                                                           "breach:first_response:tier1"}))
        states.append(state)
    return states


def after_scan(state, policy):
    """What the lead does with a scan's actions: record each key, escalate, close."""
    for action in due_actions(state, NOW, policy):
        state = replace(state, already_sent=state.already_sent | {action.key})
        if action.kind == "escalate":
            state = escalated(state, NOW, policy)
        elif action.kind == "auto_close":
            state = replace(state, status="closed")
    return state


def record_keys(states: list, policy) -> list:
    """The states after a first scan whose actions were all done (the steady state)."""
    return [after_scan(s, policy) for s in states]


def timed_scan(states: list, policy) -> tuple[float, float, int]:
    """Wall and CPU seconds of one scan over all states, and how many actions were due."""
    wall, cpu = time.perf_counter(), time.process_time()
    actions = sum(len(due_actions(s, NOW, policy)) for s in states)
    return time.perf_counter() - wall, time.process_time() - cpu, actions


def run(name: str, policy, n: int) -> None:
    states = make_states(n, policy)
    for label, batch in (("first scan", states), ("steady scan", record_keys(states, policy))):
        wall, cpu, actions = timed_scan(batch, policy)
        print(f"{name:<15} {label:<12} {n} tickets: {cpu / n * 1e6:5.1f} us CPU per check "
              f"({cpu:.2f} s CPU, {wall:.2f} s wall), {actions} actions due")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    run("24/7", load_policy({}, "Europe/Stockholm", "bench"), n)
    hours = {"business_hours": {"holidays": ["2026-12-24..2026-12-26"]}}
    run("business hours", load_policy(hours, "Europe/Stockholm", "bench"), n)


if __name__ == "__main__":
    main()
