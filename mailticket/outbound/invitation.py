"""The iCalendar invitation (RFC 5545/5546) a requester gets for a ``#call``.

``build_invitation`` makes a ``METHOD:REQUEST`` calendar with the agent as organiser,
the requester as the one attendee, and a VTIMEZONE for the service's zone.
``attach_invitation`` puts it into a mail the way Outlook, Gmail and Apple Calendar
expect an invitation::

    multipart/mixed
      multipart/alternative
        text/plain                                  the notification text
        text/html                                   (if the mail has one)
        text/calendar; method=REQUEST; charset=utf-8    the invitation
      application/ics; name=invite.ics              the same bytes, as a file

To move the call, send it again with the same ``uid`` and a higher ``sequence``; to cancel it,
``method="CANCEL"`` with the same ``uid`` and a higher ``sequence`` (STATUS:CANCELLED). The
organiser is the desk's address (with the agent's name): a calendar sends its answer (iMIP
REPLY) to the organiser, and the desk reads it (inbound/imip.py, desk/calls.py).
"""

import re
from datetime import date, datetime, timedelta, timezone as dt_timezone
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, vCalAddress, vText

PRODID = "-//mailticket//mailticket invitation//EN"
_ADDRESS = re.compile(r"[^\s@<>\"(),;:]+@[^\s@<>\"(),;:]+\.[^\s@<>\"(),;:]+")


def build_invitation(*, uid: str, summary: str, description: str, start: datetime,
                     duration: timedelta, timezone: str, organizer_name: str,
                     organizer_email: str, attendee_name: str, attendee_email: str,
                     now: datetime, sequence: int = 0, location: str = "", url: str = "",
                     method: str = "REQUEST") -> bytes:
    """The invitation as iCalendar bytes (CRLF lines, folded at 75 octets).

    ``start`` is aware; it is written in ``timezone`` (an IANA name), whose VTIMEZONE is
    included. ``now`` becomes DTSTAMP. ``location`` and ``url`` say where to join (LOCATION,
    URL). ``method`` is REQUEST (a new or moved call) or CANCEL (STATUS:CANCELLED). Raises
    ValueError on a bad address, zone, time or method.
    """
    if method not in METHODS:
        raise ValueError(f"{method!r} is not one of {', '.join(METHODS)}")
    zone = _zone(timezone)
    if start.tzinfo is None or now.tzinfo is None:
        raise ValueError("start and now must be aware datetimes")
    if duration <= timedelta(0):
        raise ValueError(f"the duration {duration} is not positive")
    local_start = start.astimezone(zone)
    local_end = (local_start.astimezone(dt_timezone.utc) + duration).astimezone(zone)
    event = _event(uid, summary, description, local_start, local_end, now, sequence,
                   "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    if location:
        event.add("location", vText(location))
    if url:
        event.add("url", url, parameters={"VALUE": "URI"})
    event.add("organizer", _person(organizer_name, organizer_email))
    event.add("attendee", _person(attendee_name, attendee_email, attendee=True))
    calendar = _calendar(method)
    calendar.add_component(_vtimezone(zone, timezone, local_start, local_end))
    calendar.add_component(event)
    return calendar.to_ical()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except Exception:
        raise ValueError(f"{name!r} is not a time zone") from None


METHODS = ("REQUEST", "CANCEL")


def _calendar(method: str) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    return calendar


def _event(uid: str, summary: str, description: str, start: datetime, end: datetime,
           now: datetime, sequence: int, status: str = "CONFIRMED") -> Event:
    if not uid or re.search(r"[\r\n]", uid):
        raise ValueError(f"{uid!r} is not a usable UID")
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", now.astimezone(dt_timezone.utc))
    event.add("dtstart", _unambiguous(start))
    event.add("dtend", _unambiguous(end))
    event.add("summary", vText(summary))
    event.add("description", vText(description.replace("\r\n", "\n")))
    event.add("sequence", int(sequence))
    event.add("status", status)
    event.add("transp", "OPAQUE")
    return event


def _unambiguous(moment: datetime) -> datetime:
    """A local time the clocks show twice (the second pass, ``fold=1``) would be read as
    the first; such a time is written in UTC instead, which RFC 5545 allows."""
    if moment.fold and moment.utcoffset() != moment.replace(fold=0).utcoffset():
        return moment.astimezone(dt_timezone.utc)
    return moment


def _person(name: str, email: str, *, attendee: bool = False) -> vCalAddress:
    if not _ADDRESS.fullmatch(email or ""):
        raise ValueError(f"{email!r} is not an address for an invitation")
    person = vCalAddress(f"mailto:{email}")
    person.params["cn"] = _param_text(name) or email
    if attendee:
        person.params["cutype"] = "INDIVIDUAL"
        person.params["role"] = "REQ-PARTICIPANT"
        person.params["partstat"] = "NEEDS-ACTION"
        person.params["rsvp"] = "TRUE"
    return person


def _param_text(text: str) -> str:
    """A parameter value cannot hold a double quote or a control character."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", (text or "").replace('"', "'"))
    return " ".join(text.split())


def _vtimezone(zone: ZoneInfo, name: str, start: datetime, end: datetime) -> Timezone:
    """The zone's rules for the year around the call: short, and enough for it."""
    first = date(start.year - 1, 1, 1)
    last = date(end.year + 1, 12, 31)
    return Timezone.from_tzinfo(zone, tzid=name, first_date=first, last_date=last)


def content_type(method: str = "REQUEST") -> str:
    """The calendar alternative's Content-Type: Outlook acts on the METHOD named here too."""
    return f"text/calendar; method={method}; charset=UTF-8"


def attach_invitation(msg: EmailMessage, ics: bytes, *, as_file: bool = True, method: str = "REQUEST") -> None:
    """Add the invitation to a notification built with ``set_content`` (and maybe
    ``add_alternative`` for HTML): as the calendar alternative, and as invite.ics."""
    text = ics.decode("utf-8")
    msg.add_alternative(text, subtype="calendar", charset="utf-8", params={"method": method})
    if as_file:
        msg.add_attachment(ics, maintype="application", subtype="ics", filename="invite.ics")
