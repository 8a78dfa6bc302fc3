"""Outlook winmail.dat (TNEF) opened: the files it carries and its body."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tnefparse import TNEF

from .charsets import guess_decode

logging.getLogger("tnefparse").setLevel(logging.ERROR)  # it logs every unknown attribute


@dataclass(frozen=True)
class TnefContent:
    files: tuple[tuple[str, bytes], ...]  # (name as given, data)
    text: str | None
    html: str | None


def is_tnef(content_type: str, filename: str | None, data: bytes) -> bool:
    """application/ms-tnef, or a winmail.dat, that starts with the TNEF signature."""
    named = (filename or "").lower().endswith("winmail.dat")
    typed = content_type in ("application/ms-tnef", "application/vnd.ms-tnef")
    return (named or typed) and data[:4] == b"\x78\x9f\x3e\x22"


def open_tnef(data: bytes) -> TnefContent:
    """Decode a TNEF blob; raises ValueError when it cannot be read at all."""
    try:
        tnef = TNEF(data, do_checksum=False)
    except Exception as exc:  # tnefparse raises anything from struct/IndexError on bad input
        raise ValueError(f"unreadable TNEF: {type(exc).__name__}") from exc
    files = tuple((_name(att), bytes(att.data or b"")) for att in tnef.attachments)
    return TnefContent(files, _as_text(tnef.body), _as_text(tnef.htmlbody))


def _name(att) -> str:
    """The long file name when there is one, else the 8.3 name."""
    for getter in (att.long_filename, lambda: att.name):
        try:
            name = getter()
        except Exception:  # names in an unexpected codepage
            continue
        if isinstance(name, bytes):
            name = guess_decode(name)[0]
        if name and name.strip("\x00"):
            return name.strip("\x00")
    return ""


def _as_text(value) -> str | None:
    """TNEF bodies come as bytes or str, NUL-terminated."""
    if not value:
        return None
    if isinstance(value, bytes):
        value = guess_decode(value)[0]
    return value.rstrip("\x00") or None
