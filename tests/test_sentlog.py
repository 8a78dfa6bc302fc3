"""The sent log beside a SQLite database: what the sender thread sent, folded into the outbox by
the main thread; nothing sent twice, also across a crash at any point of a fold."""

from datetime import datetime, timedelta, timezone

from mailticket import db

from mailticket.outbound import outbox
from mailticket.models import Outbox
from mailticket.outbound.sentlog import SentLog
from tests.harness import DaemonThread, wait_until, write_config

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def _queued(n: int, at: datetime = NOW) -> list[Outbox]:
    return [Outbox.create(kind="acknowledgement", message_id=f"mt.{i}@example.com", mail_from="support@example.com",
                          recipients=[f"r{i}@x.example"], rcpt_key=f"r{i}@x.example", raw=b"Subject: x\r\n\r\nx\r\n",
                          created_at=at, next_attempt_at=at) for i in range(n)]


def test_fold_marks_the_logged_entries_sent_and_empties_the_log(tmp_path):
    db.connect(f"sqlite:///{tmp_path / 'm.db'}")
    a, b, c = _queued(3)
    log = SentLog(tmp_path / "m.db.sent")
    log.record(a.id, NOW + timedelta(seconds=1))
    log.record(c.id, NOW + timedelta(seconds=2))
    assert [e.id for e in outbox.due_unsent(NOW, 10, log)] == [b.id]
    assert log.fold() == 2
    got = {o.id: (o.status, o.sent_at, o.attempts) for o in Outbox.select()}
    assert got == {a.id: ("sent", NOW + timedelta(seconds=1), 1), b.id: ("queued", None, 0),
                   c.id: ("sent", NOW + timedelta(seconds=2), 1)}
    assert log.pending() == {} and log.fold() == 0


def test_due_unsent_skips_what_the_log_holds_and_keeps_the_queue_order(tmp_path):
    """Until the daemon folds, the logged entries are still 'queued' and first in line: a batch is
    the next ``limit`` entries the log does not hold, in the order they are due."""
    db.connect(f"sqlite:///{tmp_path / 'm.db'}")
    entries = _queued(10)
    later = entries[1]
    Outbox.update(next_attempt_at=NOW + timedelta(seconds=-1)).where(Outbox.id == entries[9].id).execute()
    Outbox.update(next_attempt_at=NOW + timedelta(minutes=5)).where(Outbox.id == later.id).execute()
    log = SentLog(tmp_path / "m.db.sent")
    for e in (entries[0], entries[2], entries[3], entries[5], entries[9]):
        log.record(e.id, NOW)
    assert log.ids() == {entries[i].id for i in (0, 2, 3, 5, 9)}
    got = outbox.due_unsent(NOW, 3, log)
    assert [e.id for e in got] == [entries[4].id, entries[6].id, entries[7].id]
    assert all(bytes(e.raw) == b"Subject: x\r\n\r\nx\r\n" and e.recipients for e in got), "whole rows"
    assert [e.id for e in outbox.due_unsent(NOW, 10, log)] == [entries[i].id for i in (4, 6, 7, 8)]
    assert [e.id for e in outbox.due_unsent(NOW + timedelta(minutes=5), 10, log)][-1] == later.id


def test_a_fold_repeated_after_a_crash_changes_nothing(tmp_path):
    """Killed between the outbox commit and the log cleanup: the next fold finds the same records."""
    db.connect(f"sqlite:///{tmp_path / 'm.db'}")
    (a,) = _queued(1)
    log = SentLog(tmp_path / "m.db.sent")
    log.record(a.id, NOW)
    log.fold()
    log.record(a.id, NOW)  # as if the cleanup had not happened
    assert log.fold() == 1
    row = Outbox.get_by_id(a.id)
    assert (row.status, row.attempts) == ("sent", 1)


def test_what_a_killed_daemon_logged_is_folded_at_start_and_never_sent_again(tmp_path, mailbox_user, smtp_sink):
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    db.connect(f"sqlite:///{tmp_path / 'mailticket.db'}")
    sent_before_kill, still_queued = _queued(2, at=datetime.now(timezone.utc))
    SentLog(tmp_path / "mailticket.db.sent").record(sent_before_kill.id, NOW)
    with DaemonThread(cfg):
        wait_until(lambda: len(smtp_sink.received) == 1, what="the one unsent entry sent")
        wait_until(lambda: Outbox.select().where(Outbox.status == "sent").count() == 2, what="both marked sent")
    assert [r.rcpt_tos for r in smtp_sink.received] == [list(still_queued.recipients)]


def test_an_unusable_log_file_is_a_database_failure_that_names_it(tmp_path):
    import peewee as pw
    import pytest
    (tmp_path / "m.db.sent").mkdir()  # a folder where the file should be
    with pytest.raises(pw.OperationalError, match=r"sent log .*m\.db\.sent: unable to open database file"):
        SentLog.beside(str(tmp_path / "m.db"))
