"""Retention ([retention], `purge`) and erasure (`erase ADDRESS`) on SQLite and PostgreSQL, through
the real pipeline: mails in, agents' replies, mails out to a maildir, then the CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from mailticket import db
from mailticket.config import load_config
from mailticket.desk import pipeline
from mailticket.models import (ALL_MODELS, Attachment, Erasure, Event, InboundMail, Outbox, Participant, Ticket,
                               database_proxy)
from mailticket.outbound import outbox
from mailticket.service.transport import make_transport
from mailticket.service.wiring import build_desk
from tests.harness import run_cli, write_config

ANNA, ANNA_NAME = "anna@customer.example", "Anna Svensson"
AGENT_AUTH = b"Authentication-Results: mx.example.com; dkim=pass header.d=example.com; dmarc=pass " \
             b"header.from=example.com\r\n"


def mail(sender: str, subject: str, body: str, *, cc: str | None = None, attachment: bytes | None = None,
         auth: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@example.com", subject
    if cc:
        msg["Cc"] = cc
    msg["Message-ID"] = make_msgid(domain="mail.example")
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="log.txt")
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    return AGENT_AUTH + raw if auth else raw


class Desk:
    """The pipeline in-process, its outgoing mail written to the maildir (no [smtp])."""

    def __init__(self, tmp_path: Path, db_url: str, extra: dict | None = None):
        self.path = write_config(tmp_path, db_url=db_url, listener_port=2599, extra=extra)
        self.config = load_config(self.path)
        db.connect(self.config.database.url)
        self.desk = build_desk(self.config)

    def process(self, raw: bytes):
        now = datetime.now(timezone.utc)
        return pipeline.process_one(self.desk, pipeline.store_raw(raw, source="test", now=now))

    def send_all(self) -> None:
        outbox.drain(make_transport(self.config), datetime.now(timezone.utc), self.config.outbox,
                     compose=self.desk.mailer.mail_bytes)

    def report(self) -> dict:
        """The report's figures of every ticket until tomorrow (a fixed period: the same when asked twice)."""
        until = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
        done = run_cli("report", "--until", until, "--format", "json", config=self.path)
        assert done.returncode == 0, done.stderr
        figures = json.loads(done.stdout)
        del figures["period"]["generated"]  # when it was made, not a figure
        return figures


@pytest.fixture
def desk(tmp_path, db_url):
    return Desk(tmp_path, db_url)


def anna_and_bob(desk: Desk) -> tuple[Ticket, Ticket]:
    """Anna's ticket (with a file, an agent's answer naming her, closed) and Bob's with Anna in Cc."""
    first = desk.process(mail(f"{ANNA_NAME} <{ANNA}>", "VPN drops", "My VPN drops every hour.\n\nAnna Svensson",
                              attachment=b"vpn log of anna@customer.example\n"))
    desk.process(mail("Alice <alice@example.com>", f"Re: [SD#{first.ticket}] VPN drops",
                      f"#status closed\nHi {ANNA_NAME}, the VPN profile is renewed.", auth=True))
    second = desk.process(mail("Bob Berg <bob@other.example>", "Shared printer", "The printer is down.",
                               cc=f"{ANNA_NAME} <{ANNA}>"))
    desk.process(mail(f"{ANNA_NAME} <{ANNA}>", f"Re: [SD#{second.ticket}] Shared printer", "Same here. Anna"))
    desk.send_all()
    return Ticket.get_by_id(first.ticket), Ticket.get_by_id(second.ticket)


def everything_stored(desk: Desk, database_files: bool = True) -> list[str]:
    """Every text and blob of every table, every file under the data folder, the database files
    (which SQLite rewrites in place even when nothing changes: left out for "unchanged")."""
    found = []
    for model in ALL_MODELS:
        for row in model.select().tuples():
            found += [bytes(v).decode("utf-8", "replace") if isinstance(v, (bytes, memoryview)) else str(v)
                      for v in row]
    data_dir = desk.config.service.data_dir
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    sqlite = db.sqlite_path(desk.config.database.url)
    if sqlite and database_files:
        files += [p for p in Path(sqlite).parent.glob(Path(sqlite).name + "*") if p.is_file()]
    found += [p.read_bytes().decode("latin-1") for p in files]
    return found


def mentions(texts: list[str], *needles: str) -> list[str]:
    return [t[:120] for t in texts if any(n.lower() in t.lower() for n in needles)]


def test_erase_leaves_no_trace_and_the_figures(desk):
    anna_ticket, bob_ticket = anna_and_bob(desk)
    # a mail of hers the desk could not read: its reason names her, in English and translatable
    broken = desk.process(f"From: {ANNA_NAME} at customer dot example\r\nSubject: VPN\r\n\r\nHelp\r\n".encode())
    assert broken.state == "quarantined"
    [row] = InboundMail.select().where(InboundMail.state == "quarantined")
    assert ANNA_NAME in row.reason and ANNA_NAME in row.reason_msg
    assert Attachment.select().count() == 1 and mentions(everything_stored(desk), ANNA, ANNA_NAME)
    assert [p.address for p in Participant.select().where(Participant.ticket == bob_ticket)] == [ANNA]
    before = desk.report()
    database_proxy.obj.close()  # the CLI is another process; SQLite keeps one writer

    done = run_cli("erase", ANNA, config=desk.path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"anonymised: 2 ticket(s) {anna_ticket.id}, {bob_ticket.id},")

    assert mentions(everything_stored(desk), ANNA, ANNA_NAME) == []
    assert desk.report() == before
    anna_ticket, bob_ticket = Ticket.get_by_id(anna_ticket.id), Ticket.get_by_id(bob_ticket.id)
    assert anna_ticket.requester_address.endswith("@erased.invalid") and anna_ticket.status == "closed"
    assert (bob_ticket.requester_address, bob_ticket.subject) == ("bob@other.example", "Shared printer")
    assert not Participant.select().where(Participant.ticket == bob_ticket).exists()
    assert Attachment.select().count() == 0
    assert len(list(desk.config.service.data_dir.joinpath("attachments").rglob("*.*"))) == 0
    [record] = Erasure.select()
    assert (record.actor, record.tickets) == ("admin", 2)
    for ticket in (anna_ticket, bob_ticket):
        assert Event.select().where(Event.ticket == ticket, Event.kind == "erasure").count() == 1
    # Bob's own mail is untouched
    assert any(b"The printer is down." in bytes(m.raw) for m in InboundMail.select())


def test_erase_an_unknown_address_changes_nothing(desk):
    anna_and_bob(desk)
    before = everything_stored(desk, database_files=False)
    database_proxy.obj.close()
    done = run_cli("erase", "nobody@nowhere.example", config=desk.path)
    assert done.returncode == 1
    assert "nothing is stored about nobody@nowhere.example" in done.stderr and "nothing was changed" in done.stderr
    assert Erasure.select().count() == 0 and everything_stored(desk, database_files=False) == before


@pytest.mark.parametrize("address,problem", [("alice@example.com", "address of the desk itself"),
                                             ("not-an-address", "is not a mail address")])
def test_erase_refuses_the_desks_own_and_malformed_addresses(desk, address, problem):
    done = run_cli("erase", address, config=desk.path)
    assert done.returncode == 2 and problem in done.stderr


def test_erase_dry_run_changes_nothing(desk):
    anna_and_bob(desk)
    before = everything_stored(desk, database_files=False)
    database_proxy.obj.close()
    done = run_cli("erase", ANNA, "--dry-run", config=desk.path)
    assert done.returncode == 0 and done.stdout.startswith("would anonymise") and "1 attachment(s)" in done.stdout
    assert everything_stored(desk, database_files=False) == before


def test_queued_mail_to_the_erased_person_is_not_sent(desk):
    first = desk.process(mail(f"{ANNA_NAME} <{ANNA}>", "Mouse broken", "It does not click."))
    ack = Outbox.get(Outbox.ticket == first.ticket, Outbox.kind == "acknowledgement")
    database_proxy.obj.close()
    assert run_cli("erase", ANNA, config=desk.path).returncode == 0
    ack = Outbox.get_by_id(ack.id)
    assert (ack.status, bytes(ack.raw), ack.draft) == ("suppressed", b"", None)
    assert ANNA not in json.dumps(ack.recipients)


# ---------------------------------------------------------------- retention

RETENTION = {"retention": {"raw_mail": "90d", "closed_tickets": "150d"}}


def aged(desk: Desk, subject: str, *, closed_days_ago: float | None, created_days_ago: float) -> Ticket:
    outcome = desk.process(mail(f"{ANNA_NAME} <{ANNA}>", subject, "Please help.", attachment=b"data"))
    now = datetime.now(timezone.utc)
    fields = {"created_at": now - timedelta(days=created_days_ago)}
    if closed_days_ago is not None:
        fields.update(status="closed", closed_at=now - timedelta(days=closed_days_ago),
                      resolved_at=now - timedelta(days=closed_days_ago + 1))
    Ticket.update(**fields).where(Ticket.id == outcome.ticket).execute()
    return Ticket.get_by_id(outcome.ticket)


@pytest.fixture
def old_desk(tmp_path, db_url):
    desk = Desk(tmp_path, db_url, extra=RETENTION)
    recent = aged(desk, "Recent", closed_days_ago=10, created_days_ago=12)
    raw_gone = aged(desk, "Closed 100 days ago", closed_days_ago=100, created_days_ago=101)
    gone = aged(desk, "Closed 200 days ago", closed_days_ago=200, created_days_ago=201)
    still_open = aged(desk, "Open for 400 days", closed_days_ago=None, created_days_ago=400)
    desk.send_all()
    database_proxy.obj.close()
    return desk, recent, raw_gone, gone, still_open


def test_purge_dry_run_says_what_would_go_and_keeps_it(old_desk):
    desk, recent, raw_gone, gone, still_open = old_desk
    done = run_cli("purge", "--dry-run", config=desk.path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"raw_mail = 90d: would remove 2 raw mail(s), 4 sent mail(s) and 2 attachment(s) "
                               f"of closed ticket(s) {raw_gone.id}, {gone.id}")
    assert lines[1].startswith(f"closed_tickets = 150d: would remove 1 closed ticket(s) {gone.id}")
    assert "1 ticket(s) not yet closed are older than the retention: open, pending and resolved tickets are " \
           "never purged" in lines[2]
    assert Ticket.select().count() == 4 and Attachment.select().count() == 4


def test_purge_removes_what_is_old_and_keeps_open_tickets(old_desk):
    desk, recent, raw_gone, gone, still_open = old_desk
    files_before = {a.path for a in Attachment.select()}
    done = run_cli("purge", config=desk.path)
    assert done.returncode == 0, done.stderr
    assert {t.id for t in Ticket.select()} == {recent.id, raw_gone.id, still_open.id}
    kept = {a.path for a in Attachment.select()}
    assert len(kept) == 2
    for path in files_before:
        assert (desk.config.service.data_dir / path).exists() == (path in kept)
    raw_left = {m.ticket_id: bytes(m.raw) for m in InboundMail.select()}
    assert raw_left[raw_gone.id] == b"" and raw_left[recent.id] and raw_left[still_open.id]
    assert Event.select().where(Event.ticket == raw_gone.id, Event.kind == "retention").count() == 1
    assert Ticket.get_by_id(raw_gone.id).status == "closed"
    again = run_cli("purge", config=desk.path)
    assert "nothing is old enough to go" in again.stdout


def test_the_daemon_applies_retention(old_desk):
    from mailticket.service.daemon import Daemon
    desk, recent, raw_gone, gone, still_open = old_desk
    Daemon(desk.desk).apply_retention()
    assert {t.id for t in Ticket.select()} == {recent.id, raw_gone.id, still_open.id}


def test_retention_keys_are_checked(tmp_path):
    path = write_config(tmp_path, extra={"retention": {"raw_mail": "90d", "closed_tickets": "30d"}})
    done = run_cli("check-config", config=path)
    assert done.returncode == 3 and "retention.closed_tickets: 30d is shorter than raw_mail (90d)" in done.stderr


def test_retention_in_years_and_zero_keeps(tmp_path):
    config = load_config(write_config(tmp_path, extra={"retention": {"raw_mail": "90d", "closed_tickets": "3y"}}))
    assert (config.retention.raw_mail, config.retention.closed_tickets) == (timedelta(days=90), timedelta(days=1095))
    keep = load_config(write_config(tmp_path, extra={"retention": {"raw_mail": "0"}})).retention
    assert not keep.raw_mail and not keep.closed_tickets
    done = run_cli("purge", "--dry-run", config=write_config(tmp_path))
    assert done.returncode == 0 and "keeps everything" in done.stdout


def test_the_daemon_purges_a_big_backlog_in_rounds(old_desk, monkeypatch):
    """Retention turned on for an old desk: a few batches at a time, the rest each minute."""
    import schedule

    from mailticket.desk import retention
    from mailticket.service import daemon as daemon_module
    desk, recent, raw_gone, gone, still_open = old_desk
    aged(desk, "Closed 300 days ago", closed_days_ago=300, created_days_ago=301)
    monkeypatch.setattr(retention, "BATCH", 1)
    monkeypatch.setattr(daemon_module, "RETENTION_ROUNDS", 1)
    daemon = daemon_module.Daemon(desk.desk)
    first = daemon.apply_retention()
    assert first.more and len(first.tickets) == 2 and Ticket.select().count() == 4
    assert daemon._retention_continues and "_continue_retention" in repr(daemon.scheduler.jobs)
    assert daemon._continue_retention() is schedule.CancelJob
    assert {t.id for t in Ticket.select()} == {recent.id, raw_gone.id, still_open.id}
    assert not InboundMail.select().where(InboundMail.ticket == raw_gone.id, pw_length(InboundMail.raw) > 0).exists()


def pw_length(field):
    import peewee as pw
    return pw.fn.LENGTH(field)
