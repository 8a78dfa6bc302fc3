"""Build ``tests/data/corpora/``: the small curated share of the shared mail corpora that ships with
the repository, so that parsing, reply stripping, bounce and forward detection are measured on
every clone (the full corpora are used instead where they are, see bench/corpora_path.py).

    python -m bench.curate_corpora [FULL_CORPORA_DIR] [--dry-run]

What is taken is decided here, not by hand, so that running it again gives the same files: whole
folders where they are small, a spread of the big ones, only files whose licence lets them be
redistributed with an MIT project (tests/data/corpora/LICENSES.md lists each folder's licence,
copied with the folder's own LICENSE file). Files are copied unmodified under their upstream
relative paths. Left out: flufl.bounce (LGPL-3.0), and the sisimai samples its PROVENANCE file
traces to GPL projects.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpora_path import BUNDLED, corpus_files, find_corpora  # noqa: E402

# folder -> licence (SPDX) of its files
LICENCES = {
    "cpython-test_email": "PSF-2.0", "crisp-email-reply-parser": "MIT", "discourse-email_reply_trimmer": "MIT",
    "django-helpdesk": "BSD-3-Clause", "flanker": "Apache-2.0", "github-email_reply_parser": "MIT",
    "mail-parser-reply": "MIT", "mimekit": "MIT", "nodemailer-mailparser": "MIT",
    "perl-bounceparser": "Artistic-1.0-Perl (dual GPL-1.0-or-later; redistributed under the Artistic License)",
    "realclients": "written for this project (mails made with Debian's mail clients, no third-party text)",
    "roundup": "MIT", "ruby-mail": "MIT", "sisimai-set-of-emails": "BSD-2-Clause (GPL-traced samples left out)",
    "spamscope-mail-parser": "Apache-2.0", "talon": "Apache-2.0", "willdurand-EmailReplyParser": "MIT",
    "zapier-email-reply-parser": "MIT",
}
WHOLE = {"cpython-test_email", "crisp-email-reply-parser", "discourse-email_reply_trimmer", "django-helpdesk",
         "github-email_reply_parser", "mail-parser-reply", "realclients", "roundup", "ruby-mail", "talon",
         "willdurand-EmailReplyParser", "zapier-email-reply-parser"}
# big folders: files up to this many bytes (their licences and expectation files always)
SMALL_FILES = {"flanker": 16_000, "nodemailer-mailparser": 16_000, "spamscope-mail-parser": 40_000,
               "mimekit": 20_000}
TNEF = "mimekit/UnitTests/TestData/tnef"
TNEF_KEEP = {"two-files.tnef", "attachments.tnef"}  # named by tests, whatever their size
PERL_EVERY = 3      # perl-bounceparser: every third bounce, and every negative the tests name
SISIMAI_EVERY = 9   # sisimai: every ninth bsd sample and every non-bounce (with their dos and mac copies),
#                     all of maildir/not
ALWAYS = re.compile(r"(^|/)(LICENSE[^/]*|README[^/]*|PROVENANCE[^/]*|expected[^/]*\.json|labels\.json)$")


def selection(full: Path) -> list[Path]:
    """The files to copy, as paths relative to the full corpora."""
    chosen: list[Path] = []
    for folder in sorted(LICENCES):
        files = [p.relative_to(full) for p in corpus_files(full / folder)]
        if folder in WHOLE:
            chosen += files
        elif folder == "perl-bounceparser":
            chosen += _perl(full, files)
        elif folder == "sisimai-set-of-emails":
            chosen += _sisimai(full, files)
        else:
            chosen += [f for f in files if ALWAYS.search(str(f)) or _tnef(f) or (
                not str(f).startswith(TNEF + "/") and (full / f).stat().st_size <= SMALL_FILES[folder])]
    return chosen


def _tnef(rel: Path) -> bool:
    """The TNEF samples the tests name, and the small ones with their expected lists."""
    if not str(rel).startswith(TNEF + "/") or rel.parent != Path(TNEF):
        return False
    sample = rel.with_suffix(".tnef")
    return sample.name in TNEF_KEEP or (rel.suffix in (".tnef", ".list") and sample.name.startswith(
        ("one-file", "body", "long-filename", "garbage", "multi-name", "data-before", "multi-value")))


def _perl(full: Path, files: list[Path]) -> list[Path]:
    import json
    labels = json.loads((full / "perl-bounceparser" / "expected.json").read_text())
    named = {Path("perl-bounceparser") / k for k, v in labels.items()
             if v.get("is_bounce") is False or "orig_message_id" in v or "warning-8" in k}
    samples = sorted(f for f in files if "/t/corpus/" in f"/{f}")
    return sorted({f for f in files if ALWAYS.search(str(f))} | named | set(samples[::PERL_EVERY]))


def _sisimai(full: Path, files: list[Path]) -> list[Path]:
    gpl = _gpl_traced(full / "sisimai-set-of-emails" / "maildir" / "bsd" / "PROVENANCE-README.md")
    import json
    bsd = sorted(f.name for f in files if f.parent.name == "bsd" and f.suffix == ".eml" and f.name not in gpl)
    labels = json.loads((full / "sisimai-set-of-emails" / "expected.json").read_text())
    not_bounces = {key.split("/")[-1] for key, value in labels.items()  # vacations, complaints, success notices
                   if {r["reason"] for r in value["recipients"]} & {"vacation", "feedback", "delivered"}}
    names = set(bsd[::SISIMAI_EVERY]) | (not_bounces & set(bsd))
    keep = {f for f in files if ALWAYS.search(str(f)) and "mailbox" not in f.parts}
    keep |= {f for f in files if f.parent.name in ("bsd", "dos", "mac") and f.name in names}
    keep |= {f for f in files if f.parent.name == "not"}
    return sorted(keep)


def _gpl_traced(provenance: Path) -> set[str]:
    """Sample names whose PROVENANCE entry names a GPL licence."""
    names, current = set(), None
    for line in provenance.read_text(errors="replace").splitlines():
        sample = re.match(r"\*\s+(\S+\.eml)", line.strip())
        if sample:
            current = sample.group(1)
        elif current and "GPL" in line:
            names.add(current)
    return names


def licences_md(chosen: list[Path], full: Path) -> str:
    rows = []
    for folder, licence in sorted(LICENCES.items()):
        files = [f for f in chosen if f.parts[0] == folder]
        size = sum((full / f).stat().st_size for f in files)
        rows.append(f"| `{folder}/` | {licence} | {len(files)} | {size // 1024} KB |")
    return _LICENCES_HEAD + "\n".join(rows) + "\n" + _LICENCES_TAIL


_LICENCES_HEAD = """# The bundled mail corpora: where they come from, under which licence

A curated share of the mail corpora collected from public projects' test suites (the folder names
and relative paths are theirs). `SOURCES.md` is the full corpora's own README, unmodified: the upstream
project and commit of each folder and the format of its expected results (its "do not copy them into
the project" is about the full set; this share was asked for, issue 24). Each
folder keeps its project's own `LICENSE` file where it has one; the files are copied unmodified.
Built by `python -m bench.curate_corpora` from the full corpora; the tests use the full corpora
instead wherever they are (`MAILTICKET_CORPORA`, or `shared/corpora` beside the checkout).

| folder | licence | files | size |
|---|---|---|---|
"""
_LICENCES_TAIL = """
Not bundled: `flufl.bounce/` (LGPL-3.0, GNU Mailman's bounce samples) and the sisimai samples that
`sisimai-set-of-emails/maildir/bsd/PROVENANCE-README.md` traces to GPL-licensed projects; the tests
that need them run only with the full corpora.
"""


def build(full: Path, target: Path = BUNDLED, dry_run: bool = False) -> tuple[int, int]:
    chosen = selection(full)
    size = sum((full / f).stat().st_size for f in chosen)
    if dry_run:
        return len(chosen), size
    if target.exists():
        shutil.rmtree(target)
    for rel in chosen:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(full / rel, target / rel)
    shutil.copyfile(full / "README.md", target / "SOURCES.md")
    (target / "LICENSES.md").write_text(licences_md(chosen, full), encoding="utf-8")
    return len(chosen), size


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    source = Path(args[0]) if args else find_corpora()
    if not source.is_dir() or source.resolve() == BUNDLED.resolve():
        sys.exit(f"the full corpora are needed, not {source}")
    count, total = build(source, dry_run="--dry-run" in sys.argv)
    print(f"{count} files, {total / 1024 / 1024:.2f} MB" + (" (dry run)" if "--dry-run" in sys.argv else
                                                             f" written to {BUNDLED}"))
