"""Attachment names made safe, and attachment bytes stored under generated names.

A name from a mail is only ever shown, never used as a path: files live at
data_dir/attachments/<yyyy>/<mm>/<random hex>, written atomically.
"""

from __future__ import annotations

import mimetypes
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

@dataclass(frozen=True)
class Attachment:
    """One attachment of a mail; `filename` is for display only."""

    filename: str          # sanitised display name, never a path
    content_type: str
    data: bytes
    content_id: str | None  # without <>
    inline: bool


MAX_FILENAME = 150  # characters of a display name
ATTACHMENT_DIR = "attachments"

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f/\\:*?\"<>|]")
_DOTS = re.compile(r"\.{2,}")
_SPACES = re.compile(r"\s+")
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                    *(f"lpt{i}" for i in range(1, 10))}
_EXTENSIONS = {"text/plain": ".txt", "text/html": ".html", "message/rfc822": ".eml",
               "application/octet-stream": ".bin", "image/jpeg": ".jpg",
               "message/delivery-status": ".txt", "text/calendar": ".ics"}


def sanitize_filename(name: str | None, content_type: str) -> str:
    """A display name with no path, no '..', no control characters, at most 150 characters."""
    base = _last_component(name or "")
    base = unicodedata.normalize("NFC", _UNSAFE.sub("_", _visible(base)))
    base = _SPACES.sub(" ", _DOTS.sub(".", base)).strip(" ._")
    if not base or base.split(".")[0].lower() in _WINDOWS_DEVICES:
        return fallback_filename(content_type) if not base else f"_{base}"[:MAX_FILENAME]
    return _capped(base)


def _visible(name: str) -> str:
    """Without invisible format characters (bidi overrides such as U+202E can make
    "gpj.exe" look like "exe.jpg")."""
    return "".join(ch for ch in name if unicodedata.category(ch) not in ("Cf", "Zl", "Zp"))


def fallback_filename(content_type: str) -> str:
    """attachment.<ext> for a part that has no usable name."""
    ctype = (content_type or "").lower()
    ext = _EXTENSIONS.get(ctype) or mimetypes.guess_extension(ctype, strict=False) or ".bin"
    return f"attachment{ext}"


def _last_component(name: str) -> str:
    """What follows the last / or \\ (a mail may send a whole path)."""
    return re.split(r"[/\\]", name)[-1]


def _capped(name: str) -> str:
    """Shorten to MAX_FILENAME characters, keeping a short extension."""
    if len(name) <= MAX_FILENAME:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and 0 < len(ext) <= 10:
        return stem[: MAX_FILENAME - len(ext) - 1].rstrip(" .") + "." + ext
    return name[:MAX_FILENAME].rstrip(" .")


def store_attachment(data_dir: Path, att: Attachment, now: datetime | None = None) -> str:
    """Write att.data atomically under a generated name; return its path relative to data_dir."""
    when = now or datetime.now(timezone.utc)
    rel = Path(ATTACHMENT_DIR, f"{when:%Y}", f"{when:%m}", secrets.token_hex(16))
    target = Path(data_dir) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, att.data)
    return rel.as_posix()


def _write_atomically(target: Path, data: bytes) -> None:
    """tmp file + fsync + rename + fsync of the directory: all or nothing after a crash."""
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def open_attachment(data_dir: Path, rel: str) -> bytes:
    """The bytes stored at rel; a path that leaves data_dir/attachments is refused."""
    root = (Path(data_dir) / ATTACHMENT_DIR).resolve()
    target = (Path(data_dir) / rel).resolve()
    if not target.is_relative_to(root) or target == root:
        raise ValueError(f"attachment path {rel!r} is outside {root}")
    return target.read_bytes()
