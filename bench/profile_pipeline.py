"""Profile the processing of stored mail without servers: where does a mail's time go?

    .venv/bin/python bench/profile_pipeline.py [N] [--pg] [--drafts] [--sort cumulative|tottime] [--top 40] [--dump FILE] [--sql]

Stores N corpus mails as if fetched (one group commit), then times ``intake.process_pending``
(parse → classify → thread → apply → queue the mails) and the rendering of what was queued
into SMTP bytes. Prints CPU seconds per mail (wall time says little on a busy machine) and the
cProfile listing.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus_gen import cached  # noqa: E402


def prepare(tmp: Path, url: str | None):
    from mailticket import db
    from mailticket.config import load_config
    from mailticket.service.wiring import build_desk
    from tests.harness import write_config
    cfg_path = write_config(tmp, db_url=url, extra={"rate_limits": {"per_ticket": 1000, "per_sender_day": 1000,
                                                                    "global_10min": 10_000_000}})
    config = load_config(cfg_path)
    db.connect(config.database.url)
    return build_desk(config)


def store_as_fetched(mails) -> None:
    """Store corpus mails as the daemon stores what it fetched (UIDs 1.., group commits of 200)."""
    from datetime import datetime, timezone
    from mailticket.service import intake
    from mailticket.service.mailbox import FetchedMail
    now = datetime.now(timezone.utc)
    fetched = [FetchedMail(1, i + 1, m.raw) for i, m in enumerate(mails)]
    for i in range(0, len(fetched), 200):
        intake.store_batch(fetched[i:i + 200], "imap:INBOX", now)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=2000)
    ap.add_argument("--pg", action="store_true")
    ap.add_argument("--sort", default="tottime")
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--dump", help="also write the profile to this file (for pstats: callers, callees)")
    ap.add_argument("--drafts", action="store_true",
                    help="queue drafts, as the daemon does when its sender process renders them")
    ap.add_argument("--sql", action="store_true",
                    help="also time each SQL statement (wall time, round trip included) and list the dearest")
    args = ap.parse_args()
    from mailticket.service import intake
    corpus = cached(10_000)[:args.n]
    with tempfile.TemporaryDirectory() as tmp:
        url = None
        if args.pg:
            from tests.servers import postgres
            url = postgres.postgres_url()
        desk = prepare(Path(tmp), url)
        desk.mailer.defer = args.drafts
        store_as_fetched(corpus)
        prof = cProfile.Profile()
        statements = _time_statements() if args.sql else None
        c0, w0 = time.process_time(), time.perf_counter()
        if not args.no_profile:
            prof.enable()
        outcomes = intake.process_pending(desk, "bench")
        prof.disable()
        if statements is not None:
            statements.stop()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        states = {}
        for _, o in outcomes:
            states[o.state] = states.get(o.state, 0) + 1
        print(f"{len(outcomes)} mails: {states}")
        print(f"CPU {cpu:.2f} s = {cpu / len(outcomes) * 1000:.2f} ms/mail ({len(outcomes) / cpu:.0f} mails/s of CPU); "
              f"wall {wall:.2f} s{' (profiled)' if not args.no_profile else ''}")
        if not args.no_profile:
            pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)
            if args.dump:
                prof.dump_stats(args.dump)
        if statements is not None:
            statements.report(len(outcomes))
        if args.pg:
            from mailticket.models import database_proxy
            database_proxy.obj.close()
            postgres.drop_database(url)


class _time_statements:
    """Wall time and count of each SQL statement (by its first 70 characters) while it is on."""

    def __init__(self):
        import collections
        import peewee
        self.seconds, self.count = collections.Counter(), collections.Counter()
        self.original = peewee.Database.execute_sql
        seconds, count, original = self.seconds, self.count, self.original

        def timed(database, sql, params=None, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(database, sql, params, *args, **kwargs)
            finally:
                key = " ".join(sql.split())[:70]
                seconds[key] += time.perf_counter() - t0
                count[key] += 1
        peewee.Database.execute_sql = timed

    def stop(self) -> None:
        import peewee
        peewee.Database.execute_sql = self.original

    def report(self, mails: int) -> None:
        total = sum(self.seconds.values())
        print(f"SQL: {sum(self.count.values()) / mails:.1f} statements and {1000 * total / mails:.2f} ms wall a mail")
        for key, secs in self.seconds.most_common(15):
            print(f"  {1000 * secs / mails:6.3f} ms a mail  {self.count[key] / mails:5.2f} a mail  {key}")


if __name__ == "__main__":
    main()
