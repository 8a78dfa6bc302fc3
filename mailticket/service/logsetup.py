"""Logs to stderr, one line per event, for the journal. Secrets are never formatted into them.

Under systemd, stderr is a stream to journald, which reads a ``<N>`` syslog priority at the
start of each line (``SyslogLevelPrefix=`` is on by default): each line carries the priority of
its level, so ``journalctl -p warning -u mailticket`` shows the warnings and errors and nothing
else. systemd says so by ``JOURNAL_STREAM=DEV:INODE`` naming the stream; only when stderr is that
very stream (not a file or pipe a child's stderr was sent to) are the prefixes written. On a
terminal or into a file the lines stay plain.
"""

import logging
import os
import sys

# syslog priorities (RFC 5424 severity) by logging level
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
DEBUG_PRIORITY = 7
FORMAT = "%(levelname)s %(name)s: %(message)s"


def priority(levelno: int) -> int:
    """The syslog priority of a logging level: CRITICAL 2, ERROR 3, WARNING 4, INFO 6, DEBUG 7."""
    return next((p for level, p in PRIORITIES if levelno >= level), DEBUG_PRIORITY)


class OneLineFormatter(logging.Formatter):
    """A record with a traceback (or a message with line breaks) still makes one line: the
    journal shows each line as an entry of its own, and a traceback would read as many events."""

    def format(self, record: logging.LogRecord) -> str:
        return " | ".join(part for part in super().format(record).splitlines() if part.strip())


class JournalFormatter(OneLineFormatter):
    """One line with the record's syslog priority in front (``<4>WARNING mailticket.…``)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{priority(record.levelno)}>{super().format(record)}"


def writes_to_journal(stream=None, environ=None) -> bool:
    """Is ``stream`` (stderr) the journal stream systemd named in JOURNAL_STREAM?"""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        info = os.fstat((stream or sys.stderr).fileno())
        return bool(inode) and (info.st_dev, info.st_ino) == (int(device), int(inode))
    except (OSError, ValueError, AttributeError):  # no file descriptor, or a malformed variable
        return False


def configure(level=logging.INFO, stream=None, journal: bool | None = None) -> None:
    """One stderr handler on the root logger; prefixed for journald when stderr is its stream
    (``journal`` forces either way)."""
    stream = stream or sys.stderr
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(stream)
    prefixed = writes_to_journal(stream) if journal is None else journal
    handler.setFormatter((JournalFormatter if prefixed else OneLineFormatter)(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("peewee", "mail.log", "imapclient", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
