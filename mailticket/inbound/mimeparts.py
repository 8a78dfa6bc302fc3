"""The MIME tree walked into a flat list of leaves, with limits and repairs.

Every header of a part is read defensively: a value the stdlib refuses is read raw.
A multipart that cannot be split is re-split on the boundary its body really uses,
or kept whole as text.
"""

from __future__ import annotations

import email.message
import re
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

from .partheaders import PartHeaders, read_part_headers
from ..errors import QuarantineError
from ..i18n import Message

# Text subtypes that are data, not something a person wrote: kept as attachments.
DATA_TEXT = {"calendar", "rfc822-headers", "csv", "xml", "vcard", "x-vcard", "directory",
             "x-vcalendar", "tab-separated-values"}
_SERIALISE = policy.compat32.clone(linesep="\n", mangle_from_=False)
_BOUNDARY_LINE = re.compile(r"^--([^\s]{1,100}?)(?:--)?[ \t]*$", re.M)


@dataclass(frozen=True)
class Leaf:
    content_type: str
    charset: str | None
    filename: str | None
    content_id: str | None
    disposition: str | None
    data: bytes

    @property
    def inline(self) -> bool:
        return self.disposition == "inline" or (self.content_id is not None
                                                and self.disposition != "attachment")

    def is_body_text(self) -> bool:
        """Text a person wrote: text/*, not data, not named, not an attachment."""
        maintype, _, subtype = self.content_type.partition("/")
        return (maintype == "text" and subtype not in DATA_TEXT and not self.filename
                and self.disposition != "attachment")


@dataclass
class MimeWalk:
    leaves: list[Leaf] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    parts: int = 0


def walk_parts(message: email.message.Message, limits) -> MimeWalk:
    """All leaves in document order; QuarantineError when max_parts or max_depth is broken."""
    walk = MimeWalk()
    stack = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        _count(walk, depth, limits)
        children = _visit(part, depth, walk, limits)
        stack.extend((child, depth + 1) for child in reversed(children))
    return walk


def _count(walk: MimeWalk, depth: int, limits) -> None:
    walk.parts += 1
    if walk.parts > limits.max_parts:
        raise QuarantineError(Message("more than max_parts {limit} MIME parts", limit=limits.max_parts))
    if depth > limits.max_depth:
        raise QuarantineError(Message("MIME nesting deeper than max_depth {limit}", limit=limits.max_depth))


def _visit(part, depth: int, walk: MimeWalk, limits) -> list:
    """The children to walk into, or [] after recording the part as a leaf."""
    heads = read_part_headers(part)
    ctype = heads.content_type
    payload = part.get_payload() if part.is_multipart() else None
    if isinstance(payload, list) and ctype.startswith("multipart/"):
        return payload
    if isinstance(payload, list):  # message/rfc822, message/delivery-status, ...
        _count_enclosed(payload, depth, walk, limits)
        walk.leaves.append(_leaf(heads, _serialised(payload)))
        return []
    if ctype.startswith("multipart/"):
        return _resplit(part, heads, walk)
    walk.leaves.append(_leaf(heads, _payload_bytes(part, walk)))
    return []


def _count_enclosed(payload: list, depth: int, walk: MimeWalk, limits) -> None:
    """Parts of an attached message count towards the limits too (it stays one leaf)."""
    todo = [(sub, depth + 1) for sub in payload]
    while todo:
        current, level = todo.pop()
        _count(walk, level, limits)
        inner = current.get_payload()
        if isinstance(inner, list):
            todo.extend((sub, level + 1) for sub in inner)


def _leaf(heads: PartHeaders, data: bytes) -> Leaf:
    return Leaf(content_type=heads.content_type, charset=heads.charset,
                filename=heads.filename, content_id=heads.content_id,
                disposition=heads.disposition, data=data)


# ---------------------------------------------------------------- payloads

def _payload_bytes(part, walk: MimeWalk) -> bytes:
    """The decoded payload (base64, quoted-printable); the raw text when decoding fails."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
        walk.notes.append("a part's transfer encoding could not be decoded: kept raw")
    if data is None:
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    return data


def _serialised(payload: list) -> bytes:
    """An attached message (or report block list) back to bytes."""
    out = []
    for sub in payload:
        try:
            out.append(sub.as_bytes(policy=_SERIALISE))
        except Exception:
            try:
                out.append(sub.as_string(policy=_SERIALISE).encode("utf-8", "surrogateescape"))
            except Exception:
                out.append(b"")
    return b"\n".join(out)


def _resplit(part, heads: PartHeaders, walk: MimeWalk) -> list:
    """A multipart the parser could not split: retry with the boundary its body uses."""
    body = part.get_payload()
    body = body if isinstance(body, str) else ""
    boundary = guess_boundary(body)
    if boundary:
        shell = (f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n').encode()
        try:
            parser = BytesParser(_class=email.message.EmailMessage, policy=policy.compat32)
            reparsed = parser.parsebytes(shell + body.encode("utf-8", "surrogateescape"))
        except Exception:
            reparsed = None
        if reparsed is not None and isinstance(reparsed.get_payload(), list):
            walk.notes.append("multipart boundary missing or wrong: parts split on the "
                              "boundary found in the body")
            return reparsed.get_payload()
    walk.notes.append("multipart that cannot be split: its raw body kept as text")
    data = body.encode("utf-8", "surrogateescape")
    walk.leaves.append(Leaf("text/plain", heads.charset, None, None, None, data))
    return []


def guess_boundary(body: str) -> str | None:
    """The --token that opens at least two lines of the body, if there is one."""
    counts = Counter(_BOUNDARY_LINE.findall(body))
    if not counts:
        return None
    token, seen = counts.most_common(1)[0]
    return token if seen >= 2 and '"' not in token else None
