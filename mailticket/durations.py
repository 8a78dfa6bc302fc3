"""Durations as admins write them: ``90s``, ``15m``, ``3h``, ``2d`` (and combinations like ``1h30m``)."""

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 365 * 86400}  # y: retention periods
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdwy])", re.IGNORECASE)


def parse_seconds(text: str | int | float) -> float:
    """The seconds of ``"90s"``, ``"15m"``, ``"3h"``, ``"2d"``, ``"1h30m"`` or a bare number, as a
    float that may be larger than any date arithmetic takes (``inf``, ``1e300``, ``"99999999999d"``):
    the caller bounds it (config.BOUNDS) before making a timedelta of it.

    Raises ValueError with a message that says what is valid.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration; write e.g. 90s, 15m, 3h, 2d")
    if isinstance(text, (int, float)):
        if text != text:  # NaN, as TOML writes nan
            raise ValueError(f"{text!r} is not a duration; write e.g. 90s, 15m, 3h, 2d")
        if text < 0:
            raise ValueError(f"{text!r} is negative; a duration must be 0 or more")
        return float(text)
    s = str(text).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        return float(s)
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if s[pos:m.start()].strip():
            break
        total += float(m.group(1)) * _UNITS[m.group(2).lower()]
        pos = m.end()
    if not s or pos == 0 or s[pos:].strip():
        raise ValueError(f"{text!r} is not a duration; write e.g. 90s, 15m, 3h, 2d or 1h30m")
    return total


# The longest duration parse_duration gives: 1,000 years, beyond any bound a config key has, and far
# from what a datetime can take (today plus 8,000 years overflows one; timedelta itself ends at
# 999,999,999 days). Beyond it a ValueError, never an OverflowError.
LONGEST = timedelta(days=365_000)


def parse_duration(text: str | int | float) -> timedelta:
    """Parse ``"90s"``, ``"15m"``, ``"3h"``, ``"2d"``, ``"1h30m"``; a bare number is seconds.

    Raises ValueError with a message that says what is valid, also for a duration longer than
    ``LONGEST`` (``inf``, ``1e300``, ``"999999999999999999d"``).
    """
    seconds = parse_seconds(text)
    if seconds > LONGEST.total_seconds():
        raise ValueError(f"{text!r} is too long a duration; the most is {format_duration(LONGEST)}")
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    """The shortest readable form: ``1h 30m``, ``2d 3h``, ``45s``."""
    secs = int(round(td.total_seconds()))
    sign = "-" if secs < 0 else ""
    secs = abs(secs)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs >= size:
            parts.append(f"{secs // size}{unit}")
            secs %= size
    return sign + (" ".join(parts[:2]) if parts else "0s")
