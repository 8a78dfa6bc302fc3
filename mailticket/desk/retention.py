"""Retention: what the desk forgets, and when (``[retention]``; the daemon applies it daily,
``mailticket purge`` at once, ``--dry-run`` only tells).

  raw_mail        the raw mails (incoming and sent) and attachments of tickets closed that
                  long ago, and of finished mails that belong to no ticket (automatic mail,
                  duplicates) received that long ago; the tickets, their histories and figures stay
  closed_tickets  tickets closed that long ago, whole: history, mails, attachments, outgoing mail

A duration of 0 keeps forever. Only closed tickets are ever purged: new, open, pending and
resolved tickets stay however old they are (the plan counts them, so the admin is told), and so
do mails waiting to be processed and mails in quarantine. Files are deleted after the rows that
name them are committed: a crash in between leaves a file without its row, never a row without
its file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import peewee as pw

from ..db import write_transaction
from ..inbound.attachments import remove_attachments
from ..models import Attachment, Event, InboundMail, Outbox, Ticket

log = logging.getLogger("mailticket.retention")

BATCH = 200  # tickets to a transaction
FINISHED = ("processed", "duplicate", "dropped", "spam")  # mail states that wait for nobody
DONE_SENDING = ("sent", "failed", "suppressed")
HISTORY_TEXT = {"en": "Raw mails and attachments removed ([retention] raw_mail = {age}).",
                "sv": "Råa mejl och bilagor borttagna ([retention] raw_mail = {age})."}


@dataclass
class Plan:
    """What a purge removes now (or removed)."""

    raw_tickets: list[int] = field(default_factory=list)  # closed tickets whose raw mails go
    raw_mails: int = 0          # incoming mails whose raw bytes go (with or without a ticket)
    raw_sent: int = 0           # outgoing mails whose bytes go
    attachments: int = 0
    tickets: list[int] = field(default_factory=list)      # closed tickets that go whole
    untied_mails: int = 0       # finished mails of no ticket that go whole
    kept_open: int = 0          # tickets not closed that are older than the retention: kept
    more: bool = False          # a purge limited to some rounds left the rest for the next run

    @property
    def empty(self) -> bool:
        return not (self.raw_mails or self.raw_sent or self.attachments or self.tickets or self.untied_mails)


def plan(retention, now: datetime) -> Plan:
    """What ``purge`` would remove at ``now``."""
    result = Plan()
    if retention.raw_mail:
        cutoff = now - retention.raw_mail
        tickets = _closed_before(cutoff)
        mails = _raw_mails(tickets, cutoff)
        result.raw_mails = mails.count()
        result.raw_tickets = sorted({t for (t,) in mails.select(InboundMail.ticket).tuples() if t is not None})
        result.raw_sent = _raw_sent(tickets, cutoff).count()
        result.attachments = _attachments_of(tickets, cutoff).count()
    if retention.closed_tickets:
        cutoff = now - retention.closed_tickets
        result.tickets = [t for (t,) in _closed_before(cutoff).tuples()]
        result.untied_mails = _untied(cutoff).count()
    ages = [d for d in (retention.raw_mail, retention.closed_tickets) if d]
    if ages:
        result.kept_open = Ticket.select().where(Ticket.status != "closed",
                                                 Ticket.created_at < now - min(ages)).count()
    return result


def purge(retention, data_dir, now: datetime, locale: str = "en", *, rounds: int | None = None) -> Plan:
    """Remove what ``plan`` names, a batch to a transaction; returns the plan. With ``rounds``, at
    most that many batches of each kind (the daemon's daily run, which must not hold up the
    intake for long on a desk that turns retention on): ``more`` then says whether some is left."""
    done = plan(retention, now)
    if retention.raw_mail:
        done.more |= _purge_raw(now - retention.raw_mail, data_dir, now, HISTORY_TEXT[locale].format(
            age=_age(retention.raw_mail)), rounds)
    if retention.closed_tickets:
        limit = len(done.tickets) if rounds is None else rounds * BATCH
        _purge_tickets(done.tickets[:limit], now - retention.closed_tickets, data_dir)
        done.more |= len(done.tickets) > limit
    if not done.empty:
        log.info("retention: %d raw mail(s), %d sent mail(s) and %d attachment(s) removed; %d closed ticket(s) "
                 "and %d mail(s) of no ticket deleted%s", done.raw_mails, done.raw_sent, done.attachments,
                 len(done.tickets), done.untied_mails, " (in part: the rest at the next run)" if done.more else "")
    return done


# ---------------------------------------------------------------- the queries

def _closed_before(cutoff: datetime):
    return Ticket.select(Ticket.id).where(Ticket.status == "closed", Ticket.closed_at < cutoff)


def _raw_mails(tickets, cutoff: datetime):
    """Incoming mails with raw bytes left: of those tickets, or of no ticket and finished long ago."""
    return InboundMail.select(InboundMail.id).where(
        pw.fn.LENGTH(InboundMail.raw) > 0,
        InboundMail.ticket.in_(tickets) | (InboundMail.ticket.is_null() & InboundMail.state.in_(FINISHED)
                                           & (InboundMail.received_at < cutoff)))


def _raw_sent(tickets, cutoff: datetime):
    return Outbox.select(Outbox.id).where(
        Outbox.status.in_(DONE_SENDING), (pw.fn.LENGTH(Outbox.raw) > 0) | Outbox.draft.is_null(False),
        Outbox.ticket.in_(tickets) | (Outbox.ticket.is_null() & (Outbox.created_at < cutoff)))


def _attachments_of(tickets, cutoff: datetime):
    return Attachment.select(Attachment.id, Attachment.path).where(
        Attachment.ticket.in_(tickets) | Attachment.inbound.in_(_raw_mails(tickets, cutoff)))


def _untied(cutoff: datetime):
    return InboundMail.select(InboundMail.id).where(
        InboundMail.ticket.is_null(), InboundMail.state.in_(FINISHED), InboundMail.received_at < cutoff)


# ---------------------------------------------------------------- the removals

def _purge_raw(cutoff: datetime, data_dir, now: datetime, history: str, rounds: int | None) -> bool:
    """True when ``rounds`` ran out before everything was removed."""
    done = 0
    while True:
        if rounds is not None and done >= rounds:
            return True
        done += 1
        with write_transaction():
            tickets = _closed_before(cutoff)
            mails = [m for (m,) in _raw_mails(tickets, cutoff).limit(BATCH * 5).tuples()]
            sent = [o for (o,) in _raw_sent(tickets, cutoff).limit(BATCH * 5).tuples()]
            files = list(Attachment.select(Attachment.id, Attachment.path).where(
                Attachment.ticket.in_(tickets) | Attachment.inbound.in_(_in(mails))).limit(BATCH * 5).tuples())
            if not (mails or sent or files):
                return False
            touched = {t for (t,) in InboundMail.select(InboundMail.ticket).where(
                InboundMail.id.in_(mails), InboundMail.ticket.is_null(False)).tuples()}
            if mails:
                InboundMail.update(raw=b"").where(InboundMail.id.in_(mails)).execute()
            if sent:
                Outbox.update(raw=b"", draft=None).where(Outbox.id.in_(sent)).execute()
            if files:
                Attachment.delete().where(Attachment.id.in_([i for i, _ in files])).execute()
            for ticket in sorted(touched):
                Event.create(ticket=ticket, at=now, kind="retention", text=history)
        remove_attachments(data_dir, [path for _, path in files])


def _purge_tickets(ticket_ids: list[int], cutoff: datetime, data_dir) -> None:
    for i in range(0, len(ticket_ids), BATCH):
        with write_transaction():  # still closed long enough now (a reply may have reopened one meanwhile)
            batch = [t for (t,) in _closed_before(cutoff).where(Ticket.id.in_(ticket_ids[i:i + BATCH])).tuples()]
            files = [p for (p,) in Attachment.select(Attachment.path).where(
                Attachment.ticket.in_(batch) | Attachment.inbound.in_(
                    InboundMail.select(InboundMail.id).where(InboundMail.ticket.in_(batch)))).tuples()]
            InboundMail.delete().where(InboundMail.ticket.in_(batch)).execute()  # attachments cascade
            Attachment.delete().where(Attachment.ticket.in_(batch)).execute()
            Outbox.delete().where(Outbox.ticket.in_(batch), Outbox.status.in_(DONE_SENDING)).execute()
            Ticket.delete().where(Ticket.id.in_(batch), Ticket.status == "closed").execute()  # history cascades
        remove_attachments(data_dir, files)
    with write_transaction():
        untied = _untied(cutoff)
        files = [p for (p,) in Attachment.select(Attachment.path).where(Attachment.inbound.in_(untied)).tuples()]
        InboundMail.delete().where(InboundMail.id.in_(untied)).execute()
        Outbox.delete().where(Outbox.ticket.is_null(), Outbox.status.in_(DONE_SENDING),
                              Outbox.created_at < cutoff).execute()
    remove_attachments(data_dir, files)


def _in(ids: list[int]):
    """A list for ``in_``; an empty one matches nothing on both databases."""
    return ids or [-1]


def _age(value: timedelta) -> str:
    from ..durations import format_duration
    return format_duration(value)
