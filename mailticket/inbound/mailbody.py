"""The leaves of the MIME tree sorted into body text, HTML and attachments (TNEF opened)."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field

from .attachments import Attachment, sanitize_filename
from .charsets import decode_bytes
from .htmltext import MAX_TEXT_HTML, html_to_text
from .mimeparts import Leaf, MimeWalk
from .tnef import is_tnef, open_tnef


@dataclass
class Body:
    plain: list[str] = field(default_factory=list)
    html_parts: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    other_text: list[str] = field(default_factory=list)   # text/enriched, text/x-...
    tnef_text: list[str] = field(default_factory=list)
    tnef_html: list[str] = field(default_factory=list)

    @property
    def html(self) -> str | None:
        html = self.html_parts or self.tnef_html
        return "\n".join(html) if html else None

    @property
    def text(self) -> str:
        """text/plain, else the HTML as text, else other text, else the TNEF body."""
        if self.plain and (any(p.strip() for p in self.plain) or not self.html_parts):
            return "\n\n".join(self.plain)
        if self.html_parts:
            return html_to_text("\n".join(self.html_parts))
        if self.other_text:
            return "\n\n".join(self.other_text)
        if self.tnef_text:
            return "\n\n".join(self.tnef_text)
        return html_to_text("\n".join(self.tnef_html)) if self.tnef_html else ""


@dataclass(frozen=True)
class FrozenBody:
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]


def extract_body(walk: MimeWalk, notes: list[str]) -> FrozenBody:
    """Body text, HTML and attachments from the leaves of the MIME tree."""
    body = Body()
    for leaf in walk.leaves:
        take_leaf(leaf, body, notes)
    notes.extend(walk.notes)
    if not body.plain and body.html and len(body.html) > MAX_TEXT_HTML:
        notes.append(f"HTML of {len(body.html)} characters: text taken from its first "
                     f"{MAX_TEXT_HTML}")
    return FrozenBody(_clean(body.text, notes), _clean_opt(body.html, notes),
                      tuple(body.attachments))


def take_leaf(leaf: Leaf, body: Body, notes: list[str]) -> None:
    """Sort one leaf into body text, HTML, TNEF content or attachment."""
    if leaf.is_body_text():
        text, part_notes = decode_bytes(leaf.data, leaf.charset)
        notes.extend(part_notes)
        {"text/plain": body.plain, "text/html": body.html_parts}.get(
            leaf.content_type, body.other_text).append(text)
        return
    if is_tnef(leaf.content_type, leaf.filename, leaf.data) and take_tnef(leaf, body, notes):
        return
    body.attachments.append(Attachment(
        filename=sanitize_filename(leaf.filename, leaf.content_type),
        content_type=leaf.content_type, data=leaf.data,
        content_id=leaf.content_id, inline=leaf.inline))


def take_tnef(leaf: Leaf, body: Body, notes: list[str]) -> bool:
    """Open a winmail.dat: its files become attachments, its body the last-resort text."""
    try:
        content = open_tnef(leaf.data)
    except ValueError as exc:
        notes.append(f"winmail.dat kept unopened: {exc}")
        return False
    if not (content.files or content.text or content.html):
        notes.append("winmail.dat holds nothing readable: kept unopened")
        return False
    for name, data in content.files:
        ctype = mimetypes.guess_type(name or "")[0] or "application/octet-stream"
        body.attachments.append(Attachment(sanitize_filename(name, ctype), ctype, data, None, False))
    body.tnef_text.extend([content.text] if content.text else [])
    body.tnef_html.extend([content.html] if content.html else [])
    notes.append(f"winmail.dat opened: {len(content.files)} file(s)")
    return True


def _clean(text: str, notes: list[str]) -> str:
    """LF line ends and no NUL (a database text column refuses NUL)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "")
        notes.append("NUL characters removed from the text")
    return text


def _clean_opt(text: str | None, notes: list[str]) -> str | None:
    return None if text is None else _clean(text, notes)
