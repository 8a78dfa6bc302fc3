"""Pure: raw mail bytes -> ParsedMail (ids, addresses, subject, date, text, attachments).

Robust to what real mail throws at it: unknown or lying charsets, broken encoded-words,
CR-only line ends, multiparts that cannot be split, TNEF. Only input that is truly
unusable, or that breaks a Limit, raises QuarantineError with the reason; every repair
is listed in ParsedMail.notes.

How: the raw bytes are checked and repaired first (rawmail: size, "is it a mail at
all", line ends, header line length, nesting pre-scan); the stdlib splits the MIME tree
under policy.compat32 (fast, lenient); headers and parts are then decoded here with our
own charset fallbacks (charsets, partheaders, addresses); finally the tree is handed
over under policy.default, so `message["x"]` gives header objects to the caller.
`text` is the text/plain body (several inline parts joined), else the HTML as text,
else other text/*, else the TNEF body; `html` is the decoded HTML source.
"""

from __future__ import annotations

import email.message
import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

from .addresses import Address, parse_addresses
from ..errors import QuarantineError
from .mailpolicy import POLICY
from . import feedboundary
from .attachments import Attachment, sanitize_filename
from .charsets import header_text
from .mailbody import extract_body
from .mimeparts import walk_parts
from .rawmail import HEADER_LINE, Limits, prepare_bytes

__all__ = ["Address", "Attachment", "Limits", "ParsedMail", "parse_mail", "sanitize_filename"]

feedboundary.install()  # the stdlib parser, without a regex compiled per multipart boundary


@dataclass(frozen=True)
class ParsedMail:
    message: email.message.EmailMessage
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender: Address
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    delivered_to: tuple[str, ...]
    date: datetime | None
    text: str
    html: str | None       # the decoded HTML source of the body, when it has one
    attachments: tuple[Attachment, ...]
    notes: tuple[str, ...]
    size: int


def parse_mail(raw: bytes, limits: Limits = Limits()) -> ParsedMail:
    """Parse one raw mail; raises QuarantineError only for unusable input or a broken limit."""
    raw = bytes(raw)
    notes: list[str] = []
    data = prepare_bytes(raw, limits, notes)
    message = parse_tree(data, notes)  # compat32 while we read it: no header objects built
    try:
        body = extract_body(walk_parts(message, limits), notes)
    except QuarantineError:
        raise
    except (Exception, RecursionError):  # the stdlib choked inside a part: keep the best text there is
        notes.append("MIME parts unreadable: the whole body kept as plain text")
        message = _plain_shell(data)
        for name in ("Content-Type", "Content-Transfer-Encoding"):
            del message[name]
        body = extract_body(walk_parts(message, limits), notes)
    headers = HeaderBlock(message, limits, notes)
    use_default_policy(message)
    return ParsedMail(
        message=message,
        message_id=headers.message_id() or generated_message_id(raw),
        in_reply_to=headers.ids("in-reply-to", limits.max_references),
        references=headers.ids("references", limits.max_references),
        subject=headers.subject(),
        sender=first_sender(headers.addresses("from")),
        reply_to=headers.addresses("reply-to"),
        to=headers.addresses("to"),
        cc=headers.addresses("cc"),
        delivered_to=headers.delivered_to(),
        date=headers.date(),
        text=body.text,
        html=body.html,
        attachments=body.attachments,
        notes=tuple(dict.fromkeys(notes)),
        size=len(raw),
    )


def first_sender(found: tuple[Address, ...]) -> Address:
    """The first From address; marked defective when there is none or more than one
    (a From naming two people proves neither, so it never maps to an agent)."""
    if not found:
        return Address("", "", True)
    return found[0] if len(found) == 1 else replace(found[0], defective=True)


def generated_message_id(raw: bytes) -> str:
    """A stable id for a mail without Message-ID: same bytes, same id."""
    return f"generated-{hashlib.sha256(raw).hexdigest()[:32]}@mailticket.invalid"


# ---------------------------------------------------------------- the MIME tree

def parse_tree(data: bytes, notes: list[str]) -> email.message.EmailMessage:
    """Parse with compat32 (fast and lenient: header values stay strings); a
    headers-and-text shell when the parser fails."""
    try:
        message = BytesParser(_class=email.message.EmailMessage,
                              policy=policy.compat32).parsebytes(data)
    except (Exception, RecursionError):  # the stdlib parser has no narrower contract
        notes.append("MIME structure unreadable: kept as plain text")
        message = _plain_shell(data)
    return message


def use_default_policy(message: email.message.Message) -> None:
    """policy.default (remembering its parsed headers) on every part, for the caller (both policies
    store raw values alike)."""
    todo = [message]
    while todo:
        part = todo.pop()
        part.policy = POLICY
        if part.is_multipart():
            todo.extend(part.get_payload())


def _plain_shell(data: bytes) -> email.message.EmailMessage:
    """The header block as headers, everything else as one text/plain body."""
    head, _, body = data.partition(b"\n\n")
    shell = email.message.EmailMessage(policy.compat32)
    for line in head.decode("ascii", "surrogateescape").split("\n"):
        name, colon, value = line.partition(":")
        if colon and HEADER_LINE.match(line.encode("utf-8", "surrogateescape")):
            shell[name.strip()] = value.strip()
    shell.set_payload(body.decode("ascii", "surrogateescape"))
    return shell


# ---------------------------------------------------------------- headers

_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class HeaderBlock:
    """The top-level headers, decoded by hand (raw values, own charset fallbacks)."""

    def __init__(self, message: email.message.Message, limits: Limits, notes: list[str]):
        self.notes, self.limits = notes, limits
        self.raw: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self.raw.setdefault(name.strip().lower(), []).append(_unfold(str(value)))

    def first(self, name: str) -> str | None:
        values = self.raw.get(name)
        return values[0] if values else None

    def text(self, name: str) -> str:
        """A header decoded to one clean line: encoded-words, 8-bit bytes, no controls."""
        raw = self.first(name)
        if raw is None:
            return ""
        decoded, notes = header_text(raw)
        self.notes.extend(f"{name}: {note}" for note in notes)
        return " ".join(_CONTROL.sub(" ", decoded).split())

    def subject(self) -> str:
        return self.text("subject")

    def message_id(self) -> str:
        raw = self.first("message-id") or ""
        found = _ANGLE_ID.search(raw)
        value = found.group(1) if found else "".join(raw.split())
        return _clean_id(value).strip("<>")[:500]

    def ids(self, name: str, keep: int) -> tuple[str, ...]:
        """Message ids of In-Reply-To / References, without <>, last `keep` of them."""
        raw = " ".join(self.raw.get(name, []))
        found = _ANGLE_ID.findall(raw) or [t for t in raw.split() if "@" in t]
        ids = [_clean_id(i).strip("<>,;") for i in found]
        return tuple(dict.fromkeys(i for i in ids if i))[-keep:]

    def addresses(self, name: str) -> tuple[Address, ...]:
        keep = self.limits.max_addresses
        found = [a for value in self.raw.get(name, [])
                 for a in parse_addresses(name, value, keep + 1)]
        if len(found) > keep:
            self.notes.append(f"{name}: more than {keep} addresses, only the first {keep} kept")
        return tuple(found[:keep])

    def delivered_to(self) -> tuple[str, ...]:
        found = [a.address for name in ("delivered-to", "x-original-to", "envelope-to")
                 for a in self.addresses(name) if a.address]
        return tuple(dict.fromkeys(found))

    def date(self) -> datetime | None:
        raw = self.first("date")
        if not raw:
            return None
        try:
            when = parsedate_to_datetime(raw.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            self.notes.append("date: unreadable, ignored")
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc)


def _clean_id(value: str) -> str:
    """No control characters, and 8-bit bytes that are not UTF-8 (kept as surrogates by the
    parser, which no database accepts) as U+FFFD."""
    return _CONTROL.sub("", value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _unfold(value: str) -> str:
    """RFC 5322 unfolding: a line break followed by white space is removed."""
    return re.sub(r"\r?\n(?=[ \t])", "", value).rstrip("\r\n") if "\n" in value else value


