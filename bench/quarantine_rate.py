"""The share of real mails the pipeline quarantines, over the shared corpora (the bar is 3 %).

    python -m bench.quarantine_rate [CORPORA_DIR] [--list]

A file counts as a mail when it starts with a header field or an mbox "From " line
(``bench.corpora_parse.looks_like_mail``), or when a header block with a From, Date or
Message-ID follows a few lines of something else (a client's "original message" dump); the
JSON expectations, bare reply bodies and licences of the corpora are not mails. Each mail goes
through the real pipeline (store_raw + process_one) on a throw-away SQLite database; the table
gives mails, quarantined and the rate per folder and in all, and ``--list`` every quarantined
file with its reason.
"""

from __future__ import annotations

import logging
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpora import _pipeline_desk, corpus_folders  # noqa: E402
from bench.corpora_parse import looks_like_mail  # noqa: E402
from bench.corpora_path import corpus_files, find_corpora  # noqa: E402

_LATE_HEADERS = re.compile(rb"^(?:from|date|message-id)[ \t]*:.*\n(?:[\x21-\x39\x3b-\x7e]+[ \t]*:|[ \t])", re.I | re.M)


def is_mail(raw: bytes) -> bool:
    head = raw[:8192].replace(b"\r\n", b"\n")
    return looks_like_mail(raw) or bool(_LATE_HEADERS.search(head))


def measure(corpora_dir: Path) -> list[dict]:
    """One row per corpus folder: mails, quarantined, and (file, reason) of each quarantined mail."""
    logger = logging.getLogger("mailticket")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # a quarantine logs a traceback; the table says it better
    try:
        return _measure(corpora_dir)
    finally:
        logger.setLevel(level)


def _measure(corpora_dir: Path) -> list[dict]:
    from mailticket.desk import pipeline
    rows = []
    with tempfile.TemporaryDirectory(prefix="mailticket-qrate-") as tmp:
        desk = _pipeline_desk(Path(tmp))
        uid = 0
        for folder in corpus_folders(corpora_dir):
            states, reasons = Counter(), []
            for path in corpus_files(folder):
                raw = path.read_bytes()
                if not is_mail(raw):
                    continue
                uid += 1
                row = pipeline.store_raw(raw, source="bench", uidvalidity=1, uid=uid, now=desk.clock.now())
                outcome = pipeline.process_one(desk, row)
                states[outcome.state] += 1
                if outcome.state == "quarantined":
                    reasons.append((str(path.relative_to(corpora_dir)), outcome.reason))
            rows.append({"corpus": folder.name, "mails": sum(states.values()),
                         "quarantined": states["quarantined"], "reasons": reasons})
    return rows


def table(rows: list[dict], listing: bool = False) -> str:
    lines = [f"{'corpus':<32}{'mails':>6}{'quar.':>7}{'rate':>8}"]
    for r in rows + [{"corpus": "ALL", "mails": sum(r["mails"] for r in rows),
                      "quarantined": sum(r["quarantined"] for r in rows), "reasons": []}]:
        rate = 100 * r["quarantined"] / r["mails"] if r["mails"] else 0.0
        lines.append(f"{r['corpus']:<32}{r['mails']:>6}{r['quarantined']:>7}{rate:>7.1f}%")
    if listing:
        lines += [f"  {name}: {reason}" for r in rows for name, reason in r["reasons"]]
    return "\n".join(lines)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    corpora = Path(args[0]) if args else find_corpora()
    if not corpora.is_dir():
        sys.exit(f"corpora not found: {corpora} (set MAILTICKET_CORPORA or pass the folder)")
    print(table(measure(corpora), listing="--list" in sys.argv))
