"""ImapSource.wait: mail announced only in the answer to DONE, or only to the NOOP after the first
short IDLE (a mail that arrived as IDLE began), still ends the wait at once."""

import threading

import pytest

from mailticket.service import mailbox
from mailticket.config import load_config
from tests.harness import write_config


class FakeClient:
    """Scripted IMAP answers: idle_check / idle_done / noop responses in order."""

    def __init__(self, checks=(), dones=(), noops=()):
        self.checks, self.dones, self.noops = list(checks), list(dones), list(noops)
        self.calls = []

    def idle(self):
        self.calls.append("IDLE")

    def idle_check(self, timeout):
        self.calls.append("check")
        return self.checks.pop(0) if self.checks else []

    def idle_done(self):
        self.calls.append("DONE")
        return (b"Idle completed", self.dones.pop(0) if self.dones else [])

    def noop(self):
        self.calls.append("NOOP")
        return (b"NOOP completed", self.noops.pop(0) if self.noops else [])


@pytest.fixture
def source(tmp_path, monkeypatch):
    class User:
        name, password = "u", "p"

        class server:
            imap_port = 143
    cfg = load_config(write_config(tmp_path, user=User))
    src = mailbox.ImapSource(cfg.imap)
    src.can_idle = True
    monkeypatch.setattr(mailbox, "RECHECK_AFTER", 0.25)
    return src


def test_exists_in_the_answer_to_done_ends_the_wait(source):
    source.client = FakeClient(dones=[[(1, b"EXISTS"), (1, b"RECENT")]])
    assert source.wait(0.25, threading.Event(), threading.Event()) is True


def test_mail_that_arrived_as_idle_began_is_found_by_the_noop(source):
    source.client = FakeClient(noops=[[(3, b"EXISTS")]])
    assert source.wait(30, threading.Event(), threading.Event()) is True
    assert source.client.calls == ["IDLE", "check", "DONE", "NOOP"]


def test_nothing_new_idles_the_rest_of_the_time(source):
    source.client = FakeClient()
    assert source.wait(0.5, threading.Event(), threading.Event()) is False
    assert source.client.calls == ["IDLE", "check", "DONE", "NOOP", "IDLE", "check", "DONE"]


def test_announced_during_idle_ends_the_wait_without_noop(source, monkeypatch):
    monkeypatch.setattr(mailbox, "RECHECK_AFTER", 1.0)
    source.client = FakeClient(checks=[[(b"OK", b"Still here")], [(2, b"EXISTS")]])
    assert source.wait(30, threading.Event(), threading.Event()) is True
    assert "NOOP" not in source.client.calls


def test_polling_asks_the_server_after_the_wait_so_the_next_search_sees_new_mail(source):
    """Found by bench/latency.py --poll: with the NOOP before the wait, a mail that arrived during
    the wait stayed invisible to the next SEARCH, so every mail took two poll intervals."""
    source.can_idle = False
    source.client = FakeClient(noops=[[(4, b"EXISTS")]])
    assert source.wait(0.25, threading.Event(), threading.Event()) is True
    assert source.client.calls == ["NOOP"]


def test_polling_with_nothing_new_says_so(source):
    source.can_idle = False
    source.client = FakeClient()
    assert source.wait(0.25, threading.Event(), threading.Event()) is False
