"""How parse_mail does on every file of the shared corpora, per corpus folder.

    .venv/bin/python bench/corpora_parse.py [CORPORA_DIR]

Every file is fed to parse_mail (nothing may raise but QuarantineError). A file counts
as a mail when its first line is a header field ("Name: value") or an mbox "From " line;
the other files (JSON expectations, lists, licences, bare reply bodies, TNEF blobs) are
parsed too, and their quarantine ("not a mail") is expected.
Also prints parse_mail throughput on a typical 3 KB plain mail.
"""

from __future__ import annotations

import re
import sys
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailticket.errors import QuarantineError  # noqa: E402
from mailticket.inbound.parse import parse_mail  # noqa: E402
from bench.corpora_path import find_corpora

MAIL_START = re.compile(rb"\s*(?:From |[\x21-\x39\x3b-\x7e]+[ \t]*:)")



def looks_like_mail(raw: bytes) -> bool:
    """The rule for "this file is a mail": it starts with a header field or an mbox line."""
    return bool(MAIL_START.match(raw[:1000]))


def parse_file(path: Path) -> tuple[str, str, float]:
    """(outcome "parsed"/"quarantined", reason, seconds) for one file."""
    raw = path.read_bytes()
    start = time.perf_counter()
    try:
        parse_mail(raw)
        outcome, reason = "parsed", ""
    except QuarantineError as exc:
        outcome, reason = "quarantined", str(exc)
    return outcome, reason, time.perf_counter() - start


def score_parse(corpora_dir: Path) -> list[dict]:
    """One row per corpus folder: files, mails, parsed, quarantined (mails), slowest_ms."""
    rows = []
    for folder in sorted(p for p in Path(corpora_dir).iterdir() if p.is_dir()):
        row = {"corpus": folder.name, "files": 0, "mails": 0, "parsed": 0,
               "quarantined": 0, "quarantined_mails": [], "slowest_ms": 0.0, "slowest": ""}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            outcome, reason, secs = parse_file(path)
            is_mail = looks_like_mail(path.read_bytes())
            row["files"] += 1
            row["mails"] += is_mail
            row[outcome] += 1
            if is_mail and outcome == "quarantined":
                row["quarantined_mails"].append((str(path.relative_to(corpora_dir)), reason))
            if secs * 1000 > row["slowest_ms"]:
                row["slowest_ms"], row["slowest"] = round(secs * 1000, 1), path.name
        rows.append(row)
    return rows


def typical_mail(html: bool = False) -> bytes:
    """A 3 KB plain mail (5 KB with an HTML alternative) with Swedish text, a few
    Received lines and threading headers."""
    msg = EmailMessage()
    msg["From"] = "Åsa Öberg <asa.oberg@example.se>"
    msg["To"] = "Support <support@example.com>"
    msg["Cc"] = "a@example.com, B <b@example.com>"
    msg["Subject"] = "Skrivaren på plan 3 är trasig"
    msg["Message-ID"] = "<abc123@example.se>"
    msg["Date"] = "Fri, 27 Nov 2026 08:00:00 +0100"
    msg["References"] = "<x0@example.com> <x1@example.com>"
    for i in range(8):
        msg["Received"] = (f"from mx{i}.example.net (mx{i}.example.net [192.0.2.{i}]) "
                           f"by mx.example.com with ESMTPS id {i}abc; Fri, 27 Nov 2026 08:00:0{i} +0100")
    text = "Hej!\n\nSkrivaren på plan 3 fungerar inte. Den säger 'paper jam'.\n" * 20
    msg.set_content(text)
    if html:
        msg.add_alternative(f"<html><body><p>{text}</p></body></html>", subtype="html")
    return msg.as_bytes()


def throughput(raw: bytes, parse=parse_mail, seconds: float = 2.0) -> float:
    """Calls of parse(raw) per second."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        parse(raw)
        count += 1
    return count / (time.perf_counter() - start)


def best_of_interleaved(raw: bytes, rounds: int = 5) -> tuple[float, float]:
    """Best rate of parse_mail and of stdlib_read over alternating short runs (fair on a
    busy machine)."""
    ours, floor = 0.0, 0.0
    for _ in range(rounds):
        ours = max(ours, throughput(raw, parse_mail, 0.4))
        floor = max(floor, throughput(raw, stdlib_read, 0.4))
    return ours, floor


def stdlib_read(raw: bytes) -> str:
    """The floor to compare with: policy.default parse, body text and sender."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    _ = message["from"].addresses
    return message.get_body(("plain", "html")).get_content()


def main(argv: list[str]) -> None:
    corpora = Path(argv[1]) if len(argv) > 1 else find_corpora()
    rows = score_parse(corpora)
    print(f"{'corpus':32} {'files':>6} {'mails':>6} {'parsed':>7} {'quar.':>6} {'slowest ms':>11}")
    for r in rows:
        print(f"{r['corpus']:32} {r['files']:6} {r['mails']:6} {r['parsed']:7} "
              f"{r['quarantined']:6} {r['slowest_ms']:11.1f}  {r['slowest']}")
    total = {k: sum(r[k] for r in rows) for k in ("files", "mails", "parsed", "quarantined")}
    print(f"{'TOTAL':32} {total['files']:6} {total['mails']:6} {total['parsed']:7} "
          f"{total['quarantined']:6}")
    print("quarantined files that look like mail:")
    for r in rows:
        for path, reason in r["quarantined_mails"]:
            print(f"  {path}: {reason}")
    for kind, raw in (("plain", typical_mail()), ("plain+HTML", typical_mail(html=True))):
        ours, floor = best_of_interleaved(raw)
        print(f"{len(raw)}-byte {kind} mail: parse_mail {ours:.0f} mails/s, stdlib "
              f"policy.default parse+body+from {floor:.0f} mails/s (ratio {ours / floor:.2f})")


if __name__ == "__main__":
    main(sys.argv)
