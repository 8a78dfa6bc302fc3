"""Which ticket a mail belongs to: the signed reply address, then References, then the subject tag."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from ..db import fetch_models
from ..models import Ticket

# Reply and forward prefixes in the common languages, repeated and bracketed forms:
# "Re:", "RE[2]:", "Fwd:", "SV:", "VB:", "AW:", "WG:", "VS:", "Antw:", "R:", "RIF:", "回复:", "答复:", "转发:" ...
PREFIXES = ("re", "fw", "fwd", "sv", "vs", "vb", "aw", "wg", "antw", "antwort", "r", "rif", "tr", "res",
            "enc", "odp", "pd", "fs", "vl", "doorst", "ynt", "ilt", "رد", "回复", "回覆", "答复", "转发", "轉寄")
_PREFIX_RE = re.compile(
    r"^\s*(?:(?:\[[^\]]{0,40}\]\s*)?(?:" + "|".join(sorted(map(re.escape, PREFIXES), key=len, reverse=True))
    + r")\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+", re.IGNORECASE)


@lru_cache(maxsize=8)
def tag_pattern(prefix: str) -> re.Pattern:
    return re.compile(r"\[\s*" + re.escape(prefix) + r"\s*#\s*(\d{1,12})\s*\]", re.IGNORECASE)


def format_tag(prefix: str, number: int) -> str:
    return f"[{prefix}#{number}]"


def strip_prefixes(subject: str) -> str:
    """The subject without reply/forward prefixes (any language, repeated, bracketed)."""
    return _PREFIX_RE.sub("", subject or "").strip()


def tag_number(subject: str, prefix: str) -> int | None:
    """The ticket number in the subject tag, wherever it stands under the prefixes."""
    m = tag_pattern(prefix).search(subject or "")
    return int(m.group(1)) if m else None


def clean_subject(subject: str, prefix: str) -> str:
    """The subject for a new ticket: no prefixes, no tag of ours."""
    return strip_prefixes(tag_pattern(prefix).sub("", strip_prefixes(subject))).strip() or "(no subject)"


@dataclass(frozen=True)
class Match:
    ticket: Ticket | None
    how: str                    # token | references | tag | none
    token_purpose: str | None = None
    tag_only: bool = False      # found by the subject tag alone


def find_ticket(parsed, *, prefix: str, token_claims: list) -> Match:
    """Match in order: a valid signed reply address, a Message-ID we stored or sent, the subject tag."""
    for claim in token_claims:
        ticket = survivor(ticket_by_id(claim.ticket))
        if ticket is not None:
            return Match(ticket, "token", claim.purpose)
    ids = list(dict.fromkeys(i for i in (*parsed.in_reply_to, *reversed(parsed.references)) if i))[:100]
    if ids:
        found = fetch_models(Ticket, _BY_REFERENCE.format(marks=", ".join("?" * len(ids))), ids)
        if found:
            return Match(survivor(found[0]), "references")
    number = tag_number(parsed.subject, prefix)
    if number is not None:
        ticket = survivor(ticket_by_id(number))
        if ticket is not None:
            return Match(ticket, "tag", tag_only=True)
    return Match(None, "none")


# The ticket of the newest of the mails referred to (written by hand: peewee built the two queries
# this replaces afresh for every reply, at more CPU than SQLite took to run them).
_BY_REFERENCE = ('SELECT "t".* FROM "message_ref" AS "r" JOIN "ticket" AS "t" ON "t"."id" = "r"."ticket_id"'
                 ' WHERE "r"."message_id" IN ({marks}) ORDER BY "r"."at" DESC LIMIT 1')
_BY_ID = 'SELECT * FROM "ticket" WHERE "id" = ?'


def ticket_by_id(number: int, *, for_update: bool = False) -> Ticket | None:
    """The ticket, or None; ``for_update`` holds its row until the commit (PostgreSQL)."""
    found = fetch_models(Ticket, _BY_ID + " FOR UPDATE" if for_update else _BY_ID, (number,))
    return found[0] if found else None


def survivor(ticket: Ticket | None) -> Ticket | None:
    """The ticket a merged ticket's mail lands on (#merge), following merges; else the ticket itself."""
    seen = set()
    while ticket is not None and ticket.merged_into and ticket.id not in seen:
        seen.add(ticket.id)
        ticket = ticket_by_id(ticket.merged_into) or ticket
    return ticket


def reopen_decision(ticket: Ticket, now: datetime, window) -> str:
    """'append' for a live ticket, 'reopen' for a resolved one (or closed within the window),
    'new-linked' for one closed longer than the reopen window."""
    if ticket.status == "resolved":
        return "reopen"
    if ticket.status == "closed":
        if ticket.closed_at and now - ticket.closed_at <= window:
            return "reopen"
        return "new-linked"
    return "append"
