"""The running daemons' hold on their data folder, so that `mailticket restore` never overwrites
a running desk.

Every daemon holds a shared ``flock`` on ``DATA_DIR/mailticket.lock`` while it runs (several
daemons of one desk share it); restore takes it exclusively, or refuses and names who holds it.
The kernel drops a lock with its process, so a killed daemon never leaves a stale one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "mailticket.lock"


class DeskBusy(Exception):
    """Another process holds the desk's lock; the message says who."""


def _open(data_dir: Path) -> int:
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    return os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def hold_shared(data_dir: Path) -> int:
    """The daemon's hold (a file descriptor; closing it lets go). Raises DeskBusy while a restore
    runs."""
    fd = _open(data_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DeskBusy(f"{Path(data_dir) / LOCK_FILE} is held by a restore (process {holders(data_dir) or '?'}); "
                       "start the daemon once it has finished") from None
    return fd


def hold_exclusive(data_dir: Path) -> int:
    """Restore's hold: nobody else may run on the desk meanwhile. Raises DeskBusy naming the
    processes of the running daemons."""
    fd = _open(data_dir)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pids = holders(data_dir)
        raise DeskBusy(f"a daemon is running on this desk (process {', '.join(map(str, pids)) or '?'} holds "
                       f"{Path(data_dir) / LOCK_FILE}); stop it first (systemctl stop mailticket)") from None
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def holders(data_dir: Path) -> list[int]:
    """The processes holding a lock on the desk's lock file, from /proc/locks (Linux; else [])."""
    try:
        inode = (Path(data_dir) / LOCK_FILE).stat().st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    pids = set()
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a waiter, not a holder
            continue
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            pids.add(int(fields[4]))
    return sorted(pids)
