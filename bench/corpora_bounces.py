"""Score bounce and auto-reply recognition on the shared real-mail corpora.

    python -m bench.corpora_bounces [CORPORA_DIR]

prints one row per corpus: files, bounces recognised %, non-bounces misread as bounces %,
vacations recognised as automatic %, address/status extraction and the slowest mail.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import sys
import time
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from mailticket.inbound.bounces import parse_bounce
from mailticket.inbound.classify import classify, normalise_line_ends
from bench.corpora_path import find_corpora

SISIMAI_OWN_STATUS = re.compile(r"^[245]\.0\.9\d\d$")
SISIMAI_NOT_BOUNCE = {"vacation": "vacation", "feedback": "other", "delivered": "other"}
# perl-bounceparser's negatives by what they are (its labels only say is_bounce false).
PERL_VACATIONS = {"aol-vacation", "autoreply", "polish-autoreply", "warning-6"}
# perl-bounceparser calls a "still being retried" delay warning not a bounce, flufl.bounce calls
# the same kind of mail a temporary failure. We follow flufl (kind "bounce", temporary=True), so
# this file is scored as a temporary bounce and kept out of the non-bounce column.
PERL_DELAY_WARNINGS = {"warning-8"}
# Labelled is_bounce with "reports: 0": plain spam that reached the bounce address, with no
# delivery report in it. We do not call spam a bounce; these are not scored.
PERL_SPAM_NOT_SCORED = {"spam-bogus-email-in-report", "spam-lots-of-bogus-addresses",
                        "spam-with-image"}



def load_message(path: Path) -> Message:
    """Parse a file as the pipeline would: line ends normalised, policy.default, compat32 fallback."""
    raw = normalise_line_ends(path.read_bytes())
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        msg.get_content_type()
        return msg
    except Exception:  # noqa: BLE001
        return email.message_from_bytes(raw)


@dataclass
class Case:
    """One labelled mail: 'bounce', 'vacation' or 'other' (not a bounce, not a vacation)."""

    path: Path
    label: str
    addresses: list[str] | None = None
    temporary: bool | None = None
    status: str | None = None
    recipient_count: int | None = None


@dataclass
class Score:
    corpus: str
    files: int = 0
    bounces: int = 0
    bounces_found: int = 0
    non_bounces: int = 0
    non_bounces_misread: int = 0
    vacations: int = 0
    vacations_auto: int = 0
    with_addresses: int = 0
    addresses_exact: int = 0
    with_temporary: int = 0
    temporary_right: int = 0
    with_status: int = 0
    status_right: int = 0
    with_count: int = 0
    count_right: int = 0
    slowest_ms: float = 0.0
    missed: list[str] = field(default_factory=list)
    misread: list[str] = field(default_factory=list)

    def as_row(self) -> dict:
        pct = lambda a, b: round(100.0 * a / b, 1) if b else None  # noqa: E731
        return {
            "corpus": self.corpus, "files": self.files,
            "bounces": self.bounces, "bounces_recognised_pct": pct(self.bounces_found, self.bounces),
            "non_bounces": self.non_bounces,
            "non_bounces_misread_pct": pct(self.non_bounces_misread, self.non_bounces),
            "vacations": self.vacations, "vacations_recognised_pct": pct(self.vacations_auto, self.vacations),
            "addresses_exact_pct": pct(self.addresses_exact, self.with_addresses),
            "temporary_right_pct": pct(self.temporary_right, self.with_temporary),
            "status_right_pct": pct(self.status_right, self.with_status),
            "recipient_count_right_pct": pct(self.count_right, self.with_count),
            "slowest_ms": round(self.slowest_ms, 1),
            "missed": self.missed, "misread": self.misread,
        }


def sisimai_cases(root: Path, variant: str) -> list[Case]:
    base = root / "sisimai-set-of-emails"
    labels = json.loads((base / "expected.json").read_text())
    cases = []
    for key, value in sorted(labels.items()):
        folder, name = key.split("/")[1], key.split("/")[-1]
        path = base / "maildir" / (variant if folder == "bsd" else folder) / name
        if not path.exists():
            continue
        reasons = {r["reason"] for r in value["recipients"]}
        kinds = {SISIMAI_NOT_BOUNCE.get(r, "bounce") for r in reasons} or {"other"}
        label = "bounce" if "bounce" in kinds else ("vacation" if "vacation" in kinds else "other")
        first = value["recipients"][0] if value["recipients"] else {}
        status = first.get("status") or None
        if status and SISIMAI_OWN_STATUS.search(status):
            status = None  # sisimai's own x.0.9xx code for a reason, not a status in the mail
        cases.append(Case(path, label, status=status,
                          recipient_count=len(value["recipients"]) if label == "bounce" else None))
    return cases


def flufl_cases(root: Path) -> list[Case]:
    base = root / "flufl.bounce"
    return [Case(base / c["file"], "bounce", addresses=c["expected_addresses"] or None,
                 temporary=c["temporary_failure"])
            for c in json.loads((base / "expected.json").read_text())]


def perl_cases(root: Path) -> list[Case]:
    base = root / "perl-bounceparser"
    cases = []
    for key, value in sorted(json.loads((base / "expected.json").read_text()).items()):
        stem = Path(key).stem
        if stem in PERL_SPAM_NOT_SCORED or not (base / key).exists():  # the bundled share has a third
            continue
        if stem in PERL_DELAY_WARNINGS:
            cases.append(Case(base / key, "bounce", temporary=True))
        elif value.get("is_bounce", True):
            cases.append(Case(base / key, "bounce", addresses=value.get("addresses")))
        else:
            cases.append(Case(base / key, "vacation" if stem in PERL_VACATIONS else "other"))
    return cases


def score_cases(corpus: str, cases: list[Case]) -> Score:
    score = Score(corpus)
    for case in cases:
        started = time.perf_counter()
        msg = load_message(case.path)
        verdict = classify(msg)
        found = parse_bounce(msg) if verdict.kind == "bounce" else None
        score.slowest_ms = max(score.slowest_ms, (time.perf_counter() - started) * 1000)
        score.files += 1
        _count(score, case, verdict.kind, found)
    return score


def _count(score: Score, case: Case, kind: str, found) -> None:
    name = case.path.name
    if case.label == "bounce":
        score.bounces += 1
        if kind == "bounce":
            score.bounces_found += 1
        else:
            score.missed.append(f"{name} ({kind})")
        _count_extraction(score, case, found)
        return
    score.non_bounces += 1
    if kind == "bounce":
        score.non_bounces_misread += 1
        score.misread.append(name)
    if case.label == "vacation":
        score.vacations += 1
        score.vacations_auto += kind in ("auto_reply", "auto_generated")


def _count_extraction(score: Score, case: Case, found) -> None:
    if case.addresses:
        score.with_addresses += 1
        expected = {a.lower() for a in case.addresses}
        score.addresses_exact += bool(found) and set(found.recipients) == expected
    if case.temporary is not None:
        score.with_temporary += 1
        score.temporary_right += bool(found) and found.temporary == case.temporary
    if case.recipient_count:
        score.with_count += 1
        score.count_right += bool(found) and len(found.recipients) == case.recipient_count
    if case.status:
        score.with_status += 1
        score.status_right += bool(found) and found.status == case.status


def score_bounces(corpora_dir: Path | str | None = None) -> list[dict]:
    """One row per corpus (sisimai bsd/dos/mac, flufl.bounce, perl-bounceparser) that is there (the
    share bundled in tests/data/corpora has no flufl.bounce: LGPL)."""
    root = Path(corpora_dir) if corpora_dir else find_corpora()
    groups = {
        "sisimai (bsd+not)": lambda: sisimai_cases(root, "bsd"),
        "sisimai dos (CRLF)": lambda: [c for c in sisimai_cases(root, "dos") if c.path.parent.name == "dos"],
        "sisimai mac (CR)": lambda: [c for c in sisimai_cases(root, "mac") if c.path.parent.name == "mac"],
        "flufl.bounce": lambda: flufl_cases(root),
        "perl-bounceparser": lambda: perl_cases(root),
    }
    return [score_cases(name, cases()).as_row() for name, cases in groups.items()
            if (root / BOUNCE_FOLDERS[name]).is_dir()]


BOUNCE_FOLDERS = {"sisimai (bsd+not)": "sisimai-set-of-emails", "sisimai dos (CRLF)": "sisimai-set-of-emails",
                  "sisimai mac (CR)": "sisimai-set-of-emails", "flufl.bounce": "flufl.bounce",
                  "perl-bounceparser": "perl-bounceparser"}


def _print_table(rows: list[dict]) -> None:
    columns = ["corpus", "files", "bounces_recognised_pct", "non_bounces_misread_pct",
               "vacations_recognised_pct", "addresses_exact_pct", "temporary_right_pct",
               "status_right_pct", "recipient_count_right_pct", "slowest_ms"]
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))
    for row in rows:
        for label in ("missed", "misread"):
            if row[label]:
                print(f"{row['corpus']} {label}: {', '.join(row[label])}")


if __name__ == "__main__":
    _print_table(score_bounces(sys.argv[1] if len(sys.argv) > 1 else None))
