"""The daemon as a service manager runs it: a real child process, systemd's notify protocol on a
socket the test listens on, SIGTERM and SIGHUP, and what it writes to stderr."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.harness import REPO, make_mail, start_daemon_process, wait_until, write_config

STOP_LIMIT = 10.0  # "exit 0 within a few seconds"


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket; collects every line sent to it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nt.", dir="/tmp")  # sun_path is at most 107 bytes
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.lines: list[str] = []

    def collect(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                return self.lines
            self.lines += data.decode().split("\n")

    def wait_for(self, predicate, timeout=30.0, what="notify message") -> list[str]:
        wait_until(lambda: predicate(self.collect()), timeout=timeout, what=what)
        return list(self.lines)

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify_socket():
    ns = NotifySocket()
    yield ns
    ns.close()


class TcpProxy:
    """Forwards 127.0.0.1:port to a server; cut() resets every connection and refuses new ones
    (a mail server that went away), restore() accepts again on the same port."""

    def __init__(self, target_port: int):
        import threading
        self.target = target_port
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener = None
        self.port = None
        self.restore()

    def restore(self):
        import threading
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.port or 0))
        lst.listen()
        self.port = lst.getsockname()[1]
        self.listener = lst
        threading.Thread(target=self._accept, args=(lst,), daemon=True).start()

    def _accept(self, lst):
        import threading
        while True:
            try:
                client, _ = lst.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def cut(self):
        import struct
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
                    c.close()
                except OSError:
                    pass
            self.conns.clear()

    def close(self):
        self.cut()


class Service:
    """The daemon process with its stderr captured to a file."""

    def __init__(self, config: Path, log: Path, env: dict | None = None):
        self.log = log
        self.proc = start_daemon_process(config, env=env, log=log)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def wait_log(self, needle: str, timeout: float = 30.0, start: int = 0) -> str:
        def found():
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.text()}")
            return needle in self.text()[start:]
        wait_until(found, timeout=timeout, what=f"{needle!r} in the log")
        return self.text()

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; the exit code and the seconds it took."""
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_LIMIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon did not stop within {STOP_LIMIT}s of SIGTERM:\n{self.text()}")
        return code, time.monotonic() - began

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def services():
    started = []

    def start(config, log, env=None):
        svc = Service(config, log, env)
        started.append(svc)
        return svc
    yield start
    for svc in started:
        svc.kill()


def _db(tmp_path):
    from mailticket import db
    return db.connect(f"sqlite:///{tmp_path / 'mailticket.db'}", migrate=True)


# ---------------------------------------------------------------- notify protocol

def test_ready_watchdog_and_status_reach_the_notify_socket(tmp_path, mailbox_user, smtp_sink, notify_socket,
                                                           services):
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    mailbox_user.server.append(mailbox_user.name, "INBOX", make_mail(message_id="<notify@customer.example>"))
    svc = services(cfg, tmp_path / "daemon.log",
                   env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "4000000"})
    lines = notify_socket.wait_for(lambda ls: "READY=1" in ls, what="READY=1")
    ready_at = lines.index("READY=1")
    assert any(ln.startswith("STATUS=watching INBOX on 127.0.0.1") for ln in lines[ready_at:]), lines
    # READY comes only after the first successful mailbox check: the mail was fetched by then
    assert "mail <notify@customer.example> (UID 1)" in svc.wait_log("mail <notify@customer.example>")
    # WATCHDOG keeps coming while the loop goes round, at least twice within the watchdog period
    count = lines.count("WATCHDOG=1")
    notify_socket.wait_for(lambda ls: ls.count("WATCHDOG=1") >= count + 2, timeout=8, what="repeated WATCHDOG=1")
    notify_socket.wait_for(lambda ls: [ln for ln in ls if ln.startswith("STATUS=")][-1].endswith(
        "; 0 mail(s) queued to send, 0 in quarantine"), timeout=8, what="a status with nothing left to send")
    statuses = [ln for ln in notify_socket.collect() if ln.startswith("STATUS=")]
    turns = [ln for ln in statuses if ln.startswith("STATUS=watching INBOX on 127.0.0.1; last turn: ")]
    assert any("last turn: 1 mail(s) processed, " in ln for ln in turns), statuses
    # the acknowledgement and the tier notice, sent by the sender process, each counted in one turn
    assert sum(int(re.search(r"(\d+) sent;", ln).group(1)) for ln in turns) == 2, statuses
    assert statuses[-1].endswith("0 mail(s) queued to send, 0 in quarantine"), statuses
    code, _ = svc.terminate()
    assert code == 0
    assert "STOPPING=1" in notify_socket.collect()


def test_a_backlog_is_processed_in_batches_each_reported_to_the_watchdog(tmp_path, mailbox_user, smtp_sink,
                                                                         notify_socket, services):
    """READY comes when the mailbox answers, not after the whole backlog (which may take longer than
    TimeoutStartSec); each batch is progress: a WATCHDOG and a STATUS that counts, and its
    acknowledgements are sent before the next batch."""
    dovecot = mailbox_user.server
    for i in range(12):
        dovecot.append(mailbox_user.name, "INBOX", make_mail(subject=f"Backlog {i}", message_id=f"<bl{i}@x.example>"))
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={"imap": {"batch_size": 5}})
    svc = services(cfg, tmp_path / "daemon.log",
                   env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "60000000"})
    lines = notify_socket.wait_for(lambda ls: "STATUS=processing new mail in INBOX: 12 of 12" in ls,
                                   what="the last batch reported")
    batches = [lines.index(f"STATUS=processing new mail in INBOX: {n} of 12") for n in (5, 10, 12)]
    assert lines.index("READY=1") < batches[0]
    for at in batches:
        assert lines[at - 1] == "WATCHDOG=1", lines
    assert svc.terminate()[0] == 0
    # the first batch's acknowledgements went out before the last batch was processed
    log = svc.text()
    assert log.index("sent: acknowledgement") < log.index("mail <bl11@x.example> (UID"), log


def test_no_ready_while_the_mailbox_refuses_login(tmp_path, mailbox_user, smtp_sink, notify_socket, services):
    wrong = "Wrong-Secret-4711"
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink,
                       extra={"imap": {"password": wrong}})
    svc = services(cfg, tmp_path / "daemon.log",
                   env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "4000000"})
    svc.wait_log("login as " + mailbox_user.name)
    time.sleep(1.0)  # give it a moment in which it must not claim to be ready
    lines = notify_socket.collect()
    assert "READY=1" not in lines and "WATCHDOG=1" not in lines, lines
    assert any(ln.startswith("STATUS=mailbox failing") for ln in lines), lines
    assert svc.terminate()[0] == 0
    assert wrong not in svc.text()


def test_watchdog_stops_when_the_loop_stops_making_progress(tmp_path, mailbox_user, smtp_sink, notify_socket,
                                                            services):
    """When the mail server goes away the loop fails every turn: no WATCHDOG, a STATUS that says why,
    the process stays up, and WATCHDOG comes back when the server does."""
    proxy = TcpProxy(mailbox_user.server.imap_port)
    try:
        cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={"imap": {"port": proxy.port}})
        svc = services(cfg, tmp_path / "daemon.log",
                       env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "4000000"})
        notify_socket.wait_for(lambda ls: "READY=1" in ls, what="READY=1")
        time.sleep(0.5)  # in the middle of an IDLE
        proxy.cut()
        notify_socket.wait_for(lambda ls: any(ln.startswith("STATUS=mailbox failing") for ln in ls),
                               what="STATUS=mailbox failing")
        before = len(notify_socket.collect())
        time.sleep(2.5)
        after = notify_socket.collect()[before:]
        assert "WATCHDOG=1" not in after, after
        assert any(ln.startswith("STATUS=mailbox failing") for ln in after), after  # still trying, still saying why
        assert svc.proc.poll() is None, svc.text()
        proxy.restore()
        notify_socket.wait_for(lambda ls: "WATCHDOG=1" in ls[before:], timeout=60,
                               what="WATCHDOG=1 again after recovery")
        assert svc.terminate()[0] == 0
        assert "Traceback" not in svc.text()
    finally:
        proxy.close()


def test_wait_between_polls_is_shorter_than_the_watchdog_period(tmp_path, mailbox_user, smtp_sink, notify_socket,
                                                                 services):
    """poll_interval 60s with a 2s watchdog: the daemon must still ping in time."""
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink,
                       extra={"imap": {"poll_interval": "60s", "idle": False}})
    svc = services(cfg, tmp_path / "daemon.log",
                   env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "2000000"})
    notify_socket.wait_for(lambda ls: "READY=1" in ls, what="READY=1")
    start = notify_socket.collect().count("WATCHDOG=1")
    notify_socket.wait_for(lambda ls: ls.count("WATCHDOG=1") >= start + 2, timeout=6,
                           what="WATCHDOG=1 within the watchdog period despite a 60 s poll interval")
    assert svc.terminate()[0] == 0


# ---------------------------------------------------------------- SIGTERM

def test_sigterm_finishes_the_mail_in_hand_and_exits_0(tmp_path, mailbox_user, smtp_sink, services):
    dovecot = mailbox_user.server
    # one sender's 200 tickets: each must still queue its tier notice (the check below)
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink,
                       extra={"rate_limits": {"tier_notices_per_sender_hour": 1000}})
    n = 200  # enough that SIGTERM lands while the daemon is still taking them in
    for i in range(n):
        dovecot.append(mailbox_user.name, "INBOX", make_mail(subject=f"Problem {i}",
                                                             message_id=f"<term{i}@customer.example>"))
    svc = services(cfg, tmp_path / "daemon.log")
    svc.wait_log("term0@customer.example")
    code, _ = svc.terminate()
    assert code == 0
    log = svc.text()
    assert "SIGTERM received" in log and "stopped" in log
    _db(tmp_path)
    from mailticket.models import InboundMail, Outbox, Ticket
    rows = list(InboundMail.select())
    # every stored mail is either fully processed (ticket and mails queued) or untouched, nothing between
    for row in rows:
        assert row.state in ("received", "processed"), (row.id, row.state)
        if row.state == "processed":
            assert row.ticket_id is not None
            assert Outbox.select().where(Outbox.ticket == row.ticket_id).count() >= 1
        else:
            assert row.claimed_by is None  # given back at once, not held for the claim period
    done = sum(r.state == "processed" for r in rows)
    assert done == Ticket.select().count() >= 1
    # the next start takes up the rest: nothing lost, nothing twice
    assert done < n, "SIGTERM came after the last mail: this test no longer stops a daemon at work"
    svc2 = services(cfg, tmp_path / "daemon2.log")
    wait_until(lambda: Ticket.select().count() == n, timeout=60, what="all mails processed after restart")
    svc2.wait_log("sender process")  # started, its signals set: not a SIGTERM into a starting interpreter
    assert svc2.terminate()[0] == 0
    assert InboundMail.select().where(InboundMail.state == "processed").count() == n


def test_sigterm_while_idle_exits_0_quickly(tmp_path, smtp_sink, services):
    from tests.servers.system import free_port
    cfg = write_config(tmp_path, sink=smtp_sink, listener_port=free_port())
    svc = services(cfg, tmp_path / "daemon.log")
    svc.wait_log("ready: listening on 127.0.0.1")
    code, took = svc.terminate()
    assert code == 0 and took < STOP_LIMIT


def test_sigterm_while_sending_to_a_slow_server_stops_after_the_mail_in_hand(tmp_path, smtp_sink, services):
    """Six mails queued, the SMTP server takes 3 s each: SIGTERM waits for one, not for six."""
    from mailticket.desk import pipeline
    from mailticket.config import load_config
    from mailticket.service.wiring import build_desk
    from mailticket.models import Outbox
    from tests.servers.system import free_port
    cfg = write_config(tmp_path, sink=smtp_sink, listener_port=free_port(), extra={"smtp": {"timeout": "20s"}})
    _db(tmp_path)
    desk = build_desk(load_config(cfg))
    for i in range(3):
        row = pipeline.store_raw(make_mail(subject=f"Slow {i}", message_id=f"<slow{i}@customer.example>"),
                                 source="listener", now=desk.clock.now())
        pipeline.process_one(desk, row)
    assert Outbox.select().where(Outbox.status == "queued").count() == 6
    smtp_sink.stall_seconds = 3.0
    smtp_sink.mode = "stall"
    svc = services(cfg, tmp_path / "daemon.log")
    svc.wait_log("ready: listening on 127.0.0.1")
    time.sleep(1.0)  # the first mail is on its way
    code, _ = svc.terminate()
    assert code == 0
    sent = Outbox.select().where(Outbox.status == "sent").count()
    assert 1 <= sent < 6 and len(smtp_sink.received) == sent
    left = list(Outbox.select().where(Outbox.status == "queued"))
    assert len(left) == 6 - sent and all(o.claimed_by is None and o.attempts == 0 for o in left)


# ---------------------------------------------------------------- SIGHUP

def _rules(subject_regex: str, priority: str) -> str:
    return f'\n[[rules]]\nname = "hup-rule"\nsubject = "{subject_regex}"\npriority = "{priority}"\n'


def test_sighup_reloads_rules_and_templates_and_says_so(tmp_path, mailbox_user, smtp_sink, services):
    dovecot = mailbox_user.server
    templates = tmp_path / "templates"
    (templates / "en").mkdir(parents=True)
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink,
                       extra={"service": {"templates_dir": str(templates)}})
    svc = services(cfg, tmp_path / "daemon.log")
    dovecot.append(mailbox_user.name, "INBOX", make_mail(subject="Fax broken", message_id="<hup1@customer.example>"))
    svc.wait_log("mail <hup1@customer.example>")
    _db(tmp_path)
    from mailticket.models import Ticket
    assert Ticket.get().priority == "P3"
    # a new rule and an acknowledgement template of the admin's own, then SIGHUP
    cfg.write_text(cfg.read_text() + _rules("(?i)fax", "P2"))
    shipped = Path("templates/en/acknowledgement.txt").read_text()
    (templates / "en" / "acknowledgement.txt").write_text(
        shipped.replace("Thanks for getting in touch.", "RELOADED-TEMPLATE-MARK"))
    mark = len(svc.text())
    before = re.findall(r"sender process (\d+) started", svc.text())
    svc.proc.send_signal(signal.SIGHUP)
    svc.wait_log("SIGHUP: templates and rules reloaded", start=mark)
    # the sender process, which renders the admin's delivery alerts, is a new one on the new files
    after = re.findall(r"sender process (\d+) started", svc.text()[mark:])
    assert len(before) == 1 and len(after) == 1 and after != before, svc.text()
    assert f"sender process {before[0]} stopped" in svc.text()[mark:]
    smtp_sink.wait_for(2, timeout=20)
    seen = len(smtp_sink.received)
    dovecot.append(mailbox_user.name, "INBOX", make_mail(subject="Fax broken again",
                                                          message_id="<hup2@customer.example>"))
    svc.wait_log("mail <hup2@customer.example>")
    assert svc.proc.poll() is None
    assert Ticket.get(Ticket.subject == "Fax broken again").priority == "P2"
    got = smtp_sink.wait_for(seen + 2, timeout=20)[seen:]
    acks = [m for m in got if m.rcpt_tos == ["anna@customer.example"]]
    assert len(acks) == 1
    text = acks[0].message.get_body(("plain",)).get_content()
    assert "RELOADED-TEMPLATE-MARK" in text
    assert svc.terminate()[0] == 0


def test_sighup_with_a_broken_config_keeps_running_on_the_old_one(tmp_path, mailbox_user, smtp_sink, services):
    dovecot = mailbox_user.server
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    good = cfg.read_text()
    cfg.write_text(good + _rules("(?i)fax", "P2"))
    svc = services(cfg, tmp_path / "daemon.log")
    svc.wait_log("ready: watching INBOX")
    cfg.write_text(good + '\n[[rules]]\nname = "broken"\npriority = "P9"\n')
    mark = len(svc.text())
    svc.proc.send_signal(signal.SIGHUP)
    log = svc.wait_log("configuration not reloaded", start=mark)
    assert str(cfg) in log[mark:] and "rules" in log[mark:]  # names the file and the key
    dovecot.append(mailbox_user.name, "INBOX", make_mail(subject="Fax down", message_id="<hup3@customer.example>"))
    svc.wait_log("mail <hup3@customer.example>")
    assert svc.proc.poll() is None
    _db(tmp_path)
    from mailticket.models import Ticket
    assert Ticket.get().priority == "P2"  # the old rules still apply
    cfg.write_text("this is [ not toml")
    mark = len(svc.text())
    svc.proc.send_signal(signal.SIGHUP)
    svc.wait_log("configuration not reloaded", start=mark)
    assert svc.proc.poll() is None
    assert svc.terminate()[0] == 0


# ---------------------------------------------------------------- logs

def test_log_lines_name_the_mail_and_never_the_password(tmp_path, mailbox_user, smtp_sink_tls, services):
    dovecot = mailbox_user.server
    pw_file = tmp_path / "imap.password"
    pw_file.write_text(mailbox_user.password + "\n")
    cfg = write_config(tmp_path, user=mailbox_user, extra={
        "imap": {"password_file": str(pw_file)},
        "smtp": {"host": "127.0.0.1", "port": smtp_sink_tls.port, "security": "starttls", "username": "sink",
                 "password_env": "SMTP_PW", "ca_file": smtp_sink_tls.ca_file, "timeout": "5s"}})
    text = cfg.read_text().replace(f'password = "{mailbox_user.password}"\n', "")
    cfg.write_text(text)
    assert mailbox_user.password not in text
    uid = dovecot.append(mailbox_user.name, "INBOX", make_mail(message_id="<logged@customer.example>"))
    dovecot.append(mailbox_user.name, "INBOX", b"\r\n\r\n")
    svc = services(cfg, tmp_path / "daemon.log", env={"SMTP_PW": "sink-password"})
    smtp_sink_tls.wait_for(3, timeout=30)
    svc.wait_log("quarantined")
    assert svc.terminate()[0] == 0
    log = svc.text()
    lines = log.splitlines()
    assert any(f"mail <logged@customer.example> (UID {uid}): processed ticket 1" in ln for ln in lines), log
    assert any("(UID 2)" in ln and "quarantined" in ln for ln in lines), log
    for secret in (mailbox_user.password, "sink-password"):
        assert secret not in log
    # one line per event: every line starts with a level
    assert all(ln.split(" ", 1)[0] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") for ln in lines if ln), log


def test_a_traceback_is_logged_on_one_line():
    code = ("import logging; from mailticket.service.logsetup import configure; configure(); log = logging.getLogger('x')\n"
            "try:\n    raise ValueError('bad\\nmail')\nexcept ValueError:\n"
            "    log.exception('mail <m@x> (UID 7) failed')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    [line] = done.stderr.splitlines()
    assert line.startswith("ERROR x: mail <m@x> (UID 7) failed | Traceback (most recent call last):")
    assert line.endswith("ValueError: bad | mail")
