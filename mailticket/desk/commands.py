"""An agent's reply -> the #commands at its top and the text that remains.

Rules (the contract the lead relies on):

- A *command line* is a line whose first non-blank characters are ``#`` and a word
  that starts with a letter, followed by white space, ``:`` or the end of the line
  (``#status resolved``). ``# Heading``, ``#1``, ``#!`` and ``... #tag ...`` are text.
- The *command block* is the top of the reply: leading blank lines, then command
  lines, blank lines allowed between them. It ends at the first other line.
- Every line of the block is taken out of ``body``; a line that fails (unknown
  command, bad value, given twice) yields a ``CommandError`` with the line verbatim,
  so nothing of the mail is lost. The text after ``#note`` on its own line stays in
  ``body`` in its place. Without a command block ``body`` is the text unchanged.
- Below the block, a line that starts with a *known* command (or alias) is not
  executed: it stays in ``body`` and yields "commands must be at the top of the
  reply". Unknown ``#words`` there (``#include <stdio.h>``) and quoted lines
  (``> #status``) are ordinary text.
- Command names and fixed values are case-insensitive; Swedish aliases are accepted.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone as dt_timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..durations import parse_duration
from ..i18n import Message
from ..inbound.addresses import parse_address
from ..inbound.phones import parse_number

DEFAULT_CALL_DURATION = timedelta(minutes=30)
MAX_CALL_DURATION = timedelta(hours=12)
MAX_CALL_AHEAD = timedelta(days=366)


@dataclass(frozen=True)
class Command:
    """One valid command: its canonical name, parsed arguments, and where it was."""

    name: str
    args: dict
    line: str
    line_no: int


@dataclass(frozen=True)
class CommandError:
    """A line that did nothing, what was wrong with it, and what would be valid."""

    line: str
    line_no: int
    problem: str
    valid: str

    def __str__(self) -> str:
        return f'Line {self.line_no} "{self.line}": {self.problem}. Valid: {self.valid}'


@dataclass(frozen=True)
class Parsed:
    """The commands to apply, the errors to tell the agent about, and the remaining text."""

    commands: list[Command] = field(default_factory=list)
    errors: list[CommandError] = field(default_factory=list)
    body: str = ""


class _Invalid(Exception):
    """A command's argument is wrong; the message says how."""


@dataclass(frozen=True)
class _Context:
    now: datetime
    timezone: str | None
    agents: frozenset[str]
    categories: dict[str, str] | None  # lower-cased name -> name as configured
    phone_region: str | None = None    # the country of a #phone number without +CC
    languages: tuple[str, ...] = ("en", "sv")  # what the desk writes to requesters in (#language)


# --- the commands, as data ------------------------------------------------------------

STATUSES = {"open": "open", "pending": "pending", "resolved": "resolved", "closed": "closed",
            "öppen": "open", "väntar": "pending", "löst": "resolved", "stängd": "closed"}
LEVELS = {"high": "high", "medium": "medium", "low": "low",
          "hög": "high", "medel": "medium", "låg": "low"}
TYPES = {"incident": "incident", "request": "request", "störning": "incident", "beställning": "request"}
ME = {"me", "mig"}

ALIASES = {"prioritet": "priority", "påverkan": "impact", "brådska": "urgency",
           "tilldela": "assign", "eskalera": "escalate", "nivå": "tier", "kategori": "category",
           "typ": "type", "anteckning": "note", "samtal": "call",
           "kopia": "cc", "länka": "link", "sammanfoga": "merge", "huvudärende": "parent", "utskick": "broadcast"}

VALID = {
    "status": "#status open|pending|resolved|closed",
    "priority": "#priority P1|P2|P3|P4",
    "impact": "#impact high|medium|low",
    "urgency": "#urgency high|medium|low",
    "assign": Message("#assign me, or #assign ADDRESS of an agent"),
    "escalate": Message("#escalate [reason]"),
    "tier": "#tier 1|2|3",
    "category": Message("#category NAME"),
    "type": "#type incident|request",
    "note": Message("#note (the whole reply becomes an internal note)"),
    "call": Message("#call YYYY-MM-DD HH:MM [ZONE] [DURATION] [phone], e.g. #call 2026-11-28 14:00 30m "
                    "or #call 2026-11-28 14:00 Europe/Stockholm 1h; phone: you ring the requester; "
                    "a later #call moves the call, #call cancel cancels it"),
    # the working day by mail: participants and related tickets (applied by desk.related)
    "cc": Message("#cc ADDRESS (adds a participant, who then gets the public replies)"),
    "link": Message("#link NUMBER (links this ticket and that one)"),
    "merge": Message("#merge NUMBER (merges this ticket into that one)"),
    "parent": Message("#parent NUMBER (makes this ticket a child of that major incident)"),
    "broadcast": Message("#broadcast (on a major incident: this reply also goes to the requester of every open child)"),
}
# assignment back to the tier, and the security flag (issue 21)
NONE = {"none", "ingen"}
SECURITY_STATES = {"on": True, "off": False, "på": True, "av": False}
VALID["assign"] = "#assign me, #assign none, or #assign ADDRESS of an agent"
VALID["security"] = "#security on, or #security off REASON (tier-3 agents and the security contact)"
ALIASES["säkerhet"] = "security"
# calls that happen (issue 27): the requester's number, and moving or cancelling a call
VALID["phone"] = Message("#phone NUMBER (the requester's number, e.g. #phone 070-123 45 67 or "
                         "#phone +46 8 123 45 67), or #phone none")
ALIASES["telefon"] = "phone"
CALL_CANCEL = {"cancel", "avboka"}
CALL_BY_PHONE = {"phone", "telefon", "ring"}
# every requester in their own language (issue 26): the language mail to the requester goes out in
VALID["language"] = Message("#language CODE of a language the desk writes in, e.g. #language sv or #language en")
ALIASES["språk"] = "language"
LANGUAGE_NAMES = {"english": "en", "engelska": "en", "swedish": "sv", "svenska": "sv"}

COMMAND_NAMES = tuple(VALID)
VALID_COMMANDS = Message("one per line at the top: {commands}", commands=", ".join(f"#{name}" for name in COMMAND_NAMES))
VALID_PLACE = Message("put commands on the first lines of the reply, one per line, before any other text")
# the words of a command's value in "... is not a {what}"
_WHAT = {"language": Message("language"), "status": Message("status"), "level": Message("level (high, medium, low)"), "type": Message("type"),
         "priority": Message("priority"), "tier": Message("tier")}

_COMMAND_LINE = re.compile(r"#([^\W\d_][\w-]*)(?::|(?=\s)|$)(.*)", re.DOTALL)
_LEADING_SPACE = " \t\u00a0\u200b\u200c\u200d\u2060\ufeff"


# --- parsing --------------------------------------------------------------------------


def parse_commands(text: str, *, now: datetime, timezone: str | None, agents: set[str],
                   categories: set[str] | None = None, phone_region: str | None = None,
                   languages: tuple[str, ...] = ("en", "sv")) -> Parsed:
    """Split an agent's reply into commands, errors, and the text that remains.

    ``now`` (aware; naive is taken as UTC) judges ``#call`` times; ``timezone`` is the
    service's IANA zone for a ``#call`` without one; ``agents`` are the addresses
    ``#assign`` accepts; ``categories``, when given, the names ``#category`` accepts;
    ``phone_region`` the country of a ``#phone`` number written without +CC; ``languages`` the
    codes ``#language`` accepts (the desk's ``[service] languages``)."""
    now = now if now.tzinfo is not None else now.replace(tzinfo=dt_timezone.utc)
    ctx = _Context(now, timezone, frozenset(a.strip().lower() for a in agents),
                   None if categories is None else {c.lower(): c for c in categories}, phone_region,
                   tuple(languages))
    lines = text.splitlines(keepends=True)
    commands, errors, kept, seen = [], [], [], set()
    block_ends = _end_of_command_block(lines)
    for index, raw in enumerate(lines[:block_ends]):
        match = _command_match(raw)
        if match is None:
            continue  # a blank line inside the block
        outcome, note_text = _command_or_error(match, raw, index + 1, ctx, seen)
        (commands if isinstance(outcome, Command) else errors).append(outcome)
        if note_text:
            kept.append(note_text + _line_end(raw))
    for index, raw in enumerate(lines[block_ends:], start=block_ends):
        errors.extend(_misplaced(raw, index + 1))
        kept.append(raw)
    return Parsed(commands, errors, "".join(kept))


def _end_of_command_block(lines: list[str]) -> int:
    """Index of the first line after the command block and the blank lines that
    follow it (0 when the reply does not start with a command)."""
    seen_command = False
    for index, raw in enumerate(lines):
        if _command_match(raw):
            seen_command = True
        elif not _is_blank(raw):
            return index if seen_command else 0
    return len(lines) if seen_command else 0


def _is_blank(raw: str) -> bool:
    return not raw.strip().strip(_LEADING_SPACE).strip()


def _command_match(raw: str) -> re.Match | None:
    return _COMMAND_LINE.fullmatch(raw.rstrip("\r\n").lstrip(_LEADING_SPACE).rstrip())


def _line_end(raw: str) -> str:
    return raw[len(raw.rstrip("\r\n")):] or "\n"


def _command_or_error(match: re.Match, raw: str, line_no: int, ctx: _Context,
                      seen: set[str]) -> tuple[Command | CommandError, str]:
    line = raw.strip(_LEADING_SPACE + "\r\n")
    word, argument = match.group(1).lower(), match.group(2).strip()
    name = ALIASES.get(word, word)
    if name not in VALID:
        return CommandError(line, line_no, Message("#{word} is not a command", word=match.group(1)),
                            VALID_COMMANDS), ""
    if name in seen:
        return CommandError(line, line_no, Message("#{name} is given twice; the first one applies", name=name),
                            VALID[name]), ""
    note_text = argument if name == "note" else ""
    try:
        args = _PARSERS[name](argument, ctx)
    except _Invalid as problem:
        return CommandError(line, line_no, problem.args[0], _valid_for(name, ctx)), ""
    seen.add(name)
    return Command(name, args, line, line_no), note_text


def _valid_for(name: str, ctx: _Context) -> str:
    if name == "category" and ctx.categories:
        names = sorted(ctx.categories.values(), key=str.lower)
        shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
        return Message("#category NAME, one of: {names}", names=shown)
    if name == "language":
        return "#language " + "|".join(ctx.languages)
    return VALID[name]


def _misplaced(raw: str, line_no: int) -> list[CommandError]:
    match = _command_match(raw)
    if match is None or raw.lstrip(_LEADING_SPACE).startswith(">"):
        return []
    word = match.group(1).lower()
    if ALIASES.get(word, word) not in VALID:
        return []
    line = raw.strip(_LEADING_SPACE + "\r\n")
    return [CommandError(line, line_no, Message("commands must be at the top of the reply; "
                                                 "this line was not executed and stays in the text"), VALID_PLACE)]


# --- one parser per command -----------------------------------------------------------


def _one_word(argument: str, what: str) -> str:
    words = argument.split()
    if not words:
        raise _Invalid(Message("needs a {what}", what=_WHAT[what]))
    if len(words) > 1:
        raise _Invalid(Message("takes one {what}, not '{argument}'", what=_WHAT[what], argument=argument))
    return words[0]


def _choice(table: dict[str, str], what: str):
    def parse(argument: str, ctx: _Context) -> dict:
        word = _one_word(argument, what)
        if word.lower() not in table:
            raise _Invalid(Message("'{word}' is not a {what}", word=word, what=_WHAT[what]))
        return {"value": table[word.lower()]}
    return parse


def _priority(argument: str, ctx: _Context) -> dict:
    word = _one_word(argument, "priority")
    match = re.fullmatch(r"[pP]?([1-4])", word)
    if not match:
        raise _Invalid(Message("'{word}' is not a priority", word=word))
    return {"value": f"P{match.group(1)}"}


def _tier(argument: str, ctx: _Context) -> dict:
    word = _one_word(argument, "tier")
    match = re.fullmatch(r"(?:[tT]|tier|nivå)?([1-3])", word, re.IGNORECASE)
    if not match:
        raise _Invalid(Message("'{word}' is not a tier", word=word))
    return {"value": int(match.group(1))}


def _assign(argument: str, ctx: _Context) -> dict:
    if not argument:
        raise _Invalid(Message("needs me, none or an agent's address"))
    if argument.lower() in ME:
        return {"me": True, "address": None}
    if argument.lower() in NONE:
        return {"me": False, "address": None, "none": True}
    address = strict_address(argument)
    if address is None:
        raise _Invalid(Message("'{argument}' is not an email address", argument=argument))
    if address not in ctx.agents:
        raise _Invalid(Message("{address} is not an agent", address=address))
    return {"me": False, "address": address}


def _escalate(argument: str, ctx: _Context) -> dict:
    return {"reason": argument or None}


def _category(argument: str, ctx: _Context) -> dict:
    if not argument:
        raise _Invalid(Message("needs a category name"))
    if ctx.categories is None:
        return {"value": argument}
    if argument.lower() not in ctx.categories:
        raise _Invalid(Message("'{argument}' is not a category", argument=argument))
    return {"value": ctx.categories[argument.lower()]}


def _note(argument: str, ctx: _Context) -> dict:
    return {}


def _cc(argument: str, ctx: _Context) -> dict:
    address, name = address_and_name(argument)
    if address is None:
        raise _Invalid(Message("'{value}' is not an email address", value=argument) if argument
                       else Message("needs an email address"))
    return {"address": address, "name": name}


def address_and_name(argument: str) -> tuple[str | None, str]:
    """``ADDRESS [Name]`` or ``Name <ADDRESS>`` -> (lower-cased address or None, name)."""
    parsed = parse_address(argument) if argument else None
    if parsed:
        return parsed[1], parsed[0] or ""
    first, _, rest = argument.strip().partition(" ")
    parsed = parse_address(first.strip("<>")) if first else None
    return (parsed[1], " ".join(rest.split())) if parsed else (None, "")


_NUMBER = re.compile(r"(?:\[\s*[^\W\d_]*\s*#\s*(\d{1,12})\s*\]|#?(\d{1,12}))")


def ticket_number(text: str) -> int | None:
    """``42``, ``#42`` or ``[SD#42]`` -> 42; anything else -> None."""
    match = _NUMBER.fullmatch(text.strip().replace("# ", "#"))
    return int(match.group(1) or match.group(2)) if match else None


def _ticket_number(argument: str, ctx: _Context) -> dict:
    number = ticket_number(_one_word(argument.replace("# ", "#"), "ticket number"))
    if number is None:
        raise _Invalid(Message("'{value}' is not a ticket number", value=argument))
    return {"number": number}


def _broadcast(argument: str, ctx: _Context) -> dict:
    if argument:
        raise _Invalid(Message("takes nothing after it; the text of the reply is what goes out"))
    return {}


def _language(argument: str, ctx: _Context) -> dict:
    word = _one_word(argument, "language").lower()
    code = LANGUAGE_NAMES.get(word, word.replace("_", "-").split("-")[0])
    if code not in ctx.languages:
        raise _Invalid(Message("'{word}' is not a language this desk writes in ({languages})",
                               word=argument.strip(), languages=", ".join(ctx.languages)))
    return {"value": code}


def _security(argument: str, ctx: _Context) -> dict:
    word, _, reason = argument.partition(" ")
    if word.lower() not in SECURITY_STATES:
        raise _Invalid(Message("needs on or off") if not word
                       else Message("'{value}' is neither on nor off", value=word))
    on, reason = SECURITY_STATES[word.lower()], reason.strip()
    if not on and not reason:
        raise _Invalid(Message("needs a reason after off, e.g. #security off false alarm"))
    return {"on": on, "reason": reason or None}


def strict_address(text: str) -> str | None:
    """The one address in ``text`` (``a@b.c`` or ``Name <a@b.c>``), lower-cased, or None;
    see ``parse_address``."""
    parsed = parse_address(text)
    return parsed[1] if parsed else None


# --- #call ------------------------------------------------------------------------------

_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_TIME = re.compile(r"(\d{1,2})[:.](\d{2})")
_OFFSET = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})", re.IGNORECASE)


def _call(argument: str, ctx: _Context) -> dict:
    words = argument.split()
    if words and words[0].lower() in CALL_CANCEL:
        if len(words) > 1:
            raise _Invalid(Message("takes nothing after cancel"))
        return {"cancel": True}
    by_phone = bool(words) and words[-1].lower() in CALL_BY_PHONE
    if by_phone:
        words = words[:-1]
    if words and _DATE.match(words[0]) and "T" in words[0].upper():
        day_word, _, time_word = words[0].upper().partition("T")
        words[:1] = [day_word, time_word]
    if len(words) < 2:
        raise _Invalid(Message("needs a date and a time"))
    day, clock = _call_date(words[0]), _call_time(words[1])
    zone_word, duration = _call_extras(words[2:])
    start, zone_name = _call_start(datetime.combine(day, clock), zone_word, ctx)
    _check_call_time(start, zone_name, ctx.now)
    return {"start": start, "duration": duration, "timezone": zone_name, "mode": "phone" if by_phone else "meeting"}


def _phone(argument: str, ctx: _Context) -> dict:
    if not argument:
        raise _Invalid(Message("needs a phone number"))
    if argument.lower() in NONE:
        return {"number": None}
    number = parse_number(argument, ctx.phone_region)
    if number is None:
        raise _Invalid(Message("'{value}' is not a phone number", value=argument))
    return {"number": number}


def _call_date(word: str) -> date:
    match = _DATE.fullmatch(word)
    try:
        return date(*map(int, match.groups()))
    except (AttributeError, ValueError):
        raise _Invalid(Message("'{word}' is not a date (write YYYY-MM-DD)", word=word)) from None


def _call_time(word: str) -> time:
    match = _TIME.fullmatch(word)
    try:
        return time(*map(int, match.groups()))
    except (AttributeError, ValueError):
        raise _Invalid(Message("'{word}' is not a time (write HH:MM, 24-hour)", word=word)) from None


def _call_extras(words: list[str]) -> tuple[str | None, timedelta]:
    zone, duration = None, None
    for word in words:
        if duration is None and re.match(r"\d", word) and _is_duration(word):
            duration = parse_duration(word)
        elif zone is None and _looks_like_zone(word):
            zone = word
        else:
            raise _Invalid(Message("'{word}' is neither a time zone nor a duration", word=word))
    duration = DEFAULT_CALL_DURATION if duration is None else duration
    if not timedelta(0) < duration <= MAX_CALL_DURATION:
        raise _Invalid(Message("a call of {duration} is not possible; give a duration up to {longest}",
                               duration=duration, longest=MAX_CALL_DURATION))
    return zone, duration


def _is_duration(word: str) -> bool:
    try:
        parse_duration(word)
    except ValueError:
        return False
    return not re.fullmatch(r"\d+(\.\d+)?", word)  # a bare number is too ambiguous


def _looks_like_zone(word: str) -> bool:
    if "/" in word or word.upper() in {"UTC", "GMT", "Z"} or _OFFSET.fullmatch(word):
        return True
    try:
        ZoneInfo(word)  # CET, EST5EDT, Japan ...
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _call_start(naive: datetime, zone_word: str | None, ctx: _Context) -> tuple[datetime, str]:
    """The aware start, shown in the named zone (or the service's when an offset is given)."""
    if zone_word and _OFFSET.fullmatch(zone_word):
        fixed = _fixed_offset(zone_word)
        shown = _service_zone(ctx) or ZoneInfo("UTC")
        return naive.replace(tzinfo=fixed).astimezone(shown), shown.key
    if zone_word and zone_word.upper() in {"UTC", "GMT", "Z"}:
        shown = _service_zone(ctx) or ZoneInfo("UTC")
        return naive.replace(tzinfo=dt_timezone.utc).astimezone(shown), shown.key
    zone = _named_zone(zone_word) if zone_word else _service_zone(ctx)
    if zone is None:
        raise _Invalid(Message("has no time zone and the service has none configured; "
                               "write one, e.g. 14:00 Europe/Stockholm or 14:00 +01:00"))
    return _localize(naive, zone), zone.key


def _fixed_offset(word: str) -> tzinfo:
    sign, hours, minutes = _OFFSET.fullmatch(word).groups()
    if int(hours) > 14 or int(minutes) > 59:
        raise _Invalid(Message("'{word}' is not a UTC offset", word=word))
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return dt_timezone(-delta if sign == "-" else delta)


def _named_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _Invalid(Message("'{name}' is not a time zone (write e.g. Europe/Stockholm)", name=name)) from None


def _service_zone(ctx: _Context) -> ZoneInfo | None:
    if not ctx.timezone:
        return None
    try:
        return ZoneInfo(ctx.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """``naive`` in ``zone``; a wall time that is skipped or repeated by DST is refused."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    round_trip = first.astimezone(dt_timezone.utc).astimezone(zone).replace(tzinfo=None)
    if round_trip != naive:
        raise _Invalid(Message("{moment} does not exist in {zone} (the clocks go forward then)",
                               moment=f"{naive:%Y-%m-%d %H:%M}", zone=zone.key))
    raise _Invalid(Message("{moment} happens twice in {zone} (the clocks go back then); add the UTC offset, "
                           "e.g. {example}", moment=f"{naive:%Y-%m-%d %H:%M}", zone=zone.key,
                           example=f"{naive:%H:%M} {_offset_text(first)}"))


def _offset_text(moment: datetime) -> str:
    minutes = int(moment.utcoffset().total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _check_call_time(start: datetime, zone_name: str, now: datetime) -> None:
    if start <= now:
        shown = now.astimezone(start.tzinfo)
        raise _Invalid(Message("{moment} {zone} is in the past (it is now {now})", moment=f"{start:%Y-%m-%d %H:%M}",
                               zone=zone_name, now=f"{shown:%Y-%m-%d %H:%M}"))
    if start - now > MAX_CALL_AHEAD:
        raise _Invalid(Message("{day} is more than a year ahead", day=f"{start:%Y-%m-%d}"))


_PARSERS = {
    "status": _choice(STATUSES, "status"),
    "priority": _priority,
    "impact": _choice(LEVELS, "level"),
    "urgency": _choice(LEVELS, "level"),
    "assign": _assign,
    "escalate": _escalate,
    "tier": _tier,
    "category": _category,
    "type": _choice(TYPES, "type"),
    "note": _note,
    "call": _call,
    "cc": _cc,
    "link": _ticket_number,
    "merge": _ticket_number,
    "parent": _ticket_number,
    "broadcast": _broadcast,
}
_PARSERS["security"] = _security
_PARSERS["phone"] = _phone
_PARSERS["language"] = _language
