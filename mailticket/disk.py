"""Flushing to disk: the one place files and folders are fsynced by path."""

from __future__ import annotations

import os
from pathlib import Path


def flush(path: Path) -> None:
    """fsync a file (its data) or a folder (the names in it) by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes) -> None:
    """Create ``path``, which must not exist (a new random name: no reader can know it before the
    commit that names it), write ``data`` and fsync it: on disk when this returns."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
