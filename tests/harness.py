"""Helpers for end-to-end tests: a config file for real servers, a daemon in a thread or a
process, and realistic test mails."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- config files

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml_value(x)}' for k, x in v.items()) + " }"
    raise TypeError(type(v))


def dump_toml(data: dict, prefix: str = "") -> str:
    """A small TOML writer for test configs (tables, arrays of tables, plain values)."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict) and value and all(isinstance(x, dict) for x in value.values()) and key in ("tiers",):
            tables.append((key, value, "nested"))
        elif isinstance(value, dict):
            tables.append((key, value, "table"))
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            tables.append((key, value, "array"))
        else:
            lines.append(f'"{key}" = {_toml_value(value)}' if not key.isidentifier() else f"{key} = {_toml_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value, kind in tables:
        name = f"{prefix}{key}"
        if kind == "array":
            for item in value:
                out += f"\n[[{name}]]\n" + dump_toml(item, f"{name}.")
        elif kind == "nested":
            for sub, item in value.items():
                out += f"\n[{name}.{sub}]\n" + dump_toml(item, f"{name}.{sub}.")
        else:
            out += f"\n[{name}]\n" + dump_toml(value, f"{name}.")
    return out


def write_config(tmp_path: Path, *, user=None, sink=None, db_url: str | None = None, listener_port: int | None = None,
                sla: dict | None = None, extra: dict | None = None) -> Path:
    """Write a config for real test servers; returns its path."""
    data = {
        "service": {"name": "Service Desk", "address": "support@example.com", "tag_prefix": "SD",
                    "locale": "en", "timezone": "Europe/Stockholm", "data_dir": str(tmp_path / "data"),
                    "admin_address": "admin@example.com", "security_address": "security@example.com",
                    "trusted_authserv_id": "mx.example.com"},
        "database": {"url": db_url or f"sqlite:///{tmp_path / 'mailticket.db'}"},
        "tiers": {"1": {"name": "Service desk", "address": "l1@example.com", "agents": ["alice@example.com", "bob@example.com"]},
                  "2": {"name": "Second line", "address": "l2@example.com", "agents": ["carol@example.com"]},
                  "3": {"name": "Third line", "address": "l3@example.com", "agents": ["dave@example.com"]}},
        "outbox": {"retry_base": "1s", "retry_max": "2s"},
    }
    if user is not None:
        data["imap"] = {"host": "127.0.0.1", "port": user.server.imap_port, "security": "none",
                        "username": user.name, "password": user.password, "poll_interval": "1s",
                        "idle": True, "timeout": "10s"}
    if sink is not None:
        data["smtp"] = {"host": "127.0.0.1", "port": sink.port, "security": "none", "timeout": "5s"}
    if listener_port is not None:
        data["listener"] = {"enabled": True, "host": "127.0.0.1", "port": listener_port}
    if sla is not None:
        data["sla"] = sla
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = tmp_path / "mailticket.toml"
    path.write_text(dump_toml(data), encoding="utf-8")
    return path


# ---------------------------------------------------------------- mails

def delivery_report(*, to: str, original_id: str, rcpt: str, mta: str = "mx.customer.example") -> bytes:
    """The bounce (a multipart/report DSN, as Postfix writes it) of our mail ``original_id`` to
    ``rcpt``, sent to ``to`` (the mail's return path). The same bounce has the same Message-ID."""
    return f"""From: Mail Delivery System <MAILER-DAEMON@{mta}>
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-{original_id.strip("<>").split("@")[0]}@{mta}>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; {mta}

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown

--B
Content-Type: text/rfc822-headers

Message-ID: <{original_id.strip("<>")}>
From: support@example.com
To: {rcpt}

--B--
""".replace("\n", "\r\n").encode()


def bounce_of(entry) -> bytes:
    """The bounce of an outbox entry's mail to its first recipient."""
    return delivery_report(to=entry.mail_from, original_id=entry.message_id, rcpt=entry.recipients[0])


def make_mail(*, sender="Anna Svensson <anna@customer.example>", to="support@example.com", subject="Printer broken",
              body="The printer on floor 3 does not print.", message_id: str | None = None, cc=None,
              in_reply_to: str | None = None, references: str | None = None, headers: dict | None = None,
              date: datetime | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(timezone.utc))
    msg["Message-ID"] = message_id or make_msgid(domain="customer.example")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for k, v in (headers or {}).items():
        if not k.lower().startswith("content-"):
            msg[k] = v
    msg.set_content(body)
    for k, v in (headers or {}).items():  # set_content clears the Content-* headers: these come after it
        if k.lower().startswith("content-"):
            del msg[k]
            msg[k] = v
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


# ---------------------------------------------------------------- daemons

class DaemonThread:
    """The real daemon loop in a thread of the test process (fast; shares the test's database binding)."""

    def __init__(self, config_path: Path, clock=None):
        from mailticket import db
        from mailticket.config import load_config
        from mailticket.service.daemon import Daemon
        from mailticket.service.wiring import build_desk
        self.config = load_config(config_path)
        db.connect(self.config.database.url)
        self.desk = build_desk(self.config, clock=clock)
        self.daemon = Daemon(self.desk, worker=f"test-{id(self)}")
        self.thread = threading.Thread(target=self.daemon.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self, timeout: float = 15) -> None:
        self.daemon.request_stop("test")
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "daemon thread did not stop"


class ConversationDesk:
    """Dovecot in, the daemon in a thread, the sink out: the desk a conversation test talks to.
    ``extra`` is merged into the config (its ``rate_limits`` over the test defaults, which let a
    conversation's handful of mails through)."""

    RATE_LIMITS = {"per_sender_day": 100, "global_10min": 1000}

    def __init__(self, tmp_path, user, sink, *, db_url: str | None = None, extra: dict | None = None):
        self.user, self.sink = user, sink
        extra = dict(extra or {})
        extra["rate_limits"] = {**self.RATE_LIMITS, **extra.get("rate_limits", {})}
        self.config_path = write_config(tmp_path, user=user, sink=sink, db_url=db_url, extra=extra)

    def __enter__(self):
        self.daemon = DaemonThread(self.config_path).__enter__()
        return self

    def __exit__(self, *exc):
        self.daemon.__exit__(*exc)

    def deliver(self, raw: bytes) -> None:
        self.user.server.append(self.user.name, "INBOX", raw)

    def processed(self, n: int) -> None:
        from mailticket.models import InboundMail
        wait_until(lambda: InboundMail.select().where(InboundMail.state != "received").count() >= n,
                   timeout=30, what=f"{n} mails processed")


def start_daemon_process(config_path: Path, *, env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    """``mailticket --config FILE run`` as a child process, as systemd would start it."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "mailticket.service.cli", "--config", str(config_path), "run"],
                            cwd=REPO, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def child_pids(pid: int) -> list[int]:
    """The live child processes of ``pid`` (a daemon's sender process), from /proc."""
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


def mail_with_attachment(data: bytes = b"line 1\nline 2\n", filename: str = "app.log") -> bytes:
    """A plain mail from a requester with one file attached."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "anna@customer.example", "support@example.com", "Log attached"
    mail["Message-ID"] = make_msgid(domain="customer.example")
    mail.set_content("See the log.")
    mail.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    return mail.as_bytes()


def fail_attachment_fsyncs(monkeypatch, error: int, text: str):
    """Make every fsync of a stored attachment file or folder fail with OSError(error, text),
    as a full or failing disk would; returns the real os.fsync, to put back."""
    real = os.fsync

    def failing(fd):
        if "/attachments/" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(error, text)
        real(fd)
    monkeypatch.setattr(os, "fsync", failing)
    return real


def run_cli(*args, config: Path | None = None, env: dict | None = None, timeout: float = 120,
            input: bytes | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mailticket.service.cli"] + (["--config", str(config)] if config else []) + [str(a) for a in args]
    return subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                          capture_output=True, text=True, timeout=timeout, input=input)


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def corpus_files_or_skip(max_size: int = 2_000_000) -> list[Path]:
    """The corpora's files up to ``max_size`` bytes: the full corpora where they are, else the share
    bundled in tests/data/corpora; skipped only where MAILTICKET_CORPORA names a missing folder.
    (pytest is imported here: the benches import this module too.)"""
    import pytest

    from bench.corpora_path import corpus_files, find_corpora
    corpora = find_corpora()
    if not corpora.is_dir():
        pytest.skip(f"corpora not found at {corpora} (set MAILTICKET_CORPORA)")
    return corpus_files(corpora, max_size=max_size)


def at_least(full: int, bundled: int) -> int:
    """A count a corpus test expects: ``full`` on the full corpora, ``bundled`` on the share that
    ships in tests/data/corpora (about a third of the mails)."""
    from bench.corpora_path import is_bundled
    return bundled if is_bundled() else full
