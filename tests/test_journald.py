"""Log lines carry journald's ``<N>`` priority prefix by level when stderr is the journal stream
systemd names in JOURNAL_STREAM, and stay plain on a terminal, in a file or a pipe."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import pytest

from mailticket.service import logsetup
from tests.harness import REPO

LOGGING = ("import logging; from mailticket.service.logsetup import configure; configure(logging.DEBUG)\n"
           "log = logging.getLogger('mailticket.test')\n"
           "log.debug('d'); log.info('i'); log.warning('w'); log.error('e'); log.critical('c')\n"
           "try:\n    1/0\nexcept ZeroDivisionError:\n    log.exception('boom')\n")


def _run(stderr_path, env_extra):
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with open(stderr_path, "wb") as err:
        subprocess.run([sys.executable, "-c", LOGGING], cwd=REPO, env={**env, "PYTHONPATH": str(REPO), **env_extra},
                       stderr=err, check=True, timeout=60)
    return stderr_path.read_text().splitlines()


def _stream_id(path) -> str:
    info = os.stat(path)
    return f"{info.st_dev}:{info.st_ino}"


def test_under_journald_each_line_has_the_priority_of_its_level(tmp_path):
    journal = tmp_path / "journal"
    journal.touch()
    lines = _run(journal, {"JOURNAL_STREAM": _stream_id(journal)})
    assert [line[:3] for line in lines] == ["<7>", "<6>", "<4>", "<3>", "<2>", "<3>"]
    assert lines[2] == "<4>WARNING mailticket.test: w"
    assert lines[5].startswith("<3>ERROR mailticket.test: boom | Traceback") and "ZeroDivisionError" in lines[5]


def test_without_journald_the_lines_stay_plain(tmp_path):
    lines = _run(tmp_path / "stderr", {})
    assert lines[:5] == ["DEBUG mailticket.test: d", "INFO mailticket.test: i", "WARNING mailticket.test: w",
                         "ERROR mailticket.test: e", "CRITICAL mailticket.test: c"]


def test_a_journal_stream_that_is_not_our_stderr_is_ignored(tmp_path):
    """A child of a service whose stderr was sent to a file inherits JOURNAL_STREAM: no prefixes there."""
    other = tmp_path / "journal"
    other.touch()
    lines = _run(tmp_path / "stderr", {"JOURNAL_STREAM": _stream_id(other)})
    assert lines[2] == "WARNING mailticket.test: w"


@pytest.mark.parametrize("value", ["", "garbage", "12", "x:y", "1:"])
def test_a_malformed_journal_stream_means_plain(tmp_path, value):
    with open(tmp_path / "f", "wb") as fh:
        assert logsetup.writes_to_journal(fh, {"JOURNAL_STREAM": value}) is False
    assert logsetup.writes_to_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"}) is False


@pytest.mark.parametrize("level, prio", [(logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
                                         (logging.INFO, 6), (logging.DEBUG, 7), (25, 6), (35, 4), (5, 7)])
def test_priority_by_level(level, prio):
    assert logsetup.priority(level) == prio


def test_configure_can_be_forced_for_either_form():
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logsetup.configure(stream=out, journal=True)
        logging.getLogger("mailticket.test").warning("w")
        logsetup.configure(stream=out, journal=False)
        logging.getLogger("mailticket.test").warning("w")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert out.getvalue().splitlines() == ["<4>WARNING mailticket.test: w", "WARNING mailticket.test: w"]
