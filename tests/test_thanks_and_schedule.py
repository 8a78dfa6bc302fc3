"""Pure rules: which replies only thank (they do not reopen), and when the report mails are due."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mailticket.desk.feedback import read_rating
from mailticket.desk.reportschedule import due_reports, latest, load_reports
from mailticket.desk.thanks import only_thanks
from mailticket.errors import ConfigError


@pytest.mark.parametrize("text", [
    "Tack, nu fungerar det!", "thanks, works now", "Thank you so much!\n\nAnna", "Tack så mycket för hjälpen!\n/Anna",
    "Thanks! :)", "Tack!\nMvh\nAnna Svensson", "Thanks, works now.\n\nBest regards,\nJohn Smith", "TACK!!",
    "Perfekt, tack!", "Great, thank you. All good now.", "Tusen tack, allt fungerar igen", "Cheers, that did the trick",
])
def test_short_thank_you_replies_do_not_reopen(text):
    assert only_thanks(text)


@pytest.mark.parametrize("text", [
    "thanks but it still does not work", "Tack! Men skrivaren är fortfarande trasig",
    "Hi, thanks. Could you also look at my VPN?", "It works now", "ok", "", None, "Tack?",
    "Thanks, it works now, but Outlook crashes when I open the calendar", "Det fungerar inte, tack",
    "thanks " * 25, "Nej tack, det är inte löst",
])
def test_anything_else_still_reopens(text):
    assert not only_thanks(text)


@pytest.mark.parametrize("subject, text, expected", [
    ("[SD#5] Rating 4", "", (4, "4")), ("Re: [SD#5] Betyg 1", "", (1, "1")), ("[SD#5] Rating", "5\nGreat", (5, "5")),
    ("[SD#5] Rating 0", "", (None, "0")), ("[SD#5] Rating 6", "", (None, "6")),
    ("[SD#5] Rating 3.5", "", (None, "3.5")), ("[SD#5] Rating excellent", "", (None, "Rating excellent")),
    ("[SD#12] Rating", "", (None, "Rating")),  # the tag's number is never the rating
])
def test_read_rating(subject, text, expected):
    assert read_rating(subject, text, "SD") == expected


ZONE = ZoneInfo("Europe/Stockholm")


def test_weekly_and_monthly_slots():
    schedule = load_reports({"weekly": "monday 08:00", "monthly": "31 07:30"}, "t.toml")
    monday = datetime(2026, 12, 7, 8, 0, tzinfo=ZONE)
    weekly = latest(schedule.weekly, monday, ZONE)
    assert (weekly.since, weekly.until) == (datetime(2026, 11, 30, tzinfo=ZONE), datetime(2026, 12, 7, tzinfo=ZONE))
    assert weekly.key == "report:weekly:2026-12-07"
    assert [d.kind for d in due_reports(schedule, monday, ZONE)] == ["weekly"]
    assert due_reports(schedule, datetime(2026, 12, 7, 7, 59, tzinfo=ZONE), ZONE) == []
    # day 31 in a 30-day month is its last day; the period runs from the same day of the month before
    november = latest(schedule.monthly, datetime(2026, 11, 30, 9, 0, tzinfo=ZONE), ZONE)
    assert (november.since.date().isoformat(), november.until.date().isoformat()) == ("2026-10-31", "2026-11-30")
    first = latest(load_reports({"monthly": "1 08:00"}, "t.toml").monthly, datetime(2027, 1, 1, 8, tzinfo=ZONE), ZONE)
    assert (first.since.date().isoformat(), first.until.date().isoformat()) == ("2026-12-01", "2027-01-01")


def test_a_report_missed_for_more_than_a_day_is_not_sent_late():
    schedule = load_reports({"weekly": "mon 08:00"}, "t.toml")
    assert due_reports(schedule, datetime(2026, 12, 8, 7, 59, tzinfo=ZONE), ZONE)
    assert due_reports(schedule, datetime(2026, 12, 8, 8, 1, tzinfo=ZONE), ZONE) == []


@pytest.mark.parametrize("data, key, words", [
    ({"weekly": "someday 08:00"}, "reports.weekly", "is not a day of the week"),
    ({"weekly": "monday"}, "reports.weekly", "is not a day and a time like \"monday 08:00\""),
    ({"weekly": "monday 25:00"}, "reports.weekly", "is not a day and a time"),
    ({"weekly": "t 08:00"}, "reports.weekly", "is not a day of the week"),
    ({"monthly": "32 08:00"}, "reports.monthly", "is not a day of the month (1-31)"),
    ({"monthly": 1}, "reports.monthly", "is not a day and a time like \"1 08:00\""),
    ({"daily": "08:00"}, "reports.daily", "unknown key"),
])
def test_bad_schedules_name_the_key(data, key, words):
    with pytest.raises(ConfigError) as caught:
        load_reports(data, "desk.toml")
    assert key in str(caught.value) and words in str(caught.value) and "desk.toml" in str(caught.value)


def test_manager_address_defaults_to_admin_address(tmp_path):
    from mailticket.config import load_config
    from tests.harness import write_config
    assert load_config(write_config(tmp_path)).service.manager_address == "admin@example.com"
    path = write_config(tmp_path, extra={"service": {"manager_address": "Boss@Example.com"}})
    assert load_config(path).service.manager_address == "boss@example.com"
