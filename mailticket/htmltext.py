"""HTML mail to readable plain text (inscriptis; a tag stripper when inscriptis cannot)."""

from __future__ import annotations

import html as html_entities
import re

from inscriptis import get_text
from inscriptis.model.config import ParserConfig

# Above this many characters the layout-aware converter is too slow for one mail:
# tags are stripped instead (the text stays complete, only the layout is lost).
MAX_LAYOUT_HTML = 1_000_000

_CONFIG = ParserConfig(display_links=True)
_SAME_LINK = re.compile(r"\[([^\]\n]{1,2000})\]\(\1\)")
_DROPPED = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)
_BREAKS = re.compile(r"<(br|/p|/div|/tr|/li|/h\d)\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]*>")
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: no <style>/<script>, links as "[text](url)"."""
    if not html.strip():
        return ""
    if len(html) <= MAX_LAYOUT_HTML:
        try:
            return _tidy(_SAME_LINK.sub(r"\1", get_text(html, _CONFIG)))
        except (ValueError, RecursionError, LookupError, TypeError):
            pass  # lxml refused the document: fall through to the tag stripper
    return strip_tags(html)


def strip_tags(html: str) -> str:
    """A plain tag stripper: line breaks at block ends, entities decoded."""
    text = _BREAKS.sub("\n", _DROPPED.sub("", html))
    return _tidy(html_entities.unescape(_TAG.sub("", text)))


def _tidy(text: str) -> str:
    """Trailing spaces off every line, runs of blank lines cut to one."""
    lines = "\n".join(line.rstrip() for line in text.splitlines())
    return _BLANK_LINES.sub("\n\n", lines).strip("\n")
