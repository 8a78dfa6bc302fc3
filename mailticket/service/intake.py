"""Bring mail in: fetch from the IMAP folder, commit the raw bytes, process, then move it on the server.

The order is what makes it safe: raw committed → processed and its mails queued, committed →
only then moved out of the folder. A crash anywhere repeats at most a step that changes nothing.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..desk import pipeline
from ..db import insert_or_ignore, is_postgres, run, write_transaction
from ..models import InboundMail, KeyValue

log = logging.getLogger("mailticket.intake")

CLAIM_FOR = timedelta(minutes=2)  # a dead daemon's claims run out after this


@dataclass
class CycleResult:
    fetched: int = 0
    outcomes: list = field(default_factory=list)
    moved: int = 0


def store_batch(mails, source: str, now: datetime) -> None:
    """Commit a batch of fetched mails at once (group commit); each (UIDVALIDITY, UID) once."""
    if not mails:
        return
    db = InboundMail._meta.database
    sql = insert_or_ignore(_STORE)
    at, blob = InboundMail.received_at.db_value(now), InboundMail.raw.db_value
    with db.atomic():
        for m in mails:
            run(sql, (source, m.uidvalidity, m.uid, blob(m.raw), len(m.raw), at, "received", False, 0))


# Written by hand: peewee built this INSERT afresh for every mail fetched (bench/ingest.py).
_STORE = ('"inbound_mail" ("source", "uidvalidity", "uid", "raw", "size", "received_at", "state", "moved",'
          ' "attempts") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')


def claim_pending(worker: str, now: datetime, limit: int = 50, claim_for: timedelta = CLAIM_FOR) -> list[InboundMail]:
    """Stored mails waiting to be processed; with several daemons, each mail goes to one. A claim
    only shares out the work: a dead daemon's claims run out after ``claim_for``, and
    ``pipeline.process_one`` holds the mail's row, so even an expired claim never processes it twice."""
    db = InboundMail._meta.database
    q = (InboundMail.select(InboundMail.id)
         .where(InboundMail.state == "received",
                InboundMail.claimed_until.is_null() | (InboundMail.claimed_until < now)
                | (InboundMail.claimed_by == worker))  # its own, left by an error: take them again
         .order_by(InboundMail.id).limit(limit))
    with write_transaction(db):
        if is_postgres(db):
            q = q.for_update("FOR UPDATE SKIP LOCKED")
        ids = [r.id for r in q]
        if not ids:
            return []
        InboundMail.update(claimed_by=worker, claimed_until=now + claim_for,
                           attempts=InboundMail.attempts + 1).where(InboundMail.id.in_(ids)).execute()
    return list(InboundMail.select().where(InboundMail.id.in_(ids), InboundMail.claimed_by == worker)
                .order_by(InboundMail.id))


def process_pending(desk, worker: str, *, stop=None, limit: int = 50) -> list:
    """Process what is stored and unclaimed, ``limit`` mails to a transaction (group commit)."""
    outcomes = []
    claim_for = desk.config.database.lease_ttl
    while True:
        rows = claim_pending(worker, desk.clock.now(), limit, claim_for)
        if not rows:
            return outcomes
        outcomes += pipeline.process_batch(desk, rows, stop=stop)
        if stop is not None and stop.is_set():
            # give the rest back at once, so a restart (or another daemon) takes them without waiting
            InboundMail.update(claimed_by=None, claimed_until=None).where(
                InboundMail.claimed_by == worker, InboundMail.state == "received").execute()
            return outcomes


def imap_cycle(desk, source, worker: str, *, stop=None, on_batch=None, still_ours=None) -> CycleResult:
    """One look at the folder: fetch what is new, store, process, move what is finished.
    ``on_batch(done, total)`` is called after each batch (the daemon tells systemd it is alive).
    ``still_ours()`` is asked before each fetch and move (renewing the folder lease); False ends
    the cycle, so that a daemon whose lease ran out leaves the folder to the new holder.

    The server's side of a backlog overlaps the desk's: one thread sends this cycle's IMAP
    commands, one at a time and in order, so the next batch is fetched and the last one moved
    while this one is processed (the daemon waited on FETCH and MOVE a tenth of its time,
    bench/RESULTS.md). A batch is still moved only after its commit, and marked moved only
    after the server said so."""
    result = CycleResult()
    size = source.cfg.batch_size
    ours = still_ours or (lambda: True)
    uids = source.list_uids()
    known = _stored_uids(source.source, source.uidvalidity, uids)
    new = [u for u in uids if u not in known]
    batches = [new[i:i + size] for i in range(0, len(new), size)]
    server = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap")
    try:
        fetching = server.submit(source.fetch, batches[0]) if batches else None
        moving = None
        for n, batch in enumerate(batches):
            if stop is not None and stop.is_set():
                break
            fetched = fetching.result()
            more = n + 1 < len(batches)
            lease_lost = more and not ours()  # asked before the next fetch
            fetching = server.submit(source.fetch, batches[n + 1]) if more and not lease_lost else None
            store_batch(fetched, source.source, desk.clock.now())
            result.fetched += len(fetched)
            result.outcomes += process_pending(desk, worker, stop=stop)
            result.moved += _moved(moving)
            moving = None
            if not ours():
                return result
            plan = _finished(source, batch)  # the rest at the end of the cycle
            moving = (server.submit(_move, source, plan), plan)
            if on_batch is not None:
                on_batch(min((n + 1) * size, len(new)), len(new))
            if lease_lost:
                result.moved += _moved(moving)
                return result
        result.moved += _moved(moving)
    finally:
        server.shutdown(wait=True, cancel_futures=True)
    result.outcomes += process_pending(desk, worker, stop=stop)
    if not ours():
        return result
    result.moved += move_finished(source, uids)
    mark_fetch_ok(desk.clock.now())
    return result


def _stored_uids(source: str, uidvalidity: int, uids: list[int]) -> set[int]:
    known = set()
    for i in range(0, len(uids), 900):
        chunk = uids[i:i + 900]
        known |= {r.uid for r in InboundMail.select(InboundMail.uid).where(
            InboundMail.source == source, InboundMail.uidvalidity == uidvalidity, InboundMail.uid.in_(chunk))}
    return known


def move_finished(source, uids_in_folder: list[int]) -> int:
    """Move every finished mail still in the folder: quarantined ones to the quarantine folder, spam to
    the spam folder."""
    plan = _finished(source, uids_in_folder)
    _move(source, plan)
    return _mark_moved(plan)


def _finished(source, uids_in_folder: list[int]) -> list[tuple[str, list]]:
    """The finished, unmoved rows among these UIDs, by the folder each goes to."""
    cfg, rows = source.cfg, []
    for i in range(0, len(uids_in_folder), 900):
        chunk = uids_in_folder[i:i + 900]
        rows += list(InboundMail.select(InboundMail.id, InboundMail.uid, InboundMail.state).where(
            InboundMail.source == source.source, InboundMail.uidvalidity == source.uidvalidity,
            InboundMail.uid.in_(chunk), InboundMail.state != "received", InboundMail.moved == False))  # noqa: E712
    plan = []
    for folder, states in ((cfg.quarantine_folder, {"quarantined"}), (cfg.spam_folder, {"spam"}),
                           (cfg.processed_folder, {"processed", "duplicate", "dropped"})):
        batch = [r for r in rows if r.state in states]
        if batch:
            plan.append((folder, batch))
    return plan


def _move(source, plan: list[tuple[str, list]]) -> None:
    for folder, rows in plan:
        source.move([r.uid for r in rows], folder)


def _mark_moved(plan: list[tuple[str, list]]) -> int:
    ids = [r.id for _, rows in plan for r in rows]
    if ids:
        InboundMail.update(moved=True).where(InboundMail.id.in_(ids)).execute()
    return len(ids)


def _moved(moving) -> int:
    """Wait for a move handed to the cycle's IMAP thread (its MailboxError is raised here), then
    mark its rows moved."""
    if moving is None:
        return 0
    future, plan = moving
    future.result()
    return _mark_moved(plan)


def mark_fetch_ok(now: datetime) -> None:
    KeyValue.insert(key="last_fetch_ok", value=now.isoformat(), at=now).on_conflict(
        conflict_target=[KeyValue.key], update={KeyValue.value: now.isoformat(), KeyValue.at: now}).execute()


def record_error(key: str, message: str, now: datetime) -> None:
    KeyValue.insert(key=key, value=message[:2000], at=now).on_conflict(
        conflict_target=[KeyValue.key], update={KeyValue.value: message[:2000], KeyValue.at: now}).execute()


def release_all_claims() -> None:
    """At start of the only daemon (SQLite): claims left by a killed predecessor are void."""
    from ..models import Outbox
    InboundMail.update(claimed_by=None, claimed_until=None).where(InboundMail.claimed_by.is_null(False)).execute()
    Outbox.update(claimed_by=None, claimed_until=None).where(Outbox.claimed_by.is_null(False)).execute()
