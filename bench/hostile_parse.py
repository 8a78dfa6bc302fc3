"""How long parse_mail takes on mails built to make it slow (tests/hostile_mails.py), each as a
ratio to a plain mail of the same size parsed in the same run (the floor), so the figures
compare across machines. tests/test_parse.py checks what comes out of each; it asserts no time.

    .venv/bin/python bench/hostile_parse.py [--repeat N]

Each mail is parsed N times (default 3) and the best time kept, the floor likewise. A ratio
near 1 means the hostile shape costs no more than its bytes; a parser gone quadratic shows
ratios in the hundreds. The figures are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_average, record  # noqa: E402
from mailticket.errors import QuarantineError  # noqa: E402
from mailticket.inbound.parse import parse_mail  # noqa: E402
from tests.hostile_mails import ALL, mail  # noqa: E402


def best_of(raw: bytes, repeat: int) -> tuple[float, str]:
    """The fastest of ``repeat`` parses, and what came out ("parsed" or the quarantine reason)."""
    best, what = float("inf"), ""
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            parse_mail(raw)
            what = "parsed"
        except QuarantineError as exc:
            what = f"quarantined: {exc}"[:60]
        best = min(best, time.perf_counter() - start)
    return best, what


def plain_of_size(size: int) -> bytes:
    """A plain text mail of about ``size`` bytes: lines of prose, no quoting, no markup."""
    line = "The printer on floor 3 prints blank pages since this morning, after the update.\n"
    return mail("Subject: printer", line * max(1, size // len(line)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="parses of each mail; the best counts (default 3)")
    args = parser.parse_args(argv)
    load_before = load_average()
    lines = []
    for name, build in ALL.items():
        raw = build()
        seconds, what = best_of(raw, args.repeat)
        floor, _ = best_of(plain_of_size(len(raw)), args.repeat)
        lines.append(f"{name} ({len(raw) / 1e6:.1f} MB): {seconds * 1000:.0f} ms, {seconds / floor:.1f}x a plain "
                     f"mail of its size ({floor * 1000:.0f} ms); {what}")
    record("parse_mail on hostile mails, against plain mails of the same size", lines, load_before=load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
