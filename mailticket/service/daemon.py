"""The loop: fetch, process, check the clocks; the sender process (mailticket.service.sender) sends what
the loop queued. Signals only set flags.

SIGTERM finishes the mail in hand (in both processes), commits and exits 0; SIGHUP reloads
templates and rules, and starts a new sender process on them.
READY is told to systemd after the first successful mailbox check; WATCHDOG only while the
loop makes progress.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime
from functools import partial
from pathlib import Path

import peewee as pw
import schedule

from . import intake

from . import desklock, lease

from ..outbound import outbox

from ..desk import alarms, pipeline
from ..marks import FailingMark
from ..db import describe_error, redact, sqlite_path
from ..errors import ConfigError, MailboxError, StorageError
from .mailbox import ImapSource, Listener
from ..models import database_proxy
from .sdnotify import Notifier
from .sender import SenderProcess, tell_admin_failed
from ..outbound.sentlog import SentLog
from .transport import make_transport

log = logging.getLogger("mailticket.daemon")

MAX_BACKOFF = 60.0
SENDER_RESTART_EVERY = 10.0  # seconds at least between two starts of the sender process
RETENTION_ROUNDS = 5  # batches of each kind a retention run removes before the intake goes on
CALL_CHECK_SECONDS = 30  # how often the daemon looks for due call reminders


class Daemon:
    def __init__(self, desk, *, transport=None, notifier: Notifier | None = None, worker: str | None = None,
                 config_loader=None):
        self.desk = desk
        self.config = desk.config
        self.transport = transport or make_transport(self.config)
        self.notifier = notifier or Notifier()
        self.worker = worker or outbox.WORKER_ID
        self.config_loader = config_loader
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.reload_requested = threading.Event()
        self.source = ImapSource(self.config.imap) if self.config.imap else None
        self.sender: SenderProcess | None = None  # the outbox's own process, once run() started it
        self.sent_log: SentLog | None = None  # SQLite: what that process sent, until folded in
        self._sender_seen = 0
        self._sender_restart_at = 0.0
        self._turn_sent = 0  # mails sent in this turn of the loop, for the status line
        self.listener = None
        self.desk_locks: list[int] = []  # run() holds the desk (desklock)
        self.ready = False
        self.holds_lease = False
        self.backoff = 1.0
        self.mailbox_mark = FailingMark("mailbox")  # since when the mailbox fails, for the alarms
        self.scheduler = schedule.Scheduler()
        interval = max(1, int(self.config.sla.check_interval.total_seconds()))
        self.scheduler.every(interval).seconds.do(self.check_clocks)
        self.scheduler.every(alarm_check_interval(self.config)).seconds.do(self.check_alarms)
        self.scheduler.every(min(interval, CALL_CHECK_SECONDS)).seconds.do(self.check_calls)
        self._retention_continues = False
        retention_job = self.scheduler.every(1).days.do(self.apply_retention)
        retention_job.next_run = datetime.now()  # due at the first turn, then daily (schedule's local clock)

    # ------------------------------------------------------------ life cycle

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.request_stop("SIGTERM"))
        signal.signal(signal.SIGINT, lambda *_: self.request_stop("SIGINT"))
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())

    def request_stop(self, why: str) -> None:
        log.info("%s received: finishing the mail in hand, then stopping", why)
        self.stop.set()

    def run(self) -> int:
        """Hold the desk, bind the listener, then start the sender and loop. The first two come
        before any mail is sent: a second daemon on this desk, or one whose port is taken, stops
        there (DeskBusy, MailboxError) having sent nothing."""
        self.hold_desk()
        try:
            if self.config.listener.enabled:
                self.listener = Listener(self.config.listener, self._store_from_listener, self.wake)
                self.listener.start()
        except BaseException:
            self.listener = None
            self._release_desk()
            raise
        try:
            self._release_stale_claims()
            self._start_sender()
            self.desk.mailer.defer = True  # the sender process renders what is queued, on the other core
            if self.listener is not None and self.source is None:
                self._mark_ready("listening on %s:%s" % (self.config.listener.host, self.config.listener.port))
            while not self.stop.is_set():
                self.loop_once()
        finally:
            self.shutdown()
        log.info("stopped")
        return 0

    def hold_desk(self) -> None:
        """SQLite: this daemon alone (exclusive locks on the data folder and beside the database);
        PostgreSQL: shared with the scale-out's other daemons, so that only restore is kept out."""
        data_dir = self.config.service.data_dir
        path = sqlite_path(self.config.database.url)
        if path is None:
            self.desk_locks = [desklock.hold_shared(data_dir)]  # restore waits for us
            return
        files = [Path(data_dir) / desklock.LOCK_FILE]
        beside = Path(f"{path}.lock")
        if Path(data_dir).resolve() != beside.parent.resolve():
            files.append(beside)
        self.desk_locks = desklock.hold_alone(files)

    def _release_desk(self) -> None:
        desklock.release_all(self.desk_locks)
        self.desk_locks = []

    def _release_stale_claims(self) -> None:
        """SQLite means one daemon: what a killed predecessor claimed is free again."""
        if not self._shared_database():
            self._until_done(intake.release_all_claims)

    def _until_done(self, step) -> None:
        """A start-up step that needs the database: retried with back-off until it works or we stop."""
        while not self.stop.is_set():
            try:
                step()
                return
            except (pw.OperationalError, pw.InterfaceError) as exc:
                self._database_failed(exc)

    def _start_sender(self) -> None:
        """The sender process; on SQLite first fold what a predecessor sent (its log)."""
        path = sqlite_path(self.config.database.url)
        if path is not None and self.sent_log is None:
            def open_log():
                self.sent_log = SentLog.beside(path)
            self._until_done(open_log)
            self._until_done(self.fold_sent)
        self._sender_seen = 0
        # one that dies at once is not started again in a tight loop
        self._sender_restart_at = time.monotonic() + SENDER_RESTART_EVERY
        keep = tuple(self.desk_locks) if sqlite_path(self.config.database.url) else ()  # one sender: desklock
        self.sender = SenderProcess(self.config, worker=self.worker, on_sent=self.wake.set, keep_fds=keep).start()

    def fold_sent(self) -> None:
        """SQLite: mark what the sender process sent as sent in the outbox."""
        if self.sent_log is not None:
            self.sent_log.fold()

    def shutdown(self) -> None:
        self.notifier.stopping()
        if self.sender is not None:
            self.sender.stop()  # it finishes the mail in hand, ABORT_AFTER at most
            try:
                self.fold_sent()
            except pw.PeeweeException as exc:  # folded at the next start
                log.error("could not record the last sent mails: %s",
                          describe_error(exc, sqlite_path(self.config.database.url)))
        if self.sent_log is not None:
            self.sent_log.close()
        if self.listener is not None:
            self.listener.stop()
        self._release_desk()
        if self.source is not None:
            self.source.close()
            if self._shared_database():
                try:
                    lease.release(self.source.source, self.worker)
                except pw.PeeweeException:
                    pass

    def _mark_ready(self, status: str) -> None:
        if not self.ready:
            self.ready = True
            self.notifier.ready(status)
            log.info("ready: %s", status)

    def _store_from_listener(self, raw: bytes) -> None:
        try:
            pipeline.store_raw(raw, source="listener", now=self.desk.clock.now())
        except pw.PeeweeException as exc:  # the listener answers 451 and logs this
            raise pw.OperationalError(self._database_text(exc)) from exc

    # ------------------------------------------------------------ one turn of the loop

    def loop_once(self) -> None:
        if self.reload_requested.is_set():
            self.reload_requested.clear()
            self.reload()
        try:
            new_mail = self.cycle()
            self.backoff = 1.0
            self.notifier.watchdog()
            if not new_mail and not self.stop.is_set():
                self.wait()
        except MailboxError as exc:
            self._failed("mailbox", str(exc))
        except StorageError as exc:  # the batch was rolled back: its mails are processed again
            self._failed("attachment storage", str(exc))
        except (pw.OperationalError, pw.InterfaceError) as exc:
            self._database_failed(exc)
            try:
                database_proxy.obj.close()  # the next turn opens a fresh connection
            except Exception:
                pass

    def _database_failed(self, exc: Exception) -> None:
        self._failed("database", self._database_text(exc))

    def _database_text(self, exc: Exception) -> str:
        url = self.config.database.url
        return f"database {redact(url)}: {describe_error(exc, sqlite_path(url))}"

    def _failed(self, what: str, message: str) -> None:
        log.error("%s failed: %s; retrying in %.0f s", what, message, self.backoff)
        self.notifier.status(f"{what} failing: {message} (retry in {self.backoff:.0f}s)")
        try:
            now = self.desk.clock.now()
            intake.record_error(f"last_{what}_error", message, now)
            if what == "mailbox":
                self.mailbox_mark.failed(now, message, refresh=True)
            if what != "database":  # the alarms need the database; they look while the rest waits
                self.check_alarms()
        except pw.PeeweeException:
            pass
        self.stop.wait(self.backoff)
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)

    def cycle(self) -> bool:
        """Fetch and process, check the clocks when due, drain the outbox. True if new mail came in."""
        got_mail, processed = False, 0
        self._turn_sent = 0
        if self.source is not None and self._holds_folder():
            if self.source.client is None:
                self.source.connect()
            # ready once the mailbox answered, not after a first backlog of thousands of mails
            self._mark_ready(f"watching {self.config.imap.folder} on {self.config.imap.host}")
            result = intake.imap_cycle(self.desk, self.source, self.worker, stop=self.stop, on_batch=self._batch_done,
                                       still_ours=self._holds_folder)
            self.mailbox_mark.worked()
            got_mail, processed = result.fetched > 0, len(result.outcomes)
        elif self.source is not None:
            self._mark_ready(f"standby: another daemon reads {self.config.imap.folder}; "
                             "processing stored mail and sending")
        self.wake.clear()
        done = intake.process_pending(self.desk, self.worker, stop=self.stop)
        got_mail, processed = got_mail or bool(done), processed + len(done)
        if not self.stop.is_set():
            self.scheduler.run_pending()
        self.drain()
        self.notifier.status(self._status_line(processed, self._turn_sent + self._sent_by_sender()))
        return got_mail

    def _batch_done(self, done: int, total: int) -> None:
        """A batch of a long backlog is processed: that is progress, so the watchdog hears of it,
        and its acknowledgements go out now rather than after the whole backlog."""
        self.notifier.watchdog()
        self.notifier.status(f"processing new mail in {self.config.imap.folder}: {done} of {total}")
        if not self.stop.is_set():
            self.drain()

    def _holds_folder(self) -> bool:
        """Take or renew the folder lease (PostgreSQL); without it, leave the folder to its holder."""
        if not self._shared_database():
            return True
        held = lease.acquire(self.source.source, self.worker, self.desk.clock.now(), self.config.database.lease_ttl)
        if held != self.holds_lease:
            log.info("%s the lease on %s (worker %s)", "took" if held else "lost", self.source.source, self.worker)
            self.holds_lease = held
        if not held and self.source.client is not None:
            self.source.close()
        return held

    def _shared_database(self) -> bool:
        return self.config.database.url.startswith("postgres")

    def drain(self):
        """Send what is due now; once run() started the sender process: fold in what it sent
        (SQLite) and tell it there is more."""
        if self.sender is not None:
            self.fold_sent()
            if not self.sender.is_alive() and not self.stop.is_set() and time.monotonic() >= self._sender_restart_at:
                log.error("the sender process %s had stopped (exit status %s); starting it again",
                          self.sender.pid, self.sender.proc.returncode)
                self.sender.close()
                self._start_sender()
            self.sender.nudge()
            return None
        result = outbox.drain(self.transport, self.desk.clock.now(), self.config.outbox, worker=self.worker,
                              on_failed=partial(tell_admin_failed, self.desk), stop=self.stop,
                              compose=self.desk.mailer.mail_bytes)
        self._turn_sent += result.sent
        return result

    def _sent_by_sender(self) -> int:
        """What the sender process sent since the last turn asked."""
        if self.sender is None:
            return 0
        sent, self._sender_seen = self.sender.sent - self._sender_seen, self.sender.sent
        return sent

    @staticmethod
    def _guarded(job, failed: str):
        """Run one periodic job: a database that fails goes up to the loop (its back-off and alarm);
        any other error is logged with ``failed`` and the job runs again at its next turn (None)."""
        try:
            return job()
        except (pw.OperationalError, pw.InterfaceError):
            raise
        except Exception:
            log.exception(failed)
            return None

    def check_clocks(self):
        from ..desk.escalation import run_sla_check
        try:
            return self._guarded(lambda: run_sla_check(self.desk, self.desk.clock.now()),
                                 "SLA check failed; trying again at the next interval")
        finally:
            self.send_reports()

    def send_reports(self):
        """The manager's weekly and monthly report mails, when their moment has come ([reports])."""
        from ..desk.reporting import send_scheduled
        if self.config.reports is None or not self.config.reports.slots:
            return
        self._guarded(lambda: send_scheduled(self.desk, self.desk.clock.now()),
                      "the scheduled report failed; trying again at the next SLA check")

    def apply_retention(self):
        """[retention]: at the first turn after start, then daily. A big run (retention turned on for
        an old desk) removes RETENTION_ROUNDS batches, then the rest each minute, the intake served
        in between."""
        done = self._retention_round()
        if done is not None and done.more and not self._retention_continues:
            self._retention_continues = True
            self.scheduler.every(1).minutes.do(self._continue_retention)
        return done

    def _continue_retention(self):
        done = self._retention_round()
        if done is None or not done.more:
            self._retention_continues = False
            return schedule.CancelJob
        return None

    def _retention_round(self):
        policy = self.config.retention
        if not (policy.raw_mail or policy.closed_tickets):
            return None
        from ..desk import retention
        return self._guarded(lambda: retention.purge(policy, self.config.service.data_dir, self.desk.clock.now(),
                                                     self.config.service.locale, rounds=RETENTION_ROUNDS),
                             "retention failed; trying again tomorrow")

    def check_calls(self):
        """The agents' reminders of their calls ([calls] remind_before), on the desk's clock."""
        from ..desk.calls import send_reminders
        return self._guarded(lambda: send_reminders(self.desk, self.desk.clock.now()),
                             "call reminders failed; trying again at the next check")

    def check_alarms(self):
        """Mail the admin about problems that lasted ``alarm_after``, and when they clear."""
        return self._guarded(lambda: alarms.check(self.desk, self.desk.clock.now()),
                             "alarm check failed; trying again at the next interval")

    def wait(self) -> None:
        seconds = self.config.imap.poll_interval.total_seconds() if self.config.imap else 1.0
        next_job = self.scheduler.idle_seconds
        if next_job is not None:
            seconds = max(0.05, min(seconds, next_job))
        if self.sender is None:
            seconds = min(seconds, outbox.next_due_in(self.desk.clock.now()))
        if self.source is not None and self._shared_database():
            # the holder renews its lease well before it runs out; the others look again as often
            seconds = min(seconds, self.config.database.lease_ttl.total_seconds() / 3)
        if self.notifier.watchdog_usec:  # come round (and ping) well within the watchdog period
            seconds = min(seconds, self.notifier.watchdog_usec / 2e6)
        if self.source is not None and self.source.client is not None:
            self.source.wait(seconds, self.stop, self.wake)
        else:
            deadline = time.monotonic() + seconds
            while not self.stop.is_set() and not self.wake.is_set() and time.monotonic() < deadline:
                self.wake.wait(min(0.25, max(0.0, deadline - time.monotonic())))

    def _status_line(self, processed: int = 0, sent: int = 0) -> str:
        """What systemctl status shows: where it listens, what the last turn did, what waits."""
        from ..models import InboundMail, Outbox
        queued = Outbox.select().where(Outbox.status == "queued").count()
        quarantined = InboundMail.select().where(InboundMail.state == "quarantined").count()
        where = (f"watching {self.config.imap.folder} on {self.config.imap.host}" if self.config.imap
                 else f"listening on {self.config.listener.host}:{self.config.listener.port}")
        return (f"{where}; last turn: {processed} mail(s) processed, {sent} sent; "
                f"{queued} mail(s) queued to send, {quarantined} in quarantine")

    # ------------------------------------------------------------ SIGHUP

    def reload(self) -> None:
        """Reload templates and rules; on a broken file keep what runs and say so."""
        try:
            if self.config_loader is not None:
                new = self.config_loader()
                self.desk.config = self.config = _with_runtime(self.config, new)
                self.desk.mailer.config = self.config
            self.desk.renderer.reload()
            if self.sender is not None:  # it renders the admin's delivery alerts: on the new files too
                self.sender.stop()
                self._start_sender()
            problems = self.desk.renderer.check()
            if problems:
                log.error("SIGHUP: template problems, keeping the shipped ones where broken: %s", "; ".join(problems))
            log.info("SIGHUP: templates and rules reloaded")
        except ConfigError as exc:
            log.error("SIGHUP: configuration not reloaded, still running with the previous one: %s", exc)


def alarm_check_interval(config) -> int:
    """Seconds between two looks at the alarms: a quarter of ``alarm_after``, 1 to 10 s."""
    return int(min(10, max(1, config.service.alarm_after.total_seconds() // 4)))


def _with_runtime(old, new):
    """Rules, SLA, tiers and templates come from the new file; connections stay as they are."""
    import dataclasses
    return dataclasses.replace(old, rules=new.rules, sla=new.sla, tiers=new.tiers, monitoring=new.monitoring,
                               reports=new.reports,
                               rate_limits=new.rate_limits, raw=new.raw, retention=new.retention,
                               service=dataclasses.replace(new.service, data_dir=old.service.data_dir))
