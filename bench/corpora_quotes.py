"""Score reply/quote stripping (mailticket.inbound.quotes) on the shared mail corpora.

Each loader yields cases (name, input, expected, kind); kind "text" compares after strip,
kind "html" compares with all white space removed. score_quotes() runs split_reply or
split_reply_html on every case and reports exact matches and the slowest case per corpus.
"""
from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Callable, Iterator

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailticket.inbound.quotes import split_reply, split_reply_html  # noqa: E402
import mailticket.inbound.quotes_html  # noqa: E402,F401  (imported here so no case pays for loading lxml)
from bench.corpora_path import find_corpora


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    expected: str
    kind: str = "text"  # "text" or "html"


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def discourse_cases(root: Path) -> Iterator[Case]:
    base = root / "discourse-email_reply_trimmer" / "test"
    for path in sorted((base / "emails").glob("*.txt")):
        yield Case(path.name, _read(path), _read(base / "trimmed" / path.name))


def _mail_body(raw: bytes) -> tuple[str, str]:
    """The first text/plain part ("text", body) of a mail, else its HTML ("html", body)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    for kind, preference in (("text", ("plain",)), ("html", ("html",))):
        part = msg.get_body(preferencelist=preference)
        if part is not None:
            return kind, part.get_content()
    return "text", ""


def talon_cases(root: Path) -> Iterator[Case]:
    base = root / "talon"
    labels = json.loads((base / "expected.json").read_text())
    for rel, label in labels["standard_replies"].items():
        kind, body = _mail_body((base / rel).read_bytes())
        yield Case(Path(rel).name, body, label["expected_reply"], kind)
    for rel, label in labels["html_replies"].items():
        yield Case(Path(rel).name, _read(base / rel), label["expected_reply_text"], "html")


def roundup_cases(root: Path) -> Iterator[Case]:
    base = root / "roundup"
    labels = json.loads((base / "labels.json").read_text())
    for case in labels["cases"]:
        if "expected_content_if_quotes_stripped" not in case:
            continue
        kind, body = _mail_body((base / case["file"]).read_bytes())
        yield Case(Path(case["file"]).name, body, case["expected_content_if_quotes_stripped"], kind)


def crisp_cases(root: Path) -> Iterator[Case]:
    base = root / "crisp-email-reply-parser"
    labels = json.loads((base / "expected_common_first_fragment.json").read_text())
    for rel, label in labels["cases"].items():
        yield Case(Path(rel).name, _read(base / rel), label["expected_first_fragment_trimmed"])


def github_cases(root: Path) -> Iterator[Case]:
    base = root / "github-email_reply_parser"
    labels = json.loads((base / "expected_parse_reply.json").read_text())
    for rel, expected in labels.items():
        if not rel.startswith("_"):
            yield Case(Path(rel).name, _read(base / rel), expected)


def github_timing_cases(root: Path) -> Iterator[Case]:
    """Every GitHub body (incl. the ReDoS ones), for timing only (no expectation)."""
    for path in sorted((root / "github-email_reply_parser" / "test" / "emails").glob("*.txt")):
        yield Case(path.name, _read(path), "")


CORPORA: dict[str, Callable[[Path], Iterator[Case]]] = {
    "discourse": discourse_cases,
    "talon": talon_cases,
    "roundup": roundup_cases,
    "crisp": crisp_cases,
    "github": github_cases,
}


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def matches(case: Case, got: str) -> bool:
    """Whether the new text equals the expectation under the corpus's comparison rule."""
    if case.kind == "html":
        return _squash(got) == _squash(case.expected)
    return got.strip() == case.expected.strip()


def run_case(case: Case) -> tuple[str, float]:
    """The new text for one case and the seconds it took."""
    start = time.perf_counter()
    reply = split_reply_html(case.text) if case.kind == "html" else split_reply(case.text)
    return reply.new, time.perf_counter() - start


def failures(corpora_dir: Path, name: str) -> list[tuple[Case, str]]:
    """The cases of one corpus that do not match, with what was produced."""
    result = []
    for case in CORPORA[name](Path(corpora_dir)):
        got, _ = run_case(case)
        if not matches(case, got):
            result.append((case, got))
    return result


def slowest_case(cases: list[Case]) -> tuple[str, float]:
    """Name and milliseconds of the slowest case."""
    worst = ("", 0.0)
    for case in cases:
        _, seconds = run_case(case)
        if seconds * 1000 > worst[1]:
            worst = (case.name, seconds * 1000)
    return worst


def score_corpus(name: str, cases: list[Case]) -> dict:
    exact = 0
    slowest = ("", 0.0)
    for case in cases:
        got, seconds = run_case(case)
        exact += matches(case, got)
        if seconds * 1000 > slowest[1]:
            slowest = (case.name, seconds * 1000)
    total = len(cases)
    return {
        "name": name,
        "cases": total,
        "exact": exact,
        "percent": round(100.0 * exact / total, 1) if total else 0.0,
        "slowest_ms": round(slowest[1], 2),
        "slowest_case": slowest[0],
    }


def score_quotes(corpora_dir) -> list[dict]:
    """Per corpus: name, cases, exact, percent, slowest_ms (and slowest_case)."""
    root = Path(corpora_dir)
    return [score_corpus(name, list(loader(root))) for name, loader in CORPORA.items()]


def _print_table(rows: list[dict]) -> None:
    print(f"{'corpus':<12}{'cases':>6}{'exact':>7}{'%':>7}{'slowest ms':>12}  slowest case")
    for row in rows:
        print(f"{row['name']:<12}{row['cases']:>6}{row['exact']:>7}{row['percent']:>7}"
              f"{row['slowest_ms']:>12}  {row['slowest_case']}")



if __name__ == "__main__":
    corpora = Path(sys.argv[1]) if len(sys.argv) > 1 else find_corpora()
    if not corpora.is_dir():
        sys.exit(f"corpora not found: {corpora} (set MAILTICKET_CORPORA or pass the folder)")
    _print_table(score_quotes(corpora))
    name, ms = slowest_case(list(github_timing_cases(corpora)))
    print(f"github (all bodies, timing only): slowest {name} {ms:.2f} ms")
