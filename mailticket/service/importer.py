"""`mailticket import PATH`: past mail from an mbox, a maildir or one mail file, idempotent, mailing nobody.

Each mail is processed at the time it was written (its Date), so the history reads true;
clocks that ran out long ago are marked as done rather than escalated today.

What it reads, and in how much memory: ``source_kind`` looks at the path before anything is
opened for the import (an mbox's first line starts with ``From ``; a mail file starts with header
lines and has a ``From:``; anything else, a device such as /dev/null, an empty file or a folder
that is not a maildir, is refused with a reason). An mbox is scanned in lines of at most 1 MiB,
never whole, keeping only each mail's offsets and date; each mail is then read alone, and one
larger than ``MAX_MAIL`` (50 MiB, what the listener takes) is skipped with its place named while
the others are imported. Memory stays near the daemon's own, whatever the file's size or shape.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from ..desk import escalation

from ..desk import pipeline

from ..desk import sla

from ..desk import slaclock
from ..models import InboundMail, MessageRef, SlaMark, Ticket
from ..sizes import MAX_MAIL, format_size

HEAD = 65536          # bytes of a mail read for its headers (Date, Message-ID)
LINE = 1024 * 1024    # an mbox is read in lines of at most this many bytes
# A header line: a field name of printable ASCII but the colon (RFC 5322 2.2), a colon, the value.
_FIELD = re.compile(rb"[!-9;-~]+[ \t]*:")


@dataclass
class ImportResult:
    seen: int = 0
    new_tickets: int = 0
    threaded: int = 0
    skipped: int = 0
    quarantined: int = 0
    too_large: list[str] = field(default_factory=list)  # where each mail over MAX_MAIL was, for the admin


class NotASource(ValueError):
    """The path is not an mbox, a maildir or a mail file; the message says what it is instead."""


@dataclass(slots=True)
class _Entry:
    """One mail of the source: where its bytes are, how many, and its Date (for the order). Kept
    for every mail until the import ends: a few dozen bytes each."""
    start: int          # of an mbox's From_ line, as the admin is told; 0 for a file
    offset: int         # of its first byte (after an mbox's From_ line); 0 for a file
    size: int
    path: Path | None   # a maildir's file or the mail file; None: in the mbox
    when: float | None = None
    mid: str = ""       # the Message-ID of a mail too large to import, to name it

    @property
    def where(self) -> str:
        return f"byte {self.start}" if self.path is None else f"{self.path.parent.name}/{self.path.name}"


class _AtClock:
    """The clock during an import: the imported mail's own date."""

    def __init__(self, real):
        self.real, self.at = real, None

    def now(self):
        return self.at or self.real.now()


def source_kind(path: Path) -> str:
    """``"maildir"``, ``"mbox"`` or ``"mail"`` (one mail in a file, as a mail program saves it as
    .eml), else NotASource saying what the path is. Reads at most the first 64 KiB."""
    if not path.exists():
        raise NotASource(f"{path} does not exist")
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            return "maildir"
        raise NotASource(f"{path} is a folder but not a maildir (no cur/ or new/ in it)")
    if not path.is_file():
        raise NotASource(f"{path} is not a file but a device, pipe or socket; give an mbox file, a maildir "
                         "folder or a mail file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD)
    except OSError as exc:
        raise NotASource(f"cannot read {path}: {exc.strerror}") from None
    if not head:
        raise NotASource(f"{path} is empty: neither an mbox nor a mail")
    if head.startswith(b"From "):
        return "mbox"
    if _is_mail(head):
        return "mail"
    raise NotASource(f"{path} is neither an mbox (its first line does not start with 'From ') nor a mail "
                     "(header lines with a From: field, then a blank line)")


def _is_mail(head: bytes) -> bool:
    """Header lines from the first byte (a field, or a folded continuation) up to a blank line, one of
    them From:. /etc/passwd (no blank line, no From:) or a binary file are not."""
    lines = head.split(b"\n")
    found_from = False
    for i, line in enumerate(lines):
        line = line.rstrip(b"\r")
        if not line:
            return found_from and i > 0
        if line[:1] in (b" ", b"\t") and i > 0:
            continue
        if not _FIELD.match(line):
            return False
        found_from = found_from or line[:5].lower() == b"from:"
    return False  # no blank line in the first 64 KiB: no header block ends there


def _mbox_entries(path: Path) -> list[_Entry]:
    """The mails of an mbox, as Python's mailbox module finds them (a line starting ``From `` opens
    one; the blank line before it belongs to none), read in lines of at most LINE bytes: a file of
    one 2 GB line takes no more memory than one of short lines."""
    entries: list[_Entry] = []
    with open(path, "rb") as fh:
        pos, at_start, in_from_line, blank = 0, True, False, 0  # blank: 1 just after a blank line
        current: _Entry | None = None
        head = bytearray()

        def close(stop: int) -> None:
            current.size = max(0, stop - current.offset)
            _dated(current, bytes(head))
            entries.append(current)

        while True:
            line = fh.readline(LINE)
            if not line:
                break
            whole = line.endswith(b"\n")
            if at_start and line.startswith(b"From "):
                if current is not None:
                    close(pos - blank)
                current, in_from_line = _Entry(pos, pos + len(line), 0, None), not whole
                head.clear()
                blank = 0
            elif in_from_line:  # the rest of an overlong From_ line
                current.offset, in_from_line = pos + len(line), not whole
            else:
                if current is not None and len(head) < HEAD:
                    head += line[:HEAD - len(head)]
                blank = 1 if at_start and line == b"\n" else 0
            pos += len(line)
            at_start = whole
        if current is not None:
            close(pos - blank)
    return entries


def _maildir_entries(path: Path) -> list[_Entry]:
    entries = []
    for sub in ("new", "cur"):
        folder = path / sub
        if not folder.is_dir():
            continue
        for name in sorted(os.listdir(folder)):
            file = folder / name
            if name.startswith(".") or not file.is_file():
                continue
            entry = _Entry(0, 0, file.stat().st_size, file)
            with open(file, "rb") as fh:
                _dated(entry, fh.read(HEAD))
            entries.append(entry)
    return entries


def _dated(entry: _Entry, head: bytes) -> None:
    headers = _headers(head)
    when = _date_of(headers)
    entry.when = when.timestamp() if when else None
    if entry.size > MAX_MAIL:
        entry.mid = str(headers.get("Message-ID", "")).strip()[:200]


def entries_of(path: Path) -> list[_Entry]:
    """The mails of the source at ``path`` in date order (a maildir has no order, and a reply must
    come after its original); mails without a usable date keep their place at the end."""
    kind = source_kind(path)
    if kind == "maildir":
        entries = _maildir_entries(path)
    elif kind == "mbox":
        entries = _mbox_entries(path)
    else:
        entry = _Entry(0, 0, path.stat().st_size, path)
        with open(path, "rb") as fh:
            _dated(entry, fh.read(HEAD))
        entries = [entry]
    order = sorted(range(len(entries)), key=lambda i: (entries[i].when is None, entries[i].when or 0.0, i))
    return [entries[i] for i in order]


def _read(entry: _Entry, source) -> bytes:
    if entry.path is not None:
        with open(entry.path, "rb") as fh:
            return fh.read(entry.size)
    source.seek(entry.offset)
    return source.read(entry.size)


def import_path(desk, path: Path, progress: bool = False) -> ImportResult:
    """Import every mail of ``path`` (NotASource when it is none of the three kinds)."""
    entries = entries_of(path)
    result = ImportResult()
    real_clock = desk.clock
    desk.clock = _AtClock(real_clock)
    desk.mailer.silent = True
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(entries), unit="mail", desc=f"importing {path.name}")
    source = open(path, "rb") if path.is_file() else None
    try:
        for entry in entries:
            result.seen += 1
            if entry.size > MAX_MAIL:
                result.too_large.append(f"{entry.where}{' ' + entry.mid if entry.mid else ''}: "
                                        f"{format_size(entry.size)}")
            else:
                _import_one(desk, _read(entry, source), real_clock.now(), result)
            if bar:
                bar.update(1)
        settle_clocks(desk, real_clock.now())
    finally:
        desk.clock = real_clock
        desk.mailer.silent = False
        if bar:
            bar.close()
        if source:
            source.close()
    return result


def _headers(raw: bytes):
    return BytesHeaderParser().parsebytes(raw[:65536])


def _date_of(headers) -> datetime | None:
    try:
        when = parsedate_to_datetime(str(headers.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else None


def _known(mid: str) -> bool:
    """Seen before: processed (a MessageRef) or kept in quarantine from an earlier run."""
    return bool(MessageRef.get_or_none(MessageRef.message_id == mid)
                or InboundMail.get_or_none(InboundMail.message_id == mid, InboundMail.state == "quarantined"))


def _import_one(desk, raw: bytes, now: datetime, result: ImportResult) -> None:
    headers = _headers(raw)
    mid = str(headers.get("Message-ID", "")).strip().strip("<>")
    if mid and _known(mid):
        result.skipped += 1
        return
    when = _date_of(headers)
    desk.clock.at = when if when and when < now else None
    row = pipeline.store_raw(raw, source="import", now=desk.clock.now())
    outcome = pipeline.process_one(desk, row)
    if outcome.state == "quarantined":
        result.quarantined += 1
        if mid:  # remembered even when the mail could not be parsed, so a second import skips it
            InboundMail.update(message_id=mid).where(InboundMail.id == row.id, InboundMail.message_id.is_null()).execute()
    elif outcome.state == "duplicate":
        result.skipped += 1
    elif outcome.reason == "new ticket" or outcome.reason.startswith("new ticket"):
        result.new_tickets += 1
    else:
        result.threaded += 1


def settle_clocks(desk, now: datetime, chunk: int = 500) -> None:
    """Warnings and escalations that fell due in the past are recorded as done, not mailed today.
    ``chunk`` tickets at a time, each chunk one transaction: memory stays flat however large the import."""
    policy = desk.config.sla
    last_id = 0
    while True:
        due = list(escalation.due_tickets(now, limit=chunk).where(Ticket.id > last_id)
                   .order_by(Ticket.id))
        if not due:
            return
        with Ticket._meta.database.atomic():
            for ticket in due:
                state = slaclock.state_of(ticket, policy)
                for action in sla.due_actions(state, now, policy):
                    SlaMark.insert(ticket=ticket, key=action.key, at=now).on_conflict_ignore().execute()
                slaclock.refresh(ticket, policy, after=now)
                ticket.save()
        last_id = due[-1].id
