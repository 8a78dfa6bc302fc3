"""One table for the shared mail corpora: every file through the real pipeline, plus the scores.

    python -m bench.corpora [CORPORA_DIR]

Per corpus folder: files, parsed (parse_mail took it), quarantined (by the pipeline), what the
pipeline made of the rest (processed, duplicate, dropped), the parse score (bench.corpora_parse,
when present: files that look like mails, and how many of those parse_mail quarantined), the
reply-stripping score (bench.corpora_quotes: % exact), the bounce score (bench.corpora_bounces:
% of bounces recognised, % of non-bounces misread), and the slowest case with its time. The pipeline runs in-process on a throw-away SQLite database.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpora_bounces import score_bounces  # noqa: E402
from bench.corpora_path import corpus_files, find_corpora  # noqa: E402
from bench.corpora_quotes import score_quotes  # noqa: E402
from mailticket.errors import QuarantineError  # noqa: E402
from mailticket.inbound.parse import parse_mail  # noqa: E402

# which corpus folder each scorer's row belongs to
QUOTE_FOLDERS = {"discourse": "discourse-email_reply_trimmer", "talon": "talon", "roundup": "roundup",
                 "crisp": "crisp-email-reply-parser", "github": "github-email_reply_parser"}
BOUNCE_FOLDERS = {"sisimai (bsd+not)": "sisimai-set-of-emails", "flufl.bounce": "flufl.bounce",
                  "perl-bounceparser": "perl-bounceparser"}


def corpus_folders(corpora_dir: Path, only: list[str] | None = None) -> list[Path]:
    return sorted(p for p in Path(corpora_dir).iterdir() if p.is_dir() and (only is None or p.name in only))


def _files(folder: Path) -> list[Path]:
    return corpus_files(folder)


def _pipeline_desk(workdir: Path):
    """A desk on a fresh SQLite database in workdir, with a fake clock and no rate limits in the way."""
    from mailticket import db
    from mailticket.clock import FakeClock
    from mailticket.config import load_config
    from mailticket.service.wiring import build_desk
    config = workdir / "mailticket.toml"
    config.write_text(
        f'[service]\nname = "Service Desk"\naddress = "support@example.com"\ndata_dir = "{workdir / "data"}"\n'
        'admin_address = "admin@example.com"\n'
        f'[database]\nurl = "sqlite:///{workdir / "bench.db"}"\n'
        '[rate_limits]\nglobal_10min = 1000000\nper_sender_day = 1000000\nper_ticket = 1000000\n'
        '[tiers.1]\nname = "Service desk"\naddress = "l1@example.com"\nagents = ["alice@example.com"]\n'
        '[tiers.2]\nname = "Second line"\naddress = "l2@example.com"\nagents = []\n'
        '[tiers.3]\nname = "Third line"\naddress = "l3@example.com"\nagents = []\n', encoding="utf-8")
    cfg = load_config(config)
    db.connect(cfg.database.url)
    return build_desk(cfg, clock=FakeClock())


def run_pipeline(folder: Path, desk) -> dict:
    """Every file of one folder through store_raw + process_one: counts and the slowest file."""
    from mailticket.desk import pipeline
    states, parsed, escaped = Counter(), 0, []
    slowest = (0.0, "")
    for uid, path in enumerate(_files(folder), 1):
        raw = path.read_bytes()
        try:
            parse_mail(raw)
            parsed += 1
        except QuarantineError:
            pass
        row = pipeline.store_raw(raw, source=f"bench:{folder.name}", uidvalidity=1, uid=uid, now=desk.clock.now())
        started = time.perf_counter()
        try:
            states[pipeline.process_one(desk, row).state] += 1
        except Exception as exc:  # noqa: BLE001 - reported, the table goes on
            escaped.append(f"{path.name}: {type(exc).__name__}: {exc}")
        slowest = max(slowest, (time.perf_counter() - started, path.name))
    return {"files": sum(states.values()) + len(escaped), "parsed": parsed, "quarantined": states["quarantined"],
            "processed": states["processed"], "duplicate": states["duplicate"], "dropped": states["dropped"],
            "spam": states["spam"],
            "escaped": escaped, "slowest_ms": round(slowest[0] * 1000, 1), "slowest": slowest[1]}


def _parse_scores(corpora_dir: Path) -> dict[str, dict]:
    """bench.corpora_parse rows by folder, when that scorer exists."""
    try:
        from bench.corpora_parse import score_parse
    except ImportError:
        return {}
    return {row["corpus"]: row for row in score_parse(corpora_dir)}


def _quiet_pipeline_rows(corpora_dir: Path, only: list[str] | None) -> list[dict]:
    """run_pipeline for each folder on one throw-away database, with the quarantine tracebacks muted."""
    logger = logging.getLogger("mailticket")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with tempfile.TemporaryDirectory(prefix="mailticket-bench-") as tmp:
            desk = _pipeline_desk(Path(tmp))
            return [{"corpus": folder.name, **run_pipeline(folder, desk)}
                    for folder in corpus_folders(corpora_dir, only)]
    finally:
        logger.setLevel(level)


def combine(corpora_dir: Path | str | None = None, only: list[str] | None = None) -> list[dict]:
    """One row per corpus folder with the pipeline counts and every score that applies to it."""
    corpora_dir = Path(corpora_dir or find_corpora())
    quotes = {QUOTE_FOLDERS[r["name"]]: r for r in score_quotes(corpora_dir)}
    bounces = {BOUNCE_FOLDERS[r["corpus"]]: r for r in score_bounces(corpora_dir) if r["corpus"] in BOUNCE_FOLDERS}
    parse = _parse_scores(corpora_dir)
    rows = _quiet_pipeline_rows(corpora_dir, only)
    for row in rows:
        q, b, p = quotes.get(row["corpus"]), bounces.get(row["corpus"]), parse.get(row["corpus"])
        row["quotes_pct"] = q["percent"] if q else None
        row["bounces_pct"] = b["bounces_recognised_pct"] if b else None
        row["non_bounces_misread_pct"] = b["non_bounces_misread_pct"] if b else None
        row["parse_mails"] = p["mails"] if p else None
        row["parse_quarantined_mails"] = len(p["quarantined_mails"]) if p else None
        for other_ms, other_case in ((q and q["slowest_ms"], q and q["slowest_case"]),
                                     (b and b["slowest_ms"], b and "bounce scoring"),
                                     (p and p["slowest_ms"], p and p["slowest"])):
            if other_ms and other_ms > row["slowest_ms"]:
                row["slowest_ms"], row["slowest"] = other_ms, other_case
    return rows


COLUMNS = [("corpus", "corpus", 32), ("files", "files", 6), ("parsed", "parsed", 7),
           ("quarantined", "quar.", 6), ("processed", "proc.", 6), ("duplicate", "dup.", 5),
           ("dropped", "drop.", 6), ("parse_mails", "mails", 6), ("parse_quarantined_mails", "m.quar.", 8),
           ("quotes_pct", "quotes%", 8), ("bounces_pct", "bounce%", 8),
           ("non_bounces_misread_pct", "misread%", 9), ("slowest_ms", "slowest ms", 11), ("slowest", "slowest case", 0)]


def table(rows: list[dict]) -> str:
    def cell(value, width):
        text = "-" if value is None else str(value)
        return text.ljust(width) if width else text
    lines = ["".join(cell(title, width) for _, title, width in COLUMNS)]
    lines += ["".join(cell(row[key], width) for key, _, width in COLUMNS) for row in rows]
    escaped = [f"{row['corpus']}: {e}" for row in rows for e in row["escaped"]]
    return "\n".join(lines + ([f"ESCAPED the pipeline: {e}" for e in escaped]))


if __name__ == "__main__":
    corpora = Path(sys.argv[1]) if len(sys.argv) > 1 else find_corpora()
    if not corpora.is_dir():
        sys.exit(f"corpora not found: {corpora} (set MAILTICKET_CORPORA or pass the folder)")
    print(table(combine(corpora)))
