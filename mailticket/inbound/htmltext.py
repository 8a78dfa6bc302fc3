"""HTML mail to readable plain text (inscriptis; a linear tag stripper for huge or
hostile HTML)."""

from __future__ import annotations

import html as html_entities
import re

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

# Above this many characters the layout-aware converter is too slow for one mail
# (about 0.5 s per 300 KB): tags are stripped instead (text complete, layout lost).
MAX_LAYOUT_HTML = 300_000
# Text is taken from at most this many characters of HTML (the stripper costs about
# 0.4 s per million characters of tag soup); the full HTML stays available.
MAX_TEXT_HTML = 1_000_000

# inscriptis' default ("relaxed") profile indents every <div> by two spaces per level: mail
# clients build paragraphs from nested divs, so the text came out indented. Divs get no padding.
_CSS = {**CSS_PROFILES["relaxed"], "div": CSS_PROFILES["strict"]["div"]}
_CONFIG = ParserConfig(css=_CSS, display_links=True)
_SAME_LINK = re.compile(r"\[([^\]\n]{1,2000})\]\(\1\)")
_TAG_NAME = re.compile(r"/?([a-z][a-z0-9]{0,15})")
_SKIPPED = ("script", "style", "head", "title")
_BREAKS = {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table",
           "blockquote", "pre", "hr"}
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: no <style>/<script>, links as "[text](url)";
    from its first MAX_TEXT_HTML characters."""
    if not html.strip():
        return ""
    if len(html) <= MAX_LAYOUT_HTML:
        try:
            text = _tidy(_SAME_LINK.sub(r"\1", get_text(html, _CONFIG)))
        except Exception:  # lxml refuses some documents (depth, encoding declarations)
            text = ""
        if text.strip():
            return text
    return strip_tags(html[:MAX_TEXT_HTML])


def strip_tags(html: str) -> str:
    """Text between the tags, line breaks at block ends, entities decoded; linear time
    even on unclosed tags, scripts and comments."""
    lower = html.lower()
    last_close = {name: lower.rfind(f"</{name}") for name in _SKIPPED}
    last_comment_end = lower.rfind("-->")
    out: list[str] = []
    pos = 0
    while pos < len(html):
        start = html.find("<", pos)
        if start < 0:
            out.append(html[pos:])
            break
        out.append(html[pos:start])
        pos = _after_markup(lower, start, last_close, last_comment_end, out)
    return _tidy(html_entities.unescape("".join(out)))


def _after_markup(lower: str, start: int, last_close: dict, last_comment_end: int,
                  out: list[str]) -> int:
    """Position after the tag (or comment, or skipped element) that opens at start."""
    if lower.startswith("<!--", start):
        end = lower.find("-->", start + 4) if last_comment_end > start else -1
        return len(lower) if end < 0 else end + 3
    end = lower.find(">", start)
    if end < 0:
        return len(lower)  # an unclosed tag runs to the end: nothing readable follows
    found = _TAG_NAME.match(lower, start + 1)
    name = found.group(1) if found else ""
    if name in last_close and not found.group(0).startswith("/") and last_close[name] > end:
        close = lower.find(f"</{name}", end)
        return lower.find(">", close) + 1 or len(lower)
    if name in _BREAKS:
        out.append("\n")
    return end + 1


def _tidy(text: str) -> str:
    """Trailing spaces off every line, runs of blank lines cut to one."""
    lines = "\n".join(line.rstrip() for line in text.splitlines())
    return _BLANK_LINES.sub("\n\n", lines).strip("\n")
