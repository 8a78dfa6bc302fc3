"""Storage on both backends (SQLite file, fresh PostgreSQL database): schema and migrations made by
the program, types that survive a round trip, unique keys, and the claims and locks that let
several workers share one database without doing anything twice."""

import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import peewee as pw
import pytest

from mailticket import db

from mailticket.service import intake

from mailticket.service import lease

from mailticket.outbound import outbox

from mailticket.desk import pipeline
from mailticket.clock import FakeClock
from mailticket.config import OutboxConfig, load_config
from mailticket.errors import ConfigError
from mailticket.models import (ALL_MODELS, Event, InboundMail, MessageRef, Outbox, SchemaMigration, Ticket,
                               database_proxy)
from tests.harness import fail_attachment_fsyncs, mail_with_attachment, make_mail, write_config
from tests.servers.system import free_port

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def _in_threads(n: int, work) -> list:
    """Run work(i) in n threads at once (each with its own connection); return their results."""
    start = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            start.wait()
            results[i] = work(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            database_proxy.obj.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def _ticket(**kw) -> Ticket:
    return Ticket.create(requester_address="anna@customer.example", created_at=T0, updated_at=T0, **kw)


def _stored(n: int) -> list[int]:
    InboundMail.insert_many([dict(source="imap:INBOX", uidvalidity=7, uid=i, raw=b"x", received_at=T0)
                             for i in range(1, n + 1)]).execute()
    return [r.id for r in InboundMail.select(InboundMail.id)]


def _queued(n: int) -> list[str]:
    Outbox.insert_many([dict(kind="acknowledgement", message_id=f"out-{i}@example.com", mail_from="b@example.com",
                             recipients=[f"user{i}@customer.example"], rcpt_key=f"user{i}@customer.example",
                             raw=b"mail", created_at=T0, next_attempt_at=T0) for i in range(n)]).execute()
    return [f"out-{i}@example.com" for i in range(n)]


# ---------------------------------------------------------------- schema and migrations

def test_connect_creates_the_schema_and_records_the_migrations(db_url):
    database = db.connect(db_url)
    tables = set(database.get_tables())
    assert {m._meta.table_name for m in ALL_MODELS} <= tables
    assert [m.name for m in SchemaMigration.select().order_by(SchemaMigration.name)] == [n for n, _ in db.MIGRATIONS]
    assert db.pending_migrations(database) == []


def test_connecting_again_applies_nothing_and_keeps_the_data(db_url):
    db.connect(db_url)
    _ticket(subject="kept")
    database = db.connect(db_url)
    assert db.apply_migrations(database) == []
    assert SchemaMigration.select().count() == len(db.MIGRATIONS)
    assert [t.subject for t in Ticket.select()] == ["kept"]


def test_a_new_migration_is_applied_once_and_recorded(db_url, monkeypatch):
    db.connect(db_url)
    calls = []

    def add_index(database):
        calls.append(1)
        database.execute_sql('CREATE INDEX ticket_subject_test ON ticket (subject)')

    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS + [("0099_test_index", add_index)])
    database = db.connect(db_url)
    db.connect(db_url)
    assert calls == [1]
    assert SchemaMigration.get_or_none(SchemaMigration.name == "0099_test_index") is not None
    assert "ticket_subject_test" in {i.name for i in database.get_indexes("ticket")}


def test_a_failing_migration_names_itself_and_leaves_nothing_behind(db_url, monkeypatch):
    db.connect(db_url)

    def broken(database):
        database.execute_sql("CREATE TABLE half_done (x INTEGER)")
        database.execute_sql("ALTER TABLE no_such_table ADD COLUMN y INTEGER")

    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS + [("0099_broken", broken)])
    with pytest.raises(db.DatabaseError, match="migration 0099_broken failed"):
        db.connect(db_url)
    database = database_proxy.obj
    assert "half_done" not in database.get_tables()
    assert SchemaMigration.get_or_none(SchemaMigration.name == "0099_broken") is None


def test_daemons_starting_together_migrate_an_empty_database_once(db_url):
    database = db.connect(db_url, migrate=False)
    assert db.pending_migrations(database) == [n for n, _ in db.MIGRATIONS]
    applied = _in_threads(3, lambda i: db.apply_migrations(database))
    assert sorted(name for run in applied for name in run) == sorted(n for n, _ in db.MIGRATIONS)
    assert SchemaMigration.select().count() == len(db.MIGRATIONS)


# ---------------------------------------------------------------- SQLite settings

def _pragmas(database):
    return (database.execute_sql("PRAGMA journal_mode").fetchone()[0],
            database.execute_sql("PRAGMA synchronous").fetchone()[0],
            database.execute_sql("PRAGMA foreign_keys").fetchone()[0])


def test_sqlite_runs_in_wal_mode_with_full_sync_on_every_connection(tmp_path):
    path = tmp_path / "sub" / "desk.db"
    database = db.connect(f"sqlite:///{path}")
    assert path.exists()
    assert _pragmas(database) == ("wal", 2, 1)  # synchronous 2 = FULL
    assert _in_threads(1, lambda i: _pragmas(database)) == [("wal", 2, 1)]
    with sqlite3.connect(path) as other:  # WAL is a property of the file, seen by any client
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_sqlite_file_in_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(db.DatabaseError, match=f"cannot create the folder for {blocker}/x/desk.db"):
        db.connect(f"sqlite:///{blocker}/x/desk.db")


# ---------------------------------------------------------------- round trips and unique keys

def test_aware_datetimes_come_back_as_the_same_instant_in_utc(db_url):
    db.connect(db_url)
    stockholm = datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Stockholm"))  # just after the DST switch
    t = _ticket(first_response_due=stockholm, resolved_at=None)
    back = Ticket.get_by_id(t.id)
    assert back.first_response_due == stockholm
    assert back.first_response_due.utcoffset() == timedelta(0)
    assert back.created_at == T0 and back.created_at.tzinfo is not None
    assert back.resolved_at is None
    later = Ticket.select().where(Ticket.first_response_due > datetime(2026, 3, 29, 1, 29, tzinfo=timezone.utc))
    assert [x.id for x in later] == [t.id]


def test_json_blobs_and_big_uids_round_trip(db_url):
    db.connect(db_url)
    t = _ticket()
    data = {"tier": 2, "agents": ["åsa@example.com", "Émile"], "nested": {"none": None, "ok": True}}
    Event.create(ticket=t, at=T0, kind="note", data=data)
    raw = bytes(range(256)) * 3
    InboundMail.create(source="imap:INBOX", uidvalidity=2**40, uid=2**33, raw=raw, received_at=T0)
    assert Event.get().data == data
    row = InboundMail.get()
    assert bytes(row.raw) == raw and (row.uidvalidity, row.uid) == (2**40, 2**33)
    Outbox.create(kind="ack", message_id="m@x", mail_from="b@x", recipients=["a@x", "b@x"], rcpt_key="a@x",
                  raw=b"r", created_at=T0, next_attempt_at=T0)
    assert Outbox.get().recipients == ["a@x", "b@x"]


def test_one_message_id_is_recorded_once(db_url):
    db.connect(db_url)
    t = _ticket()
    MessageRef.create(message_id="same@customer.example", ticket=t, direction="in", at=T0)
    with pytest.raises(pw.IntegrityError):
        with database_proxy.obj.atomic():
            MessageRef.create(message_id="same@customer.example", ticket=t, direction="out", at=T0)
    assert MessageRef.select().count() == 1


def test_one_imap_uid_is_stored_once_per_folder_and_uidvalidity(db_url):
    db.connect(db_url)
    InboundMail.create(source="imap:INBOX", uidvalidity=7, uid=1, raw=b"a", received_at=T0)
    with pytest.raises(pw.IntegrityError):
        with database_proxy.obj.atomic():
            InboundMail.create(source="imap:INBOX", uidvalidity=7, uid=1, raw=b"b", received_at=T0)
    InboundMail.create(source="imap:INBOX", uidvalidity=8, uid=1, raw=b"c", received_at=T0)   # renumbered
    InboundMail.create(source="imap:Other", uidvalidity=7, uid=1, raw=b"d", received_at=T0)   # other folder
    assert sorted(bytes(r.raw) for r in InboundMail.select()) == [b"a", b"c", b"d"]


def test_store_raw_and_store_batch_store_an_imap_uid_once(db_url):
    db.connect(db_url)
    first = pipeline.store_raw(b"one", source="imap:INBOX", now=T0, uidvalidity=7, uid=5)
    again = pipeline.store_raw(b"one", source="imap:INBOX", now=T0, uidvalidity=7, uid=5)
    assert again.id == first.id
    from mailticket.service.mailbox import FetchedMail
    batch = [FetchedMail(7, 5, b"one"), FetchedMail(7, 6, b"two")]
    intake.store_batch(batch, "imap:INBOX", T0)
    intake.store_batch(batch, "imap:INBOX", T0)
    assert sorted(r.uid for r in InboundMail.select()) == [5, 6]
    # without a UID (the listener) each delivery is its own row
    pipeline.store_raw(b"l", source="listener", now=T0)
    pipeline.store_raw(b"l", source="listener", now=T0)
    assert InboundMail.select().where(InboundMail.source == "listener").count() == 2


# ---------------------------------------------------------------- claims: each row to one worker

def test_concurrent_workers_never_claim_the_same_stored_mail(db_url):
    db.connect(db_url)
    ids = _stored(150)

    def worker(i):
        got = []
        while True:
            rows = intake.claim_pending(f"worker-{i}", T0, limit=7)
            if not rows:
                return got
            got += [r.id for r in rows]
            assert all(r.claimed_by == f"worker-{i}" for r in rows)
            InboundMail.update(state="processed").where(InboundMail.id.in_([r.id for r in rows])).execute()
            time.sleep(0.005)  # a worker processes what it claimed: under load one thread could otherwise
            # take every batch while SQLite's busy handler keeps the others asleep

    claimed = _in_threads(4, worker)
    flat = [x for part in claimed for x in part]
    assert len(flat) == len(set(flat)), "a stored mail went to two workers"
    assert sorted(flat) == sorted(ids)
    assert sum(1 for part in claimed if part) >= 2  # the work was shared, not taken by one


def test_concurrent_workers_never_claim_the_same_outbox_entry(db_url):
    db.connect(db_url)
    _queued(150)

    def worker(i):
        got = []
        while batch := outbox.claim_due(T0, 9, f"w{i}"):
            got += [e.id for e in batch]
            Outbox.update(status="sent").where(Outbox.id.in_([e.id for e in batch])).execute()
        return got

    claimed = _in_threads(4, worker)
    flat = [x for part in claimed for x in part]
    assert len(flat) == len(set(flat)) == 150


def test_a_dead_workers_claims_are_taken_over_after_claim_for(db_url):
    db.connect(db_url)
    _stored(3)
    claim_for = timedelta(seconds=30)
    assert len(intake.claim_pending("dead", T0, claim_for=claim_for)) == 3
    assert intake.claim_pending("alive", T0 + claim_for - timedelta(seconds=1), claim_for=claim_for) == []
    taken = intake.claim_pending("alive", T0 + claim_for + timedelta(seconds=1), claim_for=claim_for)
    assert len(taken) == 3 and {r.claimed_by for r in taken} == {"alive"}


class _SlowSink:
    """A transport that records each Message-ID it is given; sending takes a little while."""

    def __init__(self, pause=0.002):
        self.sent, self.pause, self.lock = [], pause, threading.Lock()

    def send(self, mail_from, recipients, raw):
        threading.Event().wait(self.pause)
        with self.lock:
            self.sent.append(recipients[0])

    def close(self):
        pass


def test_concurrent_drains_send_each_entry_once(db_url):
    db.connect(db_url)
    _queued(120)
    sink = _SlowSink()
    cfg = OutboxConfig(max_attempts=3, retry_base=timedelta(seconds=1), retry_max=timedelta(seconds=2))
    results = _in_threads(3, lambda i: outbox.drain(sink, T0, cfg, worker=f"d{i}").sent)
    assert sum(results) == 120
    assert sorted(sink.sent) == sorted(f"user{i}@customer.example" for i in range(120))
    assert Outbox.select().where(Outbox.status == "sent").count() == 120


def test_an_entry_being_sent_is_not_sent_by_another_daemon_whatever_its_clock_says(pg_url):
    """PostgreSQL: the sender holds the row while it sends, so an expired claim changes nothing."""
    db.connect(pg_url)
    _queued(1)
    sending, release = threading.Event(), threading.Event()

    class Blocking:
        def send(self, *args):
            sending.set()
            release.wait(20)

        def close(self):
            pass

    cfg = OutboxConfig(max_attempts=3)
    first = threading.Thread(target=lambda: (outbox.drain(Blocking(), T0, cfg, worker="slow"),
                                             database_proxy.obj.close()))
    first.start()
    try:
        assert sending.wait(20)
        other = _SlowSink()
        far_future = T0 + timedelta(days=1)  # a clock far ahead: every claim looks expired to it
        assert _in_threads(1, lambda i: outbox.drain(other, far_future, cfg, worker="fast").sent) == [0]
        assert other.sent == []
    finally:
        release.set()
        first.join(20)
    assert Outbox.get().status == "sent"


# ---------------------------------------------------------------- processing: each mail once

def _desk(tmp_path, db_url):
    from mailticket.service.wiring import build_desk
    cfg = load_config(write_config(tmp_path, db_url=db_url, listener_port=free_port()))
    db.connect(cfg.database.url)
    return cfg, (lambda: build_desk(cfg, clock=FakeClock(T0)))


def test_two_workers_processing_one_stored_mail_make_one_ticket(tmp_path, db_url):
    cfg, new_desk = _desk(tmp_path, db_url)
    row = pipeline.store_raw(make_mail(message_id="<once@customer.example>", date=T0), source="listener", now=T0)
    desks = [new_desk(), new_desk()]
    outcomes = _in_threads(2, lambda i: pipeline.process_one(desks[i], InboundMail.get_by_id(row.id)))
    assert Ticket.select().count() == 1
    assert sorted(o.reason for o in outcomes) == sorted(["new ticket", pipeline.HANDLED_ELSEWHERE])
    assert {o.ticket for o in outcomes} == {Ticket.get().id}
    assert InboundMail.get_by_id(row.id).state == "processed"
    assert Outbox.select().where(Outbox.kind == "acknowledgement").count() == 1


def test_two_copies_of_one_mail_processed_at_once_make_one_ticket_and_no_quarantine(tmp_path, db_url):
    cfg, new_desk = _desk(tmp_path, db_url)
    raw = make_mail(message_id="<copies@customer.example>", date=T0)
    rows = [pipeline.store_raw(raw, source="listener", now=T0) for _ in range(2)]
    desks = [new_desk(), new_desk()]
    outcomes = _in_threads(2, lambda i: pipeline.process_one(desks[i], InboundMail.get_by_id(rows[i].id)))
    assert Ticket.select().count() == 1
    assert sorted(o.state for o in outcomes) == ["duplicate", "processed"]
    assert sorted(r.state for r in InboundMail.select()) == ["duplicate", "processed"]


def test_a_mail_another_worker_finished_is_not_quarantined_over_it(tmp_path, db_url):
    cfg, new_desk = _desk(tmp_path, db_url)
    row = pipeline.store_raw(b"\r\n\r\n", source="listener", now=T0)
    InboundMail.update(state="processed").where(InboundMail.id == row.id).execute()
    outcome = pipeline.quarantine(new_desk(), row, "broken", T0)
    assert outcome.reason == pipeline.HANDLED_ELSEWHERE
    assert InboundMail.get_by_id(row.id).state == "processed"
    assert Outbox.select().count() == 0  # and the admin is not told about it


# ---------------------------------------------------------------- the folder lease

def test_the_lease_goes_to_one_holder_and_over_to_another_when_it_runs_out(db_url):
    db.connect(db_url)
    ttl = timedelta(seconds=10)
    won = _in_threads(3, lambda i: lease.acquire("imap:INBOX", f"d{i}", T0, ttl))
    assert won.count(True) == 1
    holder = f"d{won.index(True)}"
    other = next(f"d{i}" for i in range(3) if f"d{i}" != holder)
    assert lease.acquire("imap:INBOX", holder, T0 + timedelta(seconds=5), ttl)  # renewed until T0 + 15 s
    assert not lease.acquire("imap:INBOX", other, T0 + timedelta(seconds=14), ttl)
    assert lease.acquire("imap:INBOX", other, T0 + timedelta(seconds=16), ttl)  # the holder died
    assert not lease.acquire("imap:INBOX", holder, T0 + timedelta(seconds=17), ttl)
    lease.release("imap:INBOX", other)
    assert lease.acquire("imap:INBOX", holder, T0 + timedelta(seconds=18), ttl)  # released: at once


@pytest.mark.parametrize("value, problem", [("0s", "outside 1s..1h"), ("2h", "outside 1s..1h"),
                                            ("soon", "soon")])
def test_lease_ttl_is_checked(tmp_path, value, problem):
    path = write_config(tmp_path, listener_port=free_port(), extra={"database": {"lease_ttl": value}})
    with pytest.raises(ConfigError, match=problem) as err:
        load_config(path)
    assert "database.lease_ttl" in str(err.value)


def test_lease_ttl_defaults_to_30s_and_is_read(tmp_path):
    assert load_config(write_config(tmp_path, listener_port=free_port())).database.lease_ttl == timedelta(seconds=30)
    path = write_config(tmp_path, listener_port=free_port(), extra={"database": {"lease_ttl": "5s"}})
    assert load_config(path).database.lease_ttl == timedelta(seconds=5)


# ---------------------------------------------------------------- a locked database, a password in a URL

def test_a_write_waits_for_a_short_lock_held_by_another_connection(tmp_path):
    path = tmp_path / "desk.db"
    db.connect(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO key_value (key, value) VALUES ('held', 'x')")
    timer = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    timer.start()
    try:
        row = pipeline.store_raw(b"mail", source="listener", now=T0)  # busy_timeout: waits, then writes
    finally:
        timer.join()
        holder.close()
    assert InboundMail.get_by_id(row.id).raw == b"mail"


def test_a_database_locked_too_long_is_a_logged_retry_not_a_crash(tmp_path, caplog):
    from mailticket.service.daemon import Daemon
    cfg, new_desk = _desk(tmp_path, None)
    pipeline.store_raw(make_mail(message_id="<locked@customer.example>", date=T0), source="listener", now=T0)
    daemon = Daemon(new_desk(), transport=_SlowSink(), worker="locked-test")
    database_proxy.obj.execute_sql("PRAGMA busy_timeout = 100")  # this connection gives up quickly
    holder = sqlite3.connect(tmp_path / "mailticket.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        daemon.backoff = 0.01
        daemon.loop_once()  # must not raise
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert f"database failed: database sqlite:///{tmp_path / 'mailticket.db'}: database is locked" in caplog.text
    assert Ticket.select().count() == 0
    daemon.loop_once()  # the lock is gone: the mail goes through
    assert Ticket.select().count() == 1


def test_attachments_that_cannot_reach_the_disk_commit_nothing_and_are_retried(tmp_path, monkeypatch, caplog):
    import errno
    import os

    from mailticket.service.daemon import Daemon
    from mailticket.models import Attachment
    cfg, new_desk = _desk(tmp_path, None)
    pipeline.store_raw(mail_with_attachment(b"line 1\nline 2\n"), source="listener", now=T0)
    daemon = Daemon(new_desk(), transport=_SlowSink(), worker="flush-test")
    real = fail_attachment_fsyncs(monkeypatch, errno.EIO, "Input/output error")
    daemon.backoff = 0.01
    daemon.loop_once()  # must not raise
    assert "attachment storage failed: attachment " in caplog.text
    assert "could not be flushed to disk: Input/output error; retrying in" in caplog.text
    assert (Ticket.select().count(), Attachment.select().count()) == (0, 0), "nothing of the batch committed"
    assert [m.state for m in InboundMail.select()] == ["received"]
    monkeypatch.setattr(os, "fsync", real)  # the disk is well again
    daemon.loop_once()
    [stored] = Attachment.select()
    assert (stored.filename, Ticket.select().count()) == ("app.log", 1)
    assert (Path(cfg.service.data_dir) / stored.path).read_bytes() == b"line 1\nline 2\n"


def test_a_password_in_the_database_url_never_reaches_a_message(tmp_path):
    assert db.redact("postgresql://desk:s3cret@db.example/desk") == "postgresql://desk:***@db.example/desk"
    assert db.redact("postgresql://db.example/desk?password=s3cret&sslmode=require") == \
        "postgresql://db.example/desk?password=***&sslmode=require"
    assert db.redact("sqlite:///var/lib/desk.db") == "sqlite:///var/lib/desk.db"
    port = free_port()  # nothing listens there
    with pytest.raises(db.DatabaseError) as err:
        db.connect(f"postgresql://desk:s3cret@127.0.0.1:{port}/desk?connect_timeout=3")
    assert "s3cret" not in str(err.value) and f"desk:***@127.0.0.1:{port}" in str(err.value)
    path = write_config(tmp_path, listener_port=free_port(), extra={"database": {"url": "mysql://desk:s3cret@h/d"}})
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert "s3cret" not in str(bad.value) and "database.url" in str(bad.value)


def test_a_lost_postgresql_connection_is_logged_without_the_password(pg_url, tmp_path, caplog):
    import psycopg2
    from mailticket.service.daemon import Daemon
    url = pg_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@")  # trust auth ignores it
    cfg, new_desk = _desk(tmp_path, url)
    daemon = Daemon(new_desk(), transport=_SlowSink(), worker="pw-test")
    pid = database_proxy.obj.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    admin.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()
    daemon.backoff = 0.01
    daemon.loop_once()
    assert "database failed: database postgresql://postgres:***@" in caplog.text
    assert "s3cret" not in caplog.text
    daemon.loop_once()  # reconnects
    assert "database failed" in caplog.text and daemon.backoff == 1.0


def test_an_existing_database_gets_the_rate_limit_indexes_on_connect(db_url):
    """A database from before 0003 (its old index, the migration not recorded) gets the new ones."""
    database = db.connect(db_url)
    for name in ("outbox_automatic_created_at", "outbox_rcpt_key_automatic_created_at"):
        database.execute_sql(f'DROP INDEX "{name}"')
    database.execute_sql('CREATE INDEX "outbox_rcpt_key_created_at" ON "outbox" ("rcpt_key", "created_at")')
    SchemaMigration.delete().where(SchemaMigration.name == "0003_outbox_rate_indexes").execute()
    assert db.pending_migrations(database) == ["0003_outbox_rate_indexes"]
    database = db.connect(db_url)
    names = {i.name for i in database.get_indexes("outbox")}
    assert {"outbox_automatic_created_at", "outbox_rcpt_key_automatic_created_at"} <= names
    assert "outbox_rcpt_key_created_at" not in names
    assert db.pending_migrations(database) == []
