"""Every command of `mailticket`, run as an admin runs it: a child process, its output and exit code.

Exit codes (cli.py): 0 success; 1 problems found or the command failed; 2 wrong usage;
3 configuration error; 4 database unreachable; 5 mail server unreachable.
"""

from __future__ import annotations

import csv
import io
import json
import mailbox
from datetime import datetime, timedelta, timezone

import pytest

from mailticket import db

from mailticket.desk import pipeline
from mailticket.config import load_config
from mailticket.service.wiring import build_desk
from mailticket.models import Event, InboundMail, Outbox, Ticket
from tests.harness import fail_attachment_fsyncs, mail_with_attachment, make_mail, run_cli, write_config

COMMANDS = ["run", "check-config", "poll", "tickets", "show", "report", "outbox", "quarantine", "import",
            "migrate", "health", "purge", "erase", "backup", "restore"]
COMMANDS += ["attachment"]  # issue 21: a ticket's files
RULES = [{"name": "outage", "subject": "(?i)outage", "priority": "P1"},
         {"name": "password", "subject": "(?i)password", "priority": "P4", "type": "request"}]
ALL_MIGRATIONS = ", ".join(name for name, _ in db.MIGRATIONS)


def desk_for(path):
    cfg = load_config(path)
    db.connect(cfg.database.url)
    return build_desk(cfg)


def ingest(desk, raw: bytes, now=None):
    now = now or datetime.now(timezone.utc)
    row = pipeline.store_raw(raw, source="imap:INBOX", now=now)
    return pipeline.process_one(desk, row)


@pytest.fixture
def desk_cfg(tmp_path):
    """A config (maildir outbox, no servers) and a desk with five tickets of different kinds."""
    path = write_config(tmp_path, extra={"rules": RULES, "listener": {"enabled": True, "port": 2599}})
    desk = desk_for(path)
    mails = [("anna@customer.example", "Printer broken"), ("bob@customer.example", "Network outage in B"),
             ("anna@customer.example", "Forgot my password"), ("carl@other.example", "Mail slow"),
             ("dora@customer.example", "Outage of the VPN")]
    for i, (sender, subject) in enumerate(mails):
        ingest(desk, make_mail(sender=sender, subject=subject, message_id=f"<t{i}@customer.example>"))
    t = Ticket.get(Ticket.subject == "Mail slow")
    t.status = "resolved"
    t.save()
    return path, desk


# ---------------------------------------------------------------- help and usage

@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    done = run_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: mailticket {command}")
    assert "exit codes: 0 success" in done.stdout and "5 mail server unreachable" in done.stdout


def test_every_argument_is_explained_and_every_command_has_examples():
    import argparse

    from mailticket.service.cli import build_parser
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(sub.choices) == sorted(COMMANDS)
    for name, sp in sub.choices.items():
        assert "examples:\n  mailticket" in sp.epilog, name
        for action in sp._actions:
            assert action.help, f"mailticket {name}: {action.dest} has no help text"


def test_top_level_help_lists_every_command():
    done = run_cli("--help")
    assert done.returncode == 0
    for command in COMMANDS:
        assert command in done.stdout


def test_no_command_is_a_usage_error():
    done = run_cli()
    assert done.returncode == 2 and "usage: mailticket" in done.stdout


@pytest.mark.parametrize("args", [["frobnicate"], ["tickets", "--tier", "7"], ["show", "seven"], ["poll"],
                                  ["report", "--format", "pdf"]])
def test_wrong_usage_exits_2(args):
    done = run_cli(*args)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()  # one line: the argument, what is valid, where to read more
    assert line.startswith("mailticket") and line.endswith("--help)"), line


def test_missing_config_file_exits_3_naming_it(tmp_path):
    done = run_cli("tickets", config=tmp_path / "nope.toml")
    assert done.returncode == 3 and f"{tmp_path / 'nope.toml'}: no such file" in done.stderr


def test_unreachable_database_exits_4(tmp_path):
    path = write_config(tmp_path, db_url="postgresql://mailticket:Db-Pw-5@127.0.0.1:1/none")
    done = run_cli("tickets", config=path)
    assert done.returncode == 4 and "database" in done.stderr and "Db-Pw-5" not in done.stderr


# ---------------------------------------------------------------- tickets

def numbers(out: str) -> list[int]:
    return [int(line.split()[0]) for line in out.splitlines() if line.strip() and line.split()[0].isdigit()]


def test_tickets_lists_newest_first_with_a_footer(desk_cfg):
    path, _ = desk_cfg
    done = run_cli("tickets", config=path)
    assert done.returncode == 0
    assert numbers(done.stdout) == [5, 4, 3, 2, 1]
    assert done.stdout.splitlines()[0].split()[:4] == ["#", "status", "pri", "tier"]
    assert done.stdout.rstrip().endswith("-- 5 of 5 ticket(s), page 1 of 1")


@pytest.mark.parametrize("args, expected", [
    (["--status", "resolved"], [4]),
    (["--status", "active"], [5, 3, 2, 1]),
    (["--priority", "P1"], [5, 2]),
    (["--tier", "3"], [5, 2]),
    (["--tier", "1"], [4, 3, 1]),
    (["--requester", "anna@"], [3, 1]),
    (["--requester", "ANNA"], [3, 1]),
    (["--priority", "P4", "--requester", "anna"], [3]),
    (["--sort", "number"], [1, 2, 3, 4, 5]),
    (["--sort", "priority"], [5, 2, 4, 1, 3]),
])
def test_tickets_filters_and_sorting(desk_cfg, args, expected):
    path, _ = desk_cfg
    done = run_cli("tickets", *args, config=path)
    assert done.returncode == 0, done.stderr
    assert numbers(done.stdout) == expected


def test_tickets_paged(desk_cfg):
    path, _ = desk_cfg
    pages = [run_cli("tickets", "--sort", "number", "--limit", "2", "--page", str(p), config=path).stdout
             for p in (1, 2, 3, 4)]
    assert [numbers(p) for p in pages] == [[1, 2], [3, 4], [5], []]
    assert pages[1].rstrip().endswith("-- 2 of 5 ticket(s), page 2 of 3")


def test_tickets_json(desk_cfg):
    path, _ = desk_cfg
    done = run_cli("tickets", "--format", "json", "--priority", "P1", config=path)
    rows = json.loads(done.stdout)
    assert [(r["number"], r["priority"], r["tier"], r["requester"]["address"]) for r in rows] == [
        (5, "P1", 3, "dora@customer.example"), (2, "P1", 3, "bob@customer.example")]


# ---------------------------------------------------------------- show

def test_show_prints_the_whole_history(desk_cfg):
    path, desk = desk_cfg
    first = Ticket.get_by_id(1)
    ingest(desk, make_mail(subject=f"Re: [SD#{first.id}] Printer broken", body="It also smells of smoke.",
                           message_id="<t1-reply@customer.example>", in_reply_to="<t0@customer.example>",
                           references="<t0@customer.example>"))
    done = run_cli("show", "1", config=path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("Ticket 1: Printer broken\n")
    assert "anna@customer.example" in out.split("Requester:", 1)[1].splitlines()[0]
    assert "Priority:            P3" in out and "Status:" in out
    assert "Description:\n  The printer on floor 3 does not print." in out
    history = out.split("History:\n", 1)[1]
    kinds = [e.kind for e in Ticket.get_by_id(1).events.order_by(Event.at, Event.id)]
    assert len(kinds) >= 3 and all(k in history for k in kinds)
    assert "smells of smoke" in history
    raw = run_cli("show", "1", "--raw", config=path).stdout
    assert "Message-ID: <t1-reply@customer.example>" in raw


def test_show_unknown_ticket_exits_1(desk_cfg):
    path, _ = desk_cfg
    done = run_cli("show", "999", config=path)
    assert done.returncode == 1 and "there is no ticket 999" in done.stderr


# ---------------------------------------------------------------- report

def test_report_text_json_csv(desk_cfg):
    path, _ = desk_cfg
    text = run_cli("report", config=path)
    assert text.returncode == 0 and "Tickets:                            5\n" in text.stdout
    data = json.loads(run_cli("report", "--format", "json", config=path).stdout)
    assert data["overall"]["tickets"] == 5 and data["backlog"]["open"] == 4
    rows = [r for r in csv.reader(io.StringIO(run_cli("report", "--format", "csv", config=path).stdout)) if r]
    assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows)


def test_report_since(desk_cfg):
    path, _ = desk_cfg
    Ticket.update(created_at=datetime(2026, 1, 5, tzinfo=timezone.utc)).where(Ticket.id <= 2).execute()
    out = run_cli("report", "--since", "2026-02-01", "--format", "json", config=path).stdout
    assert json.loads(out)["overall"]["tickets"] == 3
    bad = run_cli("report", "--since", "last week", config=path)
    assert bad.returncode == 2 and "'last week' is not an ISO date" in bad.stderr


# ---------------------------------------------------------------- outbox

def test_outbox_lists_and_retries(desk_cfg):
    path, _ = desk_cfg
    entries = list(Outbox.select().order_by(Outbox.id))
    assert len(entries) >= 5
    failed = entries[0]
    Outbox.update(status="failed", attempts=8, last_error="550 5.1.1 no such user").where(Outbox.id == failed.id).execute()
    Outbox.update(status="sent").where(Outbox.id == entries[1].id).execute()
    out = run_cli("outbox", config=path).stdout
    listed = numbers(out)
    assert failed.id in listed and entries[1].id not in listed
    assert "550 5.1.1 no such user" in out and out.rstrip().endswith(f"-- {len(entries) - 1} mail(s)")
    assert entries[1].id in numbers(run_cli("outbox", "--all", config=path).stdout)
    done = run_cli("outbox", "--retry", str(failed.id), config=path)
    assert done.returncode == 0 and done.stdout.startswith("1 mail(s) queued to be sent again")
    again = Outbox.get_by_id(failed.id)
    assert (again.status, again.attempts) == ("queued", 0)


def test_outbox_retry_errors(desk_cfg):
    path, _ = desk_cfg
    sent = Outbox.select().first()
    Outbox.update(status="sent").where(Outbox.id == sent.id).execute()
    done = run_cli("outbox", "--retry", str(sent.id), config=path)
    assert done.returncode == 1 and f"outbox entry {sent.id} does not exist or was already sent" in done.stderr
    done = run_cli("outbox", "--retry", "soon", config=path)
    assert done.returncode == 2 and "argument --retry: 'soon' is neither an outbox ID" in done.stderr
    done = run_cli("outbox", "--retry", "all", config=path)
    assert done.returncode == 0 and done.stdout.startswith(f"{Outbox.select().count() - 1} mail(s) queued")


def test_outbox_retry_gets_the_mail_sent(tmp_path, smtp_sink):
    path = write_config(tmp_path, sink=smtp_sink)
    desk = desk_for(path)
    ingest(desk, make_mail(message_id="<retry@customer.example>"))
    Outbox.update(status="failed", last_error="421 try later").execute()
    assert run_cli("poll", "--once", config=path).returncode == 0
    assert smtp_sink.received == []  # failed mail stays failed until the admin says so
    assert run_cli("outbox", "--retry", "all", config=path).stdout.startswith("2 mail(s) queued")
    assert run_cli("poll", "--once", config=path).returncode == 0
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.received) == ["anna@customer.example", "l1@example.com"]
    assert Outbox.select().where(Outbox.status == "sent").count() == 2


# ---------------------------------------------------------------- quarantine

def quarantine_one(desk, reason="internal error: the parser fell over"):
    row = pipeline.store_raw(make_mail(message_id="<quar@customer.example>", subject="Scanner jammed"),
                             source="imap:INBOX", now=datetime.now(timezone.utc))
    InboundMail.update(state="quarantined", reason=reason, message_id="quar@customer.example").where(
        InboundMail.id == row.id).execute()
    return row.id


def test_quarantine_list_and_show(desk_cfg):
    path, desk = desk_cfg
    ident = quarantine_one(desk)
    out = run_cli("quarantine", config=path)
    assert out.returncode == 0
    assert f"{ident}" in out.stdout and "<quar@customer.example>" in out.stdout and "parser fell over" in out.stdout
    assert "-- 1 mail(s) in quarantine" in out.stdout
    assert run_cli("quarantine", "list", config=path).stdout == out.stdout
    shown = run_cli("quarantine", "show", str(ident), config=path)
    assert shown.returncode == 0
    assert shown.stdout.startswith(f"Stored mail {ident}: state quarantined")
    assert "Reason: internal error: the parser fell over" in shown.stdout and "Subject: Scanner jammed" in shown.stdout


def test_quarantine_show_errors(desk_cfg):
    path, _ = desk_cfg
    assert run_cli("quarantine", "show", config=path).returncode == 2
    done = run_cli("quarantine", "show", "999", config=path)
    assert done.returncode == 1 and "there is no stored mail 999" in done.stderr


def test_quarantine_reprocess(desk_cfg):
    path, desk = desk_cfg
    ident = quarantine_one(desk)
    done = run_cli("quarantine", "--reprocess", str(ident), config=path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{ident}: processed ticket 6")
    assert InboundMail.get_by_id(ident).state == "processed"
    assert Ticket.get_by_id(6).subject == "Scanner jammed"
    assert "-- 0 mail(s) in quarantine" in run_cli("quarantine", config=path).stdout


def test_quarantine_reprocess_that_fails_again_exits_1(desk_cfg):
    path, _ = desk_cfg
    row = pipeline.store_raw(b"\r\n\r\n", source="imap:INBOX", now=datetime.now(timezone.utc))
    InboundMail.update(state="quarantined", reason="no sender").where(InboundMail.id == row.id).execute()
    done = run_cli("quarantine", "--reprocess", "all", config=path)
    assert done.returncode == 1 and done.stdout.startswith(f"{row.id}: quarantined")


def test_quarantine_reprocess_errors(desk_cfg):
    path, _ = desk_cfg
    done = run_cli("quarantine", "--reprocess", "1", config=path)  # mail 1 was processed, not quarantined
    assert done.returncode == 1 and "no quarantined mail 1" in done.stderr
    done = run_cli("quarantine", "--reprocess", "everything", config=path)
    assert done.returncode == 2 and "'everything' is neither a stored mail's ID" in done.stderr


# ---------------------------------------------------------------- import

PAST = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def past_mails() -> list[bytes]:
    first = make_mail(subject="VPN down", message_id="<old1@customer.example>", date=PAST)
    return [
        first,
        make_mail(subject="Re: VPN down", body="Still down.", message_id="<old2@customer.example>",
                  in_reply_to="<old1@customer.example>", references="<old1@customer.example>",
                  date=PAST + timedelta(hours=1)),
        make_mail(sender="Bo <bo@customer.example>", subject="New laptop", message_id="<old3@customer.example>",
                  date=PAST + timedelta(days=1)),
    ]


def write_mbox(path, mails):
    box = mailbox.mbox(path)
    for raw in mails:
        box.add(raw.replace(b"\r\n", b"\n"))
    box.close()


def write_maildir(path, mails):
    box = mailbox.Maildir(path, create=True)
    for raw in mails:
        box.add(raw.replace(b"\r\n", b"\n"))
    box.close()


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_import_twice_is_idempotent_and_mails_nobody(tmp_path, smtp_sink, kind):
    path = write_config(tmp_path, sink=smtp_sink, extra={"listener": {"enabled": True, "port": 2599}})
    source = tmp_path / ("past.mbox" if kind == "mbox" else "past-maildir")
    (write_mbox if kind == "mbox" else write_maildir)(source, past_mails())
    first = run_cli("import", source, config=path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (f"{source}: 3 mail(s): 2 new ticket(s), 1 threaded, 0 already known, "
                                    "0 quarantined; no mail was sent")
    second = run_cli("import", source, config=path)
    assert second.returncode == 0
    assert "3 mail(s): 0 new ticket(s), 0 threaded, 3 already known" in second.stdout
    db.connect(load_config(path).database.url)
    assert Ticket.select().count() == 2 and InboundMail.select().count() == 3
    vpn = Ticket.get(Ticket.subject == "VPN down")
    assert vpn.created_at == PAST  # history reads true: the mail's own date
    assert "Still down." in run_cli("show", vpn.id, config=path).stdout
    assert Outbox.select().count() == 0
    assert run_cli("poll", "--once", config=path).returncode == 0  # drains the outbox: nothing to send
    assert smtp_sink.received == []


def test_import_takes_mail_in_date_order(tmp_path):
    """A reply found before its original (a maildir has no order) still threads onto it."""
    path = write_config(tmp_path)
    undated = make_mail(subject="No date", message_id="<nodate@customer.example>")
    undated = b"\r\n".join(ln for ln in undated.split(b"\r\n") if not ln.startswith(b"Date:"))
    write_mbox(tmp_path / "reversed.mbox", [undated] + list(reversed(past_mails())))
    done = run_cli("import", tmp_path / "reversed.mbox", config=path)
    assert "4 mail(s): 3 new ticket(s), 1 threaded" in done.stdout, done.stdout + done.stderr
    db.connect(load_config(path).database.url)
    assert [t.subject for t in Ticket.select().order_by(Ticket.id)] == ["VPN down", "New laptop", "No date"]


def test_import_shows_a_progress_bar(tmp_path, capsys):
    from mailticket.service.importer import import_path
    path = write_config(tmp_path)
    write_mbox(tmp_path / "past.mbox", past_mails())
    result = import_path(desk_for(path), tmp_path / "past.mbox", progress=True)
    assert result.seen == 3
    err = capsys.readouterr().err
    assert "importing past.mbox" in err and "3/3" in err


def test_import_a_mail_that_cannot_be_processed_counts_it_once(tmp_path):
    path = write_config(tmp_path)
    write_mbox(tmp_path / "bad.mbox", [b"From: \r\nMessage-ID: <broken@x>\r\n\r\n\r\n"] + past_mails()[:1])
    done = run_cli("import", tmp_path / "bad.mbox", config=path)
    assert done.returncode == 1 and "1 new ticket(s), 0 threaded, 0 already known, 1 quarantined" in done.stdout
    again = run_cli("import", tmp_path / "bad.mbox", config=path)
    assert "0 new ticket(s), 0 threaded, 2 already known, 0 quarantined" in again.stdout
    db.connect(load_config(path).database.url)
    assert InboundMail.select().where(InboundMail.state == "quarantined").count() == 1


def test_import_errors(tmp_path):
    path = write_config(tmp_path)
    done = run_cli("import", tmp_path / "nowhere.mbox", config=path)
    assert done.returncode == 2 and "nowhere.mbox does not exist" in done.stderr
    (tmp_path / "plain-folder").mkdir()
    done = run_cli("import", tmp_path / "plain-folder", config=path)
    assert done.returncode == 2 and "is a folder but not a maildir" in done.stderr


# ---------------------------------------------------------------- migrate

def test_migrate_applies_then_says_up_to_date(tmp_path):
    path = write_config(tmp_path)
    first = run_cli("migrate", config=path)
    assert (first.returncode, first.stdout) == (0, f"applied: {ALL_MIGRATIONS}\n")
    second = run_cli("migrate", config=path)
    assert (second.returncode, second.stdout) == (0, "the schema is up to date\n")


def test_migrate_on_postgresql(tmp_path, pg_url):
    path = write_config(tmp_path, db_url=pg_url)
    assert run_cli("migrate", config=path).stdout == f"applied: {ALL_MIGRATIONS}\n"
    assert run_cli("migrate", config=path).stdout == "the schema is up to date\n"


def test_migrate_unreachable_database_exits_4(tmp_path):
    path = write_config(tmp_path, db_url="postgresql://mailticket@127.0.0.1:1/none")
    assert run_cli("migrate", config=path).returncode == 4


# ---------------------------------------------------------------- check-config

def test_check_config_good_file(tmp_path):
    path = write_config(tmp_path)
    done = run_cli("check-config", config=path)
    assert (done.returncode, done.stdout) == (0, f"{path}: OK\n")


def test_check_config_shipped_example_passes():
    from tests.harness import REPO
    done = run_cli("check-config", config=REPO / "config" / "mailticket.toml")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("extra, key, words", [
    ({"imap": {"host": "imap.example.com", "prot": 993}}, "imap.prot", "unknown key"),
    ({"imap": {"host": "imap.example.com", "port": "993"}}, "imap.port", "must be int"),
    ({"service": {"timezone": "Mars/Olympus"}}, "service.timezone", "not a time zone"),
    ({"smtp": {"host": "smtp.example.com", "security": "none"}}, "smtp.security", "clear text"),
    ({"imap": {"host": "imap.example.com", "security": "none"}}, "imap.security", "clear text"),
    ({"imap": {"host": "imap.example.com", "ca_file": "/nonexistent/ca.pem"}}, "imap.ca_file", "does not exist"),
    ({"smtp": {"host": "smtp.example.com", "ca_file": "/nonexistent/ca.pem"}}, "smtp.ca_file", "does not exist"),
    ({"imap": {"host": "imap.example.com", "auth": "oauth2"}}, "imap.oauth2_token_command", "is required"),
    ({"rules": [{"name": "x", "priority": "P9"}]}, "rules", "P9"),
    ({"smtp": {"host": "smtp.example.com", "password_file": "/x", "password_credential": "smtp"}},
     "smtp.password_credential", "give only one of password_file, password_credential"),
])
def test_check_config_bad_file_names_file_and_key(tmp_path, extra, key, words):
    path = write_config(tmp_path, extra=extra)
    done = run_cli("check-config", config=path)
    assert done.returncode == 3
    assert f"{path}: {key}" in done.stderr and words in done.stderr


def test_check_config_not_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[service\nname = 1\n")
    done = run_cli("check-config", config=path)
    assert done.returncode == 3 and f"{path}: not valid TOML" in done.stderr


def test_check_config_broken_template_names_the_file(tmp_path):
    templates = tmp_path / "templates"
    (templates / "en").mkdir(parents=True)
    (templates / "en" / "acknowledgement.txt").write_text("{% block body %}{{ ticket.tag }\n{% endblock %}")
    path = write_config(tmp_path, extra={"service": {"templates_dir": str(templates)}})
    done = run_cli("check-config", config=path)
    assert done.returncode == 1 and "acknowledgement.txt" in done.stdout


def test_check_config_reads_the_secrets_as_the_daemon_does(tmp_path):
    """A configured signing secret too short for the daemon, or a password file it cannot read,
    stopped ``run`` but passed check-config; each is now named by file and key."""
    path = write_config(tmp_path, extra={"service": {"secret": "short"}, "smtp": {
        "host": "smtp.example.com", "username": "desk", "password_file": str(tmp_path / "missing")}})
    done = run_cli("check-config", config=path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"{path}: service.secret: the token secret is too short (5 bytes); give at least 16 random characters,"
        " or leave it out to use secret.key",
        f"{path}: smtp.password_file: cannot read {tmp_path / 'missing'}: No such file or directory"]
    started = run_cli("poll", "--once", config=path)
    assert started.returncode == 3 and f"{path}: service.secret: the token secret is too short" in started.stderr


def test_check_config_leaves_service_only_secrets_to_the_service(tmp_path):
    """A variable or a systemd credential exists where the unit runs, not in the admin's shell:
    read where it is set, not reported where it is not, and the secret file is not created."""
    path = write_config(tmp_path, extra={"service": {"secret_env": "MT_TEST_SECRET"}, "smtp": {
        "host": "smtp.example.com", "username": "desk", "password_credential": "smtp"}})
    done = run_cli("check-config", config=path, env={"MT_TEST_SECRET": "x" * 20, "CREDENTIALS_DIRECTORY": ""})
    assert (done.returncode, done.stdout) == (0, f"{path}: OK\n"), done.stdout + done.stderr
    creds = tmp_path / "creds"
    creds.mkdir()
    done = run_cli("check-config", config=path, env={"MT_TEST_SECRET": "tiny", "CREDENTIALS_DIRECTORY": str(creds)})
    assert done.returncode == 1
    assert [line.split(": ")[1] for line in done.stdout.splitlines()] == ["service.secret_env", "smtp.password_credential"]
    assert not any(tmp_path.rglob("secret.key"))


def test_check_config_connect_all_reachable(tmp_path, mailbox_user, smtp_sink_tls):
    path = write_config(tmp_path, user=mailbox_user, extra={"smtp": {
        "host": "127.0.0.1", "port": smtp_sink_tls.port, "security": "starttls", "username": "sink",
        "password": "sink-password", "ca_file": smtp_sink_tls.ca_file}})
    done = run_cli("check-config", "--connect", config=path)
    assert (done.returncode, done.stdout) == (0, f"{path}: OK\n"), done.stdout + done.stderr


def test_check_config_connect_wrong_passwords(tmp_path, mailbox_user, smtp_sink_tls):
    path = write_config(tmp_path, user=mailbox_user, extra={
        "imap": {"password": "Wrong-Imap-1"},
        "smtp": {"host": "127.0.0.1", "port": smtp_sink_tls.port, "security": "starttls", "username": "sink",
                 "password": "Wrong-Smtp-1", "ca_file": smtp_sink_tls.ca_file}})
    done = run_cli("check-config", "--connect", config=path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("imap: ") and f"login as {mailbox_user.name} refused" in lines[0]
    assert lines[1].startswith("smtp: ") and "login as sink refused" in lines[1]
    assert "Wrong-Imap-1" not in done.stdout + done.stderr and "Wrong-Smtp-1" not in done.stdout + done.stderr


def test_check_config_connect_with_the_credential_directory(tmp_path, mailbox_user):
    """As docs/operations.md tells an admin: CREDENTIALS_DIRECTORY pointed at the credential files."""
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "imap").write_text(mailbox_user.password)
    path = write_config(tmp_path, user=mailbox_user)
    path.write_text(path.read_text().replace(f'password = "{mailbox_user.password}"', 'password_credential = "imap"'))
    done = run_cli("check-config", "--connect", config=path, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert (done.returncode, done.stdout) == (0, f"{path}: OK\n"), done.stdout + done.stderr
    without = run_cli("check-config", "--connect", config=path, env={"CREDENTIALS_DIRECTORY": ""})
    assert without.returncode == 1
    assert without.stdout.startswith(
        f"imap: {path}: imap.password_credential: credential 'imap' asked for, but CREDENTIALS_DIRECTORY is not set")
    assert without.stdout.count("CREDENTIALS_DIRECTORY") == 1  # said once, by the login that needs it


def test_check_config_connect_unreachable_servers(tmp_path):
    from tests.servers.system import free_port
    path = write_config(tmp_path, db_url="postgresql://mailticket@127.0.0.1:1/none", extra={
        "imap": {"host": "127.0.0.1", "port": free_port(), "security": "none", "username": "u", "password": "p"},
        "smtp": {"host": "127.0.0.1", "port": free_port(), "security": "none"}})
    done = run_cli("check-config", "--connect", config=path)
    assert done.returncode == 1
    assert [ln.split(":")[0] for ln in done.stdout.splitlines()] == ["database.url", "imap", "smtp"]


# ---------------------------------------------------------------- poll --once

def test_poll_once_processes_the_inbox_and_sends(tmp_path, mailbox_user, smtp_sink):
    dovecot = mailbox_user.server
    path = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    dovecot.append(mailbox_user.name, "INBOX", make_mail(message_id="<poll@customer.example>"))
    done = run_cli("poll", "--once", config=path)
    assert done.returncode == 0, done.stderr
    assert "mail <poll@customer.example> (UID 1): processed ticket 1" in done.stderr
    assert len(smtp_sink.received) == 2
    assert dovecot.folder_count(mailbox_user.name, "Processed") == 1
    again = run_cli("poll", "--once", config=path)
    assert again.returncode == 0 and len(smtp_sink.received) == 2


def test_poll_once_with_the_mail_server_down_exits_5(tmp_path, mailbox_user, smtp_sink):
    path = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={"imap": {"password": "Wrong-Pw-3"}})
    done = run_cli("poll", "--once", config=path)
    assert done.returncode == 5 and "mail server:" in done.stderr and "refused" in done.stderr
    assert "Wrong-Pw-3" not in done.stderr


def test_reprocess_whose_attachment_cannot_reach_the_disk_says_so_and_commits_nothing(desk_cfg, monkeypatch,
                                                                                       capsys):
    import errno

    from mailticket.service.cli import main
    from mailticket.models import Attachment
    path, _ = desk_cfg
    row = pipeline.store_raw(mail_with_attachment(), source="imap:INBOX", now=datetime.now(timezone.utc))
    InboundMail.update(state="quarantined", reason="earlier failure").where(InboundMail.id == row.id).execute()
    tickets_before = Ticket.select().count()
    fail_attachment_fsyncs(monkeypatch, errno.ENOSPC, "No space left on device")
    assert main(["--config", str(path), "quarantine", "--reprocess", str(row.id)]) == 1
    [said] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mailticket: ")]
    assert said.startswith("mailticket: attachment ") and said.endswith(
        "could not be flushed to disk: No space left on device; nothing of that batch was committed")
    assert (Ticket.select().count(), Attachment.select().count()) == (tickets_before, 0)
    assert InboundMail.get_by_id(row.id).state == "received", "left for the daemon to process again"
