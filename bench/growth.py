"""Growth: does processing stay flat with 0, 100,000 and 1,000,000 tickets already stored, and does
memory stay flat while importing a large mbox?

    .venv/bin/python bench/growth.py [--sizes 0,100000,1000000] [--mails 1000] [--import-mails 100000]
                                          [--no-record]

For each size: a fresh SQLite database is filled in bulk (executemany) with that many tickets, two
Message-IDs each (the requester's and our acknowledgement), an event and an outbox entry each;
then the corpus mails (a third of them replies, threaded through References) are processed from
storage (as after a FETCH; no IMAP, no SMTP): throughput (mails/s, CPU ms per mail) with the
daemon's group commit, and per-mail latency (median, p99) with one transaction per mail.
Then ``mailticket import`` of an mbox of --import-mails corpus mails as a child process: its RSS
sampled five times a second and its peak (target: flat, under 150 MB).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_average, record  # noqa: E402
from bench.corpus_gen import cached, generate, write_mbox  # noqa: E402


def _bulk_rows(model, n: int, make) -> tuple[str, list]:
    fields = [f for f in model._meta.sorted_fields if f.name != "id"]
    sql = (f'INSERT INTO "{model._meta.table_name}" ({", ".join(f.column_name for f in fields)}) '
           f'VALUES ({", ".join("?" for _ in fields)})')
    return sql, fields


def fill(database, n: int, now: datetime) -> float:
    """``n`` synthetic tickets with their refs, events and outbox entries; returns seconds taken."""
    t0 = time.perf_counter()
    conn = database.connection()
    old = (now - timedelta(days=30)).replace(tzinfo=None)
    chunk = 50_000
    for start in range(0, n, chunk):
        ids = range(start + 1, min(n, start + chunk) + 1)
        with database.atomic():
            conn.executemany(
                'INSERT INTO ticket (id, type, status, tier, priority, impact, urgency, category, subject, description,'
                ' requester_name, requester_address, security, created_at, updated_at, response_paused_seconds,'
                ' resolution_paused_seconds, thread_root) VALUES (?, "incident", ?, 1, "P3", "medium", "medium",'
                ' "general", ?, ?, "Old Requester", ?, 0, ?, ?, 0, 0, ?)',
                ((i, "closed" if i % 5 else "open", f"Old problem {i}", f"Old description {i}",
                  f"old{i}@past.example", old, old, f"old.{i}@past.example") for i in ids))
            conn.executemany('INSERT INTO message_ref (message_id, ticket_id, direction, audience, at) VALUES (?, ?, ?,'
                             ' "requester", ?)',
                             ((f"old.{i}@past.example", i, "in", old) for i in ids))
            conn.executemany('INSERT INTO message_ref (message_id, ticket_id, direction, audience, at) VALUES (?, ?, ?,'
                             ' "requester", ?)',
                             ((f"mt.old{i}@example.com", i, "out", old) for i in ids))
            conn.executemany('INSERT INTO event (ticket_id, at, actor, kind, text) VALUES (?, ?, "system", "logged", ?)',
                             ((i, old, f"incident logged {i}") for i in ids))
            conn.executemany(
                'INSERT INTO outbox (ticket_id, kind, message_id, mail_from, recipients, rcpt_key, automatic, raw,'
                ' created_at, status, attempts, next_attempt_at, admin_told) VALUES (?, "acknowledgement", ?,'
                ' "support@example.com", ?, ?, 1, ?, ?, "sent", 1, ?, 0)',
                ((i, f"mt.old{i}@example.com", f'["old{i}@past.example"]', f"old{i}@past.example", b"x", old, old)
                 for i in ids))
    conn.execute("ANALYZE")
    return time.perf_counter() - t0


def process_figures(desk, corpus, now) -> dict:
    """Throughput with group commit over the corpus, then per-mail latency one transaction each."""
    from mailticket.service import intake
    from mailticket.desk import pipeline
    from mailticket.service.mailbox import FetchedMail
    from mailticket.models import InboundMail
    half = len(corpus) // 2
    first, second = corpus[:half], corpus[half:]
    intake.store_batch([FetchedMail(1, i + 1, m.raw) for i, m in enumerate(first)], "imap:INBOX", now)
    c0, w0 = time.process_time(), time.perf_counter()
    done = intake.process_pending(desk, "bench")
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    intake.store_batch([FetchedMail(1, half + i + 1, m.raw) for i, m in enumerate(second)], "imap:INBOX", now)
    latencies = []
    for row in InboundMail.select().where(InboundMail.state == "received").order_by(InboundMail.id):
        t = time.perf_counter()
        pipeline.process_one(desk, row)
        latencies.append(time.perf_counter() - t)
    bad = InboundMail.select().where(InboundMail.state != "processed").count()
    latencies.sort()
    return {"mails": len(done), "rate": len(done) / wall, "cpu_ms": cpu / len(done) * 1000,
            "median_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000, "not_processed": bad}


def run_size(n: int, corpus, tmp: Path) -> dict:
    import logging
    from mailticket import db
    from mailticket.config import load_config
    from mailticket.service.wiring import build_desk
    from tests.harness import write_config
    logging.disable(logging.INFO)
    folder = tmp / f"size{n}"
    folder.mkdir()
    cfg = load_config(write_config(folder, extra={"rate_limits": {"per_ticket": 1000, "per_sender_day": 1000,
                                                                  "global_10min": 10_000_000}}))
    database = db.connect(cfg.database.url)
    now = datetime.now(timezone.utc)
    fill_s = fill(database, n, now)
    desk = build_desk(cfg)
    figures = process_figures(desk, corpus, now)
    database.close()
    figures["fill_s"] = fill_s
    return figures


def import_rss(n: int, tmp: Path) -> dict:
    """Peak and sampled RSS of `mailticket import` on an mbox of ``n`` corpus mails."""
    from tests.harness import REPO, write_config
    mbox = tmp / f"corpus-{n}.mbox"
    write_mbox(cached(n) if n <= 10_000 else generate(n), mbox)
    cfg = write_config(tmp / "import" if (tmp / "import").mkdir() is None else tmp)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mailticket.service.cli", "--config", str(cfg), "import", str(mbox)],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "import.log", "wb"))
    samples, peak = [], 0.0
    while proc.poll() is None:
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines())
            samples.append((time.perf_counter() - t0, int(fields["VmRSS"].split()[0]) / 1024))
            peak = max(peak, int(fields["VmHWM"].split()[0]) / 1024)
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(0.2)
    seconds = time.perf_counter() - t0
    # VmHWM (the kernel's peak RSS of the process since its exec); not getrusage's ru_maxrss, which
    # for a child also counts the parent's pages it had between fork and exec
    if proc.returncode != 0:
        raise RuntimeError(f"import failed ({proc.returncode}): {(tmp / 'import.log').read_text()[-2000:]}")
    quarter = [samples[min(len(samples) - 1, int(len(samples) * q))][1] for q in (0.25, 0.5, 0.75)] if samples else []
    return {"mails": n, "seconds": seconds, "peak_mb": peak, "quartiles_mb": quarter,
            "last_mb": samples[-1][1] if samples else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="0,100000,1000000")
    ap.add_argument("--mails", type=int, default=1000, help="corpus mails processed at each size")
    ap.add_argument("--import-mails", type=int, default=100_000, help="0 to skip the import RSS run")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    load_before = load_average()
    corpus = cached(10_000)[:args.mails]
    lines = []
    with tempfile.TemporaryDirectory(prefix="mt-growth-") as tmp:
        tmp = Path(tmp)
        for n in [int(x) for x in args.sizes.split(",") if x.strip()]:
            f = run_size(n, corpus, tmp)
            lines.append(f"{n:,} tickets stored (filled in {f['fill_s']:.0f} s): **{f['rate']:.0f} mails/s** "
                         f"({f['cpu_ms']:.1f} ms CPU/mail, group commit, {f['mails']} mails); one transaction per mail: "
                         f"median **{f['median_ms']:.1f} ms**, p99 **{f['p99_ms']:.1f} ms**; not processed: "
                         f"{f['not_processed']}")
            print(lines[-1], file=sys.stderr, flush=True)
        if args.import_mails:
            r = import_rss(args.import_mails, tmp)
            lines.append(f"`mailticket import` of {r['mails']:,} mails: {r['seconds']:.0f} s "
                         f"({r['mails'] / r['seconds']:.0f} mails/s); RSS at 25/50/75 %: "
                         + " / ".join(f"{x:.0f}" for x in r["quartiles_mb"])
                         + f" MB, at the end {r['last_mb']:.0f} MB, **peak {r['peak_mb']:.0f} MB** (target < 150 MB)")
    if args.no_record:
        print("\n".join(lines))
    else:
        record("Growth: processing with tickets already stored; RSS of a large import", lines, load_before=load_before)


if __name__ == "__main__":
    main()
