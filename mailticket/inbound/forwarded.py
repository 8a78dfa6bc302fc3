"""Who wrote the mail an agent forwarded to the support address.

``original_sender`` looks, in order, at:

1. an attached ``message/rfc822`` part (forward as attachment): its From;
2. the first inline forward in the text (quote markers ``>`` and ``*bold*`` keys are
   ignored), as these clients write it:

   - Gmail ``---------- Forwarded message ---------`` + ``From: Name <addr>``
   - Outlook ``-----Original Message-----`` or a ``_____`` line + ``From:``/``Sent:``,
     also in Swedish, German, Spanish, French, Italian, Dutch, Danish/Norwegian
     (``Från:``/``Skickat:``, ``Von:``/``Gesendet:``, ``De:``/``Enviado:`` ...)
   - Apple Mail ``Begin forwarded message:`` + blank line + ``From: Name <addr>``
   - Thunderbird ``-------- Forwarded Message --------`` + ``Subject:``/``Date:``/``From:``
   - alpine ``---------- Forwarded message ----------`` + ``Date:`` + ``From:``
   - s-nail ``-------- Original Message --------`` + ``Return-Path:`` ... ``From:``
   - mutt/NeoMutt ``----- Forwarded message from Name <addr> -----``
   - aerc ``Forwarded message from Name <addr> on DATE:`` (aerc 0.14 writes the name
     only, and no header block: None)
   - a bare header block: ``From:`` next to ``Sent:``/``Date:``/``To:``/``Subject:``.

The first forward found decides: if its From has no usable address (a name only, or
an address with parse defects), the answer is None rather than an older message's
sender. An Outlook reply looks exactly like an Outlook forward, so call this only for
a mail that is a forward (``is_forward(subject)``, or one that belongs to no ticket).
"""

import re
from email.errors import ObsoleteHeaderDefect
from email.header import decode_header, make_header
from email.message import Message

from .addresses import parse_address

_LOOKAHEAD = 20  # lines after a marker in which its header block must start
_MAX_BLOCK = 30  # lines a header block may span (bounds the work on hostile text)
_MAX_LINE = 998  # longer lines (RFC 5322's limit) are never markers nor headers

_FORWARD_MARKER = re.compile(
    r"-{2,}\s*(forwarded message|original message|weitergeleitete nachricht|ursprüngliche nachricht"
    r"|vidarebefordrat meddelande|ursprungligt meddelande|originalmeddelande"
    r"|videresendt (?:meddelelse|melding)|oprindelig meddelelse|opprinnelig melding"
    r"|mensaje (?:reenviado|original)|message (?:transféré|d'origine|original)"
    r"|messaggio (?:inoltrato|originale)|doorgestuurd bericht|oorspronkelijk bericht"
    r"|mensagem (?:encaminhada|original))\s*-*"
    r"|begin forwarded message:|vidarebefordrat brev:|anfang der weitergeleiteten nachricht:"
    r"|début du message réexpédié\s*:|inizio messaggio inoltrato:|begin doorgestuurd bericht:"
    r"|_{10,}|-{10,}",
    re.IGNORECASE,
)
_HEADER = re.compile(r"(?P<key>[^\W\d_][\w'.-]*(?: [\w'.-]+){0,2})\s*:\s*(?P<value>.*)")

FROM_KEYS = {"from", "från", "von", "de", "da", "van", "fra", "od", "lähettäjä", "feladó", "от", "від"}
OTHER_KEYS = {
    "sent", "date", "to", "subject", "cc", "reply-to", "return-path", "message-id",
    "skickat", "datum", "till", "ämne", "kopia",
    "gesendet", "an", "betreff",
    "enviado", "fecha", "para", "asunto", "envoyé", "à", "objet", "date d'envoi",
    "data", "a", "oggetto", "inviato", "verzonden", "aan", "onderwerp",
    "sendt", "til", "emne", "dato", "emne",
}


def original_sender(msg: Message | None, text: str) -> tuple[str, str] | None:
    """``(display name, address)`` of the forwarded mail's author, or None."""
    attached = _attached_message(msg) if msg is not None else None
    if attached is None:
        return _inline_sender(text or "")
    header = attached.get("From", "")
    if any(not isinstance(d, ObsoleteHeaderDefect) for d in getattr(header, "defects", ())):
        return None  # already parsed by the modern policy, which found it broken
    return name_and_address(_decoded(header))


def _attached_message(msg: Message) -> Message | None:
    for part in msg.walk():
        if part is not msg and part.get_content_type() == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message) and inner.get("From"):
                return inner
    return None


def _decoded(value) -> str:
    try:
        return str(make_header(decode_header(str(value))))
    except Exception:  # a broken encoded word: keep the raw text
        return str(value)


# --- inline forwards -----------------------------------------------------------------------


def _inline_sender(text: str) -> tuple[str, str] | None:
    lines = [_plain(line) for line in text.splitlines()]
    keys = [_header_key(line) for line in lines]
    near_other_key = _near_other_key(lines, keys)
    for i, line in enumerate(lines):
        if (mutt := _mutt_sender(line)) is not None:
            return name_and_address(mutt)
        if (aerc := _aerc_sender(line)) is not None:
            return name_and_address(aerc) or _header_block_sender(lines, keys, i + 1, required=False)
        if _FORWARD_MARKER.fullmatch(line):
            found = _header_block_sender(lines, keys, i + 1, required=True)
            if found is not _NO_BLOCK:
                return found
        elif keys[i] in FROM_KEYS and near_other_key[i]:
            return name_and_address(_from_value(lines, i))
    return None


_NO_BLOCK = object()


def _mutt_sender(line: str) -> str | None:
    """``NAME <ADDR>`` of mutt's ``----- Forwarded message from NAME <ADDR> -----``."""
    if not (line.startswith("---") and line.endswith("---")):
        return None
    inner = line.strip("-").strip()
    prefix = "forwarded message from "
    return inner[len(prefix):] if inner.lower().startswith(prefix) else None


def _aerc_sender(line: str) -> str | None:
    """``NAME`` of aerc's ``Forwarded message from NAME on DATE:``."""
    prefix = "forwarded message from "
    if not (line.lower().startswith(prefix) and line.endswith(":") and " on " in line):
        return None
    return line[len(prefix):].rpartition(" on ")[0]


def _plain(line: str) -> str:
    """The line without quote markers, bold stars around a header key, and edge space.
    A line too long to be a marker or a header becomes one that matches nothing."""
    if len(line) > _MAX_LINE:
        return "\x00"  # not blank, so it still ends a header block
    line = line.lstrip()
    while line.startswith(">"):
        line = line[1:].lstrip()
    return re.sub(r"^\*([^*:]{1,30}):\*", r"\1:", line.rstrip())


def _header_key(line: str) -> str | None:
    """The lower-cased key of a ``Key: value`` line, else None."""
    match = _HEADER.fullmatch(line)
    return match.group("key").lower() if match else None


def _header_block_sender(lines: list[str], keys: list[str | None], start: int, *, required: bool):
    """The From of the header block that begins within a few lines of ``start``.

    ``_NO_BLOCK`` when there is none and ``required`` (the marker was no forward),
    None when there is none and the marker itself was a forward."""
    for i in range(start, min(start + _LOOKAHEAD, len(lines))):
        if not lines[i]:
            continue
        if keys[i] is None:
            break
        for j in range(i, _block_end(lines, i)):
            if keys[j] in FROM_KEYS:
                return name_and_address(_from_value(lines, j))
        break
    return _NO_BLOCK if required else None


def _block_end(lines: list[str], start: int) -> int:
    """The end of the paragraph that holds ``start``, at most ``_MAX_BLOCK`` lines on."""
    end = start
    while end < len(lines) and lines[end] and end - start < _MAX_BLOCK:
        end += 1
    return end


def _near_other_key(lines: list[str], keys: list[str | None]) -> list[bool]:
    """For each line: is a Date/Sent/To/Subject-like key within ``_MAX_BLOCK`` lines of
    it, in the same paragraph? (One pass with prefix sums: linear in the text.)"""
    counts = [0]
    for key in keys:
        counts.append(counts[-1] + (key in OTHER_KEYS))
    starts, start = [], 0
    for i, line in enumerate(lines):
        start = start if line else i + 1
        starts.append(start)
    ends, end = [0] * len(lines), len(lines)
    for i in range(len(lines) - 1, -1, -1):
        end = end if lines[i] else i
        ends[i] = end
    return [
        counts[min(ends[i], i + _MAX_BLOCK + 1)] - counts[max(starts[i], i - _MAX_BLOCK)] > 0
        for i in range(len(lines))
    ]


def _from_value(lines: list[str], i: int) -> str:
    """The From value at line ``i``, joined with the next line when the address wrapped."""
    value = _HEADER.fullmatch(lines[i]).group("value")
    if "<" in value and ">" not in value and i + 1 < len(lines):
        value += " " + lines[i + 1]
    return _quote_display_name(value)


# --- addresses ----------------------------------------------------------------------------


def name_and_address(value: str) -> tuple[str, str] | None:
    """``(name, address)`` of the single address in a From value, or None when it has
    no address, several, or parse defects. Outlook's ``[mailto:a]``, ``<a<mailto:a>>``
    and ``On Behalf Of ...`` forms are understood. The address is lower-cased."""
    value = re.sub(r"<mailto:[^>]*>", "", value, flags=re.IGNORECASE)
    value = re.sub(r"\[mailto:([^\]]+)\]", r"<\1>", value, flags=re.IGNORECASE)
    value = re.sub(r"\s+on behalf of\s+.*$", "", value, flags=re.IGNORECASE).strip()
    return parse_address(value)


def _quote_display_name(value: str) -> str:
    """Outlook shows ``Smith, John <j@x.org>`` unquoted; quote such a name."""
    match = re.fullmatch(r"([^\"<>]*?,[^\"<>]*?)\s*(<[^<>]*>)", value.strip())
    if not match:
        return value
    name = match.group(1).strip().replace("\\", "\\\\")
    return f'"{name}" {match.group(2)}'


# --- subjects -------------------------------------------------------------------------------

FORWARD_PREFIXES = {"fwd", "fw", "vb", "wg", "vs", "vl", "doorst", "tr", "rv", "enc", "i", "pd",
                    "转发", "轉寄", "転送"}
REPLY_PREFIXES = {"re", "aw", "sv", "antw", "ref", "rif", "r", "res", "odp", "vá", "ynt", "atb"}
_PREFIX = re.compile(r"\s*(?:\[[^\]]*\]\s*)?([^\W\d_]+|[\u4e00-\u9fff]+)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]")
_MUTT_SUBJECT = re.compile(r"\s*\[[^\s\[\]]+@[^\s\[\]]+: .*\]\s*", re.DOTALL)


def is_forward(subject: str | None) -> bool:
    """Does the subject say the mail is a forward? (``Fwd:``, ``FW:``, ``VB:``, ``WG:``,
    ``Vs:``, ``Doorst:``, ``TR:`` ..., also after ``Re:`` or a ``[tag]``; alpine's
    trailing ``(fwd)``; mutt's ``[sender@host: subject]``)"""
    subject = subject or ""
    if re.search(r"\(fwd\)\s*$", subject, re.IGNORECASE) or _MUTT_SUBJECT.fullmatch(subject):
        return True
    rest = subject
    while match := _PREFIX.match(rest):
        word = match.group(1).lower()
        if word in FORWARD_PREFIXES:
            return True
        if word not in REPLY_PREFIXES:
            return False
        rest = rest[match.end():]
    return False
