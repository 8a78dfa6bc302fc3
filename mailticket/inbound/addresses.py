"""Address headers to Address values: a fast path for plain lists, the stdlib parser for
the rest, and a linear splitter when neither can be trusted.

An address from a header with parse defects is marked defective: it must never be
taken for an agent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.errors import ObsoleteHeaderDefect
from email.headerregistry import HeaderRegistry

from .charsets import header_text
from .mailpolicy import POLICY

MAX_NAME = 200  # characters of a display name kept
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Address:
    name: str
    address: str          # lowercased; "" when unusable
    defective: bool = False  # the header had parse defects: never map this to an agent


# The stdlib address parser is quadratic in encoded-words: longer headers are split
# by the simple parser and their addresses marked defective.
MAX_STRICT_ADDRESS_HEADER = 32 * 1024


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ADDR_SPEC = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_PLAIN_MAILBOX = (rf'\s*(?:({_ADDR_SPEC})|(?:"((?:[^"\\\r\n]|\\.)*)"|((?:{_ATEXT}+\s+)*{_ATEXT}+))?'
                  rf"\s*<({_ADDR_SPEC})>)\s*")
_MAILBOX = re.compile(_PLAIN_MAILBOX)
_PLAIN_LIST = re.compile(rf"{_PLAIN_MAILBOX}(?:,{_PLAIN_MAILBOX})*,?\s*")


def parse_addresses(name: str, raw: str, keep: int = 1000) -> list[Address]:
    """Addresses of one header (at most `keep`); on any parse defect every address
    is marked defective."""
    if raw.isascii() and len(raw) < 4096 and _PLAIN_LIST.fullmatch(raw):
        return [_address(_plain_name(m), m.group(1) or m.group(4), False)
                for m in _MAILBOX.finditer(raw) if m.group(1) or m.group(4)]
    if len(raw) > MAX_STRICT_ADDRESS_HEADER:
        return [_address(d, s, True) for d, s in simple_addresses(raw, keep)]
    if not raw.isascii():  # 8-bit bytes (not encoded-words): decode them first
        raw = header_text(raw.replace("=?", "=\u200b?"))[0].replace("=\u200b?", "=?")
    try:
        header = POLICY.header_factory(name, raw)
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


def simple_addresses(raw: str, keep: int = 1000) -> list[tuple[str, str]]:
    """(name, addr-spec) pairs by splitting on commas outside quotes and <>: no recursion,
    linear time; used when the strict parser cannot be trusted with the header."""
    pairs = []
    for chunk in _split_outside_quotes(raw)[:keep]:
        angle = re.search(r"<([^<>]*)>", chunk)
        spec = angle.group(1) if angle else chunk
        name = chunk[:angle.start()].strip().strip('"') if angle else ""
        if spec.strip() or name:
            pairs.append((name, spec.strip()))
    return pairs


_CHUNK = re.compile(r'(?:"(?:[^"\\]|\\.)*"?|<[^<>]*>?|[^",;<]+)+')


def _split_outside_quotes(raw: str) -> list[str]:
    """Pieces between commas/semicolons that are outside quotes and <>."""
    return _CHUNK.findall(raw)


def _address(display: str, spec: str, defective: bool) -> Address:
    """One Address: lowercased, "" when it cannot be a mailbox."""
    spec = _CONTROL.sub("", spec or "").strip().lower()
    usable = spec.count("@") == 1 and " " not in spec and not spec.startswith("@") \
        and not spec.endswith("@")
    name = " ".join(_CONTROL.sub(" ", header_text(display or "")[0]).split())[:MAX_NAME]
    return Address(name, spec if usable else "", defective or not usable)


_DOMAIN = re.compile(r"[^\W_][\w-]*(?:\.[\w-]+)+")


def parse_address(text: str) -> tuple[str, str] | None:
    """``(display name, lower-cased address)`` of the single address in ``text``.

    None when the parser reports a defect (an obsolete period in a name is fine),
    when there is not exactly one address, or the domain is not a dotted name."""
    try:
        header = HeaderRegistry()("From", text)
        addresses = header.addresses
    except Exception:  # the parser may raise on hostile input
        return None
    if any(not isinstance(d, ObsoleteHeaderDefect) for d in header.defects) or len(addresses) != 1:
        return None
    address = addresses[0]
    if not address.username or not _DOMAIN.fullmatch(address.domain) or " " in address.addr_spec:
        return None
    return address.display_name, address.addr_spec.lower()
