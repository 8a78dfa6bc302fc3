"""feedboundary: the stdlib MIME parser's boundary lines found as its own regex finds them."""

from __future__ import annotations

import email
import email.feedparser
import email.policy
import inspect
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailticket.inbound import feedboundary
from mailticket.inbound.feedboundary import BoundaryMatcher, boundary_compile
from tests.harness import at_least, corpus_files_or_skip


def feedparser_pattern(separator: str) -> str:
    """The pattern exactly as email.feedparser builds it for a multipart."""
    return ('(?P<sep>' + re.escape(separator) +
            r')(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$')


def _answer(mo):
    return None if mo is None else (mo.group("end"), mo.group("ws"), mo.group("linesep"))


_SEPARATORS = st.text(st.sampled_from(list("aZ09=_-.()+*?[]{}^$|\\#&~ \t'/:,;")), min_size=1, max_size=12).map("--".__add__)
_TAILS = st.lists(st.sampled_from(["--", "-", " ", "\t", "\r\n", "\n", "\r", "x", "--\r\n", " \n"]), max_size=5).map("".join)


@given(_SEPARATORS, _TAILS | st.text(max_size=6), st.booleans())
def test_a_line_matches_as_the_compiled_pattern_matches_it(separator, tail, prefixed):
    line = ("x" if prefixed else "") + separator + tail
    matcher = boundary_compile(feedparser_pattern(separator))
    assert isinstance(matcher, BoundaryMatcher)
    assert _answer(matcher.match(line)) == _answer(re.compile(feedparser_pattern(separator)).match(line))


@pytest.mark.parametrize("pattern, flags", [
    (r"(?P<sep>a|b)(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$", 0),  # not re.escape's text
    (feedparser_pattern("--abc"), re.I),
    (r"(?P<sep>--abc)(?P<end>--)?$", 0),
    (r"\r\n|\r|\n", 0),
])
def test_any_other_pattern_is_compiled_by_re(pattern, flags):
    assert boundary_compile(pattern, flags) == re.compile(pattern, flags)


def test_the_parser_gets_the_matcher_and_reads_only_what_it_answers():
    """mailticket.inbound.parse installs it; the parser's source still builds the pattern this module
    recognises, and reads no group of a match but 'end' and 'linesep' (a later Python that
    read more would fail here, not parse wrongly)."""
    import mailticket.inbound.parse  # noqa: F401 - installs it
    assert email.feedparser.re.compile is boundary_compile and email.feedparser.re.search is re.search
    source = inspect.getsource(email.feedparser)
    assert "re.compile(\n                '(?P<sep>' + re.escape(separator) +\n" \
           "                r')(?P<end>--)?(?P<ws>[ \\t]*)(?P<linesep>\\r\\n|\\r|\\n)?$')" in source
    assert set(re.findall(r"\.group\('(\w+)'\)", source)) == {"end", "linesep"}
    assert set(re.findall(r"boundaryre\.(\w+)", source)) == {"match"}
    feedboundary.install()  # a second time changes nothing
    assert email.feedparser.re.compile is boundary_compile


def _shape(msg) -> list:
    """What the parser made of a mail: each part's type, preamble, epilogue, payload, defects."""
    out = []
    for part in msg.walk():
        payload = None if part.is_multipart() else part.get_payload()
        out.append((part.get_content_type(), part.preamble, part.epilogue, payload,
                    sorted(type(d).__name__ for d in part.defects)))
    return out


def test_every_corpus_mail_parses_to_the_same_tree():
    files = corpus_files_or_skip()
    shim, multipart = email.feedparser.re, 0
    assert shim.compile is boundary_compile
    try:
        for path in files:
            raw = path.read_bytes()
            shapes = []
            for module in (re, shim):
                email.feedparser.re = module
                shapes.append(_shape(email.message_from_bytes(raw, policy=email.policy.compat32)))
            assert shapes[0] == shapes[1], path
            multipart += shapes[0][0][0].startswith("multipart/")
    finally:
        email.feedparser.re = shim
    assert multipart > at_least(300, 200)
