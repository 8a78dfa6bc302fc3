"""Attachment names made safe, and attachment bytes stored under generated names.

A name from a mail is only ever shown, never used as a path: files live at
data_dir/attachments/<yyyy>/<mm>/<random hex>. Each file is on disk (fsync of the file and of
its folder) before the transaction that records it commits, so a committed row never names a
missing or partial file; a crash before that commit can only leave a file no row names.
"""

from __future__ import annotations

import contextvars
import logging
import mimetypes
import re
import secrets
import threading
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..disk import flush, write_new
from ..errors import StorageError

@dataclass(frozen=True)
class Attachment:
    """One attachment of a mail; `filename` is for display only."""

    filename: str          # sanitised display name, never a path
    content_type: str
    data: bytes
    content_id: str | None  # without <>
    inline: bool


log = logging.getLogger("mailticket.attachments")

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
    """Write att.data under a new generated name; return its path relative to data_dir. The file
    is on disk when this returns, or, inside ``flushed_before_commit()``, when that block ends."""
    when = now or datetime.now(timezone.utc)
    rel = Path(ATTACHMENT_DIR, f"{when:%Y}", f"{when:%m}", secrets.token_hex(16))
    target = Path(data_dir) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    pending = _PENDING.get()
    if pending is None:
        write_new(target, att.data)
        flush(target.parent)
    else:
        pending.add(target, att.data)
    return rel.as_posix()


@contextmanager
def flushed_before_commit():
    """A block (one batch of mail, inside its transaction) whose attachment files are flushed to
    disk by a worker thread while the block goes on, and all of them, with their folders, by the
    time it ends. The fsyncs had kept the daemon waiting for 9 % of its time (py-spy, 10,000 mails
    of the bench, one in ten with a file). Raises StorageError, naming the file, if one could not
    be flushed; the block's own exception, if it has one, goes first."""
    pending = _PendingFlushes()
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        pending.wait(raise_errors=False)
        raise
    finally:
        _PENDING.reset(token)
    pending.wait(raise_errors=True)


class _PendingFlushes:
    def __init__(self):
        self.futures: list[tuple[Path, Future]] = []
        self.folders: set[Path] = set()

    def add(self, target: Path, data: bytes) -> None:
        """The file is written by the worker too: creating it had kept the batch waiting while the
        workers' fsyncs held the file system's journal (1.3 ms an open, 3-4 % of the daemon's
        thread, bench/profile_pipeline.py). A write that fails (a full disk) fails the block like a
        flush, so the batch is retried rather than its mail quarantined."""
        self.futures.append((target, _executor().submit(write_new, target, data)))
        self.folders.add(target.parent)

    def wait(self, *, raise_errors: bool) -> None:
        failures = []
        for target, future in self.futures:
            error = future.exception()  # waits for that flush
            if error is not None:
                failures.append((target, error))
        for folder in sorted(self.folders):  # the new names; once a file's data is on disk
            try:
                flush(folder)
            except OSError as exc:
                failures.append((folder, exc))
        if failures and raise_errors:
            target, exc = failures[0]
            raise StorageError(f"attachment {target} could not be flushed to disk: "
                               f"{exc.strerror or exc}") from exc


_PENDING: contextvars.ContextVar[_PendingFlushes | None] = contextvars.ContextVar("attachment_flushes",
                                                                                   default=None)
_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """Two threads: writing and fsync let go of the GIL, so the batch goes on while the disk works."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="attachment-fsync")
        return _EXECUTOR


def open_attachment(data_dir: Path, rel: str) -> bytes:
    """The bytes stored at rel; a path that leaves data_dir/attachments is refused."""
    root = (Path(data_dir) / ATTACHMENT_DIR).resolve()
    target = (Path(data_dir) / rel).resolve()
    if not target.is_relative_to(root) or target == root:
        raise ValueError(f"attachment path {rel!r} is outside {root}")
    return target.read_bytes()


def remove_attachments(data_dir: Path, rels) -> int:
    """Delete stored attachment files (retention, erasure); a path outside data_dir/attachments is
    left alone, a file already gone is no error. Returns how many were deleted."""
    root = (Path(data_dir) / ATTACHMENT_DIR).resolve()
    removed = 0
    for rel in rels:
        target = (Path(data_dir) / rel).resolve()
        if not target.is_relative_to(root) or target == root:
            log.warning("attachment path %r is outside %s: not deleted", rel, root)
            continue
        try:
            target.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
