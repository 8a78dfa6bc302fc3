"""Bytes and header words to text, whatever charset a mail claims.

Every function here returns text and never raises on bad input; what had to be
repaired is returned as short notes ("unknown charset iso-gb2312, decoded as gb18030").
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

# Names seen in real mail that Python does not know, or knows by a narrower codec.
CHARSET_ALIASES = {
    "iso-gb2312": "gb18030", "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "cn-gb": "gb18030", "euc-cn": "gb18030", "x-euc-cn": "gb18030", "chinese": "gb18030",
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949", "x-euc-kr": "cp949",
    "x-sjis": "cp932", "shift-jis": "cp932", "shift_jis": "cp932", "sjis": "cp932",
    "x-mac-roman": "mac_roman", "macintosh": "mac_roman", "x-mac-cyrillic": "mac_cyrillic",
    "iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6", "windows-874": "cp874",
    "x-user-defined": "cp1252", "ansi_x3.4-1968": "ascii", "us-ascii": "ascii",
    "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "x-unicode20utf8": "utf-8",
    "tis-620": "cp874", "big5": "big5hkscs", "x-big5": "big5hkscs",
}
# Labels that promise nothing: decode by guessing.
UNKNOWN_CHARSETS = {"", "unknown", "unknown-8bit", "x-unknown", "default", "charset", "none"}
# Codecs that are not plain text charsets (escape decoders, IDNA, ...): never used for mail text.
_REFUSED = ("escape", "idna", "punycode", "undefined", "rot", "mbcs", "oem", "unicode_internal")
# Declared 8-bit Western charsets whose 0x80-0x9f bytes really mean Windows-1252.
_CP1252_IMPOSTORS = {"iso8859-1", "ascii", "iso8859-15"}
_C1_BYTES = re.compile(rb"[\x80-\x9f]")
# When text is not valid in its declared charset, the charsets it is most often mixed up with.
_RELATIVES = {
    "iso2022_jp": ("iso2022_jp_ext", "iso2022_jp_2", "cp932", "euc_jp"),
    "cp932": ("euc_jp", "iso2022_jp_2"), "euc_jp": ("cp932",),
    "gb18030": ("big5hkscs",), "big5hkscs": ("cp950", "gb18030"),
    "cp949": ("iso2022_kr",), "iso2022_kr": ("cp949",),
}


def resolve_charset(label: str | None) -> str | None:
    """The Python codec name for a MIME charset label, or None when unknown or unsafe."""
    name = (label or "").strip().strip("\"'").lower()
    if name in UNKNOWN_CHARSETS:
        return None
    name = CHARSET_ALIASES.get(name, name)
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError):
        return None
    if any(word in codec for word in _REFUSED):
        return None
    return codec


def decode_bytes(data: bytes, label: str | None) -> tuple[str, list[str]]:
    """Decode body bytes: the declared charset, unless a Western label sits on UTF-8 text or on text
    that is not Western (charset-normalizer tells which then); a label that fails, or none, is
    guessed (``guess_decode``)."""
    notes: list[str] = []
    codec = resolve_charset(label)
    if codec is None and (label or "").strip().lower() not in UNKNOWN_CHARSETS:
        notes.append(f"unknown charset {_shown(label)}")
    if codec in _UTF8_IMPOSTORS and _is_utf8_text(data):
        notes.append(f"charset {_shown(label)} declared, but the text is UTF-8: decoded as utf-8")
        return data.decode("utf-8"), notes
    if codec in _CP1252_IMPOSTORS and _C1_BYTES.search(data):
        codec = "cp1252"
        notes.append(f"charset {_shown(label)} with bytes 0x80-0x9f, decoded as windows-1252")
    if codec in _WESTERN and not data.isascii():
        text = data.decode(codec, "replace")
        if not reads_as_western(text):
            detected = _detected(data)
            if detected is not None and detected[1] not in _WESTERN:
                notes.append(f"charset {_shown(label)} declared, but the text reads as {detected[1]}")
                return detected[0], notes
    if codec:
        try:
            return data.decode(codec), _renamed(label, codec, notes)
        except (UnicodeDecodeError, LookupError, ValueError):
            notes.append(f"text is not valid {_shown(label)}")
    text, used = guess_decode(data, _RELATIVES.get(codec or "", ()))
    if used != "ascii" and (codec or label):
        notes.append(f"decoded as {used}")
    return text, notes


def guess_decode(data: bytes, relatives: tuple[str, ...] = ()) -> tuple[str, str]:
    """Decode bytes of unknown charset: ASCII, UTF-8, relatives of the declared charset, then
    Windows-1252 where that reads as Western text, else what charset-normalizer finds, else
    Windows-1252 or Latin-1."""
    if data.isascii() and not relatives:
        return data.decode("ascii"), "ascii"
    for codec in ("utf-8", *relatives):
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            pass
    mostly_utf8 = data.decode("utf-8", "replace")
    if _mostly_utf8(data, mostly_utf8.count("\ufffd")):  # UTF-8 cut mid-character, say
        return mostly_utf8, "utf-8 (invalid bytes replaced)"
    return _western_or_detected(data)


def _western_or_detected(data: bytes) -> tuple[str, str]:
    """8-bit text that is not UTF-8. The guard comes first: text that reads as a Western language
    in Windows-1252 (Swedish å ä ö in Latin-1 above all) stays so, since a detector guessing on a
    few accented letters is often wrong (a short Swedish mail "is" Latin-2 or Mac Roman to it).
    Only text that would be mostly accented letters in Windows-1252 (Cyrillic, Greek, Chinese,
    Japanese … in a legacy charset) is handed to charset-normalizer."""
    try:
        western: str | None = data.decode("cp1252")
    except UnicodeDecodeError:  # bytes 0x81 0x8d 0x8f 0x90 0x9d: not Windows-1252
        western = None
    if western is not None and reads_as_western(western):
        return western, "cp1252"
    detected = _detected(data)
    if detected is not None:
        return detected
    if western is not None:
        return western, "cp1252"
    return data.decode("latin-1"), "latin-1"


def reads_as_western(text: str) -> bool:
    """At most half the letters are outside ASCII: true of every Western European language
    (Swedish, Finnish and Icelandic run at 3-15 %), false of Cyrillic, Greek or CJK bytes read
    as Windows-1252 (nearly all letters accented)."""
    letters = [ch for ch in text[:_DETECT_BYTES] if ch.isalpha()]
    accented = sum(1 for ch in letters if not ch.isascii())
    return accented * 2 <= len(letters)


def _detected(data: bytes) -> tuple[str, str] | None:
    """charset-normalizer's reading among the legacy charsets mail is written in (``DETECTABLE``):
    the first one that it recognised a language in, or a multi-byte one that fits the bytes
    without chaos (byte pairs that are valid Shift_JIS or GB18030 by accident are rare in text
    of some length). Short text or a mere "no errors" in a single-byte charset is no answer."""
    from charset_normalizer import from_bytes
    sample = data[:_DETECT_BYTES]
    long_enough = sum(1 for byte in sample if byte > 0x7F) >= 16
    try:
        matches = list(from_bytes(sample, cp_isolation=list(DETECTABLE)))
    except Exception:  # noqa: BLE001 - a detector failure is no answer
        return None
    for match in matches:
        multibyte = match.encoding in _MULTIBYTE
        if match.coherence > 0 or (multibyte and long_enough and match.chaos < 0.1):
            try:
                return data.decode(match.encoding), match.encoding
            except (UnicodeDecodeError, LookupError):
                continue
    return None


# Legacy charsets that real mail is written in without saying so (or while saying Latin-1).
_MULTIBYTE = {"cp932", "euc_jp", "iso2022_jp", "gb18030", "big5", "cp949"}
DETECTABLE = ("cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "koi8_r", "koi8_u",
              "iso8859_2", "iso8859_5", "iso8859_7", "iso8859_8", "iso8859_9", "iso8859_13", "cp874",
              *sorted(_MULTIBYTE))
_DETECT_BYTES = 64 * 1024  # enough to tell a charset; the detector is slow on megabytes
# Declared 8-bit charsets that a client sends for UTF-8 text (every byte string is valid in them,
# so the mistake never shows as a decoding error): text that is valid UTF-8 with at least one
# multi-byte sequence is UTF-8. Latin-1 text is almost never valid UTF-8 (å ä ö are lead bytes
# that need continuation bytes after them).
_UTF8_IMPOSTORS = {"iso8859-1", "cp1252", "iso8859-15"}
_WESTERN = {"iso8859-1", "cp1252", "iso8859-15", "ascii"}  # labels that a Cyrillic or Greek text may wear


def _is_utf8_text(data: bytes) -> bool:
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _UTF8_SEQUENCE.search(data) is not None


def _renamed(label: str | None, codec: str, notes: list[str]) -> list[str]:
    """Note when a label Python does not know was decoded through the alias table."""
    name = (label or "").strip().strip("\"'").lower()
    try:
        codecs.lookup(name)
    except (LookupError, ValueError):
        notes.append(f"unknown charset {_shown(name)}, decoded as {codec}")
    return notes


def _shown(label: str | None) -> str:
    """A charset label safe to put into a note."""
    return re.sub(r"[^\w.:+-]", "?", (label or "")[:40])


# ---------------------------------------------------------------- headers

_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,60})\?([bBqQ])\?([^?]*?)\?=")
_BETWEEN_WORDS = re.compile(r"\s+")


_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _mostly_utf8(data: bytes, invalid: int) -> bool:
    """Many valid UTF-8 sequences and only a few invalid bytes."""
    if invalid > max(2, len(data) // 1000):
        return False
    return len(_UTF8_SEQUENCE.findall(data)) >= 3 * invalid


def decode_8bit(raw: str) -> tuple[str, str | None]:
    """Surrogate-escaped 8-bit bytes in a header value decoded; (text, charset used or None)."""
    if not _has_escaped_bytes(raw):
        return raw, None
    return guess_decode(raw.encode("utf-8", "surrogateescape"))


def header_text(raw: str) -> tuple[str, list[str]]:
    """A raw header value (may hold surrogate-escaped 8-bit bytes) to display text."""
    notes: list[str] = []
    raw, used = decode_8bit(raw)
    if used:
        notes.append(f"8-bit header decoded as {used}")
    if "=?" not in raw:
        return raw, notes
    return _decode_words(raw, notes), notes


def _decode_words(raw: str, notes: list[str]) -> str:
    """Replace every encoded-word; whitespace between two adjacent words is dropped."""
    out: list[str] = []
    pos, last_was_word = 0, False
    for match in _ENCODED_WORD.finditer(raw):
        gap = raw[pos:match.start()]
        if not (last_was_word and _BETWEEN_WORDS.fullmatch(gap)):
            out.append(gap)
        out.append(_decode_word(*match.groups(), notes))
        pos, last_was_word = match.end(), True
    out.append(raw[pos:])
    return "".join(out)


def _decode_word(label: str, encoding: str, payload: str, notes: list[str]) -> str:
    """One encoded-word to text; a broken one is repaired as far as possible."""
    label = label.split("*", 1)[0]  # RFC 2231 language suffix: =?utf-8*sv?Q?...?=
    if encoding in "bB":
        data = _b64(payload, notes)
    else:
        data = _q(payload)
    text, word_notes = decode_bytes(data, label)
    notes.extend(f"encoded-word: {n}" for n in word_notes)
    return text


def _b64(payload: str, notes: list[str]) -> bytes:
    """Base64 of an encoded-word, tolerating missing padding and stray characters."""
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
    if len(cleaned) % 4 == 1:  # one stray character cannot be decoded: drop it
        cleaned = cleaned[:-1]
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        notes.append("broken base64 encoded-word kept as is")
        return payload.encode("ascii", "replace")


def _q(payload: str) -> bytes:
    """Q-encoding of an encoded-word: '_' is a space, =XX a byte; bad escapes kept."""
    raw = payload.replace("_", " ").encode("utf-8", "surrogateescape")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def _has_escaped_bytes(text: str) -> bool:
    """True when text holds surrogate escapes (8-bit bytes read as ASCII by the parser)."""
    return not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text)
