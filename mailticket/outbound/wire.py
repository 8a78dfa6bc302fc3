"""Our own mails as bytes on the wire: headers and the MIME layout written directly.

``EmailMessage`` parses every header it is given and the generator folds each again on output:
about 40 % of the CPU a mail cost to process (bench/profile_pipeline.py), for mails whose layout
never changes: text, HTML, perhaps a calendar part and a file. Here a plain ASCII header is
written as it is, folded at spaces when long; a subject or name outside ASCII made of printable
words is RFC 2047-encoded here; anything else (an odd address, a word too long for a line) is
folded by the standard library. Text bodies are 7bit when they are short-lined ASCII (an HTML
part is made ASCII with character references), quoted-printable otherwise, base64 for files.
Lines end in CRLF.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from email.headerregistry import Address
from email.policy import SMTP
from email.utils import encode_rfc2231

from ..inbound.mailpolicy import POLICY

MAX_LINE = 78          # what a header line is folded to
MAX_BODY_LINE = 998    # RFC 5322's hard limit; longer lines go quoted-printable
FOLD_AFTER_COMMA = ",\r\n "
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_SIMPLE_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                             r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")
_PLAIN_VALUE = re.compile(r"[\x20-\x7e]*")


def header(name: str, value: str) -> bytes:
    """An unstructured header (Subject, Auto-Submitted, X-…) or one whose value we made ourselves
    (Date, Message-ID, References). Values must already be free of CR, LF and NUL."""
    if _PLAIN_VALUE.fullmatch(value) and "=?" not in value:  # (else a reader may decode it as an encoded word)
        line = f"{name}: {value}"
        if len(line) <= MAX_LINE:
            return line.encode("ascii") + b"\r\n"
        folded = _fold_at_spaces(line)
        if folded is not None:
            return folded
    else:
        words = _words(value)
        tokens = None if words is None or len(name) > _MAX_NAME else _encode_runs(words, _is_plain_text_word)
        if tokens is not None:
            return _fold_tokens(name, tokens)
    return _fold(name, value)


# --- RFC 2047 encoded words, for a subject or a display name outside ASCII --------------------
#
# The standard library's folder parses the value into a token tree first: 0.4 ms a header, 9 % of
# the sender's CPU with one mail in nine carrying a name or subject with å, ä or ö. Values of the
# simple shape our mails have (words between single spaces, printable) are written here; anything
# else still goes to the standard library. Words that need it are encoded, runs of them as one
# text (their spaces inside, as "_"), in Q unless B is 5 or more characters shorter (the standard
# library's rule), in encoded words of at most _MAX_WORD characters that never split a character;
# the rest are left as they are.

_MAX_WORD = 60   # characters of one encoded word (RFC 2047: 75), so "Subject: " and one fit in 78
_MAX_NAME = MAX_LINE - _MAX_WORD - 2  # a longer header name goes to the standard library
_Q_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")  # RFC 2047 5(3)
_PHRASE_WORD = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")


def _words(value: str) -> list[str] | None:
    """The words between single spaces; None unless every character is printable."""
    words = value.split(" ")
    if not value.isprintable() or not all(words):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return None
    return words


def _is_plain_text_word(word: str) -> bool:
    return word.isascii() and "=?" not in word


def _is_plain_phrase_word(word: str) -> bool:
    return _PHRASE_WORD.fullmatch(word) is not None and "=?" not in word


def _encode_runs(words: list[str], plain) -> list[str] | None:
    """The words as tokens: a plain word as it is; each run of words that are not, encoded. None
    when a plain word is too long for a line of its own (the standard library folds that)."""
    tokens, run = [], []
    for word in words:
        if plain(word):
            if len(word) > _MAX_WORD:
                return None
            if run:
                tokens += _encoded_words(" ".join(run))
                run = []
            tokens.append(word)
        else:
            run.append(word)
    if run:
        tokens += _encoded_words(" ".join(run))
    return tokens


def _encoded_words(text: str) -> list[str]:
    """``text`` as UTF-8 encoded words, Q or B as the standard library chooses, none longer than
    _MAX_WORD."""
    q = [c if c in _Q_SAFE else "_" if c == " " else "".join(f"={b:02X}" for b in c.encode("utf-8"))
         for c in text]
    room = _MAX_WORD - len("=?utf-8?q??=")
    # Q unless B is 5 or more shorter: the standard library's choice (email._encoded_words.encode)
    if sum(map(len, q)) - _b64_length(len(text.encode("utf-8"))) < 5:
        return ["=?utf-8?q?" + "".join(chunk) + "?=" for chunk in _packed(q, room, lambda size: size)]
    return ["=?utf-8?b?" + base64.b64encode(b"".join(chunk)).decode("ascii") + "?="
            for chunk in _packed([c.encode("utf-8") for c in text], room, _b64_length)]


def _b64_length(size: int) -> int:
    return 4 * -(-size // 3)


def _packed(pieces: list, room: int, encoded_length) -> list[list]:
    """The pieces (one character each, encoded or not) in order, in chunks whose
    ``encoded_length(total length)`` is at most ``room``: no character is split between two."""
    chunks, chunk, size = [], [], 0
    for piece in pieces:
        if chunk and encoded_length(size + len(piece)) > room:
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(piece)
        size += len(piece)
    chunks.append(chunk)
    return chunks


def _fold_tokens(name: str, tokens: list[str]) -> bytes:
    """``Name: tokens`` between single spaces, a line broken before a token that would pass 78
    (the space between two encoded words is dropped by a reader; any other is the value's own)."""
    lines, line = [], f"{name}:"
    for token in tokens:
        if len(line) + 1 + len(token) > MAX_LINE and line != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    return "\r\n".join(lines).encode("ascii") + b"\r\n"


def _fold_at_spaces(line: str) -> bytes | None:
    """Plain ASCII folded before spaces into lines of at most 78 (unfolding gives it back as it
    was); None when a word is too long for that."""
    out, current = [], ""
    for i, word in enumerate(line.split(" ")):
        if i == 0:
            current = word
        elif word and len(current) + 1 + len(word) > MAX_LINE:
            out.append(current)
            current = " " + word
        else:
            current += " " + word
    out.append(current)
    if any(len(part) > MAX_LINE for part in out) or any(not part.strip() for part in out):
        return None
    return "\r\n".join(out).encode("ascii") + b"\r\n"


def address_header(name: str, mailboxes: list[tuple[str, str]]) -> bytes:
    """From/To/Cc/Reply-To from (display name, address) pairs; names are already cleaned of
    RFC 5322 specials (``notify.mailbox_name``)."""
    parts = []
    for display, address in mailboxes:
        if not is_simple_address(address) or not _ATOM_PHRASE.fullmatch(display) or "=?" in display:
            return _encoded_address_header(name, mailboxes)
        parts.append(f"{display} <{address}>" if display else address)
    line = f"{name}: {', '.join(parts)}"
    if len(line) <= MAX_LINE:
        return line.encode("ascii") + b"\r\n"
    return f"{name}: {FOLD_AFTER_COMMA.join(parts)}\r\n".encode("ascii")


def _encoded_address_header(name: str, mailboxes: list[tuple[str, str]]) -> bytes:
    """A list with a name that is not all atoms: an ASCII one as a quoted string, as the standard
    library writes it; any other with its words that are not atoms encoded (RFC 2047 phrases). A
    run too long for one encoded word is split over several, as the standard library splits it
    (RFC 2047 readers drop the space between them; its own reader keeps one). An odd address, or
    a name of another shape, goes to the standard library."""
    tokens = []
    for display, address in mailboxes:
        words = _words(display) if display else []
        if words is None or not is_simple_address(address) or len(name) > _MAX_NAME or '"' in display \
                or "\\" in display:
            return _fold_mailboxes(name, mailboxes)
        if not words:
            tokens.append(address)
        elif display.isascii() and "=?" not in display and max(map(len, words)) <= _MAX_WORD:
            tokens += f'"{display}"'.split(" ") + [f"<{address}>"]
        else:
            encoded = _encode_runs(words, _is_plain_phrase_word)
            if encoded is None:
                return _fold_mailboxes(name, mailboxes)
            tokens += encoded + [f"<{address}>"]
        tokens[-1] += ","
    tokens[-1] = tokens[-1][:-1]
    return _fold_tokens(name, tokens)


def is_simple_address(address: str) -> bool:
    """A dot-atom local part @ a host name: what every parser reads back as it is written."""
    return _SIMPLE_ADDRESS.fullmatch(address) is not None


def _address(display: str, address: str):
    try:
        return Address(display_name=display, addr_spec=address)
    except (ValueError, IndexError, TypeError):
        return address


def _fold_mailboxes(name: str, mailboxes: list[tuple[str, str]]) -> bytes:
    """An address list as the standard library writes it: for what wire does not write itself."""
    return _fold(name, [_address(d, a) for d, a in mailboxes])


def _fold(name: str, value) -> bytes:
    if isinstance(value, str) and any(c in value for c in "\r\n\0"):
        raise ValueError(f"{name}: a header value may not hold CR, LF or NUL: {value[:80]!r}")
    return POLICY.header_factory(name, value).fold(policy=SMTP).encode("ascii")


def text_part(subtype: str, text: str, params: str = "") -> bytes:
    """A text part in UTF-8: 7bit when it is ASCII with short lines, quoted-printable otherwise."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    body = "\n".join(lines) + "\n"
    if body.isascii() and max(map(len, lines), default=0) <= MAX_BODY_LINE:  # (a generator here took 5 % of the sender)
        cte, data = "7bit", body.encode("ascii")
    else:
        cte, data = "quoted-printable", binascii.b2a_qp(body.encode("utf-8"), istext=True)
    data = data.replace(b"\n", b"\r\n")
    return (f'Content-Type: text/{subtype}; charset="utf-8"{params}\r\n'
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode("ascii") + data


def html_in_ascii(html: str) -> str:
    """The HTML with each character outside ASCII written as a character reference (``å`` as
    ``&#229;``), which every HTML reader reads back as that character in text, attribute values
    and titles (our layouts have no script or style element, where it would not be). The part
    is then 7bit unless a line is too long, instead of quoted-printable: one "·" in a footer made
    every HTML part quoted-printable, a third longer (each ``=`` of a style written ``=3D``), and
    encoding it took 8 % of the sender's CPU. An admin's template with a style or script element,
    whose text a reader takes as it is, keeps its characters (the part is quoted-printable)."""
    lowered = html.lower()
    if "<style" in lowered or "<script" in lowered:
        return html
    return html.encode("ascii", "xmlcharrefreplace").decode("ascii")


def file_part(ctype: str, data: bytes, filename: str, content_id: str | None = None) -> bytes:
    """An attached file, base64 in lines of 76; with ``content_id``, an inline part the HTML
    shows by ``cid:``."""
    kind = "inline" if content_id else "attachment"
    if filename.isascii() and _ATOM_PHRASE.fullmatch(filename.replace(".", "")):
        disposition = f'{kind}; filename="{filename}"'
    else:
        disposition = f"{kind}; filename*={encode_rfc2231(filename, 'utf-8')}"
    cid = f"Content-ID: <{content_id}>\r\n" if content_id else ""
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (f"Content-Type: {_safe_ctype(ctype)}\r\nContent-Transfer-Encoding: base64\r\n{cid}"
            f"Content-Disposition: {disposition}\r\n\r\n").encode("ascii") + encoded


_CTYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", re.I)


def _safe_ctype(ctype: str) -> str:
    """A bare type/subtype (a stored type from a mail can carry nothing into our headers)."""
    ctype = (ctype or "").split(";")[0].strip()
    return ctype if _CTYPE.fullmatch(ctype) else "application/octet-stream"


def multipart(subtype: str, parts: list[bytes]) -> bytes:
    """The parts as one multipart entity (its own Content-Type header first)."""
    boundary = "=_mt_" + secrets.token_hex(12)
    while any(boundary.encode() in p for p in parts):
        boundary = "=_mt_" + secrets.token_hex(12)
    # the CRLF before a delimiter belongs to the delimiter: each part keeps its own last line end
    sep = f"\r\n--{boundary}\r\n".encode()
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n--{boundary}\r\n'.encode()
    return head + sep.join(parts) + f"\r\n--{boundary}--\r\n".encode()


def mail(headers: list[bytes], text: str, html: str | None = None, *,
         alternatives: list[tuple[str, bytes]] = (), attachments: list[tuple[str, str, bytes]] = (),
         related: list[tuple[str, str, bytes, str]] = ()) -> bytes:
    """The whole mail: ``headers`` (from ``header``/``address_header``), MIME-Version, then the
    text, the HTML and any other alternatives (text/calendar …) as multipart/alternative, and
    files after them in multipart/mixed. ``related`` are inline images (name, type, bytes,
    Content-ID) that the HTML shows by ``cid:``: they go beside it in multipart/related (without
    an HTML part, they are attached like the other files)."""
    body = [text_part("plain", text)]
    if html is not None:
        html_part = text_part("html", html_in_ascii(html))
        if related:
            html_part = multipart("related", [html_part, *(file_part(c, d, n, cid) for n, c, d, cid in related)])
        body.append(html_part)
    elif related:
        attachments = [*((n, c, d) for n, c, d, _ in related), *attachments]
    for ctype, data in alternatives:
        kind, _, params = ctype.partition(";")
        subtype = kind.strip().split("/", 1)[1]
        params = "".join(f"; {p.strip()}" for p in params.split(";") if p.strip() and not p.strip().lower().startswith("charset"))
        body.append(text_part(subtype, data.decode("utf-8"), params))
    entity = body[0] if len(body) == 1 else multipart("alternative", body)
    if attachments:
        entity = multipart("mixed", [entity, *(file_part(ctype, data, filename) for filename, ctype, data in attachments)])
    return b"".join(headers) + b"MIME-Version: 1.0\r\n" + entity
