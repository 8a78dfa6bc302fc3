"""Formatting helpers of the mail templates: dates, durations, names, header lines, HTML text."""

from datetime import datetime, timedelta, timezone

import pytest
from markupsafe import Markup

from mailticket.outbound.render_format import (
    first_name,
    format_duration_words,
    format_span,
    format_when,
    one_line,
    paragraphs_html,
    tidy_text,
)

WINTER = datetime(2026, 11, 27, 13, 0, tzinfo=timezone.utc)
SUMMER = datetime(2026, 6, 1, 6, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize("value,tz,locale,expected", [
    (WINTER, "Europe/Stockholm", "en", "Fri 27 Nov 2026 14:00 CET"),
    (WINTER, "Europe/Stockholm", "sv", "fre 27 nov 2026 kl. 14:00"),
    (SUMMER, "Europe/Stockholm", "en", "Mon 1 Jun 2026 08:05 CEST"),
    (SUMMER, "Europe/Stockholm", "sv", "mån 1 juni 2026 kl. 08:05"),
    (WINTER, "UTC", "en", "Fri 27 Nov 2026 13:00 UTC"),
    (WINTER, None, "en", "Fri 27 Nov 2026 13:00 UTC"),
    (datetime(2026, 11, 27, 13, 0), "Europe/Stockholm", "en", "Fri 27 Nov 2026 14:00 CET"),  # naive = UTC
    (datetime(2026, 3, 29, 23, 30, tzinfo=timezone.utc), "Europe/Stockholm", "sv", "mån 30 mars 2026 kl. 01:30"),
    (None, "Europe/Stockholm", "en", ""),
])
def test_format_when(value, tz, locale, expected):
    assert format_when(value, tz, locale) == expected


def test_every_day_and_month_has_a_name():
    days = {format_when(datetime(2026, 1, d, tzinfo=timezone.utc), "UTC", "sv").split()[0] for d in range(5, 12)}
    assert days == {"mån", "tis", "ons", "tors", "fre", "lör", "sön"}
    months = [format_when(datetime(2026, m, 15, tzinfo=timezone.utc), "UTC", "sv").split()[2] for m in range(1, 13)]
    assert months == ["jan", "feb", "mars", "apr", "maj", "juni", "juli", "aug", "sep", "okt", "nov", "dec"]


def test_unknown_time_zone_is_named():
    with pytest.raises(ValueError, match="'Europe/Atlantis'"):
        format_when(WINTER, "Europe/Atlantis", "en")


@pytest.mark.parametrize("start,end,locale,expected", [
    (WINTER, WINTER + timedelta(minutes=30), "en", "Fri 27 Nov 2026 14:00–14:30 CET"),
    (WINTER, WINTER + timedelta(minutes=30), "sv", "fre 27 nov 2026 kl. 14:00–14:30"),
    (WINTER, WINTER + timedelta(hours=12), "en", "Fri 27 Nov 2026 14:00 CET – Sat 28 Nov 2026 02:00 CET"),
    (WINTER, None, "sv", "fre 27 nov 2026 kl. 14:00"),
])
def test_format_span(start, end, locale, expected):
    assert format_span(start, end, "Europe/Stockholm", locale) == expected


@pytest.mark.parametrize("value,en,sv", [
    (timedelta(hours=2, minutes=30), "2 h 30 min", "2 tim 30 min"),
    (timedelta(minutes=45), "45 min", "45 min"),
    (timedelta(seconds=3), "3 s", "3 sek"),
    (timedelta(0), "0 min", "0 min"),
    (timedelta(days=1, hours=3, minutes=10), "1 day 3 h", "1 dag 3 tim"),
    (timedelta(days=3), "3 days", "3 dagar"),
    (timedelta(hours=1, seconds=59), "1 h", "1 tim"),
    (timedelta(seconds=59.6), "1 min", "1 min"),
    (timedelta(minutes=-20), "-20 min", "-20 min"),
    (5400, "1 h 30 min", "1 tim 30 min"),
    (None, "", ""),
])
def test_format_duration_words(value, en, sv):
    assert format_duration_words(value, "en") == en
    assert format_duration_words(value, "sv") == sv


@pytest.mark.parametrize("name,expected", [
    ("Anna Svensson", "Anna"),
    ("Svensson, Anna", "Anna"),
    ('"Anna Svensson"', "Anna"),
    ("anna@example.com", ""),
    ("", ""),
    (None, ""),
    ("Åsa\r\nBcc: x", "Åsa"),
])
def test_first_name(name, expected):
    assert first_name(name) == expected


def test_one_line_removes_every_line_break_and_control_character():
    assert one_line("a\r\nb\x00c\td\u2028e\u2029f\x85g\x1bh") == "a b c d e f g h"
    assert one_line("  lots   of\n\n space ") == "lots of space"
    assert one_line(None) == ""
    assert one_line(42) == "42"


def test_one_line_keeps_emoji_and_cuts_long_text():
    assert one_line("Skrivaren 🖨️ krånglar") == "Skrivaren 🖨️ krånglar"
    long = one_line("ord " * 200)
    assert len(long) == 250 and long.endswith("…")


def test_tidy_text():
    assert tidy_text("\n\nHi  \n\n\n\nthere\t\n-- \nsig\n\n") == "Hi\n\nthere\n-- \nsig\n"


def test_paragraphs_html_escapes_and_keeps_breaks():
    html = paragraphs_html("a <b>\r\nc & d\n \n\ne")
    assert isinstance(html, Markup)
    assert html == Markup('<p style="margin:0 0 12px 0;">a &lt;b&gt;<br>\nc &amp; d</p>\n'
                          '<p style="margin:0 0 12px 0;">e</p>')
    assert paragraphs_html("") == "" and paragraphs_html(None) == ""


def test_time_left_never_says_zero_minutes():
    from datetime import timedelta
    from mailticket.outbound.render_format import format_time_left
    assert format_time_left(timedelta(0), "en") == "no time"
    assert format_time_left(timedelta(seconds=-90), "sv") == "ingen tid"
    assert format_time_left(timedelta(seconds=20), "sv") == "mindre än en minut"
    assert format_time_left(timedelta(minutes=90), "en") == "1 h 30 min"
    assert format_time_left(None, "en") == ""
