"""The outbox: mail is queued in the ticket's transaction and drained by a sender with back-off.

A temporary failure (4xx, refused connection, timeout) is retried with exponential back-off
and jitter; a permanent one (5xx) stops at once. Both end visible in ``mailticket outbox``
and the admin is told. A crash of the daemon between sending and recording may send one
duplicate at most, and that duplicate has the same Message-ID. "Sent" marks are not flushed
to disk one by one (``db.lazy_commits``): a power cut may send the last few again, with the
same Message-IDs, and never loses one.
"""

from __future__ import annotations

import logging
import random
import socket
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import peewee as pw

from ..config import OutboxConfig, RateLimits
from ..marks import FailingMark
from ..db import fetch_models, is_postgres, lazy_commits, run, write_transaction
from ..errors import DeliveryAborted, PermanentDeliveryError, TemporaryDeliveryError
from ..models import Outbox, insert_together

log = logging.getLogger("mailticket.outbox")

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
CLAIM_FOR = timedelta(minutes=5)
# The admin's alarms are never given up on a temporary failure: the alarm that outgoing mail
# fails must go out once the server takes mail again (desk/alarms.py).
KEEP_TRYING = frozenset({"alarm", "alarm_cleared"})
# when the SMTP server began to fail, for the alarms (one per process: see marks.FailingMark)
FAILING = FailingMark("outgoing")


def enqueue(raw: bytes, message_id: str, *, kind: str, mail_from: str, recipients: list[str], now: datetime,
            ticket=None, automatic: bool = True, draft: str | None = None, along=None) -> Outbox:
    """Queue one mail (CRLF bytes: smtplib sends them as they are), or its ``draft`` (JSON, see
    ``drafts``; ``raw`` is then empty); call inside the transaction of the change that caused it.
    ``along``, a new row to insert with it (its Message-ID's MessageRef), goes in the same round
    trip (``models.insert_together``)."""
    entry = Outbox(
        ticket=ticket, kind=kind, message_id=message_id, mail_from=mail_from,
        recipients=recipients, rcpt_key=recipients[0].lower(), automatic=automatic, raw=raw, draft=draft,
        created_at=now, next_attempt_at=now)
    if along is None:
        entry.save(force_insert=True)
    else:
        insert_together(along, entry)
    return entry


@dataclass(frozen=True)
class RateVerdict:
    allowed: bool
    reason: str = ""


def check_rate(recipient: str, ticket_id: int | None, now: datetime, limits: RateLimits,
               window: "GlobalWindow | None" = None, *, global_cap=True) -> RateVerdict:
    """May one more automatic mail go to ``recipient`` now? Counts what was queued, sent or not.

    Each count stops at its limit (a bounded subquery on an index), so asking costs the same with
    ten or ten million mails in the outbox; the three counts are one statement. With a ``window``
    (the process's view of the global count, see GlobalWindow) the global count is often taken
    from it instead of the database.

    The global count is a fuse against what no per-address cap sees (a storm from thousands of
    addresses at once), not the loop breaker (``check_thread`` and the per-address counts are):
    ``global_cap`` false (or a callable that says so, asked only when the fuse would hold the mail)
    lets a mail pass it that must not be lost in a mass incident: the acknowledgement of a new
    sender's first ticket."""
    rcpt = recipient.lower()
    day = _stamp(now - timedelta(days=1))
    local = (True, rcpt, ticket_id, day, limits.per_ticket, True, rcpt, day, limits.per_sender_day)
    if window is not None and window.knows(now, limits.global_10min):
        per_ticket, per_sender = run(_RATE_SQL_LOCAL, local).fetchone()
        overall = window.count
    else:
        per_ticket, per_sender, overall = run(_RATE_SQL, local + (
            True, _stamp(now - timedelta(minutes=10)), limits.global_10min)).fetchone()
        if window is not None:
            window.counted(now, overall)
    if ticket_id is not None and per_ticket >= limits.per_ticket:
        return RateVerdict(False, f"{per_ticket} automatic mails to {rcpt} about ticket {ticket_id} in 24h "
                                  f"(rate_limits.per_ticket = {limits.per_ticket})")
    if per_sender >= limits.per_sender_day:
        return RateVerdict(False, f"{per_sender} automatic mails to {rcpt} in 24h (rate_limits.per_sender_day = "
                                  f"{limits.per_sender_day})")
    if overall >= limits.global_10min and (global_cap() if callable(global_cap) else global_cap):
        return RateVerdict(False, f"{overall} automatic mails in 10 minutes (rate_limits.global_10min = "
                                  f"{limits.global_10min})")
    return RateVerdict(True)


def check_thread(recipient: str, ticket_id: int, kind: str, now: datetime, limits: RateLimits, *,
                 internal: bool) -> RateVerdict:
    """May one more mail of ``kind`` about ticket ``ticket_id`` go to ``recipient`` now? Every kind
    counts, automatic or written by an agent: a loop repeats the same mail, so a cap on one kind
    to one address about one ticket in an hour (``per_thread_hour``) ends any loop, whatever the
    other side's headers say; an internal address (a tier, an agent, the assignee, the security
    contact) also has a cap over all kinds about one ticket (``internal_per_ticket_hour``), which
    ends a loop that alternates kinds. ``recipient`` is the mail's first recipient (``rcpt_key``):
    a note to several agents is counted under the first, and the same note to the same agents
    always has the same first one, so a repeated mail is always counted under the same key.
    Each count stops at its limit (bounded subqueries on the (rcpt_key, ticket_id, created_at) index)."""
    rcpt = recipient.lower()
    hour = _stamp(now - timedelta(hours=1))
    same_kind, every_kind = run(_THREAD_SQL, (rcpt, ticket_id, kind, hour, limits.per_thread_hour, rcpt, ticket_id,
                                              hour, limits.internal_per_ticket_hour if internal else 0)).fetchone()
    if same_kind >= limits.per_thread_hour:
        return RateVerdict(False, f"{same_kind} {kind} mails to {rcpt} about ticket {ticket_id} in an hour "
                                  f"(rate_limits.per_thread_hour = {limits.per_thread_hour})")
    if internal and every_kind >= limits.internal_per_ticket_hour:
        return RateVerdict(False, f"{every_kind} mails to {rcpt} about ticket {ticket_id} in an hour "
                                  f"(rate_limits.internal_per_ticket_hour = {limits.internal_per_ticket_hour})")
    return RateVerdict(True)


_THREAD_SQL = """SELECT
 (SELECT COUNT(*) FROM (SELECT 1 FROM "outbox" WHERE "rcpt_key" = ? AND "ticket_id" = ? AND "kind" = ?
   AND "created_at" > ? LIMIT ?) AS same_kind),
 (SELECT COUNT(*) FROM (SELECT 1 FROM "outbox" WHERE "rcpt_key" = ? AND "ticket_id" = ? AND "created_at" > ?
   LIMIT ?) AS every_kind)"""


def tier_notices_for_sender(requester: str, now: datetime, limit: int) -> int:
    """New-ticket notices queued for the tickets ``requester`` opened in the last hour (stops at
    ``limit``; from the (requester_address, created_at) index of the tickets)."""
    hour = _stamp(now - timedelta(hours=1))
    return run(_TIER_NOTICES_SQL, (requester, hour, hour, limit)).fetchone()[0]


_TIER_NOTICES_SQL = """SELECT COUNT(*) FROM (SELECT 1 FROM "ticket" AS t JOIN "outbox" AS o ON o."ticket_id" = t."id"
 WHERE t."requester_address" = ? AND t."created_at" > ? AND o."kind" = 'new_ticket' AND o."created_at" > ?
 LIMIT ?) AS notices"""


_RATE_SQL_LOCAL = """SELECT
 (SELECT COUNT(*) FROM (SELECT 1 FROM "outbox" WHERE "automatic" = ? AND "rcpt_key" = ? AND "ticket_id" = ?
   AND "created_at" > ? LIMIT ?) AS per_ticket),
 (SELECT COUNT(*) FROM (SELECT 1 FROM "outbox" WHERE "automatic" = ? AND "rcpt_key" = ? AND "created_at" > ?
   LIMIT ?) AS per_sender)"""
_RATE_SQL = _RATE_SQL_LOCAL + """,
 (SELECT COUNT(*) FROM (SELECT 1 FROM "outbox" WHERE "automatic" = ? AND "created_at" > ? LIMIT ?) AS overall)"""


@dataclass
class GlobalWindow:
    """One process's view of ``rate_limits.global_10min``: the last count of the automatic mails
    queued in the past 10 minutes, plus those this process queued since.

    Counting that window visits each of its rows up to the limit (PostgreSQL checks each row's
    visibility): with the limit raised to thousands, milliseconds a mail. Far below the limit the
    view is enough. It is counted again when it is older than RECOUNT_EVERY and whenever it has
    reached half the limit, so near the limit every mail is counted in the database as before;
    what another process queued meanwhile can be missed for RECOUNT_EVERY at most, and only
    while the count is under half the limit."""

    RECOUNT_EVERY = timedelta(seconds=5)
    counted_at: datetime | None = None
    count: int = 0

    def knows(self, now: datetime, limit: int) -> bool:
        """The view may stand in for a count now."""
        return (self.counted_at is not None and self.counted_at <= now < self.counted_at + self.RECOUNT_EVERY
                and 2 * self.count < limit)

    def counted(self, now: datetime, count: int) -> None:
        self.counted_at, self.count = now, count

    def queued(self) -> None:
        """This process queued an automatic mail (counted whether or not its transaction commits:
        a rollback only makes the view count one too many until the next count)."""
        self.count += 1


def _stamp(when: datetime):
    return Outbox.created_at.db_value(when)


def backoff(attempts: int, cfg: OutboxConfig, rng: random.Random = random) -> timedelta:
    """Exponential back-off with full jitter in its upper half, capped at ``retry_max``."""
    base = cfg.retry_base.total_seconds() * (2 ** max(0, attempts - 1))
    capped = min(base, cfg.retry_max.total_seconds())
    return timedelta(seconds=capped / 2 + rng.random() * capped / 2)


def claim_due(now: datetime, limit: int = 50, worker: str = WORKER_ID) -> list[Outbox]:
    """Take up to ``limit`` due entries for this worker; another daemon never gets the same ones."""
    db = Outbox._meta.database
    claimable = ((Outbox.status == "queued") & (Outbox.next_attempt_at <= now)
                 & ((Outbox.claimed_until.is_null()) | (Outbox.claimed_until < now) | (Outbox.claimed_by == worker)))
    due = Outbox.select(Outbox.id).where(claimable).order_by(Outbox.next_attempt_at, Outbox.id).limit(limit)
    with write_transaction(db):
        if is_postgres(db):
            due = due.for_update("FOR UPDATE SKIP LOCKED")
        ids = [row.id for row in due]
        if not ids:
            return []
        # the condition again: the claim holds by this statement alone, whatever the isolation
        # (SQLite: BEGIN IMMEDIATE; PostgreSQL: the rows are locked; either way a row taken by
        # another worker in between is not taken again)
        Outbox.update(claimed_by=worker, claimed_until=now + CLAIM_FOR).where(Outbox.id.in_(ids), claimable).execute()
    return list(Outbox.select().where(Outbox.id.in_(ids), Outbox.claimed_by == worker, Outbox.status == "queued")
                .order_by(Outbox.id))


@dataclass
class DrainResult:
    sent: int = 0
    retried: int = 0
    postponed: int = 0
    failed: list = None

    def __post_init__(self):
        self.failed = self.failed or []


def drain(transport, now: datetime, cfg: OutboxConfig, *, limit: int = 200, worker: str = WORKER_ID,
          on_failed=None, stop=None, sent_log=None, compose=None) -> DrainResult:
    """Send what is due. ``on_failed(entry)`` is called once for each entry that failed for good.
    ``compose(entry)`` gives the bytes of an entry queued as a draft (``Mailer.mail_bytes``); a
    draft that cannot be written fails for good, with the reason.
    When ``stop`` (an Event) is set, the mail in hand is finished and the rest given back, due now.

    On PostgreSQL each entry is sent inside a transaction that holds its row (SKIP LOCKED for the
    others), so no other daemon can send it while this one lives, whatever the clocks say; if this
    one dies, its rows are free at once. On SQLite (one daemon) a batch is claimed, then sent; or,
    from the sender process, ``sent_log`` (a ``sentlog.SentLog``) records what was sent, and
    nothing is claimed, so that sending never waits for the daemon's write lock."""
    result = DrainResult()
    try:
        with lazy_commits():
            _drain(transport, now, cfg, limit, worker, result, on_failed, stop, sent_log, compose)
    finally:
        transport.close()
    return result


def _drain(transport, now, cfg, limit, worker, result, on_failed, stop, sent_log, compose) -> None:
    send = partial(_send_one, transport, compose=compose)
    if is_postgres():
        try:
            _drain_holding_rows(send, now, cfg, limit, result, on_failed, stop)
        except DeliveryAborted as exc:  # its transaction rolled back: the row is queued as it was
            _aborted(exc)
        return
    entries = due_unsent(now, limit, sent_log) if sent_log is not None else claim_due(now, limit, worker)
    mark_sent = sent_log.record if sent_log is not None else record_sent
    for i, entry in enumerate(entries):
        if stop is not None and stop.is_set():
            if sent_log is None:
                _postpone(entries[i:], now, result)
            return
        try:
            if not send(entry, now, cfg, result, on_failed, mark_sent):
                _postpone(entries[i + 1:], now + backoff(1, cfg), result)
                return
        except DeliveryAborted as exc:
            _aborted(exc)
            if sent_log is None:  # give the claims back, due now; the sender process claimed nothing
                _postpone(entries[i:], now, result)
            return


def _aborted(exc: DeliveryAborted) -> None:
    log.info("stopping: the mail in hand was not sent and stays queued (%s)", exc)


def next_due_in(now: datetime) -> float:
    """Seconds until the next queued mail is due (at least 0.05; an hour when none is queued)."""
    nxt = (Outbox.select(Outbox.next_attempt_at).where(Outbox.status == "queued")
           .order_by(Outbox.next_attempt_at).first())
    if nxt is None:
        return 3600.0
    return max(0.05, (nxt.next_attempt_at - now).total_seconds())


def due_unsent(now: datetime, limit: int, sent_log) -> list[Outbox]:
    """Due entries that ``sent_log`` does not hold. The log is read first: an id missing from it
    was folded into the outbox before the outbox is read, so the outbox says 'sent'.

    The ids are chosen first and only the chosen rows read whole: until the daemon folds the log,
    the entries it holds are still 'queued' and come first, and reading them whole (drafts, mail
    bytes) for every batch made a backlog drain slower the more of it had been sent."""
    held = sent_log.ids()
    due = (Outbox.select(Outbox.id)
           .where(Outbox.status == "queued", Outbox.next_attempt_at <= now)
           .order_by(Outbox.next_attempt_at, Outbox.id).limit(limit + len(held)).tuples())
    chosen = [ident for (ident,) in due if ident not in held][:limit]
    if not chosen:
        return []
    rows = {row.id: row for row in Outbox.select().where(Outbox.id.in_(chosen), Outbox.status == "queued")}
    return [rows[ident] for ident in chosen if ident in rows]


def _drain_holding_rows(send, now, cfg, limit, result, on_failed, stop) -> None:
    db = Outbox._meta.database
    for _ in range(limit):
        if stop is not None and stop.is_set():
            return  # nothing is claimed: the rest stays due for whoever sends next
        with db.atomic():
            # walk the (status, next_attempt_at, id) index: when a backlog grew faster than the
            # statistics, the planner would sort the whole queue for every mail it sends;
            # synchronous_commit: see db.lazy_commits. (Two settings, one round trip.)
            db.execute_sql("SET LOCAL enable_sort = off; SET LOCAL synchronous_commit = off")
            entries = _lock_next_due(now, 1)
            if not entries:
                return
            if send(entries[0], now, cfg, result, on_failed, record_sent):
                continue
        with db.atomic():  # the server is down: what is due waits too (rows another daemon holds excepted)
            _postpone(_lock_next_due(now, limit), now + backoff(1, cfg), result)
        return


def _lock_next_due(now: datetime, limit: int) -> list[Outbox]:
    """The next ``limit`` due entries no other daemon holds, locked until the transaction ends.
    Written by hand: peewee built this query afresh for every mail sent, 0.3 ms of CPU (0.67 ->
    0.35 ms a mail with the SET LOCALs, PostgreSQL on 127.0.0.1, 3,000 queued drafts)."""
    stamp = _stamp(now)
    return fetch_models(Outbox, _NEXT_DUE_SQL, (stamp, stamp, limit))


_NEXT_DUE_SQL = ('SELECT * FROM "outbox" WHERE "status" = \'queued\' AND "next_attempt_at" <= ? '
                 'AND ("claimed_until" IS NULL OR "claimed_until" < ?) '
                 'ORDER BY "next_attempt_at", "id" LIMIT ? FOR UPDATE SKIP LOCKED')


def _send_one(transport, entry, now, cfg, result, on_failed, mark_sent, *, compose=None) -> bool:
    """Send one entry and record the result; False when the server is down (no use going on)."""
    if entry.draft is not None and compose is None:
        raise RuntimeError(f"outbox {entry.id} is a draft and this drain was given no compose")
    try:
        raw = bytes(entry.raw) if entry.draft is None else compose(entry)
    except Exception as exc:  # a template or a value the renderer rejects: sending it again cannot help
        log.exception("outbox %s (%s, Message-ID <%s>) cannot be written", entry.id, entry.kind, entry.message_id)
        _record_failure(entry, f"cannot be written: {type(exc).__name__}: {exc}", now, cfg, permanent=True,
                        result=result, on_failed=on_failed)
        return True
    try:
        transport.send(entry.mail_from, list(entry.recipients), raw)
    except DeliveryAborted:
        raise  # not an attempt: the drain gives the entry back as it was
    except TemporaryDeliveryError as exc:
        FAILING.failed(now, str(exc))
        _record_failure(entry, str(exc), now, cfg, permanent=False, result=result, on_failed=on_failed)
        return not exc.server_down
    except PermanentDeliveryError as exc:
        _record_failure(entry, str(exc), now, cfg, permanent=True, result=result, on_failed=on_failed)
    else:
        mark_sent(entry.id, now)
        if FAILING.worked():  # the server takes mail again: the admin's alarms go first, not at their back-off
            Outbox.update(next_attempt_at=now).where(Outbox.status == "queued", Outbox.kind.in_(KEEP_TRYING),
                                                     Outbox.next_attempt_at > now).execute()
        result.sent += 1
        log.info("outbox %s sent: %s to %s (Message-ID <%s>, ticket %s)", entry.id, entry.kind,
                 ", ".join(entry.recipients), entry.message_id, entry.ticket_id)
    return True


def record_sent(outbox_id: int, at: datetime) -> None:
    """The entry was accepted by the mail server (a second record of the same entry does nothing)."""
    run(_SENT_SQL, (_stamp(at), outbox_id))


_SENT_SQL = ('UPDATE "outbox" SET "status" = \'sent\', "sent_at" = ?, "attempts" = "attempts" + 1, '
             '"claimed_by" = NULL, "claimed_until" = NULL, "last_error" = NULL '
             'WHERE "id" = ? AND "status" = \'queued\'')


def _postpone(entries, when: datetime, result: DrainResult) -> None:
    """Not tried this time: give them back, due again at ``when``, without spending an attempt."""
    if entries:
        Outbox.update(next_attempt_at=when, claimed_by=None, claimed_until=None).where(
            Outbox.id.in_([e.id for e in entries])).execute()
        result.postponed += len(entries)


def _record_failure(entry, error, now, cfg, *, permanent, result, on_failed):
    attempts = entry.attempts + 1
    final = permanent or (attempts >= cfg.max_attempts and entry.kind not in KEEP_TRYING)
    fields = dict(attempts=attempts, last_error=error[:2000], claimed_by=None, claimed_until=None)
    if final:
        fields["status"] = "failed"
    else:
        fields["next_attempt_at"] = now + backoff(attempts, cfg)
    Outbox.update(**fields).where(Outbox.id == entry.id).execute()
    if final:
        log.error("outbox %s failed for good after %d attempt(s): %s to %s: %s", entry.id, attempts,
                  entry.kind, ", ".join(entry.recipients), error)
        result.failed.append(entry.id)
        if on_failed:
            on_failed(Outbox.get_by_id(entry.id))
    else:
        log.warning("outbox %s attempt %d failed, retrying at %s: %s", entry.id, attempts,
                    fields["next_attempt_at"].isoformat(timespec="seconds"), error)
        result.retried += 1


def retry(selector: str, now: datetime) -> int:
    """``mailticket outbox --retry ID|all``: put failed (or waiting) entries back in the queue now."""
    q = Outbox.update(status="queued", next_attempt_at=now, claimed_by=None, claimed_until=None,
                      attempts=0, admin_told=False, admin_alert=None)
    if selector == "all":
        return q.where(Outbox.status.in_(["failed", "queued"])).execute()
    try:
        ident = int(selector)
    except ValueError:
        raise ValueError(f"{selector!r} is neither an outbox id nor 'all'") from None
    n = q.where(Outbox.id == ident, Outbox.status.in_(["failed", "queued"])).execute()
    if not n:
        raise LookupError(f"outbox entry {ident} does not exist or was already sent")
    return n


def oldest_queued_age(now: datetime) -> timedelta | None:
    row = Outbox.select(pw.fn.MIN(Outbox.created_at)).where(Outbox.status == "queued").scalar()
    if row is None:
        return None
    from ..models import AwareDateTimeField
    return now - AwareDateTimeField().python_value(row)
