"""Separate the new text of a reply from quoted history, forwarded mail and signatures.

Pure and linear-time. quote_lines gives each line a kind (text, quote, attribution, header
block, cut, forward, banner); the sequence of kinds decides which lines are new:
top-posting keeps what is above the first quote header or cut, bottom-posting and inline
replies keep the unquoted lines below an opening attribution, a bare forward keeps the
forwarded body. HTML-only replies are cleaned and converted first (quotes_html).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import quote_patterns as qp
from .quote_lines import MAX_ATTRIBUTION, MAX_LINE, classify

MAX_FORWARD_DEPTH = 3    # forwards inside forwards that are unwrapped
SENDER_WINDOW = 15       # lines below a forward marker searched for its From: line
EDGE_LINES = 15_000      # lines looked at one by one at each end of a very long text


@dataclass(frozen=True)
class Reply:
    """A reply split into its new text and what was removed (quotes, headers, signature)."""

    new: str
    quoted: str
    full: str


def split_reply(text: str) -> Reply:
    """Split a plain-text reply body into new text and quoted history."""
    return _split(text, depth=0)


def split_reply_html(html: str) -> Reply:
    """Split an HTML-only reply: drop quoting elements, convert to text, then split."""
    from .quotes_html import html_reply_parts  # lazy: lxml/inscriptis are heavy

    text, removed = html_reply_parts(html)
    reply = split_reply(text)
    quoted = "\n\n".join(part for part in (reply.quoted, removed) if part)
    return Reply(new=reply.new, quoted=quoted, full=html)


def embedded_sender(text: str) -> str | None:
    """The From: value of the first mail embedded below a forward marker or header block.

    For a forwarded mail this is the original sender ("Bob <bob@example.com>"); None when
    the text embeds no mail with a From: line (or the client wrote none, as aerc does).
    """
    lines = _lines(text)
    kinds = classify(lines)
    for i, kind in enumerate(kinds):
        if kind in ("f", "H") or (kind == "c" and qp.ORIGINAL_MESSAGE.match(lines[i][:MAX_LINE])):
            return _from_value_near(lines, i)
    return None


def _from_value_near(lines: list[str], start: int) -> str | None:
    for line in lines[start:start + SENDER_WINDOW]:
        match = qp.HEADER_LINE.match(line[:MAX_LINE])
        if match and qp.FROM_KEY.match(match.group(1)):
            value = line[match.end():MAX_LINE].strip().strip("*").strip()
            return value or None
    return None


def _split(text: str, depth: int) -> Reply:
    lines = _lines(text)
    kinds = classify(lines)
    keep = _new_line_indexes(lines, kinds, depth)
    new = "\n".join(lines[i] for i in keep).strip()
    kept = set(keep)
    quoted = "\n".join(line for i, line in enumerate(lines) if i not in kept).strip()
    return Reply(new=new, quoted=quoted, full=text)


def _lines(text: str) -> list[str]:
    """The lines of a text; in a very long text the middle is kept whole as one line.

    Joining the result with newlines gives the text back, so nothing is lost; only the
    first and last EDGE_LINES lines are looked at one by one, which bounds the work.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) <= 2 * EDGE_LINES + 1:
        return lines
    middle = "\n".join(lines[EDGE_LINES:-EDGE_LINES])
    return lines[:EDGE_LINES] + [middle] + lines[-EDGE_LINES:]



# --- deciding what is new ----------------------------------------------------------------

def _new_line_indexes(lines: list[str], kinds: list[str], depth: int) -> list[int]:
    """Indexes of the lines that make up the new text."""
    cut = _first_cut(kinds)
    if cut is not None and not _has_text(kinds[:cut]):
        if kinds[cut] in ("f", "H") or (kinds[cut] == "c" and _header_follows(kinds, cut)):
            return _forwarded_body(lines, kinds, cut, depth)
    region = list(range(cut if cut is not None else len(kinds)))
    return [i for i in _new_in_region(lines, kinds, region) if kinds[i] != "x"]


def _first_cut(kinds: list[str]) -> int | None:
    for i, kind in enumerate(kinds):
        if kind in ("c", "f", "H"):
            return i
    return None


def _has_text(kinds: list[str]) -> bool:
    return any(kind not in ("e", "c", "x") for kind in kinds)


def _header_follows(kinds: list[str], cut: int) -> bool:
    for kind in kinds[cut + 1:cut + 3]:
        if kind != "e":
            return kind in ("H", "h")
    return False


def _forwarded_body(lines: list[str], kinds: list[str], cut: int, depth: int) -> list[int]:
    """A mail that is only a forward: its new text is the forwarded body, split again."""
    start = cut + 1
    while start < len(kinds) and (kinds[start] in ("e", "h", "H") or _header_continues(kinds, start)):
        start += 1
    if depth >= MAX_FORWARD_DEPTH:
        return list(range(start, len(lines)))
    inner = _new_line_indexes(lines[start:], kinds[start:], depth + 1)
    return [start + i for i in inner]


def _header_continues(kinds: list[str], i: int) -> bool:
    """A wrapped header value: a text line between two header lines."""
    return kinds[i] == "t" and kinds[i - 1] in ("h", "H") and i + 1 < len(kinds) and kinds[i + 1] in ("h", "H")


def _new_in_region(lines: list[str], kinds: list[str], region: list[int]) -> list[int]:
    attributions = [i for i in region if kinds[i] == "b"]
    text_before = attributions and any(kinds[i] == "t" for i in region[:attributions[0]])
    if attributions and not text_before:
        return [i for i in region if kinds[i] in ("t", "e", "h")]          # bottom / inline posting
    if _single_attribution(kinds, attributions) and _text_after_quote(kinds, attributions[0], len(region)):
        return _drop_trailing_quote([i for i in region if kinds[i] != "b"], kinds)  # interleaved
    if attributions:
        region = region[:attributions[0]]
    if not any(kinds[i] in ("t", "h") for i in region):
        return _quote_only(lines, kinds, region)
    return _drop_trailing_quote(region, kinds)


def _single_attribution(kinds: list[str], attributions: list[int]) -> bool:
    """Whether the attribution lines form one run (one quoted mail, not a chain)."""
    return bool(attributions) and attributions[-1] - attributions[0] == len(attributions) - 1


def _text_after_quote(kinds: list[str], attribution: int, end: int) -> bool:
    """Whether the attribution is followed by a quote and then by more new text."""
    i = attribution
    while i < end and kinds[i] in ("b", "e"):
        i += 1
    if i >= end or kinds[i] != "q":
        return False
    glued = False  # a text line glued to the quote above it is a wrapped quoted line
    while i < end:
        kind = kinds[i]
        if kind == "q" or kind == "e" or (kind == "t" and glued):
            glued = kind != "e"
            i += 1
        else:
            break
    return i < end and kinds[i] in ("t", "h")


def _drop_trailing_quote(indexes: list[int], kinds: list[str]) -> list[int]:
    end = len(indexes)
    while end and kinds[indexes[end - 1]] in ("q", "e", "b"):
        end -= 1
    return indexes[:end]


def _quote_only(lines: list[str], kinds: list[str], region: list[int]) -> list[int]:
    """A mail with nothing but a quote keeps it, unless it is a quoted reply chain."""
    for i in region:
        if kinds[i] == "q" and qp.ends_with_verb(lines[i][:MAX_ATTRIBUTION]):
            return []
    return region
