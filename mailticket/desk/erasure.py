"""`mailticket erase ADDRESS`: a person's right to erasure (GDPR art. 17).

Everything stored about the person goes or is anonymised: the requester fields of their tickets
(the address becomes a pseudonym made for this erasure, ``erased-…@erased.invalid``, so their
tickets still group together), their participation in others' tickets, what they wrote in the
histories, every raw mail from them or naming them (incoming and sent), the attachments of
those mails, outgoing mail to them (mail still queued to them is not sent), and their address
and name wherever a text holds them (other history entries, errors, the outbox folder of a desk
without SMTP). The tickets themselves stay, with their times, priorities, tiers and categories,
so the report's figures do not change. That an erasure happened is recorded (``Erasure``, and an
entry in each ticket's history); what was erased and whose it was is not.

On SQLite deleted content is overwritten (``secure_delete``) and the write-ahead log emptied
afterwards, so the database file keeps no copy. On PostgreSQL old row versions stay in the data
files until VACUUM reclaims their space.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import peewee as pw

from ..db import is_postgres, write_transaction
from ..inbound.attachments import remove_attachments
from ..models import (AlarmState, Attachment, Erasure, Event, InboundMail, KeyValue, Outbox, Participant,
                      RequesterLanguage, Ticket, database_proxy)

log = logging.getLogger("mailticket.erasure")

MARKER = {"en": "[erased]", "sv": "[raderat]"}
HISTORY_TEXT = {"en": "Personal data erased on request.", "sv": "Personuppgifter raderade på begäran."}
MIN_NAME = 3  # a shorter "name" would match too much text


class NothingStored(LookupError):
    """Nothing is stored about the address: nothing was changed."""


class RefusedAddress(ValueError):
    """An address of the desk itself (agent, tier, admin): remove it from the config first."""


@dataclass
class Erased:
    """How much was touched (counts only: what was erased is not kept)."""

    tickets: list[int] = field(default_factory=list)   # requester or participant
    mails: int = 0
    attachments: int = 0
    outgoing: int = 0
    cancelled: int = 0     # queued mail to them, not sent
    events: int = 0
    files: int = 0         # mail files in the outbox folder


@dataclass(frozen=True)
class Person:
    address: str
    names: tuple[str, ...]

    @property
    def needles(self) -> tuple[str, ...]:
        return (self.address, *self.names)

    def pattern(self) -> re.Pattern:
        return re.compile("|".join(re.escape(n) for n in sorted(self.needles, key=len, reverse=True)), re.I)


def person(config, address: str) -> Person:
    """The address (checked) and every name stored with it."""
    address = address.strip().lower()
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address):
        raise ValueError(f"{address!r} is not a mail address like anna@example.com")
    if config.is_internal_address(address) or config.is_own_address(address):
        raise RefusedAddress(f"{address} is an address of the desk itself (an agent, a tier, the admin or the "
                             "security contact); remove it from the configuration first")
    names = {t for (t,) in Ticket.select(Ticket.requester_name).where(Ticket.requester_address == address).tuples()}
    names |= {n for (n,) in Participant.select(Participant.name).where(Participant.address == address).tuples()}
    return Person(address, tuple(sorted(n.strip() for n in names if n and len(n.strip()) >= MIN_NAME)))


def erase(config, address: str, now: datetime, *, actor: str = "admin", dry_run: bool = False) -> Erased:
    """Erase ``address`` everywhere (see the module's doc). Raises NothingStored when nothing
    names it, RefusedAddress for the desk's own addresses, ValueError for a malformed one."""
    who = person(config, address)
    locale = config.service.locale
    marker, pattern = MARKER[locale], who.pattern()
    pseudonym = f"erased-{secrets.token_hex(5)}@erased.invalid"
    done = Erased()
    _secure_delete(True)
    try:
        with write_transaction():
            own = [t for (t,) in Ticket.select(Ticket.id).where(Ticket.requester_address == who.address).tuples()]
            cc = [t for (t,) in Participant.select(Participant.ticket).where(
                Participant.address == who.address).tuples()]
            mails = _mails_naming(who, own)
            outgoing = list(Outbox.select().where(_outbox_naming(who, own)))
            events = list(Event.select().where((Event.actor == who.address) | _text_names(Event.text, who)
                                               | _text_names(Event.data, who)))
            done.tickets = sorted(set(own) | set(cc) | {e.ticket_id for e in events})
            if not (done.tickets or mails or outgoing):
                raise NothingStored(f"nothing is stored about {who.address}: no ticket, participant, history "
                                    "entry, mail or outgoing mail names it; nothing was changed")
            files = [p for (p,) in Attachment.select(Attachment.path).where(
                Attachment.inbound.in_(mails or [-1]) | Attachment.ticket.in_(own or [-1])).tuples()]
            done.mails, done.attachments, done.outgoing, done.events = len(mails), len(files), len(outgoing), len(events)
            if dry_run:
                raise _DryRun()
            _tickets(own, cc, pattern, marker, pseudonym)
            _participants(who)
            done.cancelled = _outbox(outgoing, who, pattern, marker, pseudonym)
            _events(events, who, pattern, marker, pseudonym)
            Attachment.delete().where(Attachment.inbound.in_(mails or [-1]) | Attachment.ticket.in_(own or [-1])).execute()
            _raw_mails(mails, own, who, pattern, marker)
            _scrub_texts(who, pattern, marker)
            for ticket in done.tickets:
                Event.create(ticket=ticket, at=now, kind="erasure", actor=actor, text=HISTORY_TEXT[locale])
            Erasure.create(at=now, actor=actor, tickets=len(done.tickets))
    except _DryRun:
        return done
    finally:
        _secure_delete(False)
    remove_attachments(config.service.data_dir, files)
    done.files = _outbox_folder(config, pattern)
    _empty_wal()
    log.info("erasure on request by %s: %d ticket(s), %d mail(s), %d attachment(s), %d outgoing mail(s) "
             "anonymised", actor, len(done.tickets), done.mails, done.attachments, done.outgoing)
    return done


class _DryRun(Exception):
    """Roll the transaction back: a dry run changes nothing."""


# ---------------------------------------------------------------- finding

def _text_names(column, who: Person):
    """The column holds the address or a name (case-insensitive)."""
    condition = None
    for needle in who.needles:
        match = pw.fn.LOWER(column).contains(needle.lower())
        condition = match if condition is None else condition | match
    return condition


def _raw_names(who: Person, column=InboundMail.raw):
    """A raw mail holds the address or a name (ASCII case-insensitive; a name written in an
    encoded word is found through the address it comes with)."""
    if is_postgres():
        text = pw.fn.LOWER(pw.fn.ENCODE(column, "escape"))
    else:
        text = pw.fn.LOWER(pw.Cast(column, "TEXT"))
    condition = None
    for needle in who.needles:
        match = text.contains(needle.lower())
        condition = match if condition is None else condition | match
    return condition


def _mails_naming(who: Person, own: list[int]) -> list[int]:
    return [m for (m,) in InboundMail.select(InboundMail.id).where(
        pw.fn.LENGTH(InboundMail.raw) > 0, InboundMail.ticket.in_(own or [-1]) | _raw_names(who)).tuples()]


def _outbox_naming(who: Person, own: list[int]):
    return (Outbox.rcpt_key == who.address) | Outbox.ticket.in_(own or [-1]) | _text_names(Outbox.recipients, who) \
        | _text_names(Outbox.draft, who) | _text_names(Outbox.last_error, who) | _raw_names(who, Outbox.raw)


# ---------------------------------------------------------------- anonymising

def _scrub(text, pattern: re.Pattern, marker: str):
    return pattern.sub(marker, text) if isinstance(text, str) else text


def _scrub_json(value, pattern: re.Pattern, marker: str):
    if isinstance(value, str):
        return pattern.sub(marker, value)
    if isinstance(value, list):
        return [_scrub_json(v, pattern, marker) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_json(v, pattern, marker) for k, v in value.items()}
    return value


def _tickets(own: list[int], cc: list[int], pattern, marker: str, pseudonym: str) -> None:
    for i in range(0, len(own), 500):
        Ticket.update(requester_address=pseudonym, requester_name="", subject=marker, description="",
                      requester_phone=None, call=None, call_remind_at=None).where(  # the number and the call too
            Ticket.id.in_(own[i:i + 500])).execute()
    for ticket in Ticket.select().where(Ticket.id.in_(cc or [-1])):
        ticket.subject, ticket.description = _scrub(ticket.subject, pattern, marker), _scrub(
            ticket.description, pattern, marker)
        ticket.save(only=[Ticket.subject, Ticket.description])


def _raw_mails(mails: list[int], own: list[int], who: Person, pattern, marker: str) -> None:
    """Their own mails, and every mail of their tickets, lose their bytes; another's mail that
    names them (a Cc, a quote) keeps its bytes with the address and names replaced."""
    sender = re.compile(rb"^(?:from|sender|reply-to|return-path):[^\r\n]*" + re.escape(who.address.encode()),
                        re.I | re.M)
    for row in InboundMail.select(InboundMail.id, InboundMail.raw, InboundMail.ticket).where(InboundMail.id.in_(mails)
                                                                                         if mails else False):
        raw = bytes(row.raw)
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        if row.ticket_id in own or sender.search(head):
            raw = b""
        else:  # bytes as latin-1: every byte kept, the ASCII needles found
            raw = pattern.sub(marker, raw.decode("latin-1")).encode("latin-1", "replace")
        InboundMail.update(raw=raw).where(InboundMail.id == row.id).execute()


def _participants(who: Person) -> None:
    Participant.delete().where(Participant.address == who.address).execute()
    RequesterLanguage.delete().where(RequesterLanguage.address == who.address).execute()


def _events(events: list[Event], who: Person, pattern, marker: str, pseudonym: str) -> None:
    for event in events:
        if event.actor == who.address:  # what they wrote
            event.actor, event.text, event.data = pseudonym, marker, None
        else:
            event.text, event.data = _scrub(event.text, pattern, marker), _scrub_json(event.data, pattern, marker)
        event.save(only=[Event.actor, Event.text, Event.data])


def _outbox(entries: list[Outbox], who: Person, pattern, marker: str, pseudonym: str) -> int:
    """Sent and failed mail loses its bytes; mail queued to them is not sent; mail queued to
    others (agents) keeps going, without their address and name."""
    cancelled = 0
    for entry in entries:
        to_them = any(r.lower() == who.address for r in entry.recipients)
        entry.recipients = [pseudonym if r.lower() == who.address else r for r in entry.recipients]
        entry.rcpt_key = pseudonym if entry.rcpt_key == who.address else entry.rcpt_key
        entry.last_error = _scrub(entry.last_error, pattern, marker)
        if entry.status == "queued" and not to_them:
            if entry.draft is not None:
                entry.draft = json.dumps(_scrub_json(json.loads(entry.draft), pattern, marker))
            else:
                entry.raw = pattern.sub(marker, bytes(entry.raw).decode("utf-8", "surrogateescape")).encode(
                    "utf-8", "surrogateescape")
        else:
            if entry.status == "queued":
                entry.status, entry.last_error = "suppressed", "not sent: the recipient's data was erased"
                cancelled += 1
            entry.raw, entry.draft = b"", None
        entry.save(only=[Outbox.recipients, Outbox.rcpt_key, Outbox.last_error, Outbox.draft, Outbox.raw,
                         Outbox.status])
    return cancelled


def _scrub_texts(who: Person, pattern, marker: str) -> None:
    """Errors and notes kept outside the tickets: quarantine reasons, the health facts, alarms."""
    for model, column in ((InboundMail, InboundMail.reason), (KeyValue, KeyValue.value),
                          (AlarmState, AlarmState.detail)):
        for row in model.select().where(_text_names(column, who)):
            setattr(row, column.name, _scrub(getattr(row, column.name), pattern, marker))
            extra = []
            if model is InboundMail:  # its translatable twin is JSON the pattern may not see: it goes
                row.reason_msg, extra = None, [InboundMail.reason_msg]
            row.save(only=[column, *extra])


def _outbox_folder(config, pattern) -> int:
    """A desk without SMTP writes its mail to a maildir: the files that name them go."""
    folder = config.outbox.maildir
    if folder is None or not Path(folder).is_dir():
        return 0
    removed = 0
    for path in Path(folder).glob("*/*"):
        try:
            if path.is_file() and pattern.search(path.read_bytes().decode("utf-8", "replace")):
                path.unlink()
                removed += 1
        except OSError as exc:
            log.error("could not erase %s: %s", path, exc.strerror)
    return removed


# ---------------------------------------------------------------- SQLite's copies

def _secure_delete(on: bool) -> None:
    if not is_postgres():
        database_proxy.obj.execute_sql(f"PRAGMA secure_delete = {'ON' if on else 'OFF'}")


def _empty_wal() -> None:
    """Copy the write-ahead log into the database and truncate it (old page images go)."""
    if not is_postgres():
        database_proxy.obj.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
