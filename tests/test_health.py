"""`mailticket health`: exit 0 and "OK" when all is well; otherwise non-zero and one line per problem."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mailticket import db

from mailticket.service import intake

from mailticket.desk import pipeline
from mailticket.config import load_config
from mailticket.service.health import check_health
from mailticket.models import InboundMail, Outbox
from tests.harness import make_mail, run_cli, write_config

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
LIMITS = {"max_fetch_age": timedelta(minutes=10), "max_queue_age": timedelta(minutes=30)}
IMAP = {"imap": {"host": "imap.example.com", "port": 993, "security": "ssl", "username": "support@example.com",
                 "password_env": "UNUSED_BY_HEALTH"}}


@pytest.fixture
def config(tmp_path, db_url):
    path = write_config(tmp_path, db_url=db_url, extra=IMAP)
    cfg = load_config(path)
    db.connect(cfg.database.url)
    return cfg


def problems(cfg, now=NOW):
    return check_health(cfg, now, **LIMITS)


def queue_mail(created: datetime, status="queued", error=None, attempts=0) -> Outbox:
    return Outbox.create(kind="acknowledgement", message_id=f"mt.{created.timestamp()}.{status}@example.com",
                         mail_from="support@example.com", recipients=["anna@customer.example"],
                         rcpt_key="anna@customer.example", raw=b"Subject: x\r\n\r\nx\r\n", created_at=created,
                         next_attempt_at=created, status=status, last_error=error, attempts=attempts)


def test_all_well_is_no_problem(config):
    intake.mark_fetch_ok(NOW - timedelta(minutes=1))
    queue_mail(NOW - timedelta(minutes=2))  # young queued mail is normal
    queue_mail(NOW - timedelta(hours=5), status="sent")
    assert problems(config) == []


def test_never_fetched(config):
    intake.record_error("last_mailbox_error", "IMAP imap.example.com:993: login as support refused", NOW)
    assert problems(config) == ["no successful fetch from imap.example.com yet "
                                "(last error: IMAP imap.example.com:993: login as support refused)"]


def test_no_successful_fetch_for_too_long(config):
    intake.mark_fetch_ok(NOW - timedelta(minutes=25))
    intake.record_error("last_mailbox_error", "IMAP imap.example.com:993: cannot connect", NOW)
    [line] = problems(config)
    assert line.startswith("no successful fetch from imap.example.com for 25m (limit 10m)")
    assert line.endswith("last error: IMAP imap.example.com:993: cannot connect")


def test_the_fetch_limit_is_the_one_given(config):
    intake.mark_fetch_ok(NOW - timedelta(minutes=25))
    assert check_health(config, NOW, max_fetch_age=timedelta(hours=1), max_queue_age=timedelta(hours=1)) == []


def test_mail_in_quarantine(config):
    intake.mark_fetch_ok(NOW)
    for i in range(2):
        row = pipeline.store_raw(make_mail(message_id=f"<q{i}@x>"), source="imap:INBOX", now=NOW)
        InboundMail.update(state="quarantined", reason="no sender").where(InboundMail.id == row.id).execute()
    assert problems(config) == ["2 mail(s) in quarantine (see `mailticket quarantine`)"]
    InboundMail.update(alert="held").where(InboundMail.id == row.id).execute()  # past the day's alerts
    assert problems(config) == ["2 mail(s) in quarantine (see `mailticket quarantine`); the admin's next digest "
                                "lists 1 of them"]


def test_stored_mail_left_unprocessed(config):
    intake.mark_fetch_ok(NOW)
    pipeline.store_raw(make_mail(), source="imap:INBOX", now=NOW - timedelta(hours=1))
    assert problems(config) == ["1 stored mail(s) not processed for over 10m"]


def test_outgoing_mail_failed(config):
    intake.mark_fetch_ok(NOW)
    queue_mail(NOW - timedelta(minutes=3), status="failed", error="550 5.1.1 no such user")
    assert problems(config) == ["1 outgoing mail(s) failed (see `mailticket outbox`, retry with --retry)"]


def test_outgoing_mail_too_old(config):
    intake.mark_fetch_ok(NOW)
    queue_mail(NOW - timedelta(minutes=45), error="smtp.example.com:587: Connection refused", attempts=4)
    [line] = problems(config)
    assert line.startswith("outgoing mail waiting for 45m (limit 30m")
    assert "Connection refused" in line


def test_database_unreachable(tmp_path):
    path = write_config(tmp_path, db_url="postgresql://mailticket:Db-Secret-99@127.0.0.1:1/none", extra=IMAP)
    [line] = problems(load_config(path))
    assert line.startswith("database unreachable: postgresql://mailticket:***@127.0.0.1:1/none")
    assert "Db-Secret-99" not in line


def test_several_problems_one_line_each(config):
    intake.mark_fetch_ok(NOW - timedelta(hours=2))
    row = pipeline.store_raw(make_mail(), source="imap:INBOX", now=NOW)
    InboundMail.update(state="quarantined", reason="x").where(InboundMail.id == row.id).execute()
    queue_mail(NOW - timedelta(minutes=1), status="failed")
    queue_mail(NOW - timedelta(hours=1))
    lines = problems(config)
    assert len(lines) == 4
    assert [ln.split(" ")[0:2] for ln in lines] == [["no", "successful"], ["1", "mail(s)"], ["1", "outgoing"],
                                                    ["outgoing", "mail"]]


# ---------------------------------------------------------------- the command

def test_cli_ok_exits_0(tmp_path):
    path = write_config(tmp_path, extra=IMAP)
    db.connect(load_config(path).database.url)
    intake.mark_fetch_ok(datetime.now(timezone.utc))
    done = run_cli("health", config=path)
    assert (done.returncode, done.stdout) == (0, "OK\n")


def test_cli_problem_exits_1_with_one_line_per_problem(tmp_path):
    path = write_config(tmp_path, extra=IMAP)
    db.connect(load_config(path).database.url)
    intake.mark_fetch_ok(datetime.now(timezone.utc) - timedelta(minutes=20))
    queue_mail(datetime.now(timezone.utc), status="failed")
    done = run_cli("health", config=path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("no successful fetch") and "outgoing" in lines[1]
    assert run_cli("health", "--max-fetch-age", "1h", config=path).stdout.splitlines() == lines[1:]


def test_cli_database_unreachable_exits_1(tmp_path):
    path = write_config(tmp_path, db_url="postgresql://mailticket@127.0.0.1:1/none", extra=IMAP)
    done = run_cli("health", config=path)
    assert done.returncode == 1 and done.stdout.startswith("database unreachable: ")


def test_cli_bad_duration_is_a_usage_error(tmp_path):
    path = write_config(tmp_path, extra=IMAP)
    done = run_cli("health", "--max-fetch-age", "soon", config=path)
    assert done.returncode == 2 and "soon" in done.stderr


def test_cli_bad_config_exits_3(tmp_path):
    done = run_cli("health", config=tmp_path / "missing.toml")
    assert done.returncode == 3 and "missing.toml" in done.stderr
