"""bench/callgrind_steps.py runs each step it counts to the end: every mail processed, every
queued mail rendered and sent (to a transport that keeps nothing)."""

import re

import pytest

from bench import callgrind_steps
from bench.corpus_gen import generate


@pytest.mark.parametrize("step", ["daemon", "sender"])
def test_each_step_runs_over_the_mails_it_is_given(step, monkeypatch, capsys):
    monkeypatch.setattr(callgrind_steps, "cached", lambda n: generate(12, seed=8))
    callgrind_steps.main([step, "12"])
    out = capsys.readouterr().out
    if step == "daemon":
        assert out.startswith("daemon: 12 mails processed, CPU ")
    else:
        sent = int(re.match(r"sender: (\d+) mails sent", out).group(1))
        assert sent >= 12  # an acknowledgement or a notice for each, and tier notices
