"""Defensive read access to a parsed mail: headers, addresses, text parts.

Works the same on a message parsed with ``policy.default`` and with the compat32
fallback, and never raises: a header that cannot be read is treated as missing.
"""

from __future__ import annotations

import email.header
import functools
import re
import threading
from contextlib import contextmanager
from email.message import Message
from email.utils import getaddresses, parseaddr

_local = threading.local()  # .memo: the answers of the memoised() block running in this thread


@contextmanager
def memoised():
    """Inside the block, each reader marked ``@remembered`` answers a question about a part once:
    classify asks for the same headers, addresses and content types of one mail dozens of times
    (getaddresses alone was a third of its time). The mail must not change inside the block; the
    answers are dropped at its end, so no answer outlives the parts it is about."""
    if getattr(_local, "memo", None) is not None:
        yield
        return
    _local.memo = {}
    try:
        yield
    finally:
        _local.memo = None


def remembered(reader):
    """Within ``memoised()``, ``reader(part, *args)`` runs once per part and arguments; lists
    are handed out as copies, so a caller that changes one changes nothing for the next."""
    @functools.wraps(reader)
    def read(part, *args, **kwargs):
        memo = getattr(_local, "memo", None)
        if memo is None:
            return reader(part, *args, **kwargs)
        key = (reader, id(part), args, tuple(sorted(kwargs.items())) if kwargs else ())
        if key not in memo:
            memo[key] = (part, reader(part, *args, **kwargs))  # the part kept alive: its id stays its own
        answer = memo[key][1]
        return list(answer) if isinstance(answer, list) else answer
    return read

_FOLD = re.compile(r"\r?\n[ \t]*")
_ENCODED_WORD = re.compile(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=")
_SURROGATE_ESCAPE = re.compile("[\udc80-\udcff]")


def normalise_line_ends(raw: bytes) -> bytes:
    """Turn CRLF and CR-only line ends into LF, so the stdlib parser sees every header."""
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _as_text(value: object) -> str:
    """A header value as one line of text, whatever object the parser stored."""
    try:
        if isinstance(value, email.header.Header):
            return _FOLD.sub(" ", str(value))
        text = value if isinstance(value, str) else str(value)
    except Exception:  # noqa: BLE001 - a broken header counts as empty
        return ""
    return _FOLD.sub(" ", _undo_surrogates(text)).strip()


def _undo_surrogates(text: str) -> str:
    """Raw 8-bit header bytes (kept as surrogate escapes) read as UTF-8, else Latin-1."""
    if text.isascii() or not _SURROGATE_ESCAPE.search(text):  # a search, not a Python loop per character
        return text
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words; leave the text as it is when they are broken."""
    if not _ENCODED_WORD.search(text):
        return text
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except Exception:  # noqa: BLE001
        return text


@remembered
def _raw_values_by_name(msg: Message) -> dict[str, list]:
    """Every raw header value under its name (stripped, lowercased), in order; empty when the
    headers cannot be read. One pass over the headers answers all of classify's questions about
    a mail (some 40 names, each a pass over every header before). Not to be changed by a caller:
    within ``memoised()`` the next one gets the same dict."""
    by_name: dict[str, list] = {}
    try:
        for key, value in msg.raw_items():
            by_name.setdefault(str(key).strip().lower(), []).append(value)
    except Exception:  # noqa: BLE001
        return {}
    return by_name


@remembered
def header_values(msg: Message, name: str) -> list[str]:
    """All raw values of header `name` (case-insensitive), unfolded and encoded words decoded."""
    return [_decode_words(_as_text(v)) for v in _raw_values_by_name(msg).get(name.lower(), ())]


def header(msg: Message, name: str) -> str | None:
    """The first value of header `name`, or None when it is missing."""
    values = header_values(msg, name)
    return values[0] if values else None


def _first_raw_value(msg: Message, name: str):
    """The stored value of the first header ``name`` (lower case), found as ``Message.get`` finds
    it, before any policy reads it; None when there is none."""
    try:
        return next((v for k, v in msg.raw_items() if k.lower() == name), None)
    except Exception:  # noqa: BLE001
        return None


_TOKEN = r"[!#$%&'*+.^`|~0-9A-Za-z_-]+"
_QUOTED = r'"[\x20\x21\x23-\x5b\x5d-\x7e]*"'  # printable ASCII, no quote, no backslash
_WELL_FORMED_CONTENT_TYPE = re.compile(
    rf"[ \t]*{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*[ \t]*;?[ \t]*\Z")


def has_header(msg: Message, name: str) -> bool:
    """True when the header is present, even with an empty value."""
    return name.lower() in _raw_values_by_name(msg)


@remembered
def addresses(msg: Message, name: str) -> list[str]:
    """The lowercased addr-specs found in every header `name`."""
    values = header_values(msg, name)
    try:
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001
        pairs = [parseaddr(v) for v in values]
    return [addr.strip().lower() for _, addr in pairs if addr.strip()]


@remembered
def display_names(msg: Message, name: str) -> list[str]:
    """The display names in header `name` (for 'Mail Delivery System' style senders)."""
    try:
        return [n for n, _ in getaddresses(header_values(msg, name)) if n]
    except Exception:  # noqa: BLE001
        return []


@remembered
def content_type(msg: Message) -> str:
    """The lowercased maintype/subtype, 'text/plain' when unreadable.

    A well-formed value (tokens, ``;`` parameters of tokens or simple quoted strings, ASCII, no
    RFC 2231 ``*`` and no encoded word, which the stdlib reads specially) is read from its raw
    text: under ``policy.default`` the stdlib would first parse it into a header object (3 % of
    the daemon), whose text is then that same raw text, unfolded. Anything else goes through
    ``get_content_type``, which may repair it or fail."""
    raw = _first_raw_value(msg, "content-type")
    if type(raw) is str:
        unfolded = raw.replace("\r", "").replace("\n", "")
        if "*" not in unfolded and "=?" not in unfolded and _WELL_FORMED_CONTENT_TYPE.match(unfolded):
            return unfolded.split(";", 1)[0].strip().lower()
    try:
        return msg.get_content_type().lower()
    except Exception:  # noqa: BLE001
        return "text/plain"


@remembered
def content_param(msg: Message, param: str) -> str | None:
    """A Content-Type parameter (lowercased), or None."""
    try:
        value = msg.get_param(param, header="content-type")
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        value = value[2]
    return str(value).strip().lower() if value else None


def subparts(msg: Message) -> list[Message]:
    """The direct children of a multipart or message/* part (empty for leaf parts)."""
    try:
        payload = msg.get_payload()
    except Exception:  # noqa: BLE001
        return []
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def walk(msg: Message, *, into_messages: bool = True, _depth: int = 0) -> list[Message]:
    """Every part, depth first; `into_messages=False` stops at attached message/rfc822."""
    parts = [msg]
    if _depth > 20:
        return parts
    if not into_messages and _depth > 0 and content_type(msg) in _ATTACHED_MESSAGE_TYPES:
        return parts
    for child in subparts(msg):
        parts.extend(walk(child, into_messages=into_messages, _depth=_depth + 1))
    return parts


_ATTACHED_MESSAGE_TYPES = {"message/rfc822", "message/global", "text/rfc822-headers",
                           "message/rfc822-headers"}


def part_text(part: Message) -> str:
    """The decoded text of one leaf part ('' when it has none or cannot be decoded)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        payload = None
    if payload is None:
        try:
            raw = part.get_payload()
        except Exception:  # noqa: BLE001
            return ""
        return raw if isinstance(raw, str) else ""
    charset = content_param(part, "charset") or "utf-8"
    for candidate, errors in ((charset, "strict"), ("utf-8", "strict"), (charset, "replace")):
        try:
            return payload.decode(candidate, errors=errors)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def headers_as_text(part: Message) -> str:
    """The headers of a (sub)message as 'Name: value' lines."""
    try:
        return "\n".join(f"{k}: {_as_text(v)}" for k, v in part.raw_items())
    except Exception:  # noqa: BLE001
        return ""
