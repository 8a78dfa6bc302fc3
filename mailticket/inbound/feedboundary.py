"""The standard library's MIME parser without a regex compiled for every multipart boundary.

``email.feedparser`` builds, for each multipart it meets, ``re.compile('(?P<sep>' +
re.escape('--' + boundary) + r')(?P<end>--)?(?P<ws>[ \\t]*)(?P<linesep>\\r\\n|\\r|\\n)?$')``.
Boundaries are unique to each mail, so ``re``'s cache never helps: every multipart costs a full
compile, 123 µs here, about a sixth of parsing a two-part mail.

``install()`` gives ``email.feedparser`` a ``re`` of its own whose ``compile`` recognises
exactly that pattern (its separator read back and escaped again must give the same text) and
returns a matcher that tests the separator as a literal prefix, then matches the rest with one
pattern compiled once, from the separator's end. That is the same match: the separator is a
literal, so the regex engine never backtracks into it, and ``$`` and the groups behave alike
from there. Everything else ``email.feedparser`` asks of ``re`` is ``re``'s own.

The parser reads only ``group('end')`` and ``group('linesep')`` of such a match, and the
truth of it (tests check the parser's source for that). A pattern of any other shape, as a
later Python might build, goes to ``re.compile`` unchanged.
"""

from __future__ import annotations

import email.feedparser
import re
import types

_PREFIX = "(?P<sep>"
_SUFFIX = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_AFTER_SEPARATOR = re.compile(_SUFFIX[1:])
_ESCAPED = re.compile(r"\\(.)", re.S)


class BoundaryMatcher:
    """``re.compile(_PREFIX + re.escape(separator) + _SUFFIX)``, for its ``match`` alone."""

    __slots__ = ("separator",)

    def __init__(self, separator: str):
        self.separator = separator

    def match(self, line: str):
        if not line.startswith(self.separator):
            return None
        return _AFTER_SEPARATOR.match(line, len(self.separator))


def boundary_compile(pattern, flags=0):
    """``re.compile``, but a feedparser boundary pattern gives a ``BoundaryMatcher``."""
    if flags or not isinstance(pattern, str) or not (pattern.startswith(_PREFIX) and pattern.endswith(_SUFFIX)):
        return re.compile(pattern, flags)
    escaped = pattern[len(_PREFIX):-len(_SUFFIX)]
    separator = _ESCAPED.sub(r"\1", escaped)
    if re.escape(separator) != escaped:  # not re.escape's work: let re read it
        return re.compile(pattern, flags)
    return BoundaryMatcher(separator)


def install() -> None:
    """Give ``email.feedparser`` the ``re`` above (once; harmless to repeat)."""
    if getattr(email.feedparser.re, "compile", None) is boundary_compile:
        return
    shim = types.ModuleType("re", "re, with a boundary pattern compiled once (mailticket.inbound.feedboundary)")
    shim.__dict__.update({name: getattr(re, name) for name in dir(re) if not name.startswith("__")})
    shim.compile = boundary_compile
    email.feedparser.re = shim
