"""`mailticket backup DIR` while the daemon works, `mailticket restore DIR` into a fresh desk, and the
refusals: a running desk, a damaged or incomplete backup, a desk with data, a used folder."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from mailticket import db
from mailticket.config import load_config
from mailticket.desk import pipeline
from mailticket.models import Attachment, InboundMail, Ticket, database_proxy
from mailticket.service.wiring import build_desk
from tests.harness import DaemonThread, run_cli, start_daemon_process, wait_until, write_config
from tests.servers.dovecot import crlf
from tests.servers.system import free_port

MAILS = 1000


def mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"] = f"User {n} <user{n}@customer.example>", "support@example.com"
    msg["Subject"], msg["Message-ID"] = f"Problem number {n}", make_msgid(domain="customer.example")
    msg.set_content(f"Something is broken, case {n}.")
    if n % 25 == 0:
        msg.add_attachment(f"log of case {n}\n".encode() * 50, maintype="text", subtype="plain",
                           filename=f"case{n}.log")
    return crlf(msg.as_bytes())


def rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def tickets_in(path: Path) -> int:
    try:
        return rows(path, "SELECT COUNT(*) FROM ticket")[0][0]
    except sqlite3.Error:
        return 0


TICKETS = "SELECT id, subject, requester_address, status, priority, created_at FROM ticket ORDER BY id"
MAILS_SQL = "SELECT id, message_id, ticket_id, state, raw FROM inbound_mail ORDER BY id"


@pytest.mark.slow
def test_backup_while_the_daemon_works_restores_into_a_fresh_desk(tmp_path, mailbox_user, smtp_sink):
    original = tmp_path / "desk"
    original.mkdir()
    path = write_config(original, user=mailbox_user, sink=smtp_sink, extra={"imap": {"batch_size": 50}})
    daemon = start_daemon_process(path, log=tmp_path / "daemon.log")
    database = original / "mailticket.db"
    try:
        with mailbox_user.server.client(mailbox_user.name) as imap:
            for i in range(0, MAILS - 100, 100):
                imap.multiappend("INBOX", [mail(n) for n in range(i, i + 100)])
            wait_until(lambda: tickets_in(database) >= 100, timeout=120, what="the daemon at work")
            done = run_cli("backup", tmp_path / "backup", config=path)
            assert done.returncode == 0, done.stderr
            # the last hundred arrive after it: the backup cannot hold every mail, however fast the daemon
            imap.multiappend("INBOX", [mail(n) for n in range(MAILS - 100, MAILS)])
        wait_until(lambda: tickets_in(database) == MAILS, timeout=300, interval=0.5, what="every mail processed")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    backup = tmp_path / "backup"
    manifest = json.loads((backup / "manifest.json").read_text())
    assert 100 <= manifest["counts"]["tickets"] < MAILS and manifest["missing_attachments"] == []
    assert done.stdout.startswith(f"backed up to {backup}: {manifest['counts']['tickets']} ticket(s)")

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    restored_config = write_config(fresh, sink=smtp_sink, listener_port=free_port())
    done = run_cli("restore", backup, config=restored_config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"restored from {backup}: {manifest['counts']['tickets']} ticket(s)")
    restored_db = fresh / "mailticket.db"
    with DaemonThread(restored_config) as restored:  # the restored desk starts
        wait_until(lambda: restored.daemon.ready, what="the restored desk ready")
        # a mail the backup caught stored but not yet processed is processed now: none is lost
        wait_until(lambda: not rows(restored_db, "SELECT 1 FROM inbound_mail WHERE state = 'received'"),
                   timeout=60, what="the mails stored at the backup processed")
    assert rows(restored_db, "PRAGMA integrity_check") == [("ok",)]
    in_backup = rows(backup / "mailticket.db", TICKETS)
    assert len(in_backup) == manifest["counts"]["tickets"]
    assert rows(database, TICKETS)[:len(in_backup)] == in_backup  # as they were at the backup
    backed_up = rows(backup / "mailticket.db", MAILS_SQL)
    pending = [m for m in backed_up if m[3] == "received"]
    restored_tickets = rows(restored_db, TICKETS)
    # each pending mail is a new sender's problem: one ticket more each, after those backed up
    assert restored_tickets[:len(in_backup)] == in_backup
    assert len(restored_tickets) == len(in_backup) + len(pending)
    mails = rows(restored_db, MAILS_SQL)
    assert len(mails) == len(backed_up) == manifest["counts"]["mails"]
    assert [m[0] for m in mails] == [m[0] for m in backed_up]
    assert [m for m in mails if m[0] not in {p[0] for p in pending}] == [m for m in backed_up if m not in pending]
    assert {state for (_, _, _, state, _) in mails} == {"processed"}
    assert {t for (_, _, t, _, _) in mails if t} == {t[0] for t in restored_tickets}  # every ticket has its mail
    for (rel,) in rows(backup / "mailticket.db", "SELECT path FROM attachment"):
        assert (fresh / "data" / rel).read_bytes() == (original / "data" / rel).read_bytes()
    assert all((fresh / "data" / rel).is_file() for (rel,) in rows(restored_db, "SELECT path FROM attachment"))
    assert (fresh / "data" / "secret.key").read_bytes() == (original / "data" / "secret.key").read_bytes()
    sent = rows(restored_db, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'")[0][0]
    assert sent > 0


# ---------------------------------------------------------------- the refusals

class SmallDesk:
    def __init__(self, folder: Path, db_url: str | None = None):
        folder.mkdir(exist_ok=True)
        self.folder = folder
        self.path = write_config(folder, db_url=db_url, listener_port=free_port())
        self.config = load_config(self.path)
        db.connect(self.config.database.url)
        self.desk = build_desk(self.config)

    def mail(self, n: int):
        pipeline.process_one(self.desk, pipeline.store_raw(mail(n), source="test", now=datetime.now(timezone.utc)))


@pytest.fixture
def small(tmp_path, db_url):
    desk = SmallDesk(tmp_path / "desk", db_url)
    for n in (1, 25, 50):
        desk.mail(n)
    database_proxy.obj.close()
    done = run_cli("backup", tmp_path / "backup", config=desk.path)
    assert done.returncode == 0, done.stderr
    return desk, tmp_path / "backup"


def test_restore_refuses_a_running_desk(small):
    desk, backup = small
    with DaemonThread(desk.path) as daemon:
        wait_until(lambda: daemon.daemon.ready, what="ready")
        done = run_cli("restore", backup, "--overwrite", config=desk.path)
    assert done.returncode == 1
    assert "refusing to restore over a running desk: a daemon is running on this desk (process" in done.stderr
    assert "stop it first" in done.stderr


def test_restore_refuses_a_desk_with_data_unless_told(small):
    desk, backup = small
    desk.mail(2)  # after the backup
    database_proxy.obj.close()
    done = run_cli("restore", backup, config=desk.path)
    assert done.returncode == 1 and "this desk already has tickets or mail" in done.stderr
    assert "--overwrite" in done.stderr
    assert Ticket.select().count() == 4
    database_proxy.obj.close()
    done = run_cli("restore", backup, "--overwrite", config=desk.path)
    assert done.returncode == 0, done.stderr
    db.connect(desk.config.database.url)
    assert Ticket.select().count() == 3 and Attachment.select().count() == 2
    for a in Attachment.select():
        assert (desk.config.service.data_dir / a.path).is_file()


@pytest.mark.parametrize("damage", ["attachment", "database", "secret", "manifest"])
def test_restore_refuses_a_damaged_backup(small, tmp_path, damage):
    desk, backup = small
    if damage == "manifest":
        (backup / "manifest.json").unlink()
        expected = "has no manifest.json"
    else:
        target = {"attachment": next((backup / "attachments").rglob("*.*"), None) or
                  next(p for p in (backup / "attachments").rglob("*") if p.is_file()),
                  "database": backup / "mailticket.db" if db.sqlite_path(desk.config.database.url)
                  else backup / "database.pgdump", "secret": backup / "secret.key"}[damage]
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
        expected = f"{target.relative_to(backup).as_posix()} does not match its checksum"
    fresh = SmallDesk(tmp_path / "fresh", None)
    database_proxy.obj.close()
    done = run_cli("restore", backup, config=fresh.path)
    assert done.returncode == 1 and expected in done.stderr, done.stderr
    assert not (fresh.config.service.data_dir / "attachments").exists()


def test_backup_refuses_a_folder_in_use(small):
    desk, backup = small
    done = run_cli("backup", backup, config=desk.path)
    assert done.returncode == 1 and "is not empty" in done.stderr


def test_a_backup_restores_into_a_fresh_desk_of_the_same_kind(small, tmp_path, db_url, request):
    desk, backup = small
    if db_url.startswith("sqlite"):
        target_url = None
    else:
        server = request.getfixturevalue("_postgres_server")
        target_url = server.create_database()

        def drop():
            database_proxy.obj.close()
            server.drop_database(target_url)
        request.addfinalizer(drop)
    fresh = SmallDesk(tmp_path / "fresh", target_url)
    database_proxy.obj.close()
    done = run_cli("restore", backup, config=fresh.path)
    assert done.returncode == 0, done.stderr
    db.connect(fresh.config.database.url)
    assert sorted(t.subject for t in Ticket.select()) == ["Problem number 1", "Problem number 25",
                                                          "Problem number 50"]
    assert InboundMail.select().count() == 3
    assert (fresh.config.service.data_dir / "secret.key").read_bytes() == \
        (desk.config.service.data_dir / "secret.key").read_bytes()
    assert hashlib.sha256((fresh.config.service.data_dir / Attachment.get().path).read_bytes()).hexdigest()


def test_without_pg_dump_postgresql_is_left_to_its_own_tools(tmp_path, pg_url):
    desk = SmallDesk(tmp_path / "desk", pg_url)
    desk.mail(1)
    database_proxy.obj.close()
    done = run_cli("backup", tmp_path / "backup", config=desk.path, env={"PATH": str(tmp_path / "no-tools")})
    assert done.returncode == 1
    assert "the database is PostgreSQL and pg_dump is not on PATH: back it up with PostgreSQL's own tools" \
        in done.stderr
    assert not (tmp_path / "backup").exists()
