"""Logs to stderr, one line per event, for the journal. Secrets are never formatted into them."""

import logging
import sys


class OneLineFormatter(logging.Formatter):
    """A record with a traceback (or a message with line breaks) still makes one line: the
    journal shows each line as an entry of its own, and a traceback would read as many events."""

    def format(self, record: logging.LogRecord) -> str:
        return " | ".join(part for part in super().format(record).splitlines() if part.strip())


def configure(level=logging.INFO) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("peewee", "mail.log", "imapclient", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
