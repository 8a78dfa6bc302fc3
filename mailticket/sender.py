"""The outbox drained in a thread of its own, beside the loop that processes mail.

The main thread processes incoming mail; this thread sends what it queued. Waiting for the SMTP
server (a cloud relay can take a second a mail) then never holds up the intake, and
acknowledgements leave during a backlog.

On PostgreSQL each mail is sent inside a transaction of this thread's own connection that holds
the mail's outbox row. On SQLite the main thread holds the one write lock for a whole batch, so
this thread does not write there: each sent mail is recorded in the sent log beside the
database (``sentlog``) and the main thread folds it into the outbox between batches.
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

    def __init__(self, *, transport, clock, config, worker: str, stop: threading.Event, on_failed, next_due_in,
                 sent_log=None, on_sent=None):
        super().__init__(name="mailticket-sender", daemon=True)
        self.transport, self.clock, self.config, self.worker = transport, clock, config, worker
        self.sent_log = sent_log
        self.on_sent = on_sent  # the main loop comes round: folds the sent log, updates the status
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
                                          on_failed=self.on_failed, stop=self.stop, sent_log=self.sent_log)
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
                if result.sent and self.on_sent is not None:
                    self.on_sent()
                if not result.sent:
                    self.wake.wait(min(1.0, self.next_due_in()))
        finally:
            _close_connection()
            if self.sent_log is not None:
                self.sent_log.close()


def _close_connection() -> None:
    """This thread's own connection (peewee keeps one per thread)."""
    try:
        database_proxy.obj.close()
    except Exception:
        pass
