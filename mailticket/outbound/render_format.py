"""Pure formatting helpers for mail templates: dates, durations, names, header lines, HTML text.

Each function takes the locale (``"en"`` or ``"sv"``) it writes for; no babel, the few
day and month names mail needs are tables here.
"""

import re
import unicodedata
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape

from ..sizes import format_size

_DAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "sv": ("mån", "tis", "ons", "tors", "fre", "lör", "sön"),
}
_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "sv": ("jan", "feb", "mars", "apr", "maj", "juni", "juli", "aug", "sep", "okt", "nov", "dec"),
}
# (seconds, singular, plural) per unit, largest first
_UNITS = {
    "en": ((86400, "day", "days"), (3600, "h", "h"), (60, "min", "min"), (1, "s", "s")),
    "sv": ((86400, "dag", "dagar"), (3600, "tim", "tim"), (60, "min", "min"), (1, "sek", "sek")),
}
MAX_HEADER_CHARS = 250


def zone(name: str | None) -> ZoneInfo:
    """The ZoneInfo for ``name`` (UTC when empty); ValueError naming it when unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}; write e.g. Europe/Stockholm") from exc


def _local(value: datetime, tz_name: str | None) -> datetime:
    """``value`` in the service time zone; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(zone(tz_name))


def _date_words(local: datetime, locale: str, year: bool = True) -> str:
    words = f"{_DAYS[locale][local.weekday()]} {local.day} {_MONTHS[locale][local.month - 1]}"
    return f"{words} {local.year}" if year else words


def format_when(value: datetime | None, tz_name: str | None, locale: str, year: bool = True) -> str:
    """``Fri 27 Nov 2026 14:00 CET`` (en) or ``fre 27 nov 2026 kl. 14:00`` (sv); '' for None.
    ``year=False`` leaves the year out (a ticket's history, where it is this year's)."""
    if value is None:
        return ""
    local = _local(value, tz_name)
    if locale == "sv":
        return f"{_date_words(local, locale, year)} kl. {local:%H:%M}"
    return f"{_date_words(local, locale, year)} {local:%H:%M} {local.tzname()}"


_PASSED = {"en": " (passed)", "sv": " (passerad)"}


def format_due(value: datetime | None, tz_name: str | None, locale: str, now: datetime | None) -> str:
    """A due time as ``format_when`` writes it, marked ``(passed)`` when it lies before ``now``,
    so that no mail shows a deadline that has gone by as if it were still ahead."""
    text = format_when(value, tz_name, locale)
    if value is not None and now is not None and _local(value, tz_name) < _local(now, tz_name):
        text += _PASSED.get(locale, _PASSED["en"])
    return text


def format_span(start: datetime | None, end: datetime | None, tz_name: str | None, locale: str) -> str:
    """A time span: ``Fri 27 Nov 2026 14:00–14:30 CET``; both ends in full when the days differ."""
    if start is None or end is None:
        return format_when(start or end, tz_name, locale)
    first, last = _local(start, tz_name), _local(end, tz_name)
    if first.date() != last.date():
        return f"{format_when(start, tz_name, locale)} – {format_when(end, tz_name, locale)}"
    if locale == "sv":
        return f"{_date_words(first, locale)} kl. {first:%H:%M}–{last:%H:%M}"
    return f"{_date_words(first, locale)} {first:%H:%M}–{last:%H:%M} {last.tzname()}"


def format_duration_words(value: timedelta | int | float | None, locale: str) -> str:
    """``2 h 30 min`` (en) or ``2 tim 30 min`` (sv): the two largest units; '' for None."""
    if value is None:
        return ""
    secs = round(value.total_seconds() if isinstance(value, timedelta) else float(value))
    sign, secs = ("-" if secs < 0 else ""), abs(secs)
    if secs >= 60:
        secs -= secs % 60  # seconds only matter under a minute
    parts = []
    for size, one, many in _UNITS[locale]:
        if secs >= size:
            count, secs = divmod(secs, size)
            parts.append(f"{count} {one if count == 1 else many}")
    return sign + (" ".join(parts[:2]) if parts else f"0 {_UNITS[locale][2][2]}")


_LEFT_WORDS = {"en": ("less than a minute", "no time"), "sv": ("mindre än en minut", "ingen tid")}


def format_time_left(value: timedelta | None, locale: str) -> str:
    """Time left as words that never say "0 min": ``no time`` once it has run out (``no time left``),
    ``less than a minute`` under a minute, else as ``format_duration_words``; '' for None."""
    if value is None:
        return ""
    under, none = _LEFT_WORDS.get(locale, _LEFT_WORDS["en"])
    if value <= timedelta(0):
        return none
    if value < timedelta(minutes=1):
        return under
    return format_duration_words(value, locale)


def contact(person: dict, lines: bool = False) -> str:
    """``Name <address>`` of a ``{"name", "address"}`` table, or the address alone; with ``lines``
    the name and the address on lines of their own (HTML on a phone: no ``>`` left alone)."""
    name, address = one_line(person.get("name")), one_line(person.get("address"))
    if not name or name == address:
        return address
    return f"{name}\n{address}" if lines else f"{name} <{address}>"


def file_size(size: int | None, locale: str) -> str:
    """``512 B``, ``12 KB``, ``1.5 MB`` (``1,5 MB`` in Swedish): the one way mails write a file's size."""
    return format_size(size or 0, locale)


def attachment(item: dict, locale: str) -> str:
    """``name (12 kB)`` of a ``{"name", "size"}`` table."""
    return f"{one_line(item.get('name'))} ({file_size(item.get('size'), locale)})"


def first_name(name: str | None) -> str:
    """The name to greet someone by: ``Anna`` from ``Anna Svensson`` or ``Svensson, Anna``.

    Returns '' when there is nothing usable (no name, or the name is a mail address).
    """
    name = one_line(name or "").strip("\"' ")
    if "," in name:
        name = name.split(",", 1)[1]
    words = name.split()
    if not words or "@" in words[0]:
        return ""
    return words[0]


def one_line(value: object) -> str:
    """Text safe for a mail header: control characters and line breaks become spaces,
    whitespace is collapsed, and the result is cut to MAX_HEADER_CHARS."""
    text = "" if value is None else str(value)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    text = " ".join(text.split())
    if len(text) > MAX_HEADER_CHARS:
        text = text[: MAX_HEADER_CHARS - 1].rstrip() + "…"
    return text


def tidy_text(text: str) -> str:
    """A text part as it should be sent: no trailing spaces (except the ``-- `` signature
    separator), no runs of more than one blank line, one final newline."""
    lines = [line if line == "-- " else line.rstrip() for line in text.splitlines()]
    tidy = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return tidy + "\n"


def paragraphs_html(text: str | None) -> Markup:
    """Plain text as escaped HTML paragraphs; single line breaks become ``<br>``."""
    if not text:
        return Markup("")
    blocks = re.split(r"\n\s*\n", str(text).replace("\r\n", "\n").replace("\r", "\n").strip())
    style = "margin:0 0 12px 0;"
    return Markup("\n").join(
        Markup('<p style="{}">{}</p>').format(style, Markup("<br>\n").join(escape(line) for line in block.split("\n")))
        for block in blocks
    )


def format_decimal(value: float | int | None, locale: str, digits: int = 1) -> str:
    """``4.25`` -> "4.3" (en) or "4,3" (sv); "-" for None (no figure: nothing to divide)."""
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if locale == "sv" else text


def format_hours(seconds: float | None, locale: str) -> str:
    """Seconds as hours with two decimals: ``5400`` -> "1.50 h" (sv "1,50 tim"); "-" for None."""
    if seconds is None:
        return "-"
    return f"{format_decimal(seconds / 3600, locale, 2)} {'tim' if locale == 'sv' else 'h'}"


def format_percent(share: float | None, locale: str) -> str:
    """A share as a percentage with one decimal: ``0.8333`` -> "83.3 %"; "-" for None."""
    return "-" if share is None else f"{format_decimal(share * 100, locale, 1)} %"


def bar_width(value: float | None, largest: float | None) -> int:
    """A bar's length in whole percent of the largest value (0-100), for charts built from table cells."""
    if not value or not largest or value <= 0:
        return 0
    return max(1, min(100, round(100 * value / largest)))
