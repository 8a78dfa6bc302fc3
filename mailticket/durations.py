"""Durations as admins write them: ``90s``, ``15m``, ``3h``, ``2d`` (and combinations like ``1h30m``);
and the bounds of every duration and number of the config (``BOUNDS``, read by ``within``), here
below both the config and the desk's SLA policy, which read their keys through it.
"""

import fnmatch
import re
from dataclasses import dataclass
from datetime import timedelta

from .errors import ConfigError
from .sizes import format_size, parse_size

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 365 * 86400}  # y: retention periods
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdwy])", re.IGNORECASE)


def parse_seconds(text: str | int | float) -> float:
    """The seconds of ``"90s"``, ``"15m"``, ``"3h"``, ``"2d"``, ``"1h30m"`` or a bare number, as a
    float that may be larger than any date arithmetic takes (``inf``, ``1e300``, ``"99999999999d"``):
    the caller bounds it (BOUNDS below) before making a timedelta of it.

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


# ---------------------------------------------------------------- bounds of every duration and number

@dataclass(frozen=True)
class Bound:
    """The least and the greatest value a config key takes, and why: a duration (``"1d"``), a
    count (an int), a share (a float) or a size (``"100KB"``). ``off``: 0 is also valid and turns the
    thing off (or keeps for ever)."""

    kind: str           # duration | count | share | size
    low: object
    high: object
    why: str
    off: bool = False


def duration_bound(low: str, high: str, why: str, off: bool = False) -> Bound:
    return Bound("duration", parse_duration(low), parse_duration(high), why, off)


def count_bound(low: int, high: int, why: str) -> Bound:
    return Bound("count", low, high, why)


def size_bound(low: str, high: str, why: str, off: bool = False) -> Bound:
    return Bound("size", parse_size(low), parse_size(high), why, off)


def share_bound(low: float, high: float, why: str) -> Bound:
    return Bound("share", low, high, why)


# Every duration and number the config has, each with its least and greatest value and why. A key
# read by config's _Section.duration/size/number or by within() must be here (else a LookupError
# names it): a new key gets its bounds by one line, e.g.
#     "rate_limits.notes_per_hour": count_bound(1, 1000, "why these two ends"), fnmatch patterns ("sla.P?.resolution") cover families;
# an exact key wins over a pattern. The upper bounds keep every value far from what the date
# arithmetic, the database's integers and the socket layer can take (no key can crash the daemon
# later), and the lower bounds keep any value from locking people out or spinning a loop.
BOUNDS: dict[str, Bound] = {
    "service.ack_max_age": duration_bound("1m", "365d", "mail older than this gets no acknowledgement; under a minute "
                                     "a mail held up in a queue would get none, and a year-old mail is an archive"),
    "service.reopen_window": duration_bound("0s", "365d", "a reply to a ticket closed longer ago opens a new one; "
                                       "after a year a reply is a new problem"),
    "service.token_lifetime": duration_bound("1d", "3650d", "how long the signed reply addresses in our mails work: "
                                        "under a day, an agent answering the next morning is locked out; "
                                        "ten years outlasts any mail archive"),
    "service.alarm_after": duration_bound("1s", "7d", "a problem must last that long before the admin is mailed; "
                                     "an alarm after a week is no alarm"),
    "service.attach_max": size_bound("0", "1GB", "a requester's files carried by one mail in all (0: none); no mail "
                                "server takes more"),
    "service.max_participants": count_bound(1, 500, "people in Cc of one ticket; every public reply goes to them, "
                                            "and more than 500 is a mailing list, not a conversation"),
    "calls.remind_before": duration_bound("1m", "1d", "the agent's reminder this long before a #call; under a "
                                          "minute it comes too late to matter, a day ahead it is no reminder"),
    "database.lease_ttl": duration_bound("1s", "1h", "how soon another daemon takes over the IMAP folder"),
    "imap.port": count_bound(1, 65535, "a TCP port"),
    "imap.poll_interval": duration_bound("1s", "1h", "how often the inbox is polled without IDLE"),
    "imap.timeout": duration_bound("1s", "10m", "a server silent that long is down; longer only delays the retry"),
    "imap.batch_size": count_bound(1, 5000, "mails fetched and committed together"),
    "smtp.port": count_bound(1, 65535, "a TCP port"),
    "smtp.timeout": duration_bound("1s", "10m", "a server silent that long is down; longer only delays the retry"),
    "listener.port": count_bound(1, 65535, "a TCP port"),
    "outbox.max_attempts": count_bound(1, 100, "tries before a mail is given up and the admin told"),
    "outbox.retry_base": duration_bound("1s", "1d", "the first wait before a mail is tried again"),
    "outbox.retry_max": duration_bound("1s", "7d", "the longest wait between tries"),
    "outbox.max_size": size_bound("100KB", "1GB", "the mail server's limit for one mail, e.g. 25MB"),
    "rate_limits.*": count_bound(1, 1_000_000_000, "automatic mails allowed in the window: 0 would silence "
                                 "every acknowledgement; a billion is no limit at all (the benches switch the cap "
                                 "off with ten million), and past 2^63 the database cannot count"),
    "sla.check_interval": duration_bound("1s", "1h", "how often the SLA clocks are checked"),
    "sla.warn_at": share_bound(0.01, 0.99, "the share of a target after which the warning goes, "
                         "a number between 0 and 1"),
    "sla.auto_close_after": duration_bound("1s", "365d", "a resolved ticket closes this long after"),
    "sla.P?.first_response": duration_bound("1s", "365d", "a target is a promise to a person: one beyond a year "
                                       "promises nothing, and its deadline would run past the calendar"),
    "sla.P?.resolution": duration_bound("1s", "365d", "a target is a promise to a person: one beyond a year "
                                   "promises nothing, and its deadline would run past the calendar"),
    "sla.pending_reminder": duration_bound("1s", "365d", "a pending ticket reminds its requester this long after", off=True),
    "sla.pending_resolve_after": duration_bound("1s", "365d", "a pending ticket is resolved this long after", off=True),
    "sla.breach_report.deadline": duration_bound("1s", "365d", "the breach report is due this long after the breach"),
    "sla.breach_report.warn_before": duration_bound("1s", "365d", "each warning this long before the report is due"),
    "retention.raw_mail": duration_bound("1d", "36500d", "raw mails of tickets closed this long ago go; 0 keeps them",
                                    off=True),
    "retention.closed_tickets": duration_bound("1d", "36500d", "tickets closed this long ago go; 0 keeps them",
                                          off=True),
}


def bound_for(key: str) -> Bound:
    """The bounds of a config key (``"service.token_lifetime"``, ``"sla.P1.resolution"``)."""
    if key in BOUNDS:
        return BOUNDS[key]
    for pattern, bound in BOUNDS.items():
        if fnmatch.fnmatchcase(key, pattern):
            return bound
    raise LookupError(f"config key {key} has no bounds: add a line for it to mailticket.durations.BOUNDS")


def within(key: str, value, file: str | None):
    """``value`` as written in the file (``"90d"``, ``1e300``, ``"25MB"``, ``7``) read as BOUNDS says
    for ``key``: a timedelta, an int or a float inside the key's bounds, else a ConfigError naming the
    file and the key, the valid range and why. Never an OverflowError, whatever the value."""
    bound = bound_for(key)
    try:
        if bound.kind == "duration":
            number = value.total_seconds() if isinstance(value, timedelta) else parse_seconds(value)
            low, high = bound.low.total_seconds(), bound.high.total_seconds()
        elif bound.kind == "size":
            number, low, high = parse_size(value), bound.low, bound.high
        else:
            number, low, high = _plain_number(value, bound), bound.low, bound.high
    except ValueError as exc:
        raise ConfigError(str(exc), file, key) from None
    if not (low <= number <= high or (bound.off and number == 0)):
        shown = repr(value) if isinstance(value, str) else str(value)
        valid = f"{_shown(bound, bound.low)}..{_shown(bound, bound.high)}" + (" or 0" if bound.off else "")
        zero = "must be more than zero: " if number == 0 else ""
        raise ConfigError(f"{zero}{shown} is outside {valid}: {bound.why}", file, key)
    return timedelta(seconds=number) if bound.kind == "duration" else number


def _plain_number(value, bound: Bound):
    """An int (count) or a number (share) as TOML gives it; a string or a bool is a type error."""
    wanted = int if bound.kind == "count" else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted) or value != value:
        name = "int" if bound.kind == "count" else "a number"
        raise ValueError(f"must be {name} ({_shown(bound, bound.low)}..{_shown(bound, bound.high)}: {bound.why}), "
                         f"not {type(value).__name__} {value!r}")
    return value if bound.kind == "count" else float(value)


def _shown(bound: Bound, value) -> str:
    if bound.kind == "duration":
        return format_duration(value).replace(" ", "")
    if bound.kind == "size":
        return format_size(value).replace(" ", "")
    return f"{value:_}" if isinstance(value, int) and value >= 100_000 else str(value)  # TOML's 1_000_000
