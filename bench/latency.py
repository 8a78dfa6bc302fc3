"""Latency: APPEND of one mail → its acknowledgement at the SMTP sink, mails arriving one by one.

    .venv/bin/python bench/latency.py [--mails 200] [--poll 5s] [--pause 0.2] [--no-record]

With IDLE (default) and, with --poll INTERVAL, with IDLE off (the daemon looks every INTERVAL).
Each mail is appended when the previous one's acknowledgement has arrived, plus a random pause
(0-200 ms with IDLE, or up to ``--pause``; up to one interval when polling, so arrivals do not line up with the poll clock). Prints median, 90th and 99th
percentile and the maximum; appends them to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import LeanSink, bench_config, load_average, record, start_dovecot  # noqa: E402
from bench.corpus_gen import cached  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


IDLE_PAUSE = 0.2  # seconds: with IDLE, each mail waits up to this long after the last acknowledgement


def measure(user, sink: LeanSink, tmp: Path, raws: list[tuple[str, bytes]], *, idle: bool, poll: str,
            idle_pause: float = IDLE_PAUSE) -> list[float]:
    from tests.harness import DaemonThread
    cfg = bench_config(tmp, user=user, sink=sink, idle=idle, poll=poll)
    rng = random.Random(8)
    # arrivals at random points of the poll cycle (one by one, they would line up with its start)
    pause = idle_pause if idle else max(0.2, _seconds(poll))
    out = []
    with DaemonThread(cfg):
        time.sleep(1.0)  # connected and idling
        with user.server.client(user.name) as imap:
            for message_id, raw in raws:
                time.sleep(rng.uniform(0, pause))
                t0 = time.monotonic()
                imap.append("INBOX", raw)
                got = _wait_ack(sink, f"<{message_id}>", timeout=120)
                out.append(got - t0)
    return out


def _seconds(text: str) -> float:
    from mailticket.durations import parse_duration
    return parse_duration(text).total_seconds()


def _wait_ack(sink: LeanSink, in_reply_to: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for a in reversed(sink.arrivals[-20:]):
            if a.in_reply_to == in_reply_to and not a.rcpt_tos[0].endswith("@example.com"):
                return a.at
        time.sleep(0.002)
    raise TimeoutError(f"no acknowledgement for {in_reply_to} after {timeout} s")


def fresh_mails(n: int, tag: str) -> list[tuple[str, bytes]]:
    """New (non-reply) corpus mails with fresh Message-IDs and the Date of now."""
    from email.utils import format_datetime
    from datetime import datetime, timezone
    import re
    mails = [m for m in cached(10_000) if m.reply_to_index is None][:n]
    out = []
    for m in mails:
        mid = f"lat.{tag}.{m.index}@customer.example"
        raw = m.raw.replace(f"<{m.message_id}>".encode(), f"<{mid}>".encode(), 1)
        raw = re.sub(rb"^Date: [^\r\n]*", b"Date: " + format_datetime(datetime.now(timezone.utc)).encode(), raw,
                     count=1, flags=re.M)
        out.append((mid, raw))
    return out


def summarise(name: str, values: list[float]) -> str:
    return (f"{name}: median **{statistics.median(values) * 1000:.0f} ms**, p90 {percentile(values, 90) * 1000:.0f} ms, "
            f"p99 **{percentile(values, 99) * 1000:.0f} ms**, max {max(values) * 1000:.0f} ms (n={len(values)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mails", type=int, default=200)
    ap.add_argument("--poll", help="also measure with IDLE off, polling every INTERVAL (e.g. 5s)")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--pause", type=float, default=IDLE_PAUSE, metavar="S",
                    help="with IDLE, each mail waits up to S seconds (random) after the last acknowledgement")
    args = ap.parse_args()
    load_before = load_average()
    server, user = start_dovecot()
    sink = LeanSink().start()
    lines = []
    try:
        with tempfile.TemporaryDirectory(prefix="mt-lat-") as tmp:
            idle = measure(user, sink, Path(tmp), fresh_mails(args.mails, "idle"), idle=True, poll="30s",
                           idle_pause=args.pause)
            lines.append(summarise("IDLE", idle) + (f" (pauses up to {args.pause:g} s)" if args.pause != IDLE_PAUSE else "")
                         + " (target: median < 1 s, p99 < 2 s)")
            print(lines[-1], file=sys.stderr)
        if args.poll:
            from tests.conftest import new_mailbox_user
            user2 = new_mailbox_user(server)
            with tempfile.TemporaryDirectory(prefix="mt-lat-") as tmp:
                polled = measure(user2, sink, Path(tmp), fresh_mails(args.mails, "poll"), idle=False, poll=args.poll)
            lines.append(summarise(f"polling every {args.poll}", polled)
                         + "; the interval adds about half of itself on average and all of it at worst")
    finally:
        sink.stop()
        server.close()
    if args.no_record:
        print("\n".join(lines))
    else:
        record(f"Latency, APPEND → acknowledgement at the sink ({args.mails} mails one by one)", lines,
               load_before=load_before)


if __name__ == "__main__":
    main()
