"""Which queued mails the sender process has sent, recorded beside the SQLite database.

SQLite has one write lock, and the daemon holds it while it processes a batch of incoming
mail (group commit). A sender that waited for that lock after each mail would stall for the
length of a batch; one that recorded its mails in bulk later would let a crash send many of them
twice. So the sender records each sent mail at once in a small SQLite file of its own
(``<database>.sent``), which never waits for the main database, and the daemon folds those
records into the outbox rows between batches, every turn of the loop, and at start.

A crash of the daemon therefore still sends one duplicate at most (the mail in hand). Like the
outbox's own sent marks (``db.lazy_commits``) the file is not flushed to disk per record: a
power cut may send the last few again, with the same Message-IDs.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import peewee as pw

from ..db import describe_error, write_transaction
from .outbox import record_sent


class SentLog:
    """The ``.sent`` file beside a SQLite database; each thread has its own connection to it."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._local = threading.local()
        self._conn()  # create the file and its table now

    @classmethod
    def beside(cls, database_path: str) -> "SentLog":
        return cls(f"{database_path}.sent")

    @contextmanager
    def _errors_named(self):
        """A failure of this file (disk full, no permission) is a database failure that names it:
        the daemon logs it, backs off and tries again, as for the database itself."""
        try:
            yield
        except sqlite3.Error as exc:
            raise pw.OperationalError(f"sent log {self.path}: {describe_error(exc, self.path)}") from exc

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._errors_named():
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode = wal")
                conn.execute("PRAGMA synchronous = normal")
                conn.execute("CREATE TABLE IF NOT EXISTS sent (outbox_id INTEGER PRIMARY KEY, sent_at TEXT NOT NULL)")
            self._local.conn = conn
        return conn

    def record(self, outbox_id: int, at: datetime) -> None:
        """This entry was accepted by the mail server: committed before the next mail is sent."""
        with self._errors_named():
            self._conn().execute("INSERT OR REPLACE INTO sent VALUES (?, ?)", (outbox_id, at.isoformat()))

    def ids(self) -> set[int]:
        """The ids recorded here and not yet folded into the outbox (no times read: the sender asks
        this before every batch, and while the daemon is idle the log can hold thousands)."""
        with self._errors_named():
            return {ident for (ident,) in self._conn().execute("SELECT outbox_id FROM sent")}

    def pending(self) -> dict[int, datetime]:
        """Recorded here and not yet folded into the outbox."""
        with self._errors_named():
            rows = self._conn().execute("SELECT outbox_id, sent_at FROM sent").fetchall()
        return {ident: datetime.fromisoformat(at) for ident, at in rows}

    def fold(self) -> int:
        """Mark what is recorded here as sent in the outbox (one transaction), then forget it.
        A crash in between only makes the next fold mark rows that are marked already."""
        pending = self.pending()
        if not pending:
            return 0
        with write_transaction():
            for ident, at in pending.items():
                record_sent(ident, at)
        with self._errors_named():
            conn = self._conn()
            with conn:  # one transaction: committed at the end, rolled back on an error
                conn.execute("BEGIN")
                conn.executemany("DELETE FROM sent WHERE outbox_id = ? AND sent_at = ?",
                                 [(ident, at.isoformat()) for ident, at in pending.items()])
        return len(pending)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
