"""Every file of the shared corpora goes through parse_mail: nothing but QuarantineError
may come out, mails are (nearly) never quarantined, no file takes 2 s.

A file counts as a mail when its first line is a header field ("Name: value") or an mbox
"From " line; other files (JSON expectations, .list files, licences, bare reply bodies,
TNEF blobs) are parsed too and may be quarantined as "not a mail".
"""

import re
import time
from pathlib import Path

import pytest

from mailticket.errors import QuarantineError
from mailticket.inbound.parse import parse_mail
from mailticket.inbound.tnef import open_tnef
from bench.corpora_path import corpus_files as all_files, find_corpora
from tests.harness import at_least

MAIL_START = re.compile(rb"\s*(?:From |[\x21-\x39\x3b-\x7e]+[ \t]*:)")



CORPORA = find_corpora()
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"corpora missing: {CORPORA}")


def corpus_files() -> list[Path]:
    return all_files(CORPORA)


@needs_corpora
def test_every_corpus_file_parses_or_is_quarantined_with_a_reason(capsys):
    crashed, quarantined_mails, slow = [], [], []
    files = mails = parsed = 0
    slowest = (0.0, "")
    for path in corpus_files():
        raw = path.read_bytes()
        is_mail = bool(MAIL_START.match(raw[:1000]))
        files, mails = files + 1, mails + is_mail
        start = time.perf_counter()
        try:
            result = parse_mail(raw)
            parsed += 1
            assert "\x00" not in result.text and "\n" not in result.subject, path
        except QuarantineError as exc:
            assert str(exc), f"{path}: quarantined without a reason"
            if is_mail:
                quarantined_mails.append(f"{path.relative_to(CORPORA)}: {exc}")
        except Exception as exc:  # the point of this test: nothing else may escape
            crashed.append(f"{path.relative_to(CORPORA)}: {type(exc).__name__}: {exc}")
        elapsed = time.perf_counter() - start
        slowest = max(slowest, (elapsed, str(path.relative_to(CORPORA))))
        if elapsed >= 2.0:
            slow.append(f"{path.relative_to(CORPORA)}: {elapsed:.2f} s")
    with capsys.disabled():
        print(f"\ncorpora: {files} files, {mails} mails, {parsed} parsed, "
              f"{len(quarantined_mails)} mails quarantined, slowest {slowest[0] * 1000:.0f} ms "
              f"({slowest[1]})")
        for line in quarantined_mails:
            print(f"  quarantined: {line}")
    assert crashed == []
    assert slow == []
    assert mails > at_least(1000, 400)
    assert len(quarantined_mails) <= mails // 200, quarantined_mails  # at most 0.5 %


TNEF_DIR = CORPORA / "mimekit" / "UnitTests" / "TestData" / "tnef"


def expected_tnef_files(listing: Path) -> list[str]:
    """The attachment names of a .list (its body.rtf/body.html lines are the body)."""
    lines = listing.read_text("utf-8", "replace").splitlines()
    return sorted(line for line in lines if line.strip() and not line.startswith("body."))


@pytest.mark.skipif(not TNEF_DIR.is_dir(), reason=f"TNEF corpus missing: {TNEF_DIR}")
def test_tnef_files_match_the_expected_lists_for_most_samples(capsys):
    samples = sorted(TNEF_DIR.glob("*.tnef"))
    matching = [t.stem for t in samples
                if sorted(name for name, _ in open_tnef(t.read_bytes()).files)
                == expected_tnef_files(t.with_suffix(".list"))]
    with capsys.disabled():
        print(f"\nTNEF: {len(matching)}/{len(samples)} samples give exactly the listed files")
    assert len(samples) >= at_least(15, 9)
    assert len(matching) >= len(samples) * 3 // 4
