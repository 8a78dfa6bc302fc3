"""The outbox drained in a thread of its own, beside the loop that processes mail (PostgreSQL).

On PostgreSQL each mail is sent inside a transaction that holds its outbox row, so a thread with
its own connection can send while the main thread processes incoming mail: acknowledgements
leave during a backlog, and the time spent waiting for the SMTP server overlaps the processing.

SQLite has one write lock, held by the main thread for each batch of incoming mail; a sender
thread would wait for it after every mail, or record its mails in bulk and break the promise of
one duplicate at most after a crash. There the main loop drains between batches instead.
"""

from __future__ import annotations

import logging
import threading

import peewee as pw

from . import outbox
from .db import describe_error
from .models import database_proxy

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0


class Sender(threading.Thread):
    """Drains the outbox until ``stop`` is set; ``wake`` says new mail was queued."""

    def __init__(self, *, transport, clock, config, worker: str, stop: threading.Event, on_failed, next_due_in):
        super().__init__(name="mailticket-sender", daemon=True)
        self.transport, self.clock, self.config, self.worker = transport, clock, config, worker
        self.stop, self.on_failed, self.next_due_in = stop, on_failed, next_due_in
        self.wake = threading.Event()
        self.sent = 0  # for the status line

    def run(self) -> None:
        backoff = 1.0
        try:
            while not self.stop.is_set():
                self.wake.clear()
                try:
                    result = outbox.drain(self.transport, self.clock.now(), self.config.outbox, worker=self.worker,
                                          on_failed=self.on_failed, stop=self.stop)
                    backoff = 1.0
                except (pw.OperationalError, pw.InterfaceError) as exc:
                    log.error("sending failed: database: %s; retrying in %.0f s", describe_error(exc), backoff)
                    _close_connection()
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                except Exception:
                    log.exception("sending failed; retrying in %.0f s", backoff)
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                self.sent += result.sent
                if not result.sent:
                    self.wake.wait(min(1.0, self.next_due_in()))
        finally:
            _close_connection()


def _close_connection() -> None:
    """This thread's own connection (peewee keeps one per thread)."""
    try:
        database_proxy.obj.close()
    except Exception:
        pass
