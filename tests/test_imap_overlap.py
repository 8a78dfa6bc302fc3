"""A backlog's IMAP commands run on a thread of their own, so the next batch is fetched and the
last one moved while the desk processes this one. What must still hold: one command at a time on
the connection, in order; a batch moved only after its commit, marked moved only after the server
said so; a failure of either command surfaces as MailboxError and loses nothing; a lost lease
stops the cycle before the next fetch and the next move."""

from __future__ import annotations

import threading

import pytest

from mailticket import db

from mailticket.service import intake
from mailticket.config import load_config
from mailticket.service.wiring import build_desk
from mailticket.errors import MailboxError
from mailticket.service.mailbox import ImapSource
from mailticket.models import InboundMail, Ticket
from tests.harness import make_mail, write_config

BATCH = 5
N_MAILS = 15


class RecordingSource(ImapSource):
    """A real connection that records each FETCH and MOVE (by the first UID of its batch), fails
    the one named in ``fail``, and checks that no two commands overlap and that a move only
    takes mails whose processing is committed (seen from a connection of its own)."""

    def __init__(self, cfg, fail: tuple[str, int] | None = None):
        super().__init__(cfg)
        self.events: list[tuple[str, int]] = []
        self.threads: set[str] = set()
        self.problems: list[str] = []
        self.fail = fail
        self._busy = threading.Lock()

    def fetch(self, uids):
        return self._command("fetch", uids, lambda: super(RecordingSource, self).fetch(uids))

    def move(self, uids, folder):
        def move():
            stored = InboundMail.select().where(InboundMail.uid.in_(uids), InboundMail.state != "received")
            if stored.count() != len(uids):
                self.problems.append(f"moving UIDs {uids} before their processing was committed")
            return super(RecordingSource, self).move(uids, folder)
        return self._command("move", uids, move)

    def _command(self, verb, uids, run):
        if not self._busy.acquire(blocking=False):
            self.problems.append(f"{verb} {uids[0]} while another command was running")
            self._busy.acquire()
        try:
            self.events.append((verb, uids[0]))
            self.threads.add(threading.current_thread().name)
            if self.fail == (verb, uids[0]):
                self.close()  # as _call does when the server fails
                raise MailboxError(f"IMAP {self.cfg.host}:{self.cfg.port}: test: {verb} refused")
            return run()
        finally:
            self._busy.release()


@pytest.fixture
def desk_and_mail(tmp_path, mailbox_user, smtp_sink):
    dovecot, user = mailbox_user.server, mailbox_user.name
    cfg = load_config(write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={"imap": {"batch_size": BATCH}}))
    db.connect(cfg.database.url)
    for i in range(N_MAILS):
        dovecot.append(user, "INBOX", make_mail(message_id=f"<overlap-{i}@customer.example>", subject=f"Problem {i}",
                                                sender=f"User {i} <user{i}@customer.example>"))
    return build_desk(cfg), cfg, dovecot, user


def _connected(cfg, **kwargs) -> RecordingSource:
    source = RecordingSource(cfg.imap, **kwargs)
    source.connect()
    return source


def test_the_next_batch_is_fetched_before_the_last_is_moved_one_command_at_a_time(desk_and_mail):
    desk, cfg, dovecot, user = desk_and_mail
    source = _connected(cfg)
    try:
        result = intake.imap_cycle(desk, source, "w")
    finally:
        source.close()
    uids = sorted({uid for _, uid in source.events})
    first, second, third = uids
    assert source.events == [("fetch", first), ("fetch", second), ("move", first), ("fetch", third),
                             ("move", second), ("move", third)]
    assert source.problems == []
    assert len(source.threads) == 1 and next(iter(source.threads)).startswith("imap")
    assert (result.fetched, len(result.outcomes), result.moved) == (N_MAILS, N_MAILS, N_MAILS)
    assert dovecot.folder_count(user, "INBOX") == 0 and dovecot.folder_count(user, "Processed") == N_MAILS
    assert InboundMail.select().where(InboundMail.moved == False).count() == 0  # noqa: E712


@pytest.mark.parametrize("fail", ["fetch", "move"])
def test_a_failed_fetch_or_move_on_the_imap_thread_surfaces_and_loses_nothing(desk_and_mail, fail):
    desk, cfg, dovecot, user = desk_and_mail
    looker = _connected(cfg)
    all_uids = sorted(looker.list_uids())
    looker.close()
    failing = all_uids[BATCH] if fail == "fetch" else all_uids[0]  # the second batch's fetch, the first's move
    source = _connected(cfg, fail=(fail, failing))
    with pytest.raises(MailboxError, match=f"test: {fail} refused"):
        intake.imap_cycle(desk, source, "w")
    assert source.problems == []
    processed = Ticket.select().count()
    assert processed == (BATCH if fail == "fetch" else 2 * BATCH)  # what was fetched is processed and committed
    assert dovecot.folder_count(user, "Processed") == 0  # and nothing moved after the failure
    assert InboundMail.select().where(InboundMail.moved == True).count() == 0  # noqa: E712

    source = _connected(cfg)  # the daemon reconnects and looks again
    try:
        intake.imap_cycle(desk, source, "w")
    finally:
        source.close()
    assert source.problems == []
    assert Ticket.select().count() == N_MAILS
    assert sorted(t.thread_root for t in Ticket.select()) == sorted(
        f"overlap-{i}@customer.example" for i in range(N_MAILS))
    assert dovecot.folder_count(user, "INBOX") == 0 and dovecot.folder_count(user, "Processed") == N_MAILS
    assert InboundMail.select().where(InboundMail.moved == False).count() == 0  # noqa: E712


def test_a_lease_lost_mid_cycle_stops_before_the_next_fetch_and_move(desk_and_mail):
    desk, cfg, dovecot, user = desk_and_mail
    answers = iter([True, True])  # the first batch may be moved; asked before the third fetch: lost

    source = _connected(cfg)
    try:
        intake.imap_cycle(desk, source, "w", still_ours=lambda: next(answers, False))
    finally:
        source.close()
    first, second = sorted({uid for _, uid in source.events})
    assert source.events == [("fetch", first), ("fetch", second), ("move", first)]
    assert source.problems == []
    assert Ticket.select().count() == 2 * BATCH  # the batch in hand is finished, then the folder left
    assert dovecot.folder_count(user, "Processed") == BATCH
    assert dovecot.folder_count(user, "INBOX") == N_MAILS - BATCH
