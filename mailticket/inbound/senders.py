"""Who can be answered when ``From`` is broken: the sender recovered in a fixed order.

A ``From`` that is empty, ``<>``, a bare name or a malformed address does not make a mail
unanswerable when another header names a usable address. The order is fixed and logged, and
the choice is recorded in the ticket's history (``desk.pipeline``):

1. ``From``: its address, or an address written loosely in its raw line ("Big Bug bb@bug.com");
2. a second ``From`` header;
3. ``Sender`` (RFC 5322: the mailbox that actually sent it);
4. ``Reply-To`` (where the writer wants answers);
5. ``Return-Path`` (the envelope sender the receiving MTA wrote down; ``<>`` is no address).

An address found this way is always marked defective: it is good enough to answer, never good
enough to be taken for an agent. None usable: the caller quarantines the mail with ``reason``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from ..i18n import Message as I18nMessage
from .addresses import Address, parse_addresses
from .charsets import header_text

__all__ = ["ORDER", "Recovered", "recover_sender"]

ORDER = ("From", "second From", "Sender", "Reply-To", "Return-Path")
_ADDR_SPEC = re.compile(r"[\w.%+'=-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class Recovered:
    sender: Address | None   # None: nothing usable
    source: str              # one of ORDER, or "" when nothing was found
    reason: str              # what was wrong with From and what was used (for the log and history)


def recover_sender(msg: Message, raw: bytes = b"") -> Recovered:
    """The first usable address in ORDER. Call it when the parsed From has no usable address;
    ``raw`` (the mail as received) gives a From line the parser did not take for a header (one
    after a broken line in the header block)."""
    froms = _raw_values(msg, "from") or _from_lines(raw)
    name = _display_name(froms[0]) if froms else ""
    broken = (I18nMessage("From {value} has no usable address", value=_shown(froms[0])) if froms
              else I18nMessage("no From header"))
    candidates = [("From", _loose_address(froms[0]) if froms else None)]
    candidates += [("second From", _first_address(v)) for v in froms[1:2]]
    for header in ("Sender", "Reply-To", "Return-Path"):
        candidates += [(header, _first_address(v)) for v in _raw_values(msg, header.lower())[:1]]
    for source, address in candidates:
        if address:
            return Recovered(Address(name, address, True), source, f"{broken}; answering the address in {source}")
    tried = ", ".join(ORDER[1:])
    return Recovered(None, "", I18nMessage("no usable sender address: {problem}, and none in {tried}",
                                           problem=broken, tried=tried))


_RAW_FROM = re.compile(rb"^from[ \t]*:([^\r\n]*)", re.I | re.M)


def _from_lines(raw: bytes) -> list[str]:
    """From lines anywhere in the raw header block (up to the first empty line)."""
    head = re.split(rb"\r?\n\r?\n", raw[:65536], maxsplit=1)[0]
    return [m.group(1).decode("utf-8", "replace").strip() for m in _RAW_FROM.finditer(head)]


def _raw_values(msg: Message, name: str) -> list[str]:
    try:
        return [_unfold(str(v)) for k, v in msg.raw_items() if k.strip().lower() == name]
    except Exception:  # noqa: BLE001 - a header the parser cannot give back is no address
        return []


def _first_address(value: str) -> str | None:
    found = [a.address for a in parse_addresses("from", value, 5) if a.address]
    return found[0] if found else _loose_address(value)


def _loose_address(value: str) -> str | None:
    """An address written without <> or with junk around it, read from the raw text."""
    found = _ADDR_SPEC.search(value)
    return found.group(0).lower() if found else None


def _display_name(value: str) -> str:
    found = parse_addresses("from", value, 5)
    return found[0].name if found else ""


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).strip()


def _shown(value: str) -> str:
    text = " ".join(header_text(value)[0].split())
    return repr(text[:60]) if text else "(empty)"
