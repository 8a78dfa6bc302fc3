"""Small operating-system helpers shared by the test servers."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import time

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:`port` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def in_ci() -> bool:
    """True when the CI environment variable is set (missing servers must then fail)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def is_root() -> bool:
    """True when running as uid 0."""
    return os.geteuid() == 0


def apt_install(*packages: str) -> bool:
    """Install Debian packages with apt-get when root; return False when not possible."""
    if not is_root() or shutil.which("apt-get") is None:
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL, env=env)
    with open("/tmp/mailticket-apt.lock", "w") as lock:  # parallel test workers take turns
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)
        done = subprocess.run(["apt-get", "install", "-y", "-qq", *packages],
                              check=False, **quiet)
    return done.returncode == 0


def is_alive(pid: int) -> bool:
    """True if `pid` runs; a zombie (state Z, PID 1 here does not reap) counts as dead."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] not in ("Z", "X")


def wait_dead(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for `pid` to end; return True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.02)
    return not is_alive(pid)
