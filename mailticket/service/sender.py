"""The outbox drained by a process of its own, beside the daemon that processes mail.

The daemon takes mail in; the sender process sends what it queued. Waiting for the SMTP server
(a cloud relay can take a second a mail) then never holds up the intake, acknowledgements leave
during a backlog, and sending runs on a core of its own: as a thread of the daemon it shared one
interpreter lock with the intake, and a backlog went no faster than both together
(bench/RESULTS.md).

The daemon starts ``python -m mailticket.service.sender`` and writes its configuration to the process's
standard input, then one byte whenever it queued new mail. The process stops when that input
closes: when the daemon asks it to (shutdown, SIGHUP), and when the daemon dies, even by SIGKILL.
SIGTERM and SIGINT stop it too (an admin's kill of the process group, Ctrl-C in a terminal). It
finishes the mail in hand first, for ABORT_AFTER seconds at most: a relay that accepted the
connection and never answers would otherwise hold the stop for the whole SMTP timeout. That
mail's session is then cut; the mail stays queued, untouched, and goes at the next start.
Each time it has sent mail it writes how many on its standard output, and the daemon comes round
to fold them in and to update its status line. Its log lines go to the daemon's standard error,
so to the same journal.

Its standard input is read with ``os.read`` on the descriptor, by a thread that the main thread
joins before it returns, never through ``sys.stdin``: a daemon thread blocked in a read of the
buffered ``sys.stdin`` held that object's lock when the interpreter shut down, and CPython then
aborted the process ("Fatal Python error: _enter_buffered_busy", SIGABRT) at every stop.

On SQLite the daemon passes its hold on the desk's lock (``desklock``) down to this process, so
that a second daemon cannot start, and send the same queue, while this one still finishes a mail
after its daemon was killed.

The daemon queues most mails as drafts (``drafts``): recipients, Message-ID, thread headers and
signed addresses decided, the template's values kept. This process renders and writes each one
as it sends it, so the Jinja rendering and the MIME writing run on its core too.

On PostgreSQL each mail is sent inside a transaction of the process's own connection that holds
the mail's outbox row. On SQLite the daemon holds the one write lock for a whole batch, so the
sender does not write there: each sent mail is recorded in the sent log beside the database
(``sentlog``), and the daemon folds it into the outbox between batches.
"""

from __future__ import annotations

import logging
import os
import pickle
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import peewee as pw

from ..outbound import outbox
from ..db import describe_error, sqlite_path
from ..models import database_proxy

log = logging.getLogger("mailticket.sender")  # by name: the sender process runs this module as __main__

MAX_BACKOFF = 60.0
ABORT_AFTER = 5.0  # seconds a stop waits for the mail in hand before it cuts that mail's SMTP session
STOP_WAIT = 15.0  # seconds the daemon waits for the process to stop before it kills it
_WAKE = b"w"
_LENGTH = struct.Struct(">Q")  # the configuration's pickle is sent after its length
_READY = b"ready\n"


class SendLoop:
    """Drains the outbox until ``stop`` is set; ``wake`` says new mail was queued."""

    def __init__(self, *, transport, clock, config, worker: str, stop: threading.Event, wake: threading.Event,
                 on_failed, compose, sent_log=None, on_sent=None):
        self.transport, self.clock, self.config, self.worker = transport, clock, config, worker
        self.compose = compose  # an entry's bytes, its draft rendered (Mailer.mail_bytes)
        self.stop, self.wake, self.on_failed = stop, wake, on_failed
        self.sent_log = sent_log
        self.on_sent = on_sent  # told how many were sent by each drain that sent any

    def run(self) -> None:
        backoff = 1.0
        try:
            while not self.stop.is_set():
                self.wake.clear()
                try:
                    result = outbox.drain(self.transport, self.clock.now(), self.config.outbox, worker=self.worker,
                                          on_failed=self.on_failed, stop=self.stop, sent_log=self.sent_log,
                                          compose=self.compose)
                    backoff = 1.0
                except (pw.OperationalError, pw.InterfaceError) as exc:
                    log.error("sending failed: database: %s; retrying in %.0f s",
                              describe_error(exc, sqlite_path(self.config.database.url)), backoff)
                    _close_connection()
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                except Exception:
                    log.exception("sending failed; retrying in %.0f s", backoff)
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                if result.sent and self.on_sent is not None:
                    self.on_sent(result.sent)
                if not result.sent:
                    self.wake.wait(min(1.0, outbox.next_due_in(self.clock.now())))
        finally:
            _close_connection()
            if self.sent_log is not None:
                self.sent_log.close()


def tell_admin_failed(desk, entry) -> None:
    """Queue the admin's alert for an outbox entry that failed for good (desk/deliveryalerts.py)."""
    from ..desk import deliveryalerts
    from ..models import Outbox
    with Outbox._meta.database.atomic():
        deliveryalerts.alert(desk, entry, ", ".join(entry.recipients), entry.last_error, desk.clock.now(),
                             bounced=False)


def _close_connection() -> None:
    """This thread's own connection (peewee keeps one per thread)."""
    try:
        database_proxy.obj.close()
    except Exception:
        pass


# ---------------------------------------------------------------- the daemon's side

class SenderProcess:
    """The daemon's handle on its sender process: start it, nudge it, count what it sent, stop it."""

    def __init__(self, config, *, worker: str, on_sent=None, keep_fds: tuple[int, ...] = ()):
        self.config, self.worker, self.on_sent = config, worker, on_sent
        self.keep_fds = tuple(keep_fds)  # held by the child too (the desk's lock: desklock)
        self.sent = 0  # for the status line
        self.proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._answered = threading.Event()  # it said it is ready, or it ended
        self._ready = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, ready_timeout: float = 30) -> "SenderProcess":
        """Start the process and wait until it can send (its database connected), so that sending
        is up before the first mail is taken in."""
        package_root = str(Path(__file__).resolve().parents[2])  # the child runs this very code
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "mailticket.service.sender"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, close_fds=True, pass_fds=self.keep_fds)
        try:
            blob = pickle.dumps((self.config, self.worker, logging.getLogger().level))
            self.proc.stdin.write(_LENGTH.pack(len(blob)) + blob)
            self.proc.stdin.flush()
        except BrokenPipeError:  # it exited before reading: reported below, with its exit status
            pass
        os.set_blocking(self.proc.stdin.fileno(), False)  # a nudge never blocks the daemon
        self._reader = threading.Thread(target=self._read_counts, name="mailticket-sender-counts", daemon=True)
        self._reader.start()
        self._answered.wait(ready_timeout)
        if self._ready:
            log.info("sender process %s started", self.proc.pid)
        elif not self.is_alive():
            log.error("sender process %s exited at start with status %s (its error is logged above); "
                      "the daemon starts it again at a later turn, 10 s after this start at the earliest",
                      self.proc.pid, self.proc.poll())
        else:
            log.warning("sender process %s is not ready after %.0f s; going on without waiting",
                        self.proc.pid, ready_timeout)
        return self

    def _read_counts(self) -> None:
        for line in self.proc.stdout:
            if line == _READY:
                self._ready = True
                self._answered.set()
                continue
            try:
                self.sent += int(line)
            except ValueError:
                continue
            if self.on_sent is not None:
                self.on_sent()
        self.proc.wait()  # its output ended: so has it
        self._answered.set()

    def is_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def nudge(self) -> None:
        """New mail is queued. (A full pipe means plenty of nudges are waiting already.)"""
        if not self.is_alive():
            return
        try:
            self.proc.stdin.write(_WAKE)
            self.proc.stdin.flush()
        except (BlockingIOError, BrokenPipeError, ValueError):
            pass

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """Close its input, so that it finishes the mail in hand (ABORT_AFTER at most) and exits;
        kill it after ``timeout``."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except (BlockingIOError, BrokenPipeError):
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("sender process %s did not stop within %.0f s; killing it", self.proc.pid, timeout)
            self.proc.kill()
            self.proc.wait()
        if self.proc.returncode not in (0, -signal.SIGTERM):
            log.error("sender process %s exited with %s", self.proc.pid, self.proc.returncode)
        self.close()

    def close(self) -> None:
        """Release the pipes of a process that has ended."""
        if self.proc is None:
            return
        self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except (BlockingIOError, BrokenPipeError):
                pass


# ---------------------------------------------------------------- the sender process itself

def main() -> int:
    control = Control(sys.stdin.fileno())
    config, worker, level = pickle.loads(control.read_config())
    from .logsetup import configure
    configure(level)
    stop, wake = threading.Event(), threading.Event()

    def halt(*_):  # a signal handler too: only sets flags and writes to a pipe
        stop.set()
        wake.set()
        control.poke()
    signal.signal(signal.SIGTERM, halt)
    signal.signal(signal.SIGINT, halt)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the daemon reloads, then starts a new sender

    from .. import db
    from .transport import make_transport
    from .wiring import build_desk
    from ..outbound.sentlog import SentLog
    transport = make_transport(config)
    watcher = threading.Thread(target=control.watch, args=(stop, wake, halt, transport), name="mailticket-control")
    watcher.start()
    try:
        db.connect(config.database.url, migrate=False)
        desk = build_desk(config)
        path = db.sqlite_path(config.database.url)
        out = sys.stdout.buffer

        def report(count: int) -> None:
            out.write(b"%d\n" % count)
            out.flush()
        sent_log = SentLog.beside(path) if path else None
        desk.renderer.warm()  # it renders the queued drafts: the first acknowledgement must not wait for Jinja
        out.write(_READY)
        out.flush()
        SendLoop(transport=transport, clock=desk.clock, config=config, worker=worker, stop=stop, wake=wake,
                 on_failed=partial(tell_admin_failed, desk), compose=desk.mailer.mail_bytes, sent_log=sent_log,
                 on_sent=report).run()
    finally:
        halt()
        control.done()
        watcher.join()
    log.info("sender process %s stopped", os.getpid())
    return 0


class Control:
    """The daemon's end of the pipe, read with os.read on its descriptor (no buffered object, no
    lock to be held at exit), and a pipe of our own that wakes the watcher (``poke``)."""

    def __init__(self, fd: int):
        self.fd = fd
        self._poke_r, self._poke_w = os.pipe()
        os.set_blocking(self._poke_w, False)
        self._finished = False

    def read_config(self) -> bytes:
        head = self._read_exactly(_LENGTH.size)
        return self._read_exactly(_LENGTH.unpack(head)[0])

    def _read_exactly(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            data = os.read(self.fd, min(left, 1 << 20))
            if not data:
                raise SystemExit("mailticket sender: the daemon closed the pipe before the configuration was read")
            chunks.append(data)
            left -= len(data)
        return b"".join(chunks)

    def poke(self) -> None:
        try:
            os.write(self._poke_w, b"!")
        except (BlockingIOError, OSError):
            pass  # full: the watcher is woken already

    def done(self) -> None:
        """The main thread is through: the watcher ends."""
        self._finished = True
        self.poke()

    def watch(self, stop: threading.Event, wake: threading.Event, halt, transport) -> None:
        """Each byte from the daemon is a nudge; the end of the input (the daemon closed it or died)
        stops us. Once stopping, the mail in hand has ABORT_AFTER seconds; then its session is cut."""
        sel = selectors.DefaultSelector()
        sel.register(self.fd, selectors.EVENT_READ)
        sel.register(self._poke_r, selectors.EVENT_READ)
        abort_at = None
        try:
            while not self._finished:
                if stop.is_set() and abort_at is None:
                    abort_at = time.monotonic() + ABORT_AFTER
                timeout = None if abort_at is None else max(0.0, abort_at - time.monotonic())
                if abort_at is not None and timeout == 0.0:
                    log.warning("the mail in hand is not sent after %.0f s of stopping: cutting its SMTP session; "
                                "it stays queued and goes at the next start", ABORT_AFTER)
                    transport.abort()
                    abort_at = float("inf")  # once
                    continue
                for key, _ in sel.select(None if timeout == float("inf") else timeout):
                    if key.fd == self._poke_r:
                        os.read(self._poke_r, 4096)
                        continue
                    data = os.read(self.fd, 4096)
                    if data:
                        wake.set()
                    else:
                        sel.unregister(self.fd)
                        halt()
        finally:
            sel.close()


if __name__ == "__main__":
    sys.exit(main())
