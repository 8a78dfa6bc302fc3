"""What the benchmarks share: the machine description, RESULTS.md, a lean SMTP sink, Dovecot
appends in bulk, the bench config, and waiting for the daemon to finish a corpus."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout: mailticket/ and tests/ importable

RESULTS = ROOT / "bench" / "RESULTS.md"


# ---------------------------------------------------------------- the machine and the results file

def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return f"{os.cpu_count()} × {cpu}{mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, summed over its cores (/proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one live process, all its threads (/proc/PID/stat)."""
    return sum(int(f) for f in _proc_stat(pid)[1][11:13]) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the live child processes of ``pid`` (the daemon's sender)."""
    from tests.harness import child_pids
    total = 0.0
    for child in child_pids(pid):
        try:
            total += process_cpu_seconds(child)
        except OSError:  # it ended meanwhile
            pass
    return total


def _proc_stat(pid: int) -> tuple[str, list[str]]:
    """A process's name and the fields of /proc/PID/stat after it (state first, then ppid, ...;
    utime, stime, cutime, cstime at 11-14). OSError when it has ended."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 1:].split()


def server_cpu_seconds(pid: int) -> float:
    """CPU seconds of a server (Dovecot, PostgreSQL) whose master is ``pid``: the master and every
    process below it, live or ended. An ended process is counted in its parent's cutime/cstime
    once reaped, so each process is counted once, and the difference of two readings is what the
    server spent between them."""
    from tests.harness import child_pids
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = _proc_stat(p)[1]
            todo += child_pids(p)
        except OSError:  # it ended meanwhile (then its parent counts it)
            continue
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def postgres_master_pid() -> int | None:
    """The pid of the local PostgreSQL server's master process (a process named postgres whose
    parent is not), or None when none runs here."""
    names = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            comm, fields = _proc_stat(int(entry.name))
        except OSError:
            continue
        names[int(entry.name)] = (comm, int(fields[1]))
    masters = [pid for pid, (comm, ppid) in names.items()
               if comm == "postgres" and names.get(ppid, ("", 0))[0] != "postgres"]
    return min(masters) if masters else None


def command_line() -> str:
    """The command as run from the repository (its interpreter relative to it, e.g. .venv/bin/python)."""
    repo = Path(__file__).resolve().parents[1]
    python = Path(sys.executable)
    try:
        python = python.relative_to(repo)
    except ValueError:
        pass
    return f"{python} " + " ".join(shlex.quote(a) for a in sys.argv)


def record(title: str, lines: list[str], *, load_before: str) -> None:
    """Print the figures and append them, dated, with machine and command, to bench/RESULTS.md."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = [f"## {title} — {stamp}", "", f"- machine: {machine()}",
             f"- load average (1/5/15 min) before: {load_before}; after: {load_average()}",
             f"- command: `{command_line()}`", ""] + [f"- {line}" for line in lines] + [""]
    text = "\n".join(block)
    print(text)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEach run appends its section; newest last.\n\n", encoding="utf-8")
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write(text + "\n")


# ---------------------------------------------------------------- a lean SMTP sink

@dataclass
class Arrival:
    at: float          # time.monotonic() when DATA was accepted
    mail_from: str
    rcpt_tos: list[str]
    in_reply_to: str   # the In-Reply-To header, "" when none


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# a path of dot-atoms alone, then its parameters (leading spaces dropped, as aiosmtpd drops them)
_PLAIN_PATH = re.compile(rf"<(?P<address>(?P<local>{_ATOM}(?:\.{_ATOM})*)@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
                         r" *(?P<rest>(?:\S.*)?)\Z", re.S)


def _whole_data_smtp():
    """aiosmtpd's SMTP, reading the DATA of a mail in one piece instead of line by line.

    aiosmtpd reads DATA a line at a time through asyncio: about 4 µs a line, and the desk's mails
    have some 200 lines (text and HTML), so the bench's sink took more CPU of the two cores than the
    daemon's sender did. A real desk hands its mail to an MTA elsewhere; this sink only has to take
    it in correctly: the block ends at CRLF.CRLF, and the leading dots are removed (RFC 5321 4.5.2)."""
    import asyncio
    from aiosmtpd.smtp import MISSING
    from tests.servers.smtpsink import ChunkingSMTP

    class WholeDataSMTP(ChunkingSMTP):
        line_length_limit = 1 << 20  # the reader's buffer: a mail of the bench is read in one call

        def _getaddr(self, arg: str):
            """The path of MAIL and RCPT: the plain ``<local@domain>`` the desk sends read by one
            regular expression, anything else by aiosmtpd. Its parser (the email package's header
            parser, and a typing.Protocol class made anew for each call) took 59 µs an address,
            a quarter of this sink's CPU."""
            m = _PLAIN_PATH.match(arg)
            if m is None or (self.local_part_limit and len(m["local"]) > self.local_part_limit):
                return super()._getaddr(arg)
            return m["address"], m["rest"]

        async def smtp_DATA(self, arg: str) -> None:
            if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
                return
            if not self.envelope.rcpt_tos:
                await self.push("503 Error: need RCPT command")
                return
            if arg:
                await self.push("501 Syntax: DATA")
                return
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            block = await self._read_block()
            content = (block[1:] if block.startswith(b".") else block).replace(b"\r\n.", b"\r\n")
            self.envelope.content = self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push("250 OK" if status is MISSING else status)

        async def _read_block(self) -> bytes:
            """Up to the line that is a lone dot (not included); a line that only ends in a dot,
            or a read over the buffer's limit, reads on."""
            buf = bytearray()
            while True:
                try:
                    buf += await self._reader.readuntil(b".\r\n")
                except asyncio.LimitOverrunError as exc:
                    buf += await self._reader.readexactly(exc.consumed)
                    continue
                if len(buf) == 3 or buf[-5:-3] == b"\r\n":
                    return bytes(buf[:-3])

    return WholeDataSMTP


@dataclass
class LeanSink:
    """An aiosmtpd sink that only notes envelope, In-Reply-To and the time (no MIME parsing, DATA
    read in one piece), so the sink costs the machine little while the daemon is measured. It
    offers PIPELINING and CHUNKING, as Postfix does."""

    port: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    fail_every: int = 0        # answer 451 to every n-th DATA (soak), 0 = never
    contents: list[bytes] | None = None  # each mail's bytes, when a list is given
    _controller: object = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0

    def start(self) -> "LeanSink":
        from aiosmtpd.controller import Controller
        from tests.servers.smtpsink import ehlo_responses
        from tests.servers.system import free_port
        sink = self
        smtp_class = _whole_data_smtp()

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):
                return ehlo_responses(session, hostname, responses)

            async def handle_DATA(self, server, session, envelope):
                with sink._lock:
                    sink._count += 1
                    if sink.fail_every and sink._count % sink.fail_every == 0:
                        return "451 4.3.0 bench sink: try again later"
                head = envelope.content[:8192]
                m = re.search(rb"^In-Reply-To:\s*(<[^>\r\n]*>)", head, re.M | re.I)
                sink.arrivals.append(Arrival(time.monotonic(), envelope.mail_from, list(envelope.rcpt_tos),
                                             m.group(1).decode("ascii", "replace") if m else ""))
                if sink.contents is not None:
                    sink.contents.append(envelope.content)
                return "250 2.0.0 OK"

        class WholeDataController(Controller):
            def factory(self):
                return smtp_class(self.handler, **self.SMTP_kwargs)

        self.port = self.port or free_port()
        self._controller = WholeDataController(Handler(), hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Arrival]:
        return [a for a in list(self.arrivals) if address in a.rcpt_tos]


# ---------------------------------------------------------------- Dovecot

def start_dovecot():
    from tests.conftest import new_mailbox_user
    from tests.servers.dovecot import Dovecot, ensure_dovecot_installed
    if not ensure_dovecot_installed():
        sys.exit("Dovecot is not installed")
    server = Dovecot().start()
    return server, new_mailbox_user(server)


def append_all(user, raws: list[bytes], folder: str = "INBOX", chunk: int = 200) -> None:
    """APPEND every mail, ``chunk`` at a time in one MULTIAPPEND command."""
    with user.server.client(user.name) as imap:
        for i in range(0, len(raws), chunk):
            imap.multiappend(folder, [r for r in raws[i:i + chunk]])


# ---------------------------------------------------------------- the config of a bench run

def bench_config(tmp: Path, *, user, sink, db_url: str | None = None, idle: bool = True, poll: str = "1s",
                 batch_size: int = 200, extra: dict | None = None) -> Path:
    """A config for the bench servers. Rate limits are raised: 10,000 requesters writing within
    minutes would (rightly) trip the default global limit of 1000 automatic mails per 10 minutes, and
    a bench that sends many mails from one sender the per-sender cap of tier notices."""
    from tests.harness import write_config
    more = {"rate_limits": {"per_ticket": 1000, "per_sender_day": 1000, "global_10min": 10_000_000,
                            "tier_notices_per_sender_hour": 1_000_000}}
    more.update(extra or {})
    path = write_config(tmp, user=user, sink=sink, db_url=db_url, extra=more)
    text = path.read_text()
    text = text.replace('poll_interval = "1s"', f'poll_interval = "{poll}"')
    text = text.replace("idle = true", f"idle = {'true' if idle else 'false'}\nbatch_size = {batch_size}")
    path.write_text(text)
    return path


# ---------------------------------------------------------------- watching the daemon's database

class DbWatch:
    """Read-only counts from the daemon's database (SQLite file or PostgreSQL URL)."""

    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite"):
            self.conn = sqlite3.connect(url.split("///", 1)[1], timeout=30)
            self.conn.execute("PRAGMA query_only = 1")
            self.mark = "?"
        else:
            import psycopg2
            self.conn = psycopg2.connect(url.replace("postgresql://", "postgres://", 1))
            self.conn.autocommit = True
            self.mark = "%s"

    def one(self, sql: str, *args):
        try:
            cur = self.conn.cursor()
            cur.execute(sql.replace("?", self.mark), args)
            row = cur.fetchone()
            return row[0] if row else None
        except Exception as exc:  # the daemon has not created the tables yet
            if "no such table" in str(exc) or "does not exist" in str(exc):
                if not self.url.startswith("sqlite"):
                    self.conn.rollback() if not self.conn.autocommit else None
                return None
            raise

    def progress(self) -> dict:
        return {
            "stored": self.one("SELECT COUNT(*) FROM inbound_mail") or 0,
            "pending": self.one("SELECT COUNT(*) FROM inbound_mail WHERE state = 'received'") or 0,
            "unmoved": self.one("SELECT COUNT(*) FROM inbound_mail WHERE moved = ?", False) or 0,
            "tickets": self.one("SELECT COUNT(*) FROM ticket") or 0,
            "queued": self.one("SELECT COUNT(*) FROM outbox WHERE status = 'queued'") or 0,
            "sent": self.one("SELECT COUNT(*) FROM outbox WHERE status = 'sent'") or 0,
            "acks": self.one("SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement'") or 0,
            "quarantined": self.one("SELECT COUNT(*) FROM inbound_mail WHERE state = 'quarantined'") or 0,
        }

    def close(self) -> None:
        self.conn.close()


def wait_finished(watch: DbWatch, sink: LeanSink, n: int, *, timeout: float, proc=None, every: float = 0.1,
                  show: bool = True) -> dict:
    """Until all ``n`` mails are processed and moved, nothing is queued and every sent mail has
    reached the sink. Returns the last progress counts.

    Counted every second until the last mail is stored, then every ``every`` seconds: the counts
    scan tables the daemon is filling, and a watcher that ran them ten times a second took CPU
    from the daemon it measures (the end is still seen within ``every``)."""
    deadline = time.monotonic() + timeout
    last_show = 0.0
    while True:
        p = watch.progress()
        done = (p["stored"] >= n and p["pending"] == 0 and p["unmoved"] == 0 and p["queued"] == 0
                and len(sink.arrivals) >= p["sent"] > 0)
        if done:
            return p
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode}: {p}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"not finished after {timeout:.0f} s: {p}, sink {len(sink.arrivals)}")
        if show and time.monotonic() - last_show > 5:
            last_show = time.monotonic()
            print(f"  … {p}, sink {len(sink.arrivals)}", file=sys.stderr, flush=True)
        time.sleep(every if p["stored"] >= n else max(every, 1.0))

