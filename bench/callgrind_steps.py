"""One step of the pipeline alone, over N bench corpus mails, for counting its instructions.

    valgrind --tool=callgrind --toggle-collect=functools_reduce --callgrind-out-file=/tmp/cg.%p \
        .venv/bin/python bench/callgrind_steps.py daemon 300      # then 700: (I700 - I300) / 400
    ... bench/callgrind_steps.py sender 300                       # then 700: (I700 - I300) / sent between

``daemon``: the mails are stored as if fetched, then processed as the daemon does (drafts
queued), the processing counted. ``sender``: the same, then the outbox drained as the sender
process drains it (drafts rendered and written, the sent log folded between batches) to a
transport that keeps nothing, the draining counted. The counted step runs inside
``functools.reduce``, a C function that nothing else here calls, so ``--toggle-collect`` counts
it alone; the difference of two sizes takes start-up and compiling out. Instructions do not move
with the machine's speed, which on these machines drifts by a quarter within minutes
(bench/RESULTS.md). Without valgrind it prints the step's CPU time.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus_gen import cached  # noqa: E402
from bench.profile_pipeline import prepare, store_as_fetched  # noqa: E402


class _Discard:
    """A transport that accepts every mail and keeps only counts."""

    def __init__(self):
        self.sent, self.bytes = 0, 0

    def send(self, mail_from, recipients, raw) -> None:
        self.sent += 1
        self.bytes += len(raw)

    def close(self) -> None:
        pass


def counted(step):
    """Run ``step()`` inside functools.reduce (see the module's docstring); its result."""
    return functools.reduce(lambda _, __: step(), [0], None)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["daemon", "sender"])
    ap.add_argument("n", type=int)
    args = ap.parse_args(argv)
    from mailticket.service import intake
    from mailticket.outbound import outbox
    from mailticket.outbound.sentlog import SentLog
    with tempfile.TemporaryDirectory() as tmp:
        desk = prepare(Path(tmp), None)
        desk.mailer.defer = True
        store_as_fetched(cached(10_000)[:args.n])
        c0 = time.process_time()
        if args.step == "daemon":
            done = len(counted(lambda: intake.process_pending(desk, "bench")))
            print(f"daemon: {done} mails processed, CPU {1000 * (time.process_time() - c0) / max(done, 1):.3f} ms a mail")
            return
        intake.process_pending(desk, "bench")
        sent_log, transport = SentLog(Path(tmp) / "bench.sent"), _Discard()

        def drain_all():
            while outbox.drain(transport, datetime.now(timezone.utc), desk.config.outbox, worker="bench",
                               sent_log=sent_log, compose=desk.mailer.mail_bytes, limit=50).sent:
                sent_log.fold()
        c0 = time.process_time()
        counted(drain_all)
        cpu = time.process_time() - c0
        print(f"sender: {transport.sent} mails sent ({transport.bytes / max(transport.sent, 1):.0f} bytes on average), "
              f"CPU {1000 * cpu / max(transport.sent, 1):.3f} ms a mail")


if __name__ == "__main__":
    main()
