"""`mailticket import PATH`: past mail from an mbox or maildir, idempotent, mailing nobody.

Each mail is processed at the time it was written (its Date), so the history reads true;
clocks that ran out long ago are marked as done rather than escalated today.
"""

from __future__ import annotations

import mailbox
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from ..desk import escalation

from ..desk import pipeline

from ..desk import sla

from ..desk import slaclock
from ..models import InboundMail, MessageRef, SlaMark, Ticket


@dataclass
class ImportResult:
    seen: int = 0
    new_tickets: int = 0
    threaded: int = 0
    skipped: int = 0
    quarantined: int = 0


class _AtClock:
    """The clock during an import: the imported mail's own date."""

    def __init__(self, real):
        self.real, self.at = real, None

    def now(self):
        return self.at or self.real.now()


def open_source(path: Path):
    if path.is_dir():
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise ValueError(f"{path} is a folder but not a maildir (no cur/ or new/)")
        return mailbox.Maildir(path, factory=None, create=False)
    return mailbox.mbox(path, factory=None, create=False)


def import_path(desk, path: Path, progress: bool = False) -> ImportResult:
    box = open_source(path)
    keys = in_date_order(box)
    result = ImportResult()
    real_clock = desk.clock
    desk.clock = _AtClock(real_clock)
    desk.mailer.silent = True
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(keys), unit="mail", desc=f"importing {path.name}")
    try:
        for key in keys:
            raw = box.get_bytes(key)
            result.seen += 1
            _import_one(desk, raw, real_clock.now(), result)
            if bar:
                bar.update(1)
        settle_clocks(desk, real_clock.now())
    finally:
        desk.clock = real_clock
        desk.mailer.silent = False
        if bar:
            bar.close()
        box.close()
    return result


def _headers(raw: bytes):
    return BytesHeaderParser().parsebytes(raw[:65536])


def _date_of(headers) -> datetime | None:
    try:
        when = parsedate_to_datetime(str(headers.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else None


def in_date_order(box) -> list:
    """The keys sorted by each mail's Date (a maildir has no order; a reply must come after its
    original); mails without a usable date keep their place at the end."""
    dated = []
    for i, key in enumerate(box.keys()):
        when = _date_of(_headers(box.get_bytes(key)))
        dated.append((when is None, when.timestamp() if when else 0.0, i, key))
    return [key for *_, key in sorted(dated)]


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
