"""Pure: raw mail bytes -> ParsedMail (ids, addresses, subject, date, text, attachments).

Robust to what real mail throws at it: unknown or lying charsets, broken encoded-words,
CR-only line ends, multiparts that cannot be split, TNEF. Only input that is truly
unusable, or that breaks a Limit, raises QuarantineError with the reason.
"""

from __future__ import annotations

import email.message
import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email import policy
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

from .attachments import sanitize_filename
from .charsets import decode_bytes, header_text
from .errors import QuarantineError
from .htmltext import html_to_text
from .mimeparts import Leaf, MimeWalk, walk_parts
from .tnef import is_tnef, open_tnef

__all__ = ["Address", "Attachment", "Limits", "ParsedMail", "parse_mail", "sanitize_filename"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on one mail; breaking one quarantines the mail, naming the limit.

    max_header_line is the exception: a longer physical header line is cut to this
    length (noted), since the rest of the mail is still good.
    """
    max_size: int = 25 * MiB      # bytes of the raw message
    max_depth: int = 20           # nesting of multipart / message parts
    max_parts: int = 500          # MIME parts in the whole tree
    max_header_line: int = 16 * 1024  # characters of one physical header line
    max_references: int = 100     # ids kept from References / In-Reply-To (the last ones)


@dataclass(frozen=True)
class Address:
    name: str
    address: str          # lowercased; "" when unusable
    defective: bool = False  # the header had parse defects: never map this to an agent


@dataclass(frozen=True)
class Attachment:
    filename: str          # sanitised display name, never a path
    content_type: str
    data: bytes
    content_id: str | None  # without <>
    inline: bool


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
    walk = walk_parts(message, limits)
    headers = HeaderBlock(message, notes)
    body = extract_body(walk, notes)
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


# ---------------------------------------------------------------- raw bytes

_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_NESTING_TYPE = re.compile(rb"^content-type:\s*(?:multipart|message)/", re.I | re.M)


def prepare_bytes(raw: bytes, limits: Limits, notes: list[str]) -> bytes:
    """Check size and shape, normalise line ends, cut over-long header lines."""
    if not raw.strip():
        raise QuarantineError("empty message")
    if len(raw) > limits.max_size:
        raise QuarantineError(f"message of {len(raw)} bytes exceeds max_size {limits.max_size}")
    data = normalise_line_ends(raw, notes)
    if data[:1] in (b"\n", b" ", b"\t"):
        data = data.lstrip(b" \t\n")
        notes.append("leading blank lines removed")
    if not (_HEADER_LINE.match(data) or data.startswith(b"From ")):
        raise QuarantineError(f"not a mail: no header block at the start ({_first_line(data)!r})")
    nesting = len(_NESTING_TYPE.findall(data))
    if nesting > limits.max_parts:
        raise QuarantineError(f"{nesting} multipart/message parts exceed max_parts {limits.max_parts}")
    return cut_long_header_lines(data, limits.max_header_line, notes)


def normalise_line_ends(raw: bytes, notes: list[str]) -> bytes:
    """CRLF and bare CR become LF (the stdlib parser mis-splits CR-only mail)."""
    if b"\r" not in raw:
        return raw
    data = raw.replace(b"\r\n", b"\n")
    if b"\r" in data:
        data = data.replace(b"\r", b"\n")
        notes.append("CR-only line ends normalised")
    return data


def cut_long_header_lines(data: bytes, limit: int, notes: list[str]) -> bytes:
    """Truncate header lines longer than limit bytes (a 1 MB header line is an attack)."""
    end = data.find(b"\n\n")
    head = data if end < 0 else data[:end]
    if len(head) <= limit or max(map(len, head.split(b"\n"))) <= limit:
        return data
    lines = head.split(b"\n")
    for i, line in enumerate(lines):
        if len(line) > limit:
            notes.append(f"header line {_first_line(line)[:40]!r} of {len(line)} bytes cut to {limit}")
            lines[i] = line[:limit]
    return b"\n".join(lines) + (b"" if end < 0 else data[end:])


def _first_line(data: bytes) -> str:
    """The first line, short and printable, for a quarantine reason."""
    line = data.split(b"\n", 1)[0][:60]
    return line.decode("ascii", "replace")


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
    """policy.default on every part, for the caller (both policies store raw values alike)."""
    todo = [message]
    while todo:
        part = todo.pop()
        part.policy = policy.default
        if part.is_multipart():
            todo.extend(part.get_payload())


def _plain_shell(data: bytes) -> email.message.EmailMessage:
    """The header block as headers, everything else as one text/plain body."""
    head, _, body = data.partition(b"\n\n")
    shell = email.message.EmailMessage(policy.compat32)
    for line in head.decode("ascii", "surrogateescape").split("\n"):
        name, colon, value = line.partition(":")
        if colon and _HEADER_LINE.match(line.encode("utf-8", "surrogateescape")):
            shell[name.strip()] = value.strip()
    shell.set_payload(body.decode("ascii", "surrogateescape"))
    return shell


# ---------------------------------------------------------------- headers

_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class HeaderBlock:
    """The top-level headers, decoded by hand (raw values, own charset fallbacks)."""

    def __init__(self, message: email.message.Message, notes: list[str]):
        self.notes = notes
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
        return _CONTROL.sub("", value).strip("<>")[:500]

    def ids(self, name: str, keep: int) -> tuple[str, ...]:
        """Message ids of In-Reply-To / References, without <>, last `keep` of them."""
        raw = " ".join(self.raw.get(name, []))
        found = _ANGLE_ID.findall(raw) or [t for t in raw.split() if "@" in t]
        ids = [_CONTROL.sub("", i).strip("<>,;") for i in found]
        return tuple(dict.fromkeys(i for i in ids if i))[-keep:]

    def addresses(self, name: str) -> tuple[Address, ...]:
        values = self.raw.get(name, [])
        return tuple(a for value in values for a in parse_addresses(name, value))

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


def _unfold(value: str) -> str:
    """RFC 5322 unfolding: a line break followed by white space is removed."""
    return re.sub(r"\r?\n(?=[ \t])", "", value).rstrip("\r\n") if "\n" in value else value


# The stdlib address parser is quadratic in encoded-words: longer headers are split
# by the simple parser and their addresses marked defective.
MAX_STRICT_ADDRESS_HEADER = 32 * 1024


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ADDR_SPEC = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_PLAIN_MAILBOX = (rf'\s*(?:({_ADDR_SPEC})|(?:"((?:[^"\\\r\n]|\\.)*)"|((?:{_ATEXT}+\s+)*{_ATEXT}+))?'
                  rf"\s*<({_ADDR_SPEC})>)\s*")
_MAILBOX = re.compile(_PLAIN_MAILBOX)
_PLAIN_LIST = re.compile(rf"{_PLAIN_MAILBOX}(?:,{_PLAIN_MAILBOX})*,?\s*")


def parse_addresses(name: str, raw: str) -> list[Address]:
    """Addresses of one header; on any parse defect every address is marked defective."""
    if raw.isascii() and len(raw) < 4096 and _PLAIN_LIST.fullmatch(raw):
        return [_address(_plain_name(m), m.group(1) or m.group(4), False)
                for m in _MAILBOX.finditer(raw) if m.group(1) or m.group(4)]
    if len(raw) > MAX_STRICT_ADDRESS_HEADER:
        return [_address(d, s, True) for d, s in simple_addresses(raw)]
    if not raw.isascii():  # 8-bit bytes (not encoded-words): decode them first
        raw = header_text(raw.replace("=?", "=\u200b?"))[0].replace("=\u200b?", "=?")
    try:
        header = policy.default.header_factory(name, raw)
        defective = bool(header.defects)
        found = [(a.display_name, a.addr_spec) for a in header.addresses]
    except Exception:  # the header value parser has failure modes of its own
        defective, found = True, simple_addresses(raw)
    return [_address(display, spec, defective) for display, spec in found if display or spec]


def _plain_name(match: re.Match) -> str:
    """The display name of a plain mailbox: quoted (unescaped) or a run of atoms."""
    if match.group(2) is not None:
        return re.sub(r"\\(.)", r"\1", match.group(2))
    return match.group(3) or ""


def simple_addresses(raw: str) -> list[tuple[str, str]]:
    """(name, addr-spec) pairs by splitting on commas outside quotes and <>: no recursion,
    linear time; used when the strict parser cannot be trusted with the header."""
    pairs = []
    for chunk in _split_outside_quotes(raw):
        angle = re.search(r"<([^<>]*)>", chunk)
        spec = angle.group(1) if angle else chunk
        name = chunk[:angle.start()].strip().strip('"') if angle else ""
        if spec.strip() or name:
            pairs.append((name, spec.strip()))
    return pairs


def _split_outside_quotes(raw: str) -> list[str]:
    chunks, start, quoted, angled = [], 0, False, False
    for i, ch in enumerate(raw):
        if ch == '"' and (i == 0 or raw[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "<>":
            angled = ch == "<"
        elif ch in ",;" and not quoted and not angled:
            chunks.append(raw[start:i])
            start = i + 1
    chunks.append(raw[start:])
    return chunks


def _address(display: str, spec: str, defective: bool) -> Address:
    """One Address: lowercased, "" when it cannot be a mailbox."""
    spec = _CONTROL.sub("", spec or "").strip().lower()
    usable = spec.count("@") == 1 and " " not in spec and not spec.startswith("@") \
        and not spec.endswith("@")
    name = " ".join(_CONTROL.sub(" ", header_text(display or "")[0]).split())
    return Address(name, spec if usable else "", defective or not usable)


# ---------------------------------------------------------------- body

@dataclass
class Body:
    plain: list[str] = field(default_factory=list)
    html_parts: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    other_text: list[str] = field(default_factory=list)   # text/enriched, text/x-...
    tnef_text: list[str] = field(default_factory=list)
    tnef_html: list[str] = field(default_factory=list)

    @property
    def html(self) -> str | None:
        html = self.html_parts or self.tnef_html
        return "\n".join(html) if html else None

    @property
    def text(self) -> str:
        """text/plain, else the HTML as text, else other text, else the TNEF body."""
        if self.plain:
            return "\n\n".join(self.plain)
        if self.html_parts:
            return html_to_text("\n".join(self.html_parts))
        if self.other_text:
            return "\n\n".join(self.other_text)
        if self.tnef_text:
            return "\n\n".join(self.tnef_text)
        return html_to_text("\n".join(self.tnef_html)) if self.tnef_html else ""


@dataclass(frozen=True)
class FrozenBody:
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]


def extract_body(walk: MimeWalk, notes: list[str]) -> FrozenBody:
    """Body text, HTML and attachments from the leaves of the MIME tree."""
    body = Body()
    for leaf in walk.leaves:
        take_leaf(leaf, body, notes)
    notes.extend(walk.notes)
    return FrozenBody(_clean(body.text, notes), _clean_opt(body.html, notes),
                      tuple(body.attachments))


def take_leaf(leaf: Leaf, body: Body, notes: list[str]) -> None:
    """Sort one leaf into body text, HTML, TNEF content or attachment."""
    if leaf.is_body_text():
        text, part_notes = decode_bytes(leaf.data, leaf.charset)
        notes.extend(part_notes)
        {"text/plain": body.plain, "text/html": body.html_parts}.get(
            leaf.content_type, body.other_text).append(text)
        return
    if is_tnef(leaf.content_type, leaf.filename, leaf.data) and take_tnef(leaf, body, notes):
        return
    body.attachments.append(Attachment(
        filename=sanitize_filename(leaf.filename, leaf.content_type),
        content_type=leaf.content_type, data=leaf.data,
        content_id=leaf.content_id, inline=leaf.inline))


def take_tnef(leaf: Leaf, body: Body, notes: list[str]) -> bool:
    """Open a winmail.dat: its files become attachments, its body the last-resort text."""
    try:
        content = open_tnef(leaf.data)
    except ValueError as exc:
        notes.append(f"winmail.dat kept unopened: {exc}")
        return False
    for name, data in content.files:
        body.attachments.append(Attachment(
            sanitize_filename(name, "application/octet-stream"),
            "application/octet-stream", data, None, False))
    body.tnef_text.extend([content.text] if content.text else [])
    body.tnef_html.extend([content.html] if content.html else [])
    notes.append(f"winmail.dat opened: {len(content.files)} file(s)")
    return True


def _clean(text: str, notes: list[str]) -> str:
    """LF line ends and no NUL (a database text column refuses NUL)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "")
        notes.append("NUL characters removed from the text")
    return text


def _clean_opt(text: str | None, notes: list[str]) -> str | None:
    return None if text is None else _clean(text, notes)

