"""A queued mail's ingredients, kept in place of the finished mail until the sender sends it.

The daemon decides everything about a mail in the transaction of the change that caused it: its
recipients, Message-ID, Date, thread headers, signed Reply-To and return path, and the values its
template is given. Rendering the template and writing the MIME bytes it leaves to the sender
process, which runs on the other core (about a quarter of the daemon's CPU a mail went there,
bench/RESULTS.md). A draft is JSON in ``Outbox.draft``: the mail it gives is the one the daemon
would have written, byte for byte, with the templates of the moment it is sent
(tests/test_drafts.py renders every kind both ways and compares).

Only plain values go into a draft: text, numbers, booleans, None, lists, string-keyed tables,
datetimes, dates, durations and Messages (``i18n``: text translated when the mail is written). A
mail whose values are anything else, or that carries a calendar part or files given as bytes, is
written at once by the daemon, as before. Files stored under the data directory (a requester's
attachments) travel as ``MailFile`` references: the sender reads them when it writes the mail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta

from ..i18n import Message

VERSION = 1
_DATETIME, _DATE, _DURATION, _MESSAGE = "__datetime__", "__date__", "__seconds__", "__msg__"
_MARKERS = (_DATETIME, _DATE, _DURATION, _MESSAGE)


class NotPlain(TypeError):
    """A value a draft cannot carry; the mail is then written at once."""


@dataclass(frozen=True)
class Heading:
    """What a mail's headers say besides its subject, fixed when it is queued."""

    message_id: str                       # without brackets
    date: datetime
    to: tuple[tuple[str, str], ...]       # (display name, address)
    cc: tuple[tuple[str, str], ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    reply_to: str | None = None           # the signed reply address, or None
    auto_submitted: str = "auto-generated"
    from_name: str | None = None
    ticket_id: int | None = None


_HEADING_FIELDS = tuple(f.name for f in fields(Heading))


@dataclass(frozen=True)
class MailFile:
    """A stored file to attach: its display name, type, path under the data directory, and the
    Content-ID it is shown by in the HTML part when it is an inline image (else None). ``data``
    is the bytes when they are at hand (a mail written at once); a draft carries only the path."""

    name: str
    content_type: str
    path: str
    content_id: str | None = None
    data: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Draft:
    kind: str
    locale: str
    context: dict
    heading: Heading
    files: tuple[MailFile, ...] = ()


def dumps(draft: Draft) -> str:
    """The draft as JSON; raises NotPlain for a value it cannot carry."""
    heading = {f: getattr(draft.heading, f) for f in _HEADING_FIELDS}  # dataclasses.asdict deep-copies: 3x dearer
    data = {"v": VERSION, "kind": draft.kind, "locale": draft.locale,
            "context": _plain(draft.context), "heading": _plain(heading)}
    if draft.files:
        data["files"] = [[f.name, f.content_type, f.path, f.content_id] for f in draft.files]
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def loads(text: str) -> Draft:
    """The draft back from JSON; ValueError when it is not one this version wrote."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise ValueError(f"not a version-{VERSION} draft")
    h = _revive(data["heading"])
    heading = Heading(**{**h, "to": _pairs(h["to"]), "cc": _pairs(h["cc"]), "references": tuple(h["references"])})
    files = tuple(MailFile(*item) for item in data.get("files", ()))
    return Draft(kind=data["kind"], locale=data["locale"], context=_revive(data["context"]), heading=heading,
                 files=files)


def dumps_value(value) -> str:
    """One value in a draft's JSON (a Message with its arguments, say), for text kept outside a
    draft that must still be written in the reader's language; raises NotPlain as ``dumps``."""
    return json.dumps(_plain(value), separators=(",", ":"), allow_nan=False)


def loads_value(text: str):
    """The value ``dumps_value`` wrote."""
    return _revive(json.loads(text))


def _pairs(items) -> tuple[tuple[str, str], ...]:
    return tuple((name, address) for name, address in items)


_SCALARS = frozenset({str, int, bool, type(None)})  # exact types: a str subclass such as Markup is not plain


def _plain(value):
    """``value`` in JSON's terms, datetimes, dates and durations tagged; NotPlain otherwise.
    Exact types only: a subclass (Markup, an IntEnum, a datetime of another library) could
    render differently once it came back as its base type."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise NotPlain("a table with keys that are not text")
            out[key] = item if type(item) in _SCALARS else _plain(item)
        if len(out) == 1 and next(iter(out)) in _MARKERS:
            raise NotPlain(f"a table whose only key is {next(iter(out))!r}")
        return out
    if kind is list or kind is tuple:
        return [item if type(item) in _SCALARS else _plain(item) for item in value]
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise NotPlain(f"{value!r} has no JSON form")
        return value
    if kind is datetime:
        return {_DATETIME: value.isoformat()}
    if kind is date:
        return {_DATE: value.isoformat()}
    if kind is timedelta:
        return {_DURATION: value.total_seconds()}
    if kind is Message:  # translated when the sender writes the mail, in the mail's locale
        return {_MESSAGE: [value.msgid, _plain(value.args)]}
    raise NotPlain(f"a {kind.__name__}")


def _revive(value):
    if isinstance(value, list):
        return [_revive(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (key, inner), = value.items()
            if key == _DATETIME:
                return datetime.fromisoformat(inner)
            if key == _DATE:
                return date.fromisoformat(inner)
            if key == _DURATION:
                return timedelta(seconds=inner)
            if key == _MESSAGE:
                return Message(inner[0], **_revive(inner[1]))
        return {k: _revive(v) for k, v in value.items()}
    return value
