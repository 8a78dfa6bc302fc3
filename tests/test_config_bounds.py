"""Every duration and number of the config is bounded (durations.BOUNDS): a hostile value is a config
error naming the file and the key, from `check-config` and from `run` alike (exit 3, one line, no
traceback), never a crash later or a desk that locks its agents out (issue 25, point 6)."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest

from mailticket.config import RateLimits, build_config
from mailticket.durations import BOUNDS, bound_for, parse_duration, within
from mailticket.errors import ConfigError
from tests.harness import run_cli, write_config
from tests.servers.system import free_port

EXIT_CONFIG = 3

# name: (extra config, words the one line must hold: the key first)
HOSTILE = {
    "ack_max_age = inf": ({"service": {"ack_max_age": math.inf}},
                          ["service.ack_max_age", "inf is outside 1m..365d"]),
    "ack_max_age = 1e300": ({"service": {"ack_max_age": 1e300}},
                            ["service.ack_max_age", "1e+300 is outside 1m..365d"]),
    "ack_max_age = 999999999999999999d": ({"service": {"ack_max_age": "999999999999999999d"}},
                                          ["service.ack_max_age", "'999999999999999999d' is outside 1m..365d"]),
    "ack_max_age = nan": ({"service": {"ack_max_age": math.nan}},
                          ["service.ack_max_age", "nan is not a duration"]),
    "token_lifetime = 99999999d": ({"service": {"token_lifetime": "99999999d"}},
                                   ["service.token_lifetime", "'99999999d' is outside 1d..3650d",
                                    "ten years outlasts any mail archive"]),
    "token_lifetime = 0s locks agents out": ({"service": {"token_lifetime": "0s"}},
                                             ["service.token_lifetime", "must be more than zero",
                                              "'0s' is outside 1d..3650d", "locked out"]),
    "token_lifetime = 1h": ({"service": {"token_lifetime": "1h"}},
                            ["service.token_lifetime", "'1h' is outside 1d..3650d"]),
    "P1 resolution of 999999999d": ({"sla": {"P1": {"resolution": "999999999d"}}},
                                    ["sla.P1.resolution", "'999999999d' is outside 1s..365d"]),
    "P4 first response of 1e300 seconds": ({"sla": {"P4": {"first_response": 1e300}}},
                                           ["sla.P4.first_response", "1e+300 is outside 1s..365d"]),
    "warn_at = inf": ({"sla": {"warn_at": math.inf}}, ["sla.warn_at", "inf is outside 0.01..0.99"]),
    "a breach warning years before": ({"sla": {"breach_report": {"warn_before": ["24h", "999y"]}}},
                                      ["sla.breach_report.warn_before", "'999y' is outside 1s..365d"]),
    "a rate limit past 64 bits": ({"rate_limits": {"per_ticket": 2 ** 70}},
                                  ["rate_limits.per_ticket", "1180591620717411303424 is outside 1..1_000_000_000"]),
    "a rate limit of 0": ({"rate_limits": {"global_10min": 0}},
                          ["rate_limits.global_10min", "must be more than zero", "silence every acknowledgement"]),
    "a port past 65535": ({"imap": {"host": "imap.example.com", "port": 70000}},
                          ["imap.port", "70000 is outside 1..65535"]),
    "an SMTP timeout of a century": ({"smtp": {"host": "smtp.example.com", "timeout": "36500d"}},
                                     ["smtp.timeout", "'36500d' is outside 1s..10m"]),
    "max_attempts = -1": ({"outbox": {"max_attempts": -1}}, ["outbox.max_attempts", "-1 is outside 1..100"]),
    "a mail size of 10^20 GB": ({"outbox": {"max_size": "99999999999999999999GB"}},
                                ["outbox.max_size", "too large a size"]),
    "attach_max past 64 bits": ({"service": {"attach_max": 2 ** 64}},
                                ["service.attach_max", "18446744073709551616 is outside 0B..1GB"]),
    "retention of a million years": ({"retention": {"raw_mail": "1000000y"}},
                                     ["retention.raw_mail", "'1000000y' is outside 1d..36500d or 0"]),
    "lease_ttl = inf": ({"database": {"lease_ttl": math.inf}}, ["database.lease_ttl", "inf is outside 1s..1h"]),
    "poll_interval as a string of 400 nines": ({"imap": {"host": "imap.example.com", "poll_interval": "9" * 400}},
                                               ["imap.poll_interval", "is outside 1s..1h"]),
    "batch_size as a string": ({"imap": {"host": "imap.example.com", "batch_size": "20"}},
                               ["imap.batch_size", "must be int", "not str '20'"]),
}


def _config(tmp_path, extra):
    return write_config(tmp_path, listener_port=free_port(), extra=extra)


@pytest.mark.parametrize("case", HOSTILE)
def test_check_config_refuses_a_hostile_value_naming_file_and_key(tmp_path, case):
    extra, words = HOSTILE[case]
    cfg = _config(tmp_path, extra)
    done = run_cli("check-config", config=cfg)
    assert done.returncode == EXIT_CONFIG, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"mailticket: configuration error: {cfg}: {words[0]}: "), line
    for word in words[1:]:
        assert word in line, (word, line)


@pytest.mark.parametrize("case", ["ack_max_age = inf", "ack_max_age = 999999999999999999d",
                                  "token_lifetime = 99999999d", "token_lifetime = 0s locks agents out",
                                  "P1 resolution of 999999999d", "a rate limit past 64 bits",
                                  "retention of a million years"])
def test_run_refuses_to_start_with_the_same_line(tmp_path, case):
    """`run` says what `check-config` says, and stops before it touches the database."""
    extra, words = HOSTILE[case]
    cfg = _config(tmp_path, extra)
    done = run_cli("run", config=cfg, timeout=60)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "Traceback" not in done.stderr and "ready" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"mailticket: configuration error: {cfg}: {words[0]}: ")
    assert all(word in line for word in words[1:]), line
    assert not (tmp_path / "mailticket.db").exists()


def test_two_sections_with_hostile_values_give_two_lines(tmp_path):
    cfg = _config(tmp_path, {"service": {"token_lifetime": "0s"}, "sla": {"P1": {"resolution": "999999999d"}}})
    done = run_cli("check-config", config=cfg)
    assert done.returncode == EXIT_CONFIG
    assert [line.split(": ")[3] for line in done.stderr.splitlines()] == ["service.token_lifetime",
                                                                           "sla.P1.resolution"]


# ---------------------------------------------------------------- every entry of the table, at its edges

def _keys() -> list[str]:
    """Every key BOUNDS covers, its patterns spelled out."""
    keys = []
    for key in BOUNDS:
        if key == "rate_limits.*":
            keys += [f"rate_limits.{name}" for name in RateLimits.__dataclass_fields__]
        elif "P?" in key:
            keys += [key.replace("P?", p) for p in ("P1", "P2", "P3", "P4")]
        else:
            keys.append(key)
    return keys


# Keys read only beside another: the values that let the edge values stand on their own.
COMPANIONS = {"sla.pending_reminder": {"pending_resolve_after": 0},
              "sla.pending_resolve_after": {"pending_reminder": 0}}


def _data(key: str, value) -> dict:
    *tables, name = key.split(".")
    data: dict = {}
    leaf = data
    for table in tables:
        leaf = leaf.setdefault(table, {})
    leaf[name] = [value] if key.endswith("warn_before") else value
    if tables[0] in ("imap", "smtp"):
        leaf["host"] = f"{tables[0]}.example.com"
    leaf.update(COMPANIONS.get(key, {}))
    return data


def _written(bound, value):
    """A value as an admin writes it: seconds for a duration, bytes for a size, else the number."""
    if bound.kind == "duration":
        seconds = value.total_seconds() if isinstance(value, timedelta) else value
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    return value


def _edges(bound):
    """(inside, outside) values at both ends of a bound."""
    if bound.kind == "duration":
        low, high = bound.low.total_seconds(), bound.high.total_seconds()
        inside, outside = [low, high], [high + 1] + ([low / 2] if low else [])
    elif bound.kind == "share":
        inside, outside = [bound.low, bound.high], [bound.high + 0.001, bound.low - 0.001]
    else:
        inside, outside = [bound.low, bound.high], [bound.high + 1] + ([bound.low - 1] if bound.low else [])
    return [_written(bound, v) for v in inside], [_written(bound, v) for v in outside]


@pytest.mark.parametrize("key", _keys())
def test_every_bounded_key_takes_its_edges_and_refuses_beyond_them(tmp_path, key):
    """Inside: read as written. Beyond either end, or a hostile value: a ConfigError naming the key
    (which also shows the table names no key the config does not read)."""
    bound = bound_for(key)
    inside, outside = _edges(bound)
    for value in inside:
        build_config(_data(key, value), "f.toml", tmp_path)
    hostile = [math.inf, 1e300, -1] + (["999999999999999999d", "9" * 400] if bound.kind == "duration" else
                                       ["99999999999999999999GB"] if bound.kind == "size" else [2 ** 64])
    for value in outside + hostile:
        with pytest.raises(ConfigError) as err:
            build_config(_data(key, value), "f.toml", tmp_path)
        assert (err.value.file, err.value.key) == ("f.toml", key), (value, str(err.value))
        assert "\n" not in str(err.value)


def test_zero_turns_off_where_the_table_says_so(tmp_path):
    config = build_config({"sla": {"pending_reminder": 0, "pending_resolve_after": "0s"},
                           "retention": {"raw_mail": "0"}}, "f.toml", tmp_path)
    assert (config.sla.pending_reminder, config.sla.pending_resolve_after, config.retention.raw_mail) == (
        timedelta(0), timedelta(0), timedelta(0))


def test_a_key_without_bounds_is_named_at_once():
    """A key a later change reads without a line in BOUNDS fails the first load, saying where to add it."""
    with pytest.raises(LookupError, match="service.new_key has no bounds: add a line for it to "
                                          "mailticket.durations.BOUNDS"):
        within("service.new_key", "1h", "f.toml")


def test_an_exact_key_wins_over_a_pattern(monkeypatch):
    from mailticket import durations
    monkeypatch.setitem(durations.BOUNDS, "rate_limits.per_ticket", durations.count_bound(1, 5, "test"))
    assert within("rate_limits.per_sender_day", 6, "f.toml") == 6
    with pytest.raises(ConfigError, match="6 is outside 1..5: test"):
        within("rate_limits.per_ticket", 6, "f.toml")


def test_the_shipped_example_and_the_defaults_lie_within_the_bounds():
    from tests.harness import REPO
    from mailticket.config import load_config
    assert load_config(REPO / "config" / "mailticket.toml").service.token_lifetime == timedelta(days=90)
    assert build_config({}, "<embedded default>", Path.cwd()).service.ack_max_age == timedelta(days=1)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e300, "999999999999999999d", "9" * 400 + "s",
                                   "365001d", "1000y 1s"])
def test_parse_duration_says_value_error_never_overflow(value):
    """The agents' commands (#call 2h) and the CLI parse durations too: a ValueError they answer, not
    an OverflowError that would crash them."""
    with pytest.raises(ValueError):
        parse_duration(value)
