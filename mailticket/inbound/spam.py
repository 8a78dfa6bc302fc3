"""Upstream spam verdicts: did the filter in front of the mailbox call this mail spam?

The desk does no spam filtering of its own; it honours the verdict a filter on the way in wrote
into the header (SPEC "Admin safety"). Each verdict header is a row of ``VERDICTS`` with the
filter that writes it. Only the topmost instance of each header is read: a filter in front of
our mailbox adds its header above everything that was in the mail already, so a verdict a
sender wrote into their own mail lower down never counts (and one saying "No" never helps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from typing import Callable

__all__ = ["VERDICTS", "Verdict", "spam_verdict"]


def _yes(value: str) -> bool:
    """``YES``, ``Yes, score=7.1 required=5.0 …``, ``yes; 12.00 / 15.00`` …"""
    return re.match(r"\s*yes\b", value, re.I) is not None


def _scl_five_or_more(value: str) -> bool:
    """Exchange's spam confidence level, -1 (trusted) to 9; 5 and above is spam."""
    found = re.match(r"\s*(-?\d+)", value)
    return found is not None and int(found.group(1)) >= 5


@dataclass(frozen=True)
class Verdict:
    header: str              # lower-case header name
    says_spam: Callable[[str], bool]
    filter: str              # the filter that writes it
    note: str                # what it writes, and when


VERDICTS: tuple[Verdict, ...] = (
    Verdict("x-spam-flag", _yes, "SpamAssassin", "spamd/amavisd-new: YES once the score passes required"),
    Verdict("x-spam-status", _yes, "SpamAssassin", "'Yes, score=7.1 required=5.0 tests=…'; amavisd-new alike"),
    Verdict("x-spam", _yes, "rspamd", "milter_headers' x-spam routine: 'Yes' above the add-header score"),
    Verdict("x-ms-exchange-organization-scl", _scl_five_or_more, "Microsoft Exchange",
            "spam confidence level -1..9, 5 and above is spam (Exchange Online alike)"),
)


def spam_verdict(msg: Message) -> str | None:
    """The reason when an upstream filter called the mail spam (``"X-Spam-Flag: YES (SpamAssassin)"``),
    else None. Never raises."""
    for verdict in VERDICTS:
        try:
            value = msg.get(verdict.header)
        except Exception:  # noqa: BLE001 - a header the parser cannot read is no verdict
            continue
        if value is None:
            continue
        text = " ".join(str(value).split())
        if verdict.says_spam(text):
            return f"{_display(verdict.header)}: {text[:80]} ({verdict.filter})"
    return None


def _display(name: str) -> str:
    return "-".join("MS" if part == "ms" else "SCL" if part == "scl" else part.capitalize()
                    for part in name.split("-"))
