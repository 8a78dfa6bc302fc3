"""Separate the new text of a reply from quoted history, forwarded mail and signatures.

Pure and linear-time: each line is classified once with bounded patterns (quote_patterns),
then the sequence of line kinds decides which lines are new. Line kinds:

  e empty     q quoted ('>' prefix)   b attribution ("On <date>, <name> wrote:")
  h header    (part of a From:/Sent:/To:/Subject: block above a quoted mail)
  c cut       ("-----Original Message-----", "-- ", "Sent from my iPhone",
               "Please type your reply above this line", a separator line that ends the text)
  d separator (a line of ----, ____, ====: a cut only if history or nothing but a short
               signature follows it, else text: writers use them as formatting too)
  f forward   ("---------- Forwarded message ---------", "Begin forwarded message:")
  x banner    (a gateway's "CAUTION: This email originated from outside" above the text)
  t text
"""
from __future__ import annotations

from dataclasses import dataclass

from mailticket import quote_patterns as qp

MAX_LINE = 2000          # characters of one line the patterns look at
MAX_ATTRIBUTION = 400    # characters of a (possibly wrapped) attribution line
WRAP_LINES = 5           # lines an attribution may be wrapped over
HEADER_WINDOW = 6        # lines in which a header block must show its keys
MAX_FORWARD_DEPTH = 3    # forwards inside forwards that are unwrapped
SIGNATURE_LINES = 4      # non-empty lines after a ____ line that still look like a signature
SENDER_WINDOW = 15       # lines below a forward marker searched for its From: line
BANNER_LINES = 3         # non-empty lines at the top that may hold a gateway banner
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
    from mailticket.quotes_html import html_reply_parts  # lazy: lxml/inscriptis are heavy

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


# --- classification -------------------------------------------------------------------

def classify(lines: list[str]) -> list[str]:
    """One kind letter per line (see the module docstring)."""
    kinds = _classify_single_lines(lines)
    _mark_banner(lines, kinds)
    _mark_attributions(lines, kinds)
    _mark_header_blocks(lines, kinds)
    _settle_separators(lines, kinds)
    return kinds


def _mark_banner(lines: list[str], kinds: list[str]) -> None:
    """An external-mail warning among the first lines is not part of the new text."""
    seen = 0
    for i, kind in enumerate(kinds):
        if kind == "e":
            continue
        if qp.EXTERNAL_BANNER.match(lines[i][:MAX_LINE]):
            kinds[i] = "x"
            return
        seen += 1
        if seen >= BANNER_LINES:
            return


def _classify_single_lines(lines: list[str]) -> list[str]:
    kinds = []
    in_code = False
    for line in lines:
        head = line[:MAX_LINE]
        if qp.CODE_FENCE.match(head):
            in_code = not in_code
        kinds.append("t" if in_code else line_kind(head))
    return kinds


def line_kind(line: str) -> str:
    """The kind of one line taken on its own."""
    if not line.strip():
        return "e"
    if qp.QUOTE_LINE.match(line):
        return "q"
    if qp.FORWARD_MARKER.match(line):
        return "f"
    if qp.ORIGINAL_MESSAGE.match(line) or qp.SIGNATURE_DELIMITER.match(line):
        return "c"
    if qp.SEPARATOR_LINE.match(line):
        return "d"
    if qp.MOBILE_SIGNATURE.match(line) or qp.REPLY_ABOVE.match(line):
        return "c"
    if qp.HEADER_LINE.match(line):
        return "h"
    return "t"


def _mark_attributions(lines: list[str], kinds: list[str]) -> None:
    ends = [_could_end_attribution(line) for line in lines]
    i = 0
    while i < len(lines):
        span = _attribution_span(lines, kinds, i, ends)
        if span > 1 and _later_start(lines, kinds, i, span, ends):
            i, span = i + 1, span - 1  # the line above is text, not the attribution's start
        if span:
            for k in range(i, i + span):
                kinds[k] = "b"
            i += span
        else:
            i += 1


def _could_end_attribution(line: str) -> bool:
    """Cheap test: a line that ends with a colon or an attribution verb."""
    tail = line[-80:].rstrip()
    return tail.endswith((":", "：")) or qp.ends_with_verb(tail)


def _later_start(lines: list[str], kinds: list[str], i: int, span: int, ends: list[bool]) -> bool:
    """Whether the attribution found at line i really starts on the next line."""
    first = lines[i][:MAX_LINE]
    if qp.STRONG_OPENER.match(first) and qp.DIGIT.search(first):
        return False
    nxt = lines[i + 1][:MAX_LINE]
    return bool(qp.OPENER_START.match(nxt)) and _attribution_span(lines, kinds, i + 1, ends) == span - 1


def _attribution_span(lines: list[str], kinds: list[str], start: int, ends: list[bool]) -> int:
    """How many lines from `start` form an attribution line (0 if none)."""
    first = lines[start][:MAX_LINE]
    if kinds[start] not in ("t", "h") or len(first) > MAX_ATTRIBUTION:
        return 0
    reach = WRAP_LINES if qp.OPENER_START.match(first) else 2
    span = _wrapped_span(lines, kinds, start, reach, ends) if any(ends[start:start + reach]) else 0
    if not span and qp.GMAIL_DATE_LINE.match(first):
        return 1  # "2016-03-03 17:21 GMT+01:00 Some One" with no colon
    return span


def _wrapped_span(lines: list[str], kinds: list[str], start: int, reach: int, ends: list[bool]) -> int:
    """Lines from `start` that, joined, end like an attribution (0 if none)."""
    joined = ""
    for offset in range(reach):
        k = start + offset
        if k >= len(lines) or not _may_continue(lines, kinds, start, k):
            return 0
        joined = (joined + " " + lines[k][:MAX_ATTRIBUTION + 1].strip()).strip()
        if len(joined) > MAX_ATTRIBUTION:
            return 0
        if ends[k] and _ends_attribution(joined, kinds, k):
            return offset + 1
    return 0


def _may_continue(lines: list[str], kinds: list[str], start: int, k: int) -> bool:
    """Whether line k may be part of an attribution that starts at `start`."""
    if k == start:
        return True
    if kinds[k] == "q":
        return len(lines[k][:40].strip()) <= 12  # a wrapped tail such as "> wrote:" or ">:"
    if kinds[k - 1] == "e" and qp.OPENER_START.match(lines[k][:MAX_LINE]):
        return False  # after a blank line, a new attribution starts here instead
    return kinds[k] in ("t", "e", "h")


def _ends_attribution(joined: str, kinds: list[str], k: int) -> bool:
    colon = joined.endswith((":", "："))
    verb = qp.ends_with_verb(joined) or (colon and _verb_inside(joined))
    if verb:
        evidence = qp.DIGIT.search(joined) or qp.HAS_ADDRESS.search(joined)
        return bool(evidence) or _quote_follows(kinds, k)
    return colon and bool(qp.ADDRESS_COLON_END.search(joined[-260:]) and qp.TIME_OR_YEAR.search(joined))


def _verb_inside(joined: str) -> bool:
    """ "Anna schrieb am <date>:" or, after an opener, "Den <date>, skrev Anna:"."""
    tail = joined[-120:]
    if qp.VERB_BEFORE_DATE.search(tail):
        return True
    return bool(qp.STRONG_OPENER.match(joined) and qp.VERB_BEFORE_NAME.search(tail))


def _quote_follows(kinds: list[str], k: int) -> bool:
    for kind in kinds[k + 1:k + 4]:
        if kind != "e":
            return kind == "q"
    return False


def _mark_header_blocks(lines: list[str], kinds: list[str]) -> None:
    """Turn the first line of each real header block into 'H'; lone header lines become text."""
    i = 0
    while i < len(kinds):
        if kinds[i] == "h":
            end = _header_block_end(lines, kinds, i)
            if end:
                kinds[i] = "H"
                i = end
                continue
            kinds[i] = "t"
        i += 1


def _header_block_end(lines: list[str], kinds: list[str], start: int) -> int:
    """Index after the header block starting at `start`, or 0 if it is not a block."""
    keys = []
    last = start
    for k in range(start, min(len(kinds), start + HEADER_WINDOW)):
        if kinds[k] == "h":
            keys.append(qp.HEADER_LINE.match(lines[k][:MAX_LINE]).group(1))
            last = k
        elif kinds[k] == "e" or k - last > 1:
            break
    has_from = any(qp.FROM_KEY.match(key) for key in keys)
    distinct = len({key.lower() for key in keys})
    if distinct >= 3 or (distinct >= 2 and has_from):
        return last + 1
    return 0


def _settle_separators(lines: list[str], kinds: list[str]) -> None:
    """Each separator line becomes a cut ('c') or plain text ('t')."""
    after = _non_empty_counts_after(kinds)
    for i, kind in enumerate(kinds):
        if kind == "d":
            cut = _history_follows(kinds, i) or _only_separators_follow(kinds, i, after) or (
                qp.UNDERSCORE_LINE.match(lines[i][:MAX_LINE]) and after[i] <= SIGNATURE_LINES)
            kinds[i] = "c" if cut else "t"


def _non_empty_counts_after(kinds: list[str]) -> list[int]:
    """For each line, how many non-empty lines follow it."""
    counts = [0] * len(kinds)
    seen = 0
    for i in range(len(kinds) - 1, -1, -1):
        counts[i] = seen
        if kinds[i] != "e":
            seen += 1
    return counts


def _history_follows(kinds: list[str], i: int) -> bool:
    """Whether quoted history (headers, attribution, quote, a marker) comes right after line i."""
    for kind in [k for k in kinds[i + 1:i + 1 + HEADER_WINDOW] if k != "e"][:2]:
        if kind in ("h", "H", "b", "f", "c", "q"):
            return True
    return False


def _only_separators_follow(kinds: list[str], i: int, after: list[int]) -> bool:
    window = [k for k in kinds[i + 1:i + 1 + HEADER_WINDOW] if k != "e"]
    return len(window) == after[i] and all(k in ("d", "c") for k in window)


# --- deciding what is new ---------------------------------------------------------------

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
