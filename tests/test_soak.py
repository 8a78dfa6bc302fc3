"""Soak: the daemon as a process for an hour under a steady mixed load, the SMTP sink failing now
and then, Dovecot restarted twice. No mail lost, RSS flat and no file descriptor leaked, in the
daemon and in its sender process.

Runs only with `pytest --soak` (marker soak). MAILTICKET_SOAK_SECONDS shortens it (default 3600).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from mailticket import db
from mailticket.config import load_config
from mailticket.models import InboundMail, Outbox, Ticket
from tests.harness import child_pids, make_mail, start_daemon_process, wait_until, write_config
from tests.servers.system import is_alive

SECONDS = float(os.environ.get("MAILTICKET_SOAK_SECONDS", "3600"))
RATE = 2.0  # mails a second, on average


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def quarters(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """The mean of the first and of the last quarter of the samples taken after warm-up."""
    warm = [v for t, v in samples if t > SECONDS * 0.1] or [v for _, v in samples]
    q = max(1, len(warm) // 4)
    return sum(warm[:q]) / q, sum(warm[-q:]) / q


def mixed_mail(i: int, rng: random.Random, sent: list[str]) -> tuple[str, bytes]:
    """New requests, replies to earlier ones, auto-replies and an occasional mail with no sender."""
    mid = f"<soak-{i}@customer.example>"
    roll = rng.random()
    if roll < 0.25 and sent:
        parent = rng.choice(sent[-200:])
        return mid, make_mail(sender=f"User {i % 97} <user{i % 97}@customer.example>", subject="Re: still broken",
                              message_id=mid, in_reply_to=parent, references=parent, body="Still broken.\n\n> old")
    if roll < 0.30:
        return mid, make_mail(sender=f"Away {i} <away{i}@customer.example>", subject="Out of office",
                              message_id=mid, headers={"Auto-Submitted": "auto-replied"}, body="I am away.")
    if roll < 0.31:
        return mid, b"Subject: no sender at all\r\nMessage-ID: " + mid.encode() + b"\r\n\r\nbody\r\n"
    return mid, make_mail(sender=f"User {i} <user{i}@customer.example>", subject=f"Problem {i}",
                          message_id=mid, body=f"Problem number {i}: " + "the thing is broken. " * rng.randint(1, 40))


@pytest.mark.soak
@pytest.mark.timeout(SECONDS + 900)
def test_an_hour_of_mixed_load_with_failures(tmp_path, mailbox_user, smtp_sink):
    dovecot, user = mailbox_user.server, mailbox_user.name
    cfg_path = write_config(tmp_path, user=mailbox_user, sink=smtp_sink,
                            extra={"rate_limits": {"global_10min": 1_000_000, "per_sender_day": 1000}})
    log = tmp_path / "daemon.log"
    proc = start_daemon_process(cfg_path, log=log)
    rng = random.Random(2026)
    appended: list[str] = []
    senderless: set[str] = set()
    rss: list[tuple[float, float]] = []
    fds: list[tuple[float, int]] = []
    sender_rss: list[tuple[float, float]] = []
    sender_fds: list[tuple[float, int]] = []
    senders: set[int] = set()

    def sample(at: float) -> None:
        rss.append((at, rss_mb(proc.pid)))
        fds.append((at, open_fds(proc.pid)))
        for child in child_pids(proc.pid):
            senders.add(child)
            sender_rss.append((at, rss_mb(child)))
            sender_fds.append((at, open_fds(child)))
    restarts = [SECONDS * 0.33, SECONDS * 0.66]
    t0 = time.monotonic()
    i = 0
    try:
        while (now := time.monotonic() - t0) < SECONDS:
            if proc.poll() is not None:
                pytest.fail(f"daemon died with {proc.returncode}: {log.read_text()[-3000:]}")
            if restarts and now >= restarts[0]:
                restarts.pop(0)
                dovecot.restart()
            # the sink fails for a few seconds now and then (about 5 % of the time)
            smtp_sink.mode = "tempfail" if int(now) % 60 in (10, 11, 12) else "ok"
            mid, raw = mixed_mail(i, rng, appended)
            try:
                dovecot.append(user, "INBOX", raw)
                appended.append(mid)
                if b"From:" not in raw:
                    senderless.add(mid)
                i += 1
            except Exception:  # Dovecot is restarting: the sender retries later, as a real MTA would
                time.sleep(0.5)
                continue
            if int(now) % 15 == 0 and (not rss or now - rss[-1][0] >= 10):
                sample(now)
            time.sleep(rng.expovariate(RATE))
        smtp_sink.mode = "ok"
        db.connect(load_config(cfg_path).database.url)
        wait_until(lambda: InboundMail.select().where(InboundMail.state == "received").count() == 0
                   and InboundMail.select().count() >= len(appended), timeout=300, interval=1, what="all stored and processed")
        wait_until(lambda: dovecot.folder_count(user, "INBOX") == 0, timeout=300, interval=1, what="inbox emptied")
        wait_until(lambda: Outbox.select().where(Outbox.status == "queued").count() == 0, timeout=300, interval=1,
                   what="outbox drained")
        sample(time.monotonic() - t0)
    finally:
        smtp_sink.mode = "ok"
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log.read_text()[-3000:]

    # no mail lost: every appended mail was stored and ended processed/duplicate/dropped, or (no sender)
    # quarantined on purpose
    stored = {r.message_id for r in InboundMail.select(InboundMail.message_id)}
    missing = [m for m in appended if m.strip("<>") not in stored and m not in senderless]
    assert not missing, missing[:10]
    quarantined = InboundMail.select().where(InboundMail.state == "quarantined").count()
    assert quarantined == len([m for m in appended if m in senderless])
    states = {r.state for r in InboundMail.select(InboundMail.state)}
    assert states <= {"processed", "duplicate", "dropped", "quarantined"}
    assert dovecot.folder_count(user, "Processed") + dovecot.folder_count(user, "Quarantine") >= len(appended)
    assert Outbox.select().where(Outbox.status == "failed").count() == 0
    # and nothing lost on the way out: every mail marked sent reached the sink (the 451s were retried)
    sent = {o.message_id for o in Outbox.select(Outbox.message_id).where(Outbox.status == "sent")}
    arrived = {str(m.message["Message-ID"]).strip("<>") for m in smtp_sink.received}
    assert sent and sent <= arrived, sorted(sent - arrived)[:10]
    new_requests = Ticket.select().count()
    acks = Outbox.select().where(Outbox.kind == "acknowledgement", Outbox.status == "sent").count()
    assert acks >= new_requests * 0.95  # the rest: requesters rate-limited on purpose (replies to many)

    # one sender process the whole hour (none died and had to be started again), gone with the daemon
    assert len(senders) == 1, f"sender processes seen: {senders}"
    (sender,) = senders
    assert not is_alive(sender)

    # RSS flat: after warm-up, the last quarter is within 20 % (+10 MB) of the first quarter, in the
    # daemon and in its sender
    first, last = quarters(rss)
    sender_first, sender_last = quarters(sender_rss)
    print(f"\nsoak {SECONDS:.0f} s: {len(appended)} mails appended ({len(senderless)} without a sender), "
          f"{new_requests} tickets, {len(sent)} mails sent, Dovecot restarted twice; RSS first quarter "
          f"{first:.1f} MB, last quarter {last:.1f} MB, max {max(v for _, v in rss):.1f} MB; open fds "
          f"after warm-up min {min(n for t, n in fds if t > SECONDS * 0.1) if len(fds) > 2 else fds[0][1]}, "
          f"max {max(n for _, n in fds)}, end {fds[-1][1]}; sender process RSS {sender_first:.1f} -> "
          f"{sender_last:.1f} MB, open fds max {max(n for _, n in sender_fds)}, end {sender_fds[-1][1]}")
    assert last <= first * 1.2 + 10, f"RSS grew: {rss}"
    assert sender_last <= sender_first * 1.2 + 10, f"the sender's RSS grew: {sender_rss}"
    # no descriptor leaked: at the end no more open than after warm-up (a few for reconnections in
    # flight); the sample taken as the process starts, before it opened its files, does not count
    for samples in (fds, sender_fds):
        warm_fds = [n for t, n in samples if t > SECONDS * 0.1] or [n for _, n in samples]
        assert samples[-1][1] <= min(warm_fds) + 5, f"file descriptors: {samples}"

