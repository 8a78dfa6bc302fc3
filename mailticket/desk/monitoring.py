"""Monitoring alerts: which senders are monitoring systems, and what their PROBLEM/RECOVERY mails say.

Config::

    [[monitoring]]
    name = "nagios"                        # required, unique
    from = ["nagios@mon.example.com", "@zabbix.example.com"]   # address or @domain; required
    subject = "^\\*\\* (PROBLEM|RECOVERY)"  # optional regex, searched in the subject
    category = "monitoring"                # optional, default "monitoring"
    impact = "high"                        # optional, default medium (priority from the matrix)
    urgency = "medium"                     # optional, default medium

A mail from a matching source is parsed with ``parse_alert``; an ``Alert`` with state
``problem`` opens an incident (or joins the open one with the same ``key``), ``recovery``
resolves it. ``parse_alert`` returns None for mails it does not understand and for other
notification types (acknowledgement, flapping, downtime, custom): the caller logs them as
ordinary mail or as a note on the open ticket of that host.

Formats understood (the stock templates of each tool):
  Nagios   ``** PROBLEM Service Alert: web01/HTTP is CRITICAL **``, ``** RECOVERY Host Alert: web01 is UP **``
  Icinga 2 ``[PROBLEM] HTTP on web01 is CRITICAL!``, ``[RECOVERY] Host web01 is UP!``
  Checkmk  ``Check_MK: web01/Filesystem /var OK -> CRIT``, ``Check_MK: web01 - DOWN -> UP``,
           and ``*** PROBLEM *** ...`` / ``*** RECOVERY *** ...`` subjects with Host:/Service: lines
  Zabbix   ``Problem: NAME`` / ``Resolved: NAME`` / ``Resolved in 5m: NAME`` (Host: and Problem name: lines),
           older ``PROBLEM: TRIGGER`` / ``OK: TRIGGER`` (Trigger: and Host: lines)
Body lines (``Host:``, ``Service:``, ``Problem name:``, ``Trigger:``) win over the subject, since
display names in subjects may differ from the object names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError
from .rules import (
    ALWAYS_ALLOWED, DEFAULT_CATEGORIES, LEVELS, parse_senders, sender_matches,
)

SOURCE_KEYS = {"name", "from", "subject", "category", "impact", "urgency"}
RECOVERY_STATES = {"OK", "UP", "RECOVERY", "RESOLVED"}
PROBLEM_STATES = {"CRITICAL", "CRIT", "WARNING", "WARN", "UNKNOWN", "UNKN", "DOWN",
                  "UNREACHABLE", "UNREACH", "PROBLEM"}


@dataclass(frozen=True)
class Alert:
    """One monitoring notification: ``key`` is host/service, lower case, white space collapsed."""
    key: str
    state: str            # "problem" | "recovery"
    host: str
    service: str | None
    summary: str


@dataclass(frozen=True)
class MonitoringSource:
    name: str
    senders: tuple[str, ...]
    subject: re.Pattern | None = None
    category: str = "monitoring"
    impact: str = "medium"
    urgency: str = "medium"


# ---------------------------------------------------------------- config

def load_monitoring(data: dict, file: str, categories=None) -> tuple[MonitoringSource, ...]:
    """Validate the [[monitoring]] tables of a config (``data`` is the whole config)."""
    raw = data.get("monitoring", [])
    if not isinstance(raw, list):
        raise ConfigError("must be a list of tables ([[monitoring]])", file, "monitoring")
    allowed = set(categories or DEFAULT_CATEGORIES) | set(ALWAYS_ALLOWED)
    sources, names = [], set()
    for i, item in enumerate(raw):
        source = _load_source(item, file, f"monitoring[{i}]", allowed)
        if source.name in names:
            raise ConfigError(f"duplicate name {source.name!r}", file, f"monitoring[{i}].name")
        names.add(source.name)
        sources.append(source)
    return tuple(sources)


def _load_source(raw, file: str, where: str, categories: set) -> MonitoringSource:
    if not isinstance(raw, dict):
        raise ConfigError("must be a table", file, where)
    for key in raw:
        if key not in SOURCE_KEYS:
            raise ConfigError(f"unknown key {key!r}; valid: {', '.join(sorted(SOURCE_KEYS))}",
                              file, f"{where}.{key}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("every monitoring source needs a name", file, f"{where}.name")
    return MonitoringSource(
        name.strip(), parse_senders(raw.get("from"), file, f"{where}.from"),
        _subject(raw.get("subject"), file, f"{where}.subject"),
        _choice(raw, "category", "monitoring", categories, file, where),
        _choice(raw, "impact", "medium", LEVELS, file, where),
        _choice(raw, "urgency", "medium", LEVELS, file, where))


def _subject(value, file: str, key: str) -> re.Pattern | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError("must be a non-empty regular expression", file, key)
    try:
        return re.compile(value)
    except re.error as exc:
        raise ConfigError(f"broken regular expression {value!r}: {exc}", file, key) from None


def _choice(raw: dict, key: str, default: str, valid, file: str, where: str) -> str:
    value = raw.get(key, default)
    if value not in valid:
        raise ConfigError(f"{value!r} is not valid; valid: {', '.join(sorted(valid))}",
                          file, f"{where}.{key}")
    return value


def match_source(sources, sender: str, subject: str) -> MonitoringSource | None:
    """The first source whose senders (and subject regex, if any) match this mail."""
    for source in sources:
        if sender_matches(sender, source.senders) and (
                source.subject is None or source.subject.search(subject or "")):
            return source
    return None


# ---------------------------------------------------------------- parsing

NAGIOS = re.compile(r"^\*\*\s*(?P<type>\w+)\s+(?P<kind>Service|Host)\s+Alert:\s*(?P<what>.+?)\s+is\s+"
                    r"(?P<state>[A-Z]+)\s*\*\*", re.IGNORECASE)
ICINGA = re.compile(r"^\[(?P<type>\w+)\]\s*(?:Host\s+(?P<host>.+?)|(?P<service>.+?)\s+on\s+"
                    r"(?P<on>.+?))\s+is\s+(?P<state>[A-Z]+)!?\s*$", re.IGNORECASE)
CHECKMK = re.compile(r"^Check_MK:\s*(?P<what>.+?)\s+(?:-\s+)?(?P<old>[A-Z]+)\s*->\s*(?P<new>[A-Z]+)"
                     r"\s*$", re.IGNORECASE)
CHECKMK_OTHER = re.compile(r"^Check_MK:.*\b(ACKNOWLEDGEMENT|DOWNTIME\w*|FLAPPING\w*|CUSTOM)\b",
                           re.IGNORECASE)
STARS = re.compile(r"^\*\*\*\s*(?P<type>PROBLEM|RECOVERY)\s*\*\*\*", re.IGNORECASE)
ZABBIX = re.compile(r"^(?P<type>Problem|Resolved(?:\s+in\s+[^:]+)?|PROBLEM|OK|RESOLVED)\s*:\s*"
                    r"(?P<name>.+)$")


def parse_alert(subject: str, body: str) -> Alert | None:
    """A PROBLEM or RECOVERY alert from a Nagios/Icinga/Checkmk/Zabbix mail, else None."""
    subject = " ".join((subject or "").split())
    fields = body_fields(body or "")
    for parser in (_nagios, _icinga, _checkmk, _stars, _zabbix):
        result = parser(subject, fields)
        if result is not None:
            return result or None
    return None


def body_fields(body: str) -> dict[str, str]:
    """``Name: value`` lines of the body, names lower-cased (the first of each wins).

    A name with nothing after the colon takes the next non-blank line (Nagios writes
    ``Additional Info:`` and the plugin output below it).
    """
    fields: dict[str, str] = {}
    waiting: str | None = None
    for line in body.splitlines():
        if waiting and line.strip():
            fields.setdefault(waiting, line.strip())
            waiting = None
            continue
        m = re.match(r"\s*([A-Za-z][A-Za-z /_-]{0,30}?)\s*:(.*)$", line)
        if m and not m.group(2).startswith("//"):
            name, value = m.group(1).lower(), m.group(2).strip()
            if value:
                fields.setdefault(name, value)
            else:
                waiting = name
    return fields


def _state(word: str) -> str | None:
    word = word.upper()
    if word in RECOVERY_STATES:
        return "recovery"
    if word in PROBLEM_STATES:
        return "problem"
    return None


def make_alert(state: str, host: str, service: str | None, summary: str) -> Alert:
    """An Alert with its normalised key (``host`` or ``host/service``)."""
    host = re.sub(r"\s*\(.*\)$", "", host.strip())  # "web01 (web01.example.com)"
    service = service.strip() if service else None
    key = host if not service else f"{host}/{service}"
    return Alert(" ".join(key.lower().split()), state, host, service, summary.strip())


# A parser returns an Alert, False ("recognised, but not an alert to act on") or None (not mine).

def _nagios(subject: str, f: dict):
    m = NAGIOS.search(subject)
    if not m:
        return None
    state = _state(m.group("type"))
    if state is None:
        return False
    if m.group("kind").lower() == "host":
        host, service = f.get("host", m.group("what")), None
    else:
        subj_host, _, subj_service = m.group("what").partition("/")
        host, service = f.get("host", subj_host), f.get("service", subj_service)
    info = f.get("additional info") or f.get("info")
    return make_alert(state, host, service, info or f"{m.group('what')} is {m.group('state')}")


def _icinga(subject: str, f: dict):
    m = ICINGA.search(subject)
    if not m:
        return None
    state = _state(m.group("type"))
    if state is None:
        return False
    if m.group("host"):
        host, service = f.get("host", m.group("host")), None
    else:
        host, service = f.get("host", m.group("on")), f.get("service", m.group("service"))
    return make_alert(state, host, service, f.get("info") or f"{subject}")


def _checkmk(subject: str, f: dict):
    if CHECKMK_OTHER.search(subject):
        return False
    m = CHECKMK.search(subject)
    if not m:
        return None
    state = _state(m.group("new"))
    if state is None:
        return False
    what = m.group("what").strip().rstrip("-").strip()
    subj_host, _, subj_service = what.partition("/")
    host = f.get("host", subj_host)
    service = f.get("service", subj_service or None)
    summary = f.get("output") or f.get("summary") or f"{what} {m.group('old')} -> {m.group('new')}"
    return make_alert(state, host, service, summary)


def _stars(subject: str, f: dict):
    m = STARS.search(subject)
    if not m:
        return None
    if "host" not in f:
        return False
    summary = f.get("output") or f.get("info") or f.get("state") or subject
    return make_alert(_state(m.group("type")), f["host"], f.get("service"), summary)


def _zabbix(subject: str, f: dict):
    m = ZABBIX.match(subject)
    if not m:
        return None
    state = "problem" if m.group("type").lower() == "problem" else "recovery"
    name = f.get("problem name") or f.get("trigger") or m.group("name")
    host = f.get("host")
    if not host:
        on = re.search(r"\bon\s+(\S+)\s*$", name)
        if not on:
            return False
        host = on.group(1)
    summary = f.get("operational data") or f.get("problem name") or f.get("trigger") or name
    return make_alert(state, host, name, summary)
