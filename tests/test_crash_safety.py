"""Crash safety: SIGKILL the daemon at random moments; after restarts every mail is a ticket, once."""

import email
import email.policy
import random
import signal
import time
from collections import Counter

import pytest

from mailticket import db
from mailticket.config import load_config
from mailticket.models import InboundMail, MessageRef, Outbox, Ticket
from tests.harness import make_mail, start_daemon_process, wait_until, write_config

N_MAILS = 400  # six kills, each after up to 25 more mails and a batch of 20 in flight: work left for all six


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_doubles_nothing(tmp_path, mailbox_user, smtp_sink):
    dovecot, user = mailbox_user.server, mailbox_user.name
    cfg_path = write_config(tmp_path, user=mailbox_user, sink=smtp_sink,
                            extra={"imap": {"batch_size": 20}, "rate_limits": {"global_10min": 10 * N_MAILS}})
    ids = [f"<crash-{i}@customer.example>" for i in range(N_MAILS)]
    for i, mid in enumerate(ids):
        dovecot.append(user, "INBOX", make_mail(sender=f"User {i} <user{i}@customer.example>",
                                                subject=f"Problem number {i}", message_id=mid))
    rng = random.Random(20261127)
    log = tmp_path / "daemon.log"
    kills = 0
    done = 0
    for round_ in range(6):
        proc = start_daemon_process(cfg_path, log=log)
        try:
            # kill while it works: once it has processed a random few more mails, a random instant later
            target = done + rng.randint(3, 25)
            done = wait_until(lambda: _processed(log) >= target and _processed(log), timeout=60,
                              what=f"{target} mails processed")
            assert done < N_MAILS, f"round {round_}: all {N_MAILS} mails were in before the kill"
            time.sleep(rng.uniform(0.0, 0.05))
        finally:  # a failing round must not leave its daemon running after the test
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        kills += 1
    proc = start_daemon_process(cfg_path, log=log)
    try:
        wait_until(lambda: dovecot.folder_count(user, "Processed") >= N_MAILS and
                   dovecot.folder_count(user, "INBOX") == 0, timeout=120, interval=0.5,
                   what="every mail moved out of INBOX")
        db.connect(load_config(cfg_path).database.url)
        wait_until(lambda: Outbox.select().where(Outbox.status == "queued").count() == 0, timeout=60,
                   what="outbox drained")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()[-3000:]
    assert kills == 6
    tickets = list(Ticket.select())
    assert len(tickets) == N_MAILS
    assert len({t.thread_root for t in tickets}) == N_MAILS
    assert {f"<{t.thread_root}>" for t in tickets} == set(ids)
    assert InboundMail.select().where(InboundMail.state == "received").count() == 0
    assert InboundMail.select().where(InboundMail.state == "quarantined").count() == 0
    assert MessageRef.select().where(MessageRef.direction == "in").count() == N_MAILS
    # one acknowledgement per ticket was queued; a crash between sending and recording may send one
    # again, but always with the same Message-ID
    acks = Outbox.select().where(Outbox.kind == "acknowledgement")
    assert acks.count() == N_MAILS and all(a.status == "sent" for a in acks)
    sent_ids = Counter(email.message_from_bytes(m.data, policy=email.policy.default)["Message-ID"]
                       for m in smtp_sink.received if m.rcpt_tos[0].endswith("@customer.example"))
    assert len(sent_ids) == N_MAILS
    assert sum(sent_ids.values()) - N_MAILS <= kills, "at most one duplicate per crash"


def _processed(log) -> int:
    return log.read_text().count(": processed ticket") if log.exists() else 0
