"""Time and memory of ``mailticket report`` over 1,000,000 tickets, against a plain SQL aggregate.

Run: .venv/bin/python bench/report.py [-n 1000000] [--repeat 3] [--pg postgresql://USER@HOST/SCRATCHDB]
     [--record] [--keep FILE]

The tickets are what a desk holds after three months: created evenly over 90 days before NOW, a
quarter each P1..P4 (a few re-prioritised), one in ten escalated once and one in fifty twice, one
in twenty pending now and one in twenty new, one in thirty reopened, most resolved and then
closed, one in five rated, one in a hundred a monitoring alert. Their history is the status,
escalation and priority events the desk writes (about four a ticket), inserted in bulk
(executemany in one transaction on SQLite, COPY on PostgreSQL).

Each measurement runs in a fresh child process: the report (``reporting.build_summary`` over the
whole 90 days, every group: what ``mailticket report --since ... --format json`` computes), and the
floor, a plain SQL aggregate that reads the same rows once: first-response and resolution means
per priority from the ticket table, and the count of the period's status/escalation/priority
events. Time is wall clock and the child's CPU time (the medians of --repeat runs; on a shared machine the
CPU time is the steadier figure), memory the child's peak RSS less that of
a child that only imports and connects. The ratios report/floor are printed, and with --record
appended to bench/RESULTS.md. SQLite by default (a temporary file, or --keep FILE to reuse it);
``--pg`` takes an EMPTY scratch database and drops the tables it made.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
DAYS = 90
SINCE = NOW - timedelta(days=DAYS)
AGENTS = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", None]
CATEGORIES = ["general", "network", "printing", "hardware", "access", "email", "security"]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------- the data

def generate(n: int, seed: int = 23):
    """Yield (ticket values by column, [event rows], rating or None) for tickets 1..n."""
    rnd = random.Random(seed)
    span = DAYS * 86400
    for number in range(1, n + 1):
        created = SINCE + timedelta(seconds=span * (number - 0.5) / n)
        priority = f"P{rnd.randint(1, 4)}"
        tier = 3 if priority == "P1" else 1
        events, status, at = [], "new", created

        def step(kind, data, text, when):
            events.append((number, _stamp(when), "system", kind, text, json.dumps(data)))

        def move(new, when):
            nonlocal status
            step("status", {"old": status, "new": new}, f"{status} -> {new}", when)
            status = new
        if tier == 3:
            step("escalation", {"to_tier": 3}, "P1: straight to tier 3", created)
        roll = rnd.random()
        first = None
        if roll >= 0.05:  # answered
            first = created + timedelta(minutes=rnd.randint(5, 240))
            move("open", first)
            at = first
            if rnd.random() < 0.05:
                new = f"P{rnd.randint(1, 4)}"
                step("priority", {"old": priority, "new": new}, f"{priority} -> {new}", at + timedelta(minutes=10))
                priority, at = new, at + timedelta(minutes=10)
            if tier == 1 and rnd.random() < 0.12:
                at += timedelta(minutes=rnd.randint(30, 600))
                step("escalation", {"from_tier": 1, "to_tier": 2}, "tier 1 -> tier 2", at)
                tier = 2
                if rnd.random() < 0.17:
                    at += timedelta(minutes=rnd.randint(30, 600))
                    step("escalation", {"from_tier": 2, "to_tier": 3}, "tier 2 -> tier 3", at)
                    tier = 3
            if roll < 0.10:  # pending now
                move("pending", at + timedelta(minutes=rnd.randint(5, 120)))
            else:
                at += timedelta(minutes=rnd.randint(20, 3000))
                move("resolved", at)
                if roll < 0.133:  # reopened, then resolved again
                    at += timedelta(hours=rnd.randint(2, 48))
                    move("open", at)
                    at += timedelta(minutes=rnd.randint(20, 600))
                    move("resolved", at)
                if at + timedelta(days=3) < NOW and rnd.random() < 0.8:
                    move("closed", at + timedelta(days=3))
        resolved = at if status in ("resolved", "closed") else None
        values = {"id": number, "status": status, "tier": tier, "priority": priority,
                  "category": CATEGORIES[number % len(CATEGORIES)], "type": "request" if number % 5 == 0 else "incident",
                  "requester_address": f"user{number % 5000}@customer.example", "assignee": AGENTS[number % 5],
                  "alert_key": f"host{number % 50}/check" if number % 100 == 0 else None,
                  "created_at": _stamp(created), "updated_at": _stamp(max(at, created)),
                  "first_response_at": _stamp(first) if first else None,
                  "resolved_at": _stamp(resolved) if resolved else None,
                  "closed_at": _stamp(resolved + timedelta(days=3)) if status == "closed" else None}
        rating = rnd.randint(1, 5) if resolved and rnd.random() < 0.2 else None
        yield values, events, (number, rating, _stamp(resolved)) if rating else None


def _ticket_columns():
    from mailticket.models import Ticket
    fields = [f for f in Ticket._meta.sorted_fields]
    return [f.column_name for f in fields], [f.default if not callable(f.default) else None for f in fields]


def fill(url: str, n: int) -> int:
    """Store n tickets with their events and ratings; returns the number of events."""
    from mailticket import db
    database = db.connect(url)
    columns, defaults = _ticket_columns()
    base = dict(zip(columns, defaults))
    event_columns = ("ticket_id", "at", "actor", "kind", "text", "data")
    counted, chunk = 0, []
    pg = db.is_postgres(database)
    started = time.perf_counter()

    def flush(rows):
        tickets = [tuple({**base, **values}[c] for c in columns) for values, _, _ in rows]
        events = [e for _, evs, _ in rows for e in evs]
        ratings = [(r[0], r[1], "", "user@customer.example", r[2]) for _, _, r in rows if r]
        _insert(database, pg, "ticket", columns, tickets)
        _insert(database, pg, "event", event_columns, events)
        _insert(database, pg, "satisfaction", ("ticket_id", "rating", "comment", "actor", "at"), ratings)
        return len(events)

    with database.atomic():
        for row in generate(n):
            chunk.append(row)
            if len(chunk) == 20_000:
                counted += flush(chunk)
                chunk = []
                print(f"\r  stored {row[0]['id']:,} tickets ({time.perf_counter() - started:.0f} s)", end="",
                      file=sys.stderr, flush=True)
        counted += flush(chunk)
    if pg:
        database.execute_sql("SELECT setval(pg_get_serial_sequence('ticket', 'id'), %s)", (n,))
        database.execute_sql("ANALYZE")
    else:
        database.execute_sql("ANALYZE")
    print(file=sys.stderr)
    return counted


def _insert(database, pg: bool, table: str, columns, rows) -> None:
    if not rows:
        return
    names = ", ".join(f'"{c}"' for c in columns)
    if pg:
        out = io.StringIO()
        for row in rows:
            out.write("\t".join(_copy_value(v) for v in row) + "\n")
        out.seek(0)
        cursor = database.connection().cursor()
        cursor.copy_expert(f'COPY "{table}" ({names}) FROM STDIN', out)
        return
    marks = ", ".join("?" * len(columns))
    database.connection().executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


# ---------------------------------------------------------------- the measurements (child processes)

FLOOR_SQLITE = [
    ('SELECT "priority", COUNT(*),'
     ' AVG((julianday("first_response_at") - julianday("created_at")) * 86400),'
     ' AVG((julianday("resolved_at") - julianday("created_at")) * 86400)'
     ' FROM "ticket" WHERE "created_at" >= ? AND "created_at" < ? GROUP BY "priority"'),
    ('SELECT COUNT(*) FROM "event" AS e JOIN "ticket" AS t ON t."id" = e."ticket_id"'
     ' WHERE t."created_at" >= ? AND t."created_at" < ? AND e."kind" IN (\'status\', \'escalation\', \'priority\')'),
]
FLOOR_PG = [
    ('SELECT "priority", COUNT(*), AVG(EXTRACT(EPOCH FROM "first_response_at" - "created_at")),'
     ' AVG(EXTRACT(EPOCH FROM "resolved_at" - "created_at"))'
     ' FROM "ticket" WHERE "created_at" >= %s AND "created_at" < %s GROUP BY "priority"'),
    ('SELECT COUNT(*) FROM "event" AS e JOIN "ticket" AS t ON t."id" = e."ticket_id"'
     ' WHERE t."created_at" >= %s AND t."created_at" < %s AND e."kind" IN (\'status\', \'escalation\', \'priority\')'),
]


def measure(what: str, url: str) -> dict:
    from mailticket import db
    from mailticket.config import build_config
    from mailticket.desk import reporting
    config = build_config({"database": {"url": url}, "service": {"timezone": "UTC"}}, "<bench>", Path.cwd())
    database = db.connect(url, migrate=False)
    started, cpu = time.perf_counter(), _cpu()
    out = {}
    if what == "report":
        summary = reporting.build_summary(config, reporting.Period(SINCE, NOW, NOW))
        out = {"tickets": summary["overall"]["tickets"], "monitoring": summary["monitoring"]["tickets"],
               "mean_resolution_h": round(summary["overall"]["resolution"]["mean"] / 3600, 3)}
    elif what == "floor":
        bounds = (SINCE.replace(tzinfo=None), NOW.replace(tzinfo=None))
        for sql in (FLOOR_PG if db.is_postgres(database) else FLOOR_SQLITE):
            rows = database.execute_sql(sql, bounds).fetchall()
            out.setdefault("rows", []).append(len(rows))
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    return {"what": what, "seconds": seconds, "cpu": cpu, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            **out}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(what: str, url: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--measure", what, "--url", url], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def run(url: str, repeat: int) -> dict:
    idle = child("idle", url)
    results = {}
    for what in ("floor", "report"):
        runs = [child(what, url) for _ in range(repeat)]
        results[what] = {"seconds": statistics.median(r["seconds"] for r in runs),
                         "cpu": statistics.median(r["cpu"] for r in runs),
                         "memory_mb": max(r["maxrss_mb"] for r in runs) - idle["maxrss_mb"], "last": runs[-1]}
    results["idle_mb"] = idle["maxrss_mb"]
    return results


def _drop_tables(url: str) -> None:
    from mailticket import db, models
    database = db.connect(url, migrate=False)
    database.drop_tables(models.ALL_MODELS, safe=True, cascade=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=1_000_000, help="tickets (default 1,000,000)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement (median time)")
    p.add_argument("--pg", metavar="URL", help="an empty scratch PostgreSQL database (its tables are dropped after)")
    p.add_argument("--keep", metavar="FILE", help="SQLite: build the database in FILE and keep it (reused if filled)")
    p.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    p.add_argument("--measure", choices=("idle", "floor", "report"), help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.url)))
        return 0
    tmp = None
    if args.pg:
        url = args.pg
    elif args.keep:
        url = f"sqlite:///{Path(args.keep).resolve()}"
    else:
        tmp = tempfile.TemporaryDirectory(prefix="mt-report-bench-")
        url = f"sqlite:///{tmp.name}/report.db"
    try:
        from mailticket import db
        from mailticket.models import Ticket
        db.connect(url)
        existing = Ticket.select().count()
        if existing and existing != args.n:
            print(f"{url}: holds {existing} tickets, not {args.n}; give an empty database", file=sys.stderr)
            return 2
        started = time.perf_counter()
        events = fill(url, args.n) if not existing else None
        fill_s = time.perf_counter() - started
        if events is not None:
            print(f"stored {args.n:,} tickets and {events:,} events in {fill_s:.0f} s")
        results = run(url, args.repeat)
    finally:
        if args.pg:
            _drop_tables(url)
        if tmp is not None:
            tmp.cleanup()
    floor, rep = results["floor"], results["report"]
    kind = "PostgreSQL" if args.pg else "SQLite"
    line = (f"{kind}, {args.n:,} tickets: report {rep['seconds']:.1f} s ({rep['cpu']:.1f} s CPU), "
            f"{rep['memory_mb']:.0f} MB; floor {floor['seconds']:.2f} s ({floor['cpu']:.2f} s CPU), "
            f"{floor['memory_mb']:.0f} MB; ratio time {rep['seconds'] / floor['seconds']:.1f}x "
            f"(CPU {rep['cpu'] / max(floor['cpu'], 0.01):.1f}x), "
            f"memory {rep['memory_mb'] / max(floor['memory_mb'], 1):.1f}x "
            f"(report saw {rep['last']['tickets']:,} user tickets, {rep['last']['monitoring']:,} alerts, "
            f"mean resolution {rep['last']['mean_resolution_h']} h)")
    print(line)
    if args.record:
        from bench.common import RESULTS, load_average, machine
        given = list(argv or sys.argv[1:])
        for option, stand_in in (("--pg", "SCRATCH_URL"), ("--keep", "FILE")):
            if option in given:
                given[given.index(option) + 1] = stand_in
        command = "bench/report.py " + " ".join(given)
        with open(RESULTS, "a", encoding="utf-8") as f:
            f.write(f"\n- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}, load {load_average()}: "
                    f"`{command.strip()}`: {line}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
