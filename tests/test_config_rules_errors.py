"""Bad rules and SLA settings: `check-config` names the rule/key and the problem; `run` refuses to start."""

from __future__ import annotations

import pytest

from tests.harness import run_cli, write_config
from tests.servers.system import free_port

EXIT_CONFIG = 3

CASES = {
    "broken subject regex": (
        {"rules": [{"name": "printers", "subject": "(?i)print(er", "category": "printing"}]}, None,
        ["rules[0].subject", "rule 'printers'", "broken regular expression", "(?i)print(er"]),
    "broken body regex in the second rule": (
        {"rules": [{"name": "ok-rule", "subject": "VPN"},
                   {"name": "toner", "body": "toner[", "category": "printing"}]}, None,
        ["rules[1].body", "rule 'toner'", "broken regular expression", "toner["]),
    "unknown category": (
        {"rules": [{"name": "net", "from": "@branch.example", "category": "netwrk"}]}, None,
        ["rules[0].category", "rule 'net'", "category 'netwrk' is not valid", "network"]),
    "category outside the admin's list": (
        {"service": {"categories": ["general", "printing"]},
         "rules": [{"name": "hw", "subject": "laptop", "category": "hardware"}]}, None,
        ["rules[0].category", "rule 'hw'", "category 'hardware' is not valid"]),
    "overlapping holidays": (
        {}, {"business_hours": {"holidays": ["2026-12-24..2026-12-26", "2026-12-25"]}},
        ["sla.business_hours.holidays[1]", "'2026-12-25' overlaps '2026-12-24..2026-12-26'", "2026-12-25"]),
    "zero first-response target": (
        {}, {"P3": {"first_response": "0s", "resolution": "1h"}},
        ["sla.P3.first_response", "must be more than zero", "'0s'"]),
    "zero resolution target": (
        {}, {"P1": {"first_response": "1h", "resolution": "0m"}},
        ["sla.P1.resolution", "must be more than zero"]),
}


def _config(tmp_path, extra, sla):
    return write_config(tmp_path, listener_port=free_port(), extra=extra, sla=sla)


@pytest.mark.parametrize("case", CASES)
def test_check_config_names_the_rule_and_the_problem(tmp_path, case):
    extra, sla, words = CASES[case]
    cfg = _config(tmp_path, extra, sla)
    result = run_cli("check-config", config=cfg)
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "OK" not in result.stdout
    message = result.stderr.strip()
    assert message.startswith(f"mailticket: configuration error: {cfg}: ")
    for word in words:
        assert word in message, (word, message)
    assert len(message.splitlines()) == 1  # one line the admin can read, no traceback


@pytest.mark.parametrize("case", CASES)
def test_daemon_refuses_to_start_on_a_bad_config(tmp_path, case):
    extra, sla, words = CASES[case]
    cfg = _config(tmp_path, extra, sla)
    result = run_cli("run", config=cfg, timeout=30)
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert words[0] in result.stderr and words[1] in result.stderr
    assert "ready" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "mailticket.db").exists()  # it stopped before touching the database


def test_the_same_config_without_the_mistake_is_ok(tmp_path):
    """The errors above come from the mistakes, not from the rest of the file."""
    cfg = _config(tmp_path, {"service": {"vip": ["ceo@customer.example"]},
                             "rules": [{"name": "printers", "subject": "(?i)print(er)?", "category": "printing"},
                                       {"name": "net", "from": "@branch.example", "category": "network"}]},
                  {"business_hours": {"holidays": ["2026-12-24..2026-12-26", "2026-12-31"]},
                   "P3": {"first_response": "3s", "resolution": "1h"}})
    result = run_cli("check-config", config=cfg)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{cfg}: OK"


def test_duplicate_rule_names_are_refused(tmp_path):
    cfg = _config(tmp_path, {"rules": [{"name": "vpn", "subject": "VPN"}, {"name": "vpn", "body": "tunnel"}]}, None)
    result = run_cli("check-config", config=cfg)
    assert result.returncode == EXIT_CONFIG
    assert "rules[1].name" in result.stderr and "duplicate rule name 'vpn'" in result.stderr


# ---------------------------------------------------------------- paths relative to the config file

@pytest.mark.parametrize("url, expected", [
    ("sqlite:///db/desk.db", "sqlite:///{etc}/db/desk.db"),
    ("sqlite:///../var/desk.db", "sqlite:///{etc}/../var/desk.db"),
    ("sqlite:////srv/desk.db", "sqlite:////srv/desk.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("postgresql://desk@127.0.0.1/desk", "postgresql://desk@127.0.0.1/desk"),
])
def test_a_relative_sqlite_file_is_relative_to_the_config_file(tmp_path, monkeypatch, url, expected):
    """As the example config says of every path: the database file went to the folder the
    command was started in, while data_dir (attachments, the secret) followed the config file."""
    from mailticket.config import load_config
    etc = tmp_path / "etc"
    etc.mkdir()
    path = write_config(etc, db_url=url, extra={"service": {"data_dir": "../var"}})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path)
    assert config.database.url == expected.format(etc=etc)
    assert config.service.data_dir == etc / ".." / "var"


def test_the_shipped_example_keeps_its_database_beside_its_data_dir():
    from mailticket.config import load_config
    from mailticket.db import sqlite_path
    from tests.harness import REPO
    config = load_config(REPO / "config" / "mailticket.toml")
    assert sqlite_path(config.database.url) == str(config.service.data_dir / "mailticket.db")


# ---------------------------------------------------------------- every section's problem at once

def test_check_config_names_the_problem_of_every_section_at_once(tmp_path):
    """Four mistakes in four sections: all four named, file and key each, in the file's order, so
    the admin fixes them in one go instead of one run each."""
    path = write_config(tmp_path, extra={
        "service": {"timezone": "Mars/Olympus"}, "database": {"lease_ttl": "5h"},
        "tiers": {"1": {"address": "not an address"}}, "sla": {"warn_at": 7}})
    done = run_cli("check-config", config=path)
    assert done.returncode == 3 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert [line.split(": ")[3] for line in lines] == [
        "service.timezone", "database.lease_ttl", "tiers.1.address", "sla.warn_at"]
    assert all(line.startswith(f"mailticket: configuration error: {path}: ") for line in lines)


def test_check_config_names_every_bad_key_of_a_section_not_only_the_first(tmp_path):
    """Keys of one section wrong in each way a single key can be (unknown, type, choice, bounds):
    each named, none made up by another's default standing in; a section without a problem is
    silent; the daemon refuses to start with the same lines."""
    path = write_config(tmp_path, extra={
        "service": {"colour": "blue", "locale": "fi", "ack_max_age": "forever", "max_participants": 0},
        "smtp": {"host": "127.0.0.1", "port": "25", "security": "sometimes"},
        "outbox": {"max_attempts": 3}})
    done = run_cli("check-config", config=path)
    assert done.returncode == 3 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert [line.split(": ")[3] for line in lines] == [
        "service.colour", "service.locale", "service.ack_max_age", "service.max_participants",
        "smtp.security", "smtp.port"], lines
    assert "'fi' is not one of en, sv" in lines[1] and "'forever' is not a duration" in lines[2]
    assert "must be int" in lines[5] and "not str '25'" in lines[5]
    run = run_cli("run", config=path)
    assert run.returncode == 3 and run.stderr.splitlines() == lines


def test_a_failed_section_does_not_make_up_problems_in_the_sections_that_need_it(tmp_path):
    """The SLA is read in the service's time zone and monitoring names the rules' categories: a
    bad time zone or bad rules is named once, not once more for each section that depends on it."""
    from mailticket.config import load_config
    from mailticket.errors import ConfigError
    path = write_config(tmp_path, extra={
        "service": {"timezone": "Mars/Olympus"},
        "sla": {"business_hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "17:00"}},
        "rules": [{"name": "x", "priority": "P9"}],
        "monitoring": [{"name": "nagios", "from": ["nagios@example.com"], "category": "network"}]})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert [e.key for e in err.value.errors] == ["service.timezone", "rules[0].priority"]
    assert (err.value.file, err.value.key) == (str(path), "service.timezone")  # the first, where one is asked


def test_one_problem_is_a_plain_config_error_as_before(tmp_path):
    from mailticket.config import load_config
    from mailticket.errors import ConfigError, ConfigErrors
    path = write_config(tmp_path, extra={"database": {"lease_ttl": "5h"}})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert not isinstance(err.value, ConfigErrors) and err.value.key == "database.lease_ttl"
