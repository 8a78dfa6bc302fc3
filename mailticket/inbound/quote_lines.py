"""Classify the lines of a reply: what each one is (text, quote, attribution, header, cut).

Pure and linear-time: each line is classified with bounded patterns (quote_patterns), then
a few passes look at short windows of neighbours (wrapped attributions, header blocks,
separators). Line kinds:

  e empty     q quoted ('>' prefix)   b attribution ("On <date>, <name> wrote:")
  h header    (part of a From:/Sent:/To:/Subject: block; 'H' marks the block's first line)
  c cut       ("-----Original Message-----", "-- ", "Sent from my iPhone",
               "Please type your reply above this line", a separator line that ends the text)
  d separator (a line of ----, ____, ====: settled to a cut only if history or nothing but a
               short signature follows it, else to text: writers use them as formatting too)
  f forward   ("---------- Forwarded message ---------", "Begin forwarded message:")
  x banner    (a gateway's "CAUTION: This email originated from outside" above the text)
  t text
"""
from __future__ import annotations

from . import quote_patterns as qp

MAX_LINE = 2000          # characters of one line the patterns look at
MAX_ATTRIBUTION = 400    # characters of a (possibly wrapped) attribution line
WRAP_LINES = 5           # lines an attribution may be wrapped over
HEADER_WINDOW = 6        # lines in which a header block must show its keys
SIGNATURE_LINES = 4      # non-empty lines after a ____ line that still look like a signature
BANNER_LINES = 3         # non-empty lines at the top that may hold a gateway banner


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
