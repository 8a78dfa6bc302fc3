"""Where the shared mail corpora are: $MAILTICKET_CORPORA, else the nearest shared/corpora
beside the repository or in a folder above it (a worktree sits deeper than a checkout)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def find_corpora() -> Path:
    if os.environ.get("MAILTICKET_CORPORA"):
        return Path(os.environ["MAILTICKET_CORPORA"])
    for folder in (REPO, *REPO.parents):
        candidate = folder / "shared" / "corpora"
        if candidate.is_dir():
            return candidate
    return REPO.parent / "shared" / "corpora"


def corpus_files(folder: Path | None = None, *, max_size: int | None = None) -> list[Path]:
    """Every file under ``folder`` (the corpora by default), sorted; with ``max_size``, only the
    files smaller than that many bytes."""
    root = find_corpora() if folder is None else Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and (max_size is None or p.stat().st_size < max_size))
