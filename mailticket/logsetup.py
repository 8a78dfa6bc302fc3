"""Logs to stderr, one line per event, for the journal. Secrets are never formatted into them."""

import logging
import sys


def configure(level=logging.INFO) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("peewee", "mail.log", "imapclient", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
