from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from mailticket.outbound.invitation import PRODID, attach_invitation, build_invitation

STHLM = ZoneInfo("Europe/Stockholm")
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)


def invitation(**overrides) -> bytes:
    args = dict(
        uid="call-42-1@example.com", summary="Call about [SD-42]; printer, jam",
        description="We will look at the printer together.\r\nCall +46 8 123 456.",
        start=datetime(2026, 11, 28, 14, 0, tzinfo=STHLM), duration=timedelta(minutes=45),
        timezone="Europe/Stockholm", organizer_name="Alice Agent", organizer_email="alice@example.com",
        attendee_name="Bob User", attendee_email="bob@users.org", now=NOW, sequence=0,
    )
    args.update(overrides)
    return build_invitation(**args)


def parse(ics: bytes):
    calendar = Calendar.from_ical(ics)
    [event] = calendar.walk("VEVENT")
    return calendar, event


def test_the_invitation_parses_back_with_every_required_property():
    ics = invitation()
    calendar, event = parse(ics)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(calendar["PRODID"]) == PRODID
    assert str(calendar["VERSION"]) == "2.0"
    [vtimezone] = calendar.walk("VTIMEZONE")
    assert str(vtimezone["TZID"]) == "Europe/Stockholm"

    assert str(event["UID"]) == "call-42-1@example.com"
    assert event["DTSTART"].params["TZID"] == "Europe/Stockholm"
    assert event["DTEND"].params["TZID"] == "Europe/Stockholm"
    assert event.decoded("DTSTART") == datetime(2026, 11, 28, 14, 0, tzinfo=STHLM)
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=45)
    assert event.decoded("DTSTAMP") == NOW
    assert str(event["SUMMARY"]) == "Call about [SD-42]; printer, jam"
    assert str(event["DESCRIPTION"]) == "We will look at the printer together.\nCall +46 8 123 456."
    assert event.decoded("SEQUENCE") == 0
    assert str(event["STATUS"]) == "CONFIRMED"

    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:alice@example.com"
    assert organizer.params["CN"] == "Alice Agent"
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:bob@users.org"
    assert attendee.params["CN"] == "Bob User"
    assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    assert attendee.params["RSVP"] == "TRUE"


def test_raw_lines_are_what_outlook_expects():
    ics = invitation()
    lines = ics.decode().replace("\r\n ", "").split("\r\n")  # unfold
    assert "METHOD:REQUEST" in lines
    assert "DTSTART;TZID=Europe/Stockholm:20261128T140000" in lines
    assert "DTEND;TZID=Europe/Stockholm:20261128T144500" in lines
    assert "DTSTAMP:20261127T090000Z" in lines
    assert all(len(line.encode()) <= 75 for line in ics.decode().split("\r\n"))
    assert ics.index(b"BEGIN:VTIMEZONE") < ics.index(b"BEGIN:VEVENT")


def test_the_vtimezone_gives_the_right_offsets_in_summer_and_winter():
    calendar, _ = parse(invitation())
    [vtimezone] = calendar.walk("VTIMEZONE")
    tz = vtimezone.to_tz()
    assert datetime(2026, 11, 28, 14, 0, tzinfo=tz).utcoffset() == timedelta(hours=1)
    assert datetime(2027, 7, 1, 14, 0, tzinfo=tz).utcoffset() == timedelta(hours=2)


def test_a_start_in_another_zone_is_written_in_the_service_zone():
    start = datetime(2026, 11, 28, 13, 0, tzinfo=timezone.utc)
    _, event = parse(invitation(start=start))
    assert event.decoded("DTSTART") == start
    assert event["DTSTART"].to_ical() == b"20261128T140000"


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def test_a_call_across_the_autumn_dst_change_keeps_its_real_length():
    start = datetime(2026, 10, 25, 1, 30, tzinfo=STHLM)  # CEST; clocks go back at 03:00
    _, event = parse(invitation(start=start, duration=timedelta(hours=2)))
    assert utc(event.decoded("DTEND")) - utc(event.decoded("DTSTART")) == timedelta(hours=2)
    # 02:30 happens twice that night: the end (the second 02:30, CET) is written in UTC
    assert event["DTEND"].to_ical() == b"20261025T013000Z"
    assert event["DTSTART"].to_ical() == b"20261025T013000"


def test_a_call_across_the_spring_dst_change_keeps_its_real_length():
    start = datetime(2026, 3, 29, 1, 30, tzinfo=STHLM)  # CET; clocks go forward at 02:00
    _, event = parse(invitation(start=start, duration=timedelta(hours=1)))
    assert utc(event.decoded("DTEND")) - utc(event.decoded("DTSTART")) == timedelta(hours=1)
    assert event["DTEND"].to_ical() == b"20260329T033000"


def test_a_rescheduled_call_keeps_the_uid_and_raises_the_sequence():
    _, event = parse(invitation(sequence=3, start=datetime(2026, 11, 29, 9, 0, tzinfo=STHLM)))
    assert event.decoded("SEQUENCE") == 3 and str(event["UID"]) == "call-42-1@example.com"


def test_names_and_text_cannot_inject_properties():
    ics = invitation(summary="x\r\nATTENDEE:mailto:eve@evil.org", organizer_name='Al "x":mailto:eve@evil.org\r\nX',
                     attendee_name="Bob\nATTENDEE:mailto:eve@evil.org", description="a\r\nEND:VEVENT")
    calendar, event = parse(ics)
    assert b"eve@evil.org" not in ics.replace(b"\r\n ", b"").split(b"SUMMARY:")[0]
    assert str(event["ATTENDEE"]) == "mailto:bob@users.org"  # one attendee only
    assert str(event["ORGANIZER"]) == "mailto:alice@example.com"
    assert event["ORGANIZER"].params["CN"] == "Al 'x':mailto:eve@evil.org X"
    assert str(event["SUMMARY"]) == "x\nATTENDEE:mailto:eve@evil.org"  # escaped, one property
    assert len(calendar.walk("VEVENT")) == 1


def test_non_ascii_names_survive():
    _, event = parse(invitation(attendee_name="Björn Åström", summary="Samtal om skrivaren"))
    assert event["ATTENDEE"].params["CN"] == "Björn Åström"


@pytest.mark.parametrize(
    "overrides",
    [dict(timezone="Mars/Olympus"), dict(start=datetime(2026, 11, 28, 14, 0)),
     dict(now=datetime(2026, 11, 27)), dict(duration=timedelta(0)),
     dict(organizer_email="alice"), dict(attendee_email="bob@users.org\r\nX: y"),
     dict(attendee_email="bob@users.org:evil"), dict(uid="a\r\nb"), dict(uid="")],
)
def test_bad_arguments_are_refused(overrides):
    with pytest.raises(ValueError):
        invitation(**overrides)


def test_attach_invitation_makes_the_structure_clients_accept():
    msg = EmailMessage()
    msg["From"] = "Alice via Service Desk <support@example.com>"
    msg["To"] = "bob@users.org"
    msg["Subject"] = "Invitation: call about [SD-42]"
    msg.set_content("Alice has booked a call with you.")
    msg.add_alternative("<p>Alice has booked a call with you.</p>", subtype="html")
    ics = invitation()
    attach_invitation(msg, ics)

    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    alternative, attachment = parsed.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in alternative.get_payload()]
    assert kinds == ["text/plain", "text/html", "text/calendar"]
    calendar_part = alternative.get_payload()[2]
    assert calendar_part.get_param("method") == "REQUEST"
    assert calendar_part.get_content_charset() == "utf-8"
    assert Calendar.from_ical(calendar_part.get_content()).walk("VEVENT")[0]["UID"] == "call-42-1@example.com"
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_content() == ics


def test_attach_invitation_without_the_file():
    msg = EmailMessage()
    msg.set_content("text")
    attach_invitation(msg, invitation(), as_file=False)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/calendar"]
