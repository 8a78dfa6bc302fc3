"""A full disk, a locked database, an unreachable or refusing mail server: a clear message,
retries with back-off in the daemon, and no mail lost."""

import subprocess

from mailticket import db
from mailticket.config import load_config
from mailticket.models import InboundMail, Ticket
from tests.harness import DaemonThread, make_mail, run_cli, wait_until, write_config


def test_a_full_disk_loses_no_mail(tmp_path, tiny_disk, mailbox_user, smtp_sink, caplog):
    dovecot, user = mailbox_user.server, mailbox_user.name
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, db_url=f"sqlite:///{tiny_disk / 'mt.db'}",
                       extra={"service": {"data_dir": str(tiny_disk / "data")}, "imap": {"batch_size": 5}})
    body = "x" * 60_000 + "\n"
    for i in range(30):  # about 2 MB of mail for a 1 MB disk
        dovecot.append(user, "INBOX", make_mail(sender=f"u{i}@customer.example", subject=f"Big {i}",
                                                message_id=f"<big{i}@customer.example>", body=body))
    with DaemonThread(cfg) as d:
        wait_until(lambda: "full" in caplog.text, timeout=30, what="the disk to fill up")
        processed_while_full = dovecot.folder_count(user, "Processed")
        assert processed_while_full < 30
        assert dovecot.folder_count(user, "INBOX") + processed_while_full == 30, "nothing lost while full"
        assert d.thread.is_alive(), "the daemon keeps running"
        subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)  # the admin frees space
        wait_until(lambda: dovecot.folder_count(user, "Processed") == 30, timeout=90, interval=0.5,
                   what="every mail processed after space was freed")
    db.connect(load_config(cfg).database.url)
    assert Ticket.select().count() == 30
    assert InboundMail.select().where(InboundMail.state != "processed").count() == 0
    assert "database" in caplog.text and "retrying in" in caplog.text


def test_a_locked_database_is_retried_not_fatal(tmp_path, mailbox_user, smtp_sink):
    """Another process holds SQLite's write lock for a while; the daemon waits and goes on."""
    import sqlite3
    import threading
    dovecot, user = mailbox_user.server, mailbox_user.name
    cfg_path = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    url = load_config(cfg_path).database.url
    db.connect(url)
    dovecot.append(user, "INBOX", make_mail(message_id="<locked@customer.example>"))
    locker = sqlite3.connect(url[len("sqlite:///"):], timeout=1, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    threading.Timer(3.0, locker.rollback).start()
    with DaemonThread(cfg_path):
        wait_until(lambda: dovecot.folder_count(user, "Processed") == 1, timeout=60, what="processed after the lock")
    assert Ticket.select().count() == 1


def test_unreachable_imap_server_is_named_and_retried(tmp_path, smtp_sink, caplog):
    from tests.servers.system import free_port
    cfg_path = write_config(tmp_path, sink=smtp_sink, extra={"imap": {
        "host": "127.0.0.1", "port": free_port(), "security": "none", "username": "u", "password": "p"}})
    with DaemonThread(cfg_path) as d:
        wait_until(lambda: caplog.text.count("mailbox failed") >= 2, timeout=20, what="two failed attempts")
        assert d.thread.is_alive()
    assert "cannot connect" in caplog.text and "retrying in" in caplog.text
    r = run_cli("poll", "--once", config=cfg_path)
    assert r.returncode == 5 and "127.0.0.1" in r.stderr


def test_wrong_imap_password_is_named_and_never_logged(tmp_path, mailbox_user, smtp_sink, caplog):
    cfg_path = write_config(tmp_path, user=mailbox_user, sink=smtp_sink,
                            extra={"imap": {"password": "wrong-secret-4711"}})
    r = run_cli("poll", "--once", config=cfg_path)
    assert r.returncode == 5
    assert f"login as {mailbox_user.name} refused" in r.stderr
    assert "wrong-secret-4711" not in r.stderr + r.stdout


def test_unreadable_config_is_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[service\nname = 1\n")
    r = run_cli("check-config", config=bad)
    assert r.returncode == 3 and str(bad) in r.stderr and "not valid TOML" in r.stderr
    r = run_cli("check-config", config=tmp_path / "missing.toml")
    assert r.returncode == 3 and "missing.toml" in r.stderr and "no such file" in r.stderr
