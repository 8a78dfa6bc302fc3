"""HTML replies to text: drop the elements mail clients wrap quoted history in, then convert.

Gmail (div.gmail_quote), Apple Mail and Thunderbird (blockquote type=cite), Outlook
(div#divRplyFwdMsg, #appendonsend and everything after them, the border-top header div),
Yahoo (div.yahoo_quoted), ProtonMail, Zimbra (#zwchr) and Thunderbird's cite prefix are
removed before inscriptis turns what is left into text. HTML that lxml cannot take falls
back to the text between its tags.
"""
from __future__ import annotations

import re

from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from lxml import etree, html as lxml_html

# Elements that hold quoted history; "and after" ones also take their following siblings.
QUOTE_XPATHS = (
    "//blockquote",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' yahoo_quoted ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' moz-cite-prefix ')]",
    "//*[@id='OLK_SRC_BODY_SECTION']",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' protonmail_quote ')]",
)
QUOTE_AND_AFTER_XPATHS = (
    "//*[@id='divRplyFwdMsg']",
    "//*[@id='appendonsend']",
    "//*[@id='stopSpelling']",
    "//*[@id='zwchr']",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' OutlookMessageHeader ')]",
    "//div[contains(translate(@style, ' ', ''), 'border-top:solid#E1E1E1')]",
    "//div[contains(translate(@style, ' ', ''), 'border-top:solid#B5C4DF')]",
)
MAX_HTML = 5_000_000
# The strict profile adds no indentation or padding of its own: the text reads as written.
TEXT_CONFIG = ParserConfig(css=CSS_PROFILES["strict"])
XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]{0,200}\?>")
TAG = re.compile(r"<[^<>]{0,2000}>")


def html_reply_parts(html: str) -> tuple[str, str]:
    """The readable text of an HTML reply without its quoting elements, and their text."""
    html = XML_DECLARATION.sub("", html[:MAX_HTML])
    if not html.strip():
        return "", ""
    try:
        tree = lxml_html.document_fromstring(html)
        removed = _remove_quotes(tree)
        _rules_to_line_breaks(tree)
        return Inscriptis(tree, TEXT_CONFIG).get_text(), "\n".join(removed).strip()
    except (etree.LxmlError, ValueError):
        return _text_between_tags(html), ""


def _text_between_tags(html: str) -> str:
    """Last resort for HTML lxml rejects: drop the tags, keep the text."""
    return TAG.sub(" ", html)


def _remove_quotes(tree) -> list[str]:
    """Remove the quoting elements from the tree; the text they held, in document order."""
    removed = []
    for xpath in QUOTE_AND_AFTER_XPATHS:
        for element in tree.xpath(xpath):
            removed.extend(_remove_with_following(element))
    for xpath in QUOTE_XPATHS:
        for element in tree.xpath(xpath):
            if element.getparent() is not None:
                removed.append(element.text_content())
                _remove(element)
    return removed


def _rules_to_line_breaks(tree) -> None:
    """A horizontal rule ends a line, so the "From:" block that often follows starts one."""
    for rule in tree.iter("hr"):
        rule.tag = "br"
        rule.attrib.clear()


def _remove_with_following(element) -> list[str]:
    """Remove an element, its text tail and everything after it in its parent."""
    if element.getparent() is None:
        return []
    following = list(element.itersiblings())
    texts = [element.text_content(), element.tail or ""]
    for sibling in following:
        texts += [sibling.text_content(), sibling.tail or ""]
        _remove(sibling, keep_tail=False)
    _remove(element, keep_tail=False)
    return [text for text in texts if text.strip()]


def _remove(element, keep_tail: bool = True) -> None:
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    if keep_tail and tail and tail.strip():
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)
