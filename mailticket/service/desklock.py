"""The running daemons' hold on their data folder: one desk, one sender, and `mailticket restore`
never overwrites a running desk.

On SQLite a desk has one daemon. It holds an exclusive ``flock`` on ``DATA_DIR/mailticket.lock``
and on ``<database>.lock`` beside the database file (two configurations with the same database
and different data folders are one desk too), taken before anything else starts: the sender
process, the listener, the IMAP loop. A second ``mailticket run`` stops there, naming the first
(process, host, start time, as written into the lock file) and the lock file. The sender process
inherits the hold, so the desk is free only once both have ended.

On PostgreSQL the daemons of a scale-out share the desk: each holds a shared ``flock`` (the IMAP
folder's lease and the outbox's row locks keep them apart), and restore takes it exclusively, or
refuses and names who holds it. The kernel drops a lock with its process, so a killed daemon
never leaves a stale one; the words in the file are only believed while its process holds it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from datetime import datetime, timezone
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


ORPHAN_WAIT = 20.0  # seconds to wait for the sender of a daemon that died to finish its mail


def hold_alone(paths: list[Path], what: str = "daemon", orphan_wait: float = ORPHAN_WAIT) -> list[int]:
    """A SQLite daemon's hold: exclusive locks on each lock file (the data folder's, the database's),
    each written with who holds it. Raises DeskBusy naming the holder and the file; holds none then.
    A lock held only by the sender process of a daemon that died (it finishes the mail in hand,
    then exits) is waited for, ``orphan_wait`` seconds at most."""
    fds: list[int] = []
    try:
        for path in paths:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                _lock_or_wait_for_orphan(fd, path, orphan_wait)
            except BlockingIOError:
                os.close(fd)
                raise DeskBusy(f"another mailticket is running on this desk: {_holder_text(path)} holds {path}; "
                               "stop it first (systemctl stop mailticket), or give this one a data_dir and a "
                               "database of its own") from None
            fds.append(fd)
            _write_holder(fd, what)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def _lock_or_wait_for_orphan(fd: int, path: Path, wait: float) -> None:
    import time
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            if not _only_orphans_hold(path):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # once more: the holder may have just let go
                return
            time.sleep(0.1)


def _only_orphans_hold(path: Path) -> bool:
    """The daemon that wrote the file is gone, and someone still holds the lock: its sender."""
    pids = _holders_of(path)
    pid = _words(path).get("pid", "")
    return bool(pids) and pid.isdigit() and int(pid) not in pids


def _words(path: Path) -> dict[str, str]:
    try:
        return dict(item.split("=", 1) for item in path.read_text().split()[1:] if "=" in item)
    except (OSError, ValueError):
        return {}


def _write_holder(fd: int, what: str) -> None:
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"{what} pid={os.getpid()} host={socket.gethostname()} started={started}\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    except OSError:
        pass  # a full disk: the lock holds all the same, the message names the process from /proc/locks


def _holder_text(path: Path) -> str:
    """'mailticket daemon (process 123 on host h, started 2026-...)', from the words in the file
    if the process they name holds the lock, else from /proc/locks alone."""
    pids = _holders_of(path)
    words = _words(path)
    try:
        kind = path.read_text().split()[0]
    except (OSError, IndexError):
        kind = "daemon"
    pid = words.get("pid", "")
    if pid.isdigit() and (not pids or int(pid) in pids):
        return (f"mailticket {kind} (process {pid} on host {words.get('host', '?')}, "
                f"started {words.get('started', '?')})")
    return f"process {', '.join(map(str, pids)) or '?'}"


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
    _write_holder(fd, "restore")
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def release_all(fds) -> None:
    for fd in fds or ():
        os.close(fd)


def holders(data_dir: Path) -> list[int]:
    """The processes holding a lock on the desk's lock file, from /proc/locks (Linux; else [])."""
    return _holders_of(Path(data_dir) / LOCK_FILE)


def _holders_of(path: Path) -> list[int]:
    try:
        inode = Path(path).stat().st_ino
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
