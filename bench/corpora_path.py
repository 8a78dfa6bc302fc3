"""Where the mail corpora are: $MAILTICKET_CORPORA, else the nearest shared/corpora beside the
repository or in a folder above it (a worktree sits deeper than a checkout), else the curated
share bundled in tests/data/corpora (bench/curate_corpora.py), so that a fresh clone measures too."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "tests" / "data" / "corpora"


def find_corpora() -> Path:
    if os.environ.get("MAILTICKET_CORPORA"):
        return Path(os.environ["MAILTICKET_CORPORA"])
    for folder in (REPO, *REPO.parents):
        candidate = folder / "shared" / "corpora"
        if candidate.is_dir():
            return candidate
    return BUNDLED


def is_bundled(corpora: Path | None = None) -> bool:
    """Are these the bundled share (fewer files: tests scale their counts) rather than the full corpora?"""
    return (corpora or find_corpora()).resolve() == BUNDLED.resolve()


def corpus_files(folder: Path | None = None, *, max_size: int | None = None) -> list[Path]:
    """Every file under ``folder`` (the corpora by default), sorted; with ``max_size``, only the
    files smaller than that many bytes."""
    root = find_corpora() if folder is None else Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and (max_size is None or p.stat().st_size < max_size))
