"""A calendar's answer to our invitation (iMIP, RFC 6047): METHOD:REPLY or METHOD:COUNTER.

Outlook sends it as the text/calendar alternative of a multipart/alternative ("Accepted: ..."),
Gmail as that plus an invite.ics attachment ("Accepted: ... @ ..."), Apple Calendar as a lone
text/calendar body. ``find_answer`` reads the first calendar part whose METHOD (in the iCalendar,
else in the Content-Type) is REPLY or COUNTER, parsed with ``icalendar``; anything else (an
invitation someone forwards, a broken calendar, quoted text) is no answer and the mail is read
as ordinary text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar

log = logging.getLogger("mailticket.imip")

METHODS = ("REPLY", "COUNTER")
PARTSTATS = ("ACCEPTED", "DECLINED", "TENTATIVE")
CALENDAR_TYPES = ("text/calendar", "application/ics")
MAX_CALENDAR = 512_000  # bytes: an answer is a few KB


@dataclass(frozen=True)
class Answer:
    method: str                 # REPLY | COUNTER
    uid: str
    sequence: int
    attendee: str               # lower-cased address of the ATTENDEE
    partstat: str               # ACCEPTED | DECLINED | TENTATIVE | NEEDS-ACTION (a COUNTER's own)
    comment: str = ""           # COMMENT, or Gmail's X-RESPONSE-COMMENT
    proposed_start: datetime | None = None  # a COUNTER's DTSTART (aware, UTC)
    proposed_end: datetime | None = None


def find_answer(message, zone: str = "UTC") -> Answer | None:
    """The iMIP answer in ``message`` (an ``email.message.EmailMessage``), or None. A COUNTER's
    floating time (no TZID, no Z) is read in ``zone``, the desk's time zone: the requester's own is
    unknown, and the desk's is the one the invitation was written in."""
    try:
        parts = list(message.walk())
    except Exception:
        return None
    for part in parts:
        if part.get_content_type() not in CALENDAR_TYPES and not str(part.get_filename() or "").lower().endswith(".ics"):
            continue
        answer = _answer(part, zone)
        if answer is not None:
            return answer
    return None


def _answer(part, zone: str) -> Answer | None:
    try:
        data = part.get_payload(decode=True) or b""
        if not data or len(data) > MAX_CALENDAR:
            return None
        calendar = Calendar.from_ical(data.decode(part.get_content_charset() or "utf-8", errors="replace"))
    except Exception as exc:  # a calendar nobody can read is ordinary text
        log.info("calendar part not readable: %s", exc)
        return None
    method = str(calendar.get("METHOD") or part.get_param("method") or "").upper()
    if method not in METHODS:
        return None
    events = calendar.walk("VEVENT")
    if not events:
        return None
    event = events[0]
    uid = str(event.get("UID") or "").strip()
    attendees = event.get("ATTENDEE")
    if not uid or attendees is None:
        return None
    attendee = attendees[0] if isinstance(attendees, list) else attendees
    address = str(attendee).strip()
    address = address[7:] if address.lower().startswith("mailto:") else address
    partstat = str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
    comment = str(event.get("COMMENT") or attendee.params.get("X-RESPONSE-COMMENT") or "").strip()
    try:
        sequence = int(event.get("SEQUENCE") or 0)
    except (TypeError, ValueError):
        sequence = 0
    start = end = None
    if method == "COUNTER":
        start, end = _moment(event, "DTSTART", zone), _moment(event, "DTEND", zone)
    return Answer(method, uid, sequence, address.lower(), partstat, " ".join(comment.split())[:500], start, end)


def _moment(event, name: str, zone: str) -> datetime | None:
    try:
        value = event.decoded(name)
    except (KeyError, ValueError):
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=_zone(zone))).astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=_zone(zone)).astimezone(timezone.utc)
    return None


def _zone(name: str):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # the config checked it; a stray name is UTC
        return timezone.utc
