"""The command line checks its arguments where it reads them: a wrong one is exit 2 and one line
naming the argument and what is valid, before the config or the database is touched; the largest
valid values reach the database without a traceback (issue 25, point 7)."""

from __future__ import annotations

import pytest

from tests.harness import run_cli, write_config

EXIT_USAGE = 2
HUGE = "99999999999999999999999"

# (arguments, what the one line holds)
HOSTILE = [
    (["show", HUGE], ["mailticket show: argument NUMBER:", f"'{HUGE}' is out of range",
                      "a ticket number as in [SD#123], a whole number from 1 to 2147483647"]),
    (["show", "0"], ["argument NUMBER: '0' is out of range"]),
    (["show", "-5"], ["argument NUMBER: '-5' is out of range"]),
    (["show", "seven"], ["argument NUMBER: 'seven' is not a ticket number"]),
    (["tickets", "--limit", HUGE], ["mailticket tickets: argument --limit:", "rows per page, a whole number "
                                                                            "from 1 to 100000"]),
    (["tickets", "--limit", "-1"], ["argument --limit: '-1' is out of range"]),
    (["tickets", "--limit", "0"], ["argument --limit: '0' is out of range"]),
    (["tickets", "--page", "-3"], ["argument --page: '-3' is out of range", "a page number"]),
    (["tickets", "--page", HUGE], ["argument --page:", "from 1 to 1000000"]),
    (["tickets", "--status", "bogus"], ["argument --status: invalid choice: 'bogus'", "'active'"]),
    (["tickets", "--status", "open", "--status", "closd"], ["invalid choice: 'closd'"]),
    (["tickets", "--tier", "7"], ["argument --tier: invalid choice: 7"]),
    (["tickets", "--requester", "anna\x1b@x"], ["argument --requester:", "has a control character"]),
    (["tickets", "--assignee", "a" * 300], ["argument --assignee: is 300 characters long", "at most 254"]),
    (["tickets", "--sort", "random"], ["argument --sort: invalid choice: 'random'"]),
    (["health", "--max-fetch-age", "99999999999d"], ["mailticket health: argument --max-fetch-age:",
                                                     "'99999999999d' is out of range",
                                                     "a duration from 1s to 365d"]),
    (["health", "--max-queue-age", "0s"], ["argument --max-queue-age: '0s' is out of range"]),
    (["health", "--max-queue-age", "soon"], ["argument --max-queue-age: 'soon' is not a duration"]),
    (["health", "--max-fetch-age", "inf"], ["argument --max-fetch-age: 'inf' is not a duration"]),
    (["report", "--since", "0001-01-01"], ["mailticket report: argument --since: '0001-01-01' is out of range",
                                           "a day from 1970-01-01 to 2199-12-31"]),
    (["report", "--until", "9999-12-31", "--mail"], ["argument --until: '9999-12-31' is out of range"]),
    (["report", "--since", "2026-02-30"], ["argument --since: '2026-02-30' is not a date in the calendar"]),
    (["report", "--since", "last week"], ["argument --since: 'last week' is not an ISO date"]),
    (["report", "--by", "colour"], ["argument --by: 'colour' is not a group"]),
    (["outbox", "--retry", HUGE], ["mailticket outbox: argument --retry:",
                                   "is neither an outbox ID (1 to 2147483647) nor 'all'"]),
    (["outbox", "--retry", "-1"], ["argument --retry: '-1' is neither an outbox ID"]),
    (["outbox", "--retry", "soon"], ["argument --retry: 'soon' is neither an outbox ID"]),
    (["quarantine", "show", HUGE], ["mailticket quarantine: argument ID:", "is out of range"]),
    (["quarantine", "--reprocess", "0"], ["argument --reprocess: '0' is neither a stored mail's ID"]),
    (["quarantine", "delete"], ["argument action: invalid choice: 'delete'"]),
    (["attachment", HUGE], ["mailticket attachment: argument TICKET:", "is out of range"]),
    (["attachment", "3", "a\nb"], ["argument NAME:", "has a control character"]),
    (["erase", "anna\x01@customer.example"], ["mailticket erase: argument ADDRESS:", "has a control character"]),
    (["erase", "anna@customer.example", "--actor", "x" * 201], ["argument --actor: is 201 characters long"]),
    (["import", "/dev/null"], ["mailticket import: argument PATH: /dev/null is not a file but a device"]),
    (["poll"], ["the following arguments are required: --once"]),
    (["backup"], ["the following arguments are required: DIR"]),
    (["backup", "/dev/null"], ["mailticket backup: argument DIR: /dev/null is a file or a device, not a folder"]),
    (["restore"], ["the following arguments are required: DIR"]),
    (["purge", "--force"], ["mailticket: unrecognized arguments: --force"]),
    (["tickets", "--stat", "open"], ["mailticket: unrecognized arguments: --stat"]),  # no abbreviations
    (["erase", "anna@customer.example", "--dry"], ["mailticket: unrecognized arguments: --dry"]),
    (["frobnicate"], ["mailticket: argument COMMAND: invalid choice: 'frobnicate'"]),
]


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path)


@pytest.mark.parametrize("args, words", HOSTILE, ids=[" ".join(a)[:60] for a, _ in HOSTILE])
def test_a_wrong_argument_is_exit_2_on_one_line(tmp_path, config, args, words):
    done = run_cli(*args, config=config)
    assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    for word in words:
        assert word in line, (word, line)
    assert line.endswith("--help)"), line
    assert not (tmp_path / "mailticket.db").exists()  # refused before the database was opened


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_largest_valid_values_reach_the_database_without_a_traceback(tmp_path, database, request):
    """2147483647 is PostgreSQL's largest integer: the bound is what both databases hold."""
    url = request.getfixturevalue("pg_url") if database == "postgresql" else None
    config = write_config(tmp_path, db_url=url)
    for args, code, words in [
        (["show", "2147483647"], 1, "there is no ticket 2147483647"),
        (["outbox", "--retry", "2147483647"], 1, "outbox entry 2147483647 does not exist"),
        (["quarantine", "show", "2147483647"], 1, "there is no stored mail 2147483647"),
        (["quarantine", "--reprocess", "2147483647"], 1, "no quarantined mail 2147483647"),
        (["attachment", "2147483647"], 1, "there is no ticket 2147483647"),
        (["tickets", "--limit", "100000", "--page", "1000000"], 0, ""),
        (["report", "--since", "1970-01-01", "--until", "2199-12-31", "--format", "json"], 0, ""),
        (["health", "--max-fetch-age", "365d", "--max-queue-age", "1s"], 0, ""),
    ]:
        done = run_cli(*args, config=config)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and words in done.stderr, (args, done.stderr)
    listed = run_cli("tickets", "--limit", "100000", "--page", "1000000", config=config)
    assert listed.stdout.rstrip().endswith("-- 0 of 0 ticket(s), page 1000000 of 1")


def test_a_backup_folder_that_cannot_be_made_is_one_line_not_a_traceback(tmp_path):
    """Where the folder's parent cannot be written (caught before the config is read) or, as root,
    where making it fails anyway: one line, exit 1 or 2, never a traceback."""
    config = write_config(tmp_path)
    done = run_cli("backup", "/proc/nonexistent/x", config=config)
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
    line = done.stderr.splitlines()[-1]  # after the migrations' log lines when it got that far
    assert line.startswith("mailticket backup: ") and "/proc/nonexistent" in line, line
