"""Time one SLA check (``escalation.run_sla_check``) over 100,000 open tickets in the database.

Run: .venv/bin/python bench/sla_scan.py [-n 100000] [--repeat 5] [--pg postgresql://USER@HOST/SCRATCHDB]

The tickets are what a running desk holds after its own scans: a quarter each of P1..P4, ages from
minutes to two weeks, half answered, some pending or resolved, one in fifty a data breach; every
warning, escalation, manager mail and auto-close that fell due before NOW was done by an earlier
scan (its mark is stored, its escalation applied) and ``next_check_at`` is what that scan left.
The timed check runs one check interval later, so only the few tickets whose next moment falls in
that minute are due; a third pass comes an hour later (a daemon that was down), for the cost
per due ticket. Each pass runs in a transaction that is rolled back, so every repeat sees the
same data; the median is printed, as time per check and as a ratio to a plain indexed
``SELECT id FROM ticket WHERE next_check_at <= ?`` in the same run. Also timed: an idle pass (at
NOW, nothing due). SQLite by default (a temporary file); ``--pg`` takes an EMPTY scratch database
and drops the tables it made.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import peewee as pw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from mailticket import db

from mailticket import models

from mailticket.desk import sla

from mailticket.desk import slaclock# noqa: E402
from mailticket.clock import FakeClock  # noqa: E402
from mailticket.config import load_config  # noqa: E402
from mailticket.service.wiring import build_desk  # noqa: E402
from mailticket.desk.escalation import run_sla_check  # noqa: E402
from mailticket.models import SlaMark, Ticket  # noqa: E402

NOW = datetime(2026, 11, 27, 10, tzinfo=UTC)
CHUNK = 500


# ---------------------------------------------------------------- the data set

def random_state(i: int, rng: random.Random, policy) -> sla.TicketState:
    priority = ("P1", "P2", "P3", "P4")[i % 4]
    created = NOW - timedelta(minutes=rng.randint(1, 60 * 24 * 14))
    state = sla.new_ticket_state(priority, 3 if priority == "P1" else 1, created, policy,
                                 breach_report=(i % 50 == 0))
    roll = rng.random()
    if roll < 0.5:
        state = replace(state, status="open", response=state.response.stop(created + timedelta(minutes=30)))
    elif roll < 0.6:
        state = replace(state, status="open", response=state.response.stop(created + timedelta(minutes=20)))
        state = replace(state, status="pending", resolution=state.resolution.pause(created + timedelta(hours=1)))
    elif roll < 0.8:
        resolved = created + (NOW - created) / 2
        state = replace(state, status="resolved", resolved_at=resolved, response=state.response.stop(created),
                        resolution=state.resolution.stop(resolved))
    return state


def settle(state: sla.TicketState, policy) -> sla.TicketState:
    """The state after the scans before NOW did everything that fell due (keys, escalations, closing)."""
    for _ in range(10):
        actions = sla.due_actions(state, NOW, policy)
        if not actions:
            break
        for action in actions:
            state = replace(state, already_sent=state.already_sent | {action.key})
            if action.kind == "escalate":
                state = sla.escalated(state, NOW, policy)
            elif action.kind == "auto_close":
                state = replace(state, status="closed")
    return state


def ticket_row(number: int, state: sla.TicketState, policy) -> dict:
    t = Ticket(id=number, type="incident", status=state.status, tier=state.tier, priority=state.priority,
               category="security" if state.breach_report_deadline else "general",
               subject=f"Bench ticket {number}", description="Something is broken.", requester_name="Bench",
               requester_address=f"user{number % 5000}@customer.example", created_at=state.created_at,
               updated_at=state.created_at, resolved_at=state.resolved_at,
               closed_at=NOW if state.status == "closed" else None,
               breach_report_deadline=state.breach_report_deadline, security=bool(state.breach_report_deadline),
               tier_since=state.created_at, thread_root=f"bench{number}@customer.example")
    slaclock.save_state(t, state, policy, NOW)  # what the scan at NOW stored: clocks, due times, next_check_at
    return dict(t.__data__)


def fill(n: int, policy, seed: int = 1) -> dict:
    rng = random.Random(seed)
    database = Ticket._meta.database
    tickets, marks = [], []
    for i in range(1, n + 1):
        state = settle(random_state(i, rng, policy), policy)
        tickets.append(ticket_row(i, state, policy))
        marks += [{"ticket": i, "key": key, "at": NOW} for key in sorted(state.already_sent)]
    with database.atomic():
        bulk_insert(Ticket, tickets)
        bulk_insert(SlaMark, marks)
    statuses = {}
    for row in tickets:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    return {"tickets": len(tickets), "marks": len(marks), "statuses": statuses}


def bulk_insert(model, rows: list[dict]) -> None:
    """One prepared INSERT for all rows (executemany / execute_values): peewee's insert_many
    spends most of its time building SQL text."""
    fields = [f for f in model._meta.sorted_fields  # an id the database numbers itself is left out
              if not (isinstance(f, pw.AutoField) and rows[0].get(f.name) is None)]
    values = [tuple(f.db_value(row.get(f.name)) for f in fields) for row in rows]
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    cursor = model._meta.database.cursor()
    if db.is_postgres():
        from psycopg2.extras import execute_values
        execute_values(cursor, f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES %s', values,
                       page_size=CHUNK)
        if "id" in (f.name for f in fields):  # the sequence must not hand out the ids we used
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{model._meta.table_name}', 'id'), "
                           f'(SELECT max(id) FROM "{model._meta.table_name}"))')
    else:
        marks = ", ".join("?" for _ in fields)
        cursor.executemany(f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({marks})', values)


# ---------------------------------------------------------------- timing

def timed_rolled_back(fn, repeat: int) -> tuple[float, object]:
    """Median wall seconds of ``fn()`` run ``repeat`` times, each in a transaction rolled back."""
    database = Ticket._meta.database
    times, result = [], None
    for _ in range(repeat):
        with database.atomic() as txn:
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
            txn.rollback()
    return statistics.median(times), result


def plain_due_select(at: datetime) -> list[int]:
    cursor = Ticket._meta.database.execute_sql(
        'SELECT id FROM ticket WHERE next_check_at <= %s' if db.is_postgres() else
        'SELECT id FROM ticket WHERE next_check_at <= ?', (Ticket.next_check_at.db_value(at),))
    return [row[0] for row in cursor.fetchall()]


def run(desk, label: str, repeat: int) -> None:
    step = desk.config.sla.check_interval
    for name, at in (("idle pass (nothing due)", NOW), ("next pass (one interval later)", NOW + step),
                     ("pass after 1 h down", NOW + timedelta(hours=1))):
        check_s, result = timed_rolled_back(lambda: run_sla_check(desk, at), repeat)
        select_s, due = timed_rolled_back(lambda: plain_due_select(at), repeat)
        print(f"{label:<10} {name:<31} check {check_s * 1000:9.2f} ms "
              f"({result.looked_at:4} looked at, {result.actions:4} actions)   "
              f"plain SELECT {select_s * 1000:6.2f} ms ({len(due):4} due)   ratio {check_s / select_s:8.1f}")


def write_config(directory: Path, url: str) -> Path:
    path = directory / "bench.toml"
    path.write_text(f'[service]\naddress = "support@example.com"\ndata_dir = "{directory}/data"\n'
                    f'[database]\nurl = "{url}"\n'
                    f'[listener]\nenabled = true\nport = 2525\n'
                    f'[outbox]\nmaildir = "{directory}/outgoing"\n', encoding="utf-8")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="open tickets (default 100000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes; the median is shown")
    parser.add_argument("--pg", metavar="URL", help="also run on this EMPTY PostgreSQL scratch database")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{tmp}/bench.db")] + ([("postgresql", args.pg)] if args.pg else [])
        for label, url in targets:
            config = load_config(write_config(Path(tmp), url))
            database = db.connect(url)
            if Ticket.select().exists():
                print(f"{db.redact(url)} already holds tickets: give an empty scratch database", file=sys.stderr)
                return 2
            try:
                started = time.perf_counter()
                made = fill(args.n, config.sla)
                print(f"{label:<10} {made['tickets']} tickets {made['statuses']}, {made['marks']} marks, "
                      f"filled in {time.perf_counter() - started:.1f} s")
                run(build_desk(config, clock=FakeClock(NOW)), label, args.repeat)
            finally:
                if label == "postgresql":
                    database.drop_tables(models.ALL_MODELS + [models.SchemaMigration], safe=True)
                database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
