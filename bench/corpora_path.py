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
