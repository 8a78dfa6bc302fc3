"""The MIME headers of one part (type, charset, name, disposition, Content-ID), read fast
when they are plain and by the stdlib (defensively) when they use RFC 2231 or encoded-words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .charsets import decode_8bit, header_text

_TOKEN = r"[!#$%&'+.^`|~\w-]+"
_PARAM = rf';\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))\s*'
_PLAIN_TYPE = re.compile(rf"\s*(?P<head>{_TOKEN}/{_TOKEN})\s*(?P<params>(?:{_PARAM})*);?\s*")
_PLAIN_DISPOSITION = re.compile(rf"\s*(?P<head>{_TOKEN})\s*(?P<params>(?:{_PARAM})*);?\s*")
_PARAMS = re.compile(_PARAM)
_TYPE = re.compile(r"^\s*([!#$%&'*+.^`|~\w-]+/[!#$%&'*+.^`|~\w-]+)")
_RAW_NAME = re.compile(r"""\b(?:file)?name\*?(?:0\*?)?\s*=\s*(?:"([^"]*)"|([^;\s]+))""", re.I)
_QUOTED_PAIR = re.compile(r"\\(.)")


# A part header longer than this is read by simple regexes on its first MAX_VALUE
# characters (the parameter parsers are too slow on megabyte values).
MAX_VALUE = 32 * 1024


@dataclass(frozen=True)
class PartHeaders:
    content_type: str          # maintype/subtype, lowercased
    charset: str | None
    filename: str | None       # as the mail gives it (decoded), not yet sanitised
    disposition: str | None    # inline / attachment / None
    content_id: str | None     # without <>


def read_part_headers(part) -> PartHeaders:
    """The MIME headers of one part; never raises."""
    raw = {}
    for name, value in part.raw_items():
        raw.setdefault(name.lower(), str(value))
    if any(len(value) > MAX_VALUE for value in raw.values()):
        return _read_by_regex(raw)
    ctype_raw, disp_raw = raw.get("content-type"), raw.get("content-disposition", "")
    plain_type = _plain(_PLAIN_TYPE, ctype_raw) if ctype_raw is not None else None
    plain_disp = _plain(_PLAIN_DISPOSITION, disp_raw) if disp_raw else (None, {})
    if (ctype_raw is None or plain_type) and plain_disp:
        ctype, params = plain_type or (part.get_default_type(), {})
        disposition, disp_params = plain_disp
        name = disp_params.get("filename") or params.get("name")
        return PartHeaders(ctype, params.get("charset"), _decoded(name), disposition,
                           _content_id(raw.get("content-id", "")))
    return _read_by_stdlib(part, disp_raw, raw)


def _plain(pattern: re.Pattern, value: str):
    """(value, params) when the header is plain (no RFC 2231 or encoded-word; raw 8-bit
    bytes are decoded first); else None."""
    value = decode_8bit(value)[0]
    if "*" in value or "=?" in value:
        return None
    found = pattern.fullmatch(value)
    if not found:
        return None
    params = {m.group(1).lower(): _unquote(m) for m in _PARAMS.finditer(found["params"])}
    return found["head"].lower(), params


def _unquote(match: re.Match) -> str:
    quoted = match.group(2)
    return _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else match.group(3)


def _read_by_stdlib(part, disp_raw: str, raw: dict) -> PartHeaders:
    """RFC 2231 / encoded-word parameters: the stdlib reads them; raw regexes if it fails."""
    return PartHeaders(_stdlib_type(part, raw.get("content-type", "")), _stdlib_param(part, "charset"),
                       _stdlib_filename(part, raw), _disposition(disp_raw),
                       _content_id(raw.get("content-id", "")))


def _read_by_regex(raw: dict) -> PartHeaders:
    """Type, charset and name found by regex in the first MAX_VALUE characters."""
    ctype_raw = raw.get("content-type", "")[:MAX_VALUE]
    disp_raw = raw.get("content-disposition", "")[:MAX_VALUE]
    found_type = _TYPE.match(ctype_raw)
    charset = re.search(r"charset\s*=\s*\"?([\w.:-]+)", ctype_raw, re.I)
    name = _RAW_NAME.search(disp_raw + ";" + ctype_raw)
    return PartHeaders(found_type.group(1).lower() if found_type else "text/plain",
                       charset.group(1) if charset else None,
                       _decoded((name.group(1) or name.group(2)) if name else None),
                       _disposition(disp_raw), _content_id(raw.get("content-id", "")[:1000]))


def _stdlib_type(part, raw_type: str) -> str:
    try:
        return part.get_content_type()
    except Exception:  # the header registry can fail on hostile values
        found = _TYPE.match(raw_type)
        return found.group(1).lower() if found else "text/plain"


def _stdlib_param(part, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:
        value = None
    if isinstance(value, tuple):  # RFC 2231 triple
        value = value[2]
    return str(value) if value else None


def _stdlib_filename(part, raw: dict) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        found = _RAW_NAME.search(raw.get("content-disposition", "") + ";" +
                                 raw.get("content-type", ""))
        name = (found.group(1) or found.group(2)) if found else None
    return _decoded(None if name is None else str(name))


def _decoded(name: str | None) -> str | None:
    """Encoded-words and 8-bit bytes inside a file name (non-standard, but common)."""
    if name is None:
        return None
    return header_text(name)[0] if ("=?" in name or not name.isascii()) else name


def _disposition(raw: str) -> str | None:
    found = re.match(r"\s*([\w-]+)", raw)
    return found.group(1).lower() if found else None


def _content_id(raw: str) -> str | None:
    value = "".join(raw.split())
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value or None
