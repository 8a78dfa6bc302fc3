"""The command line's argument checks: every value is checked where argparse reads it (``type=``),
so a wrong one is a usage error (exit 2) on one line naming the argument and what is valid, before
any config, database or mail server is touched; and no value reaches the database or the date
arithmetic that they cannot hold (a ticket number past PostgreSQL's integer, a date past the year
9999, a NUL byte in a search word).
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import date, timedelta
from pathlib import Path

from .exitcodes import EXIT_USAGE

# Row numbers (tickets, stored mails, outgoing mails) are PostgreSQL integers: 1 to 2^31 - 1.
LARGEST_ID = 2_147_483_647
STATUSES = ("new", "open", "pending", "resolved", "closed", "active")
# Report days: the desk's dates, from the epoch to far past any real report (and far from year 9999,
# where a local midnight turned into UTC, or seven days taken from it, would overflow).
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2199, 12, 31)


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line: the command, the argument, what is valid, where
    to read more (argparse's own prints the whole usage first, which for `tickets` is six lines).
    Options are spelled out: no abbreviations (``--stat`` for ``--status``), so that a script's
    line keeps its meaning when a later version adds an option that shares the prefix."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # the subcommands' parsers are made by this class too
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")


def _checked(name: str, check):
    """A ``type=`` function whose ValueError becomes argparse's usage error with its own message."""
    def convert(text: str):
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = name  # argparse names the type in some messages
    return convert


def _whole(text: str, low: int, high: int, what: str) -> int:
    valid = f"{what}, a whole number from {low} to {high}"
    if not re.fullmatch(r"[+-]?\d+", text.strip()):
        raise ValueError(f"{text!r} is not {valid}")
    if len(text.strip()) > 40 or not low <= int(text) <= high:  # 40 digits: never a huge int() to print
        raise ValueError(f"{text[:40]!r}{'...' if len(text) > 40 else ''} is out of range; valid: {valid}")
    return int(text)


def number(low: int, high: int, what: str):
    """``type=`` for a whole number in ``low..high``."""
    return _checked("number", lambda text: _whole(text, low, high, what))


def ticket_number(text: str) -> int:
    return _checked("ticket number", lambda t: _whole(t, 1, LARGEST_ID, "a ticket number as in [SD#123]"))(text)


def row_id(what: str):
    """``type=`` for the ID of a stored or outgoing mail, as the list shows it."""
    return number(1, LARGEST_ID, what)


def id_or_all(what: str):
    """``type=`` for ``ID`` or ``all``: the string ``"all"`` or the ID as an int."""
    def check(text: str):
        if text.strip().lower() == "all":
            return "all"
        try:
            return _whole(text, 1, LARGEST_ID, what)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is neither {what} (1 to {LARGEST_ID}) nor 'all'") from None
    return _checked("ID or all", check)


def duration(low: str, high: str):
    """``type=`` for a duration (``10m``, ``2h``, ``1d``) in ``low..high``."""
    from ..durations import format_duration, parse_duration, parse_seconds
    least, most = parse_duration(low), parse_duration(high)

    def check(text: str) -> timedelta:
        seconds = parse_seconds(text)
        if not least.total_seconds() <= seconds <= most.total_seconds():
            raise ValueError(f"{text[:40]!r} is out of range; valid: a duration from {format_duration(least)} "
                             f"to {format_duration(most)}, e.g. 30m or 2h")
        return timedelta(seconds=seconds)
    return _checked("duration", check)


def day(text: str) -> str:
    """``type=`` for a report day: an ISO date in the calendar, 1970-01-01..2199-12-31 (kept as text:
    the command makes it a local midnight in the desk's time zone)."""
    def check(t: str) -> str:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            raise ValueError(f"{t[:40]!r} is not an ISO date like 2026-11-01 (YYYY-MM-DD)")
        try:
            when = date.fromisoformat(t)
        except ValueError:
            raise ValueError(f"{t!r} is not a date in the calendar") from None
        if not FIRST_DAY <= when <= LAST_DAY:
            raise ValueError(f"{t!r} is out of range; valid: a day from {FIRST_DAY} to {LAST_DAY}")
        return t
    return _checked("date", check)(text)


def text(most: int, what: str):
    """``type=`` for a word to search or record: at most ``most`` characters, no control characters
    (PostgreSQL refuses a NUL in text, and a newline would forge a line of the output)."""
    def check(t: str) -> str:
        if len(t) > most:
            raise ValueError(f"is {len(t)} characters long; valid: {what}, at most {most} characters")
        if any(ord(c) < 32 or ord(c) == 127 for c in t):
            raise ValueError(f"{t[:40]!r} has a control character; valid: {what}")
        return t
    return _checked("text", check)


def import_source(text: str) -> Path:
    """``type=`` for ``import PATH``: an mbox file, a maildir folder or one mail file (see
    importer.source_kind), else a usage error saying what it is instead."""
    from .importer import NotASource, source_kind
    path = Path(text)
    try:
        source_kind(path)
    except NotASource as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return path



def new_folder(text: str) -> Path:
    """``type=`` for ``backup DIR``: a folder, or a path one can be made at (whether it is empty is
    the backup's own check, exit 1)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file or a device, not a folder; give a new or empty folder")
    if not path.exists():
        parent = next((p for p in path.absolute().parents if p.exists()), None)
        if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"{path} cannot be made: {parent} is not a folder this user may "
                                             "write in; give a new or empty folder")
    return path
