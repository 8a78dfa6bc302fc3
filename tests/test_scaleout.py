"""Scale-out: two or three daemon processes on one PostgreSQL database and one Dovecot mailbox.

The daemon holding the folder lease is SIGKILLed in the middle of the work. Afterwards every
mail is one ticket, every outbox entry reached the sink once (one duplicate at most, for the
one kill, with the same Message-ID), INBOX is empty and a survivor holds the folder.
"""

import email
import email.policy
import signal
import time
from collections import Counter

import pytest

from mailticket import db
from mailticket.models import InboundMail, Lease, MessageRef, Outbox, Ticket
from tests.harness import make_mail, start_daemon_process, wait_until, write_config

N_MAILS = 200
LEASE_TTL = "3s"
FOLDER = "imap:INBOX"


def _holder_pid() -> int | None:
    lease = Lease.get_or_none(Lease.name == FOLDER)
    return int(lease.holder.rsplit(":", 1)[1]) if lease else None


def _message_ids(received) -> Counter:
    return Counter(email.message_from_bytes(m.data, policy=email.policy.default)["Message-ID"].strip("<>")
                   for m in received)


def _stop(procs, logs) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p, log in zip(procs, logs):
        code = p.wait(20)
        assert code in (0, -signal.SIGKILL), log.read_text()[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("n_daemons", [2, 3])
def test_daemons_share_one_desk_and_one_is_killed_in_the_middle(n_daemons, tmp_path, mailbox_user, smtp_sink,
                                                                pg_url):
    dovecot, user = mailbox_user.server, mailbox_user.name
    # commits need not wait for the disk here: a killed daemon is the test, not a crashed server
    url = pg_url + "?options=-c%20synchronous_commit%3Doff"
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, db_url=url,
                       extra={"imap": {"batch_size": 20}, "database": {"lease_ttl": LEASE_TTL}})
    ids = [f"scale-{i}@customer.example" for i in range(N_MAILS)]
    with dovecot.client(user) as imap:
        for i, mid in enumerate(ids):
            imap.append("INBOX", make_mail(sender=f"User {i} <user{i}@customer.example>",
                                           subject=f"Problem number {i}", message_id=f"<{mid}>"))
    logs = [tmp_path / f"daemon{n}.log" for n in range(n_daemons)]
    procs = [start_daemon_process(cfg, log=log) for log in logs]  # all migrate the empty database at once
    try:
        db.connect(pg_url)
        wait_until(lambda: Ticket.select().count() >= N_MAILS // 3, timeout=40, what="a third of the mails done")
        victim_pid = _holder_pid()
        victim = next(p for p in procs if p.pid == victim_pid)
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(10)
        survivors = {p.pid for p in procs if p is not victim}
        wait_until(lambda: _holder_pid() in survivors, timeout=15, what="a survivor taking the folder lease")
        print(f"fail-over after {time.monotonic() - killed_at:.1f} s (lease_ttl {LEASE_TTL})")
        wait_until(lambda: dovecot.folder_count(user, "INBOX") == 0
                   and dovecot.folder_count(user, "Processed") >= N_MAILS, timeout=40, interval=0.25,
                   what="every mail moved out of INBOX")
        wait_until(lambda: Outbox.select().where(Outbox.status == "queued").count() == 0
                   and InboundMail.select().where(InboundMail.state == "received").count() == 0,
                   timeout=20, what="stored mail processed and the outbox drained")
    finally:
        _stop(procs, logs)
    archived = Counter(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"].strip("<>")
                       for raw in dovecot.messages(user, "Processed"))
    print(f"extra copies in Processed: {sum(archived.values()) - len(archived)}")
    assert set(archived) == set(ids)
    all_logs = "".join(log.read_text() for log in logs)
    assert "took the lease on imap:INBOX" in all_logs
    tickets = list(Ticket.select())
    assert len(tickets) == N_MAILS
    assert sorted(t.thread_root for t in tickets) == sorted(ids)
    assert InboundMail.select().count() == N_MAILS
    assert InboundMail.select().where(InboundMail.state != "processed").count() == 0
    assert MessageRef.select().where(MessageRef.direction == "in").count() == N_MAILS
    entries = list(Outbox.select())
    assert {e.status for e in entries} == {"sent"}
    acks = [e for e in entries if e.kind == "acknowledgement"]
    assert len(acks) == N_MAILS
    smtp_sink.wait_for(len(entries), timeout=10)
    sent = _message_ids(smtp_sink.received)
    assert set(sent) == {e.message_id for e in entries}, "every outbox entry reached the sink"
    assert sum(sent.values()) - len(entries) <= 1, f"more than one duplicate for one kill: {sent.most_common(3)}"
