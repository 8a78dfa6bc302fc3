"""Load the TOML configuration into frozen, typed settings.

Every problem is a ``ConfigError`` that names the file and the key. ``load_config(None)``
gives the embedded default: SQLite under ``./var``, the built-in listener on
127.0.0.1:2525 as inbox, outgoing mail written to a maildir under ``./var``.
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .durations import format_duration, within
from .errors import ConfigError, ConfigErrors

LOCALES = ("en", "sv")


@dataclass(frozen=True)
class Secret:
    """Where a password or token comes from; the value itself is never logged."""

    value: str | None = None
    file: str | None = None
    env: str | None = None
    credential: str | None = None  # name in $CREDENTIALS_DIRECTORY (systemd LoadCredential=)
    key: str | None = None          # where it was configured ("smtp.password_file"), for errors
    config_file: str | None = None

    def get(self) -> str | None:
        if self.value is not None:
            return self.value
        if self.env:
            if self.env not in os.environ:
                raise self.error(f"environment variable {self.env} is not set")
            return os.environ[self.env]
        path = self.file
        if self.credential:
            cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
            if not cred_dir:
                raise self.error(f"credential {self.credential!r} asked for, but CREDENTIALS_DIRECTORY is not set "
                                 "(is LoadCredential= in the unit?)")
            path = os.path.join(cred_dir, self.credential)
        if path:
            try:
                return Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise self.error(f"cannot read {path}: {exc.strerror}") from exc
        return None

    def readable_here(self) -> bool:
        """False for a variable or a systemd credential this process's environment does not have:
        the service's environment has them, a command run from an admin's shell may not."""
        if self.value is not None:
            return True
        if self.env:
            return self.env in os.environ
        return not self.credential or bool(os.environ.get("CREDENTIALS_DIRECTORY"))

    def error(self, problem: str) -> ConfigError:
        return ConfigError(problem, self.config_file, self.key)

    def __repr__(self) -> str:  # never show the value
        src = "value" if self.value is not None else self.file or self.env or self.credential
        return f"Secret(<from {src}>)"


@dataclass(frozen=True)
class ServerAuth:
    username: str | None = None
    password: Secret = field(default_factory=Secret)
    auth: str = "password"  # password | oauth2
    oauth2_token_command: str | None = None


@dataclass(frozen=True)
class ServiceConfig:
    name: str = "Service Desk"
    address: str = "support@localhost"
    tag_prefix: str = "SD"
    locale: str = "en"
    languages: tuple[str, ...] = ("en", "sv")  # what requesters are written to in; the desk's locale first
    timezone: str = "UTC"
    data_dir: Path = Path("./var")
    admin_address: str = "helpdesk-admin@localhost"
    manager_address: str = "helpdesk-admin@localhost"  # escalations past tier 3 and the reports
    security_address: str = "security@localhost"
    templates_dir: Path | None = None
    ack_max_age: timedelta = timedelta(days=1)
    reopen_window: timedelta = timedelta(days=14)
    vip: frozenset[str] = frozenset()
    trusted_authserv_id: str | None = None
    secret: Secret = field(default_factory=Secret)
    token_lifetime: timedelta = timedelta(days=90)
    alarm_after: timedelta = timedelta(minutes=15)  # a problem this old mails the admin (desk/alarms.py)
    attach_max: int = 10_000_000  # bytes of a requester's files a notification carries in all
    max_participants: int = 20  # people in Cc of one ticket (and added by one mail); replies go to these + requester

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2] or "localhost"


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int = 993
    security: str = "ssl"
    credentials: ServerAuth = field(default_factory=ServerAuth)
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    quarantine_folder: str = "Quarantine"
    spam_folder: str = "Junk"
    idle: bool = True
    poll_interval: timedelta = timedelta(seconds=60)
    ca_file: str | None = None
    timeout: timedelta = timedelta(seconds=30)
    batch_size: int = 200


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"
    credentials: ServerAuth = field(default_factory=ServerAuth)
    ca_file: str | None = None
    timeout: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class ListenerConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 2525
    protocol: str = "smtp"  # smtp | lmtp


@dataclass(frozen=True)
class OutboxConfig:
    maildir: Path | None = None  # used when there is no [smtp]: mail is written here instead
    max_attempts: int = 8
    retry_base: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(hours=1)
    max_size: int = 25_000_000  # the mail server's limit for one mail: files beyond it are not attached


@dataclass(frozen=True)
class RateLimits:
    per_ticket: int = 3            # automatic mails to one address about one ticket per day
    per_sender_day: int = 10       # automatic mails to one address per day
    global_10min: int = 1000       # automatic mails in all per ten minutes (a fuse; a new sender's ack passes)
    queries_per_hour: int = 10     # answers to #mytickets, #list ... to one address per hour
    per_thread_hour: int = 10      # mails of one kind to one address about one ticket per hour (every kind)
    internal_per_ticket_hour: int = 20  # mails of all kinds to one internal address about one ticket per hour
    tier_notices_per_sender_hour: int = 10  # new-ticket notices to the tier for one requester's tickets per hour
    quarantine_alerts_day: int = 10  # quarantine alerts mailed one by one a day; the rest in an hourly digest
    delivery_alerts_day: int = 10  # delivery-failure alerts mailed one by one a day; the rest in an hourly digest


@dataclass(frozen=True)
class TierConfig:
    number: int
    name: str
    address: str
    agents: frozenset[str]
    locale: str | None = None


@dataclass(frozen=True)
class SpamConfig:
    trust_headers: bool = True     # honour X-Spam-Flag & co. of the filter in front of the mailbox


@dataclass(frozen=True)
class RetentionConfig:
    """How long closed tickets keep their raw mails and attachments, and themselves; 0 keeps forever."""

    raw_mail: timedelta = timedelta(0)
    closed_tickets: timedelta = timedelta(0)


@dataclass(frozen=True)
class DatabaseConfig:
    url: str
    lease_ttl: timedelta = timedelta(seconds=30)  # several daemons on PostgreSQL: IMAP folder lease and claims


@dataclass(frozen=True)
class CallPlace:
    """Where a ``#call`` happens: a meeting link (a template: ``{agent}``, ``{ticket}``) and/or a
    number to ring, in international form."""

    link: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class CallsConfig:
    """[calls]: the desk's meeting place, each agent's own ([calls.agents."ADDRESS"]), and when the
    agent is reminded. ``region`` is the country a number without +CC belongs to (from the locale
    or the time zone: SE for a Swedish desk), or None."""

    link: str | None = None
    phone: str | None = None
    remind_before: timedelta = timedelta(minutes=15)
    agents: dict = field(default_factory=dict)  # address -> CallPlace
    region: str | None = None

    def place_for(self, agent: str) -> CallPlace:
        """The agent's link and number; a key the agent has not set is the desk's."""
        own = self.agents.get((agent or "").lower(), CallPlace())
        return CallPlace(link=own.link or self.link, phone=own.phone or self.phone)


@dataclass(frozen=True)
class Config:
    file: str
    service: ServiceConfig
    database: DatabaseConfig
    imap: ImapConfig | None
    smtp: SmtpConfig | None
    listener: ListenerConfig
    outbox: OutboxConfig
    rate_limits: RateLimits
    tiers: dict[int, TierConfig]
    sla: object            # mailticket.desk.sla.SlaPolicy
    rules: object          # mailticket.desk.rules.RuleSet
    monitoring: tuple = ()  # mailticket.desk.monitoring rules
    spam: SpamConfig = field(default_factory=SpamConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    reports: object = None  # mailticket.desk.schedule.ReportSchedule ([reports])
    calls: CallsConfig = field(default_factory=CallsConfig)
    raw: dict = field(default_factory=dict, repr=False)

    def agent_tier(self, address: str) -> int | None:
        """The lowest tier that lists this address as an agent, or None."""
        a = address.lower()
        for n in sorted(self.tiers):
            if a in self.tiers[n].agents:
                return n
        return None

    def rules_decide(self, sender: str, subject: str, body: str):
        """Type, category, impact, urgency, priority and tier for a new ticket (first rule wins)."""
        from .desk.rules import decide
        return decide(self.rules, sender, subject, body, set(self.service.vip))

    @cached_property
    def agents(self) -> frozenset[str]:
        return frozenset().union(*(t.agents for t in self.tiers.values()))

    @cached_property
    def tier_addresses(self) -> frozenset[str]:
        return frozenset(t.address for t in self.tiers.values())

    def is_own_address(self, address: str) -> bool:
        """The support address, its signed +variants, or a tier's address: never a requester or participant."""
        a = address.lower()
        local, _, domain = self.service.address.partition("@")
        if a == self.service.address or (a.startswith(local + "+") and a.endswith("@" + domain)):
            return True
        return a in self.tier_addresses

    def is_internal_address(self, address: str) -> bool:
        """An agent, a tier, the admin or the security contact: may receive tokens that let mail act."""
        a = address.lower()
        return (a in self.agents or a in self.tier_addresses
                or a in (self.service.admin_address, self.service.security_address,
                         self.service.manager_address))

    def locale_for_tier(self, tier: int) -> str:
        t = self.tiers.get(tier)
        return (t.locale if t and t.locale else self.service.locale)


# ---------------------------------------------------------------- reading helpers

# While build_config checks a section, the problems of single keys found so far: a key of the
# wrong type, outside its bounds, not one of its choices, or unknown. Such a key is noted and read
# as its default, so that the admin hears of every bad key of the section in one run.
_NOTED: contextvars.ContextVar[list | None] = contextvars.ContextVar("config_problems", default=None)


def _note(problem: ConfigError, stand_in):
    """``stand_in`` when a section is being checked (the problem noted), else the problem raised."""
    noted = _NOTED.get()
    if noted is None:
        raise problem
    noted.append(problem)
    return stand_in


class _Section:
    """A table of the TOML file, read key by key; every error names file and key."""

    def __init__(self, data: dict, file: str, path: str, known: set[str]):
        if not isinstance(data, dict):
            raise ConfigError("must be a table", file, path)
        self.data, self.file, self.path = data, file, path
        for name in sorted(set(data) - known):
            _note(ConfigError(f"unknown key (valid: {', '.join(sorted(known))})", file, self.key(name)), None)

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(problem, self.file, self.key(name))

    def get(self, name, typ, default=None, required=False):
        if name not in self.data:
            if required:
                raise self.error(name, "is required")
            return default
        value = self.data[name]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
            problem = self.error(name, f"must be {names}, not {type(value).__name__} {value!r}")
            if required:  # no default to stand in
                raise problem
            return _note(problem, default)
        return value

    def string(self, name, default=None, required=False, choices=None) -> str | None:
        value = self.get(name, str, default, required)
        if choices and value is not None and value not in choices:
            problem = self.error(name, f"{value!r} is not one of {', '.join(choices)}")
            if required or default not in choices:
                raise problem
            return _note(problem, default)
        return value

    def duration(self, name, default) -> timedelta:
        return self.bounded(name, default)

    def size(self, name, default: int) -> int:
        return self.bounded(name, default)

    def number(self, name, default):
        return self.bounded(name, default)

    def bounded(self, name, default):
        """The key read and bounded as BOUNDS says (the default too: a key without bounds is found
        by the first test that loads a config, not in production)."""
        try:
            return within(self.key(name), self.data.get(name, default), self.file)
        except ConfigError as problem:
            if name not in self.data:
                raise  # the default itself is out of bounds: a bug, found by any test
            return _note(problem, within(self.key(name), default, self.file))

    def address(self, name, default=None, required=False) -> str | None:
        value = self.string(name, default, required)
        if value is None:
            return None
        return _check_address(value, self.error, name)

    def port(self, name, default) -> int:
        return self.number(name, default)


def _check_address(value: str, error, name) -> str:
    _, addr = parseaddr(value)
    if not addr or "@" not in addr or addr != value.strip() or " " in addr:
        raise error(name, f"{value!r} is not a mail address like support@example.com")
    return addr.lower()


def _secret(sec: _Section, prefix: str = "password") -> Secret:
    given = [k for k in (prefix, f"{prefix}_file", f"{prefix}_env", f"{prefix}_credential") if k in sec.data]
    if len(given) > 1:
        raise sec.error(given[1], f"give only one of {', '.join(given)}: which one would be used is not obvious")
    return Secret(
        value=sec.string(prefix),
        file=sec.string(f"{prefix}_file"),
        env=sec.string(f"{prefix}_env"),
        credential=sec.string(f"{prefix}_credential"),
        key=sec.key(given[0] if given else prefix),
        config_file=sec.file,
    )


def _auth(sec: _Section) -> ServerAuth:
    auth = sec.string("auth", "password", choices=("password", "oauth2"))
    cmd = sec.string("oauth2_token_command")
    if auth == "oauth2" and not cmd:
        raise sec.error("oauth2_token_command", 'is required when auth = "oauth2"')
    return ServerAuth(username=sec.string("username"), password=_secret(sec), auth=auth,
                      oauth2_token_command=cmd)


def _check_plaintext(sec: _Section, host: str, security: str):
    if security == "none" and not _is_loopback(host):
        raise sec.error("security", f'"none" sends passwords in clear text; allowed only for loopback, not {host!r}')


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- sections

SERVICE_KEYS = {"name", "address", "tag_prefix", "locale", "languages", "timezone", "data_dir", "admin_address", "manager_address",
                "security_address", "templates_dir", "ack_max_age", "reopen_window", "vip",
                "trusted_authserv_id", "secret", "secret_file", "secret_env", "secret_credential",
                "token_lifetime", "categories", "alarm_after",
                "attach_max", "max_participants"}


def _languages(s: "_Section", locale: str) -> tuple[str, ...]:
    """``[service] languages``: what the desk writes to requesters in, the desk's locale first. By
    default every shipped language. Each needs its shipped templates and catalogue."""
    from .i18n import missing_language_files
    value = s.get("languages", list)
    if value is None:
        return (locale, *[code for code in LOCALES if code != locale])
    found = []
    for code in value:
        if not isinstance(code, str) or not code.strip():
            raise s.error("languages", f"{code!r} is not a language code like \"sv\" or \"en\"")
        code = code.strip().lower()
        missing = missing_language_files(code)
        if missing:
            raise s.error("languages", f"{code!r} cannot be offered: the desk ships no "
                          + " and no ".join(str(p) for p in missing))
        if code not in found:
            found.append(code)
    if locale not in found:
        raise s.error("languages", f"must include the desk's own locale {locale!r} (service.locale)")
    return (locale, *[code for code in found if code != locale])


def _service(data: dict, file: str, base: Path) -> ServiceConfig:
    s = _Section(data, file, "service", SERVICE_KEYS)
    tz = s.string("timezone", "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise s.error("timezone", f"{tz!r} is not a time zone name like Europe/Stockholm") from None
    prefix = s.string("tag_prefix", "SD")
    if not prefix or not prefix.replace("-", "").replace("_", "").isalnum() or len(prefix) > 16:
        raise s.error("tag_prefix", f"{prefix!r} must be 1-16 letters or digits (it goes in subjects as [{prefix}#123])")
    vip = s.get("vip", list, [])
    templates = s.string("templates_dir")
    admin = s.address("admin_address", "helpdesk-admin@localhost")
    locale = s.string("locale", "en", choices=LOCALES)
    return ServiceConfig(
        name=s.string("name", "Service Desk"),
        address=s.address("address", "support@localhost"),
        tag_prefix=prefix,
        locale=locale,
        languages=_languages(s, locale),
        timezone=tz,
        data_dir=_path(s.string("data_dir", "./var"), base),
        admin_address=admin,
        manager_address=s.address("manager_address", admin),
        security_address=s.address("security_address", "security@localhost"),
        templates_dir=_path(templates, base) if templates else None,
        ack_max_age=s.duration("ack_max_age", timedelta(days=1)),
        reopen_window=s.duration("reopen_window", timedelta(days=14)),
        vip=frozenset(v.lower() for v in vip if isinstance(v, str)),
        trusted_authserv_id=s.string("trusted_authserv_id"),
        secret=_secret(s, "secret"),
        token_lifetime=s.duration("token_lifetime", timedelta(days=90)),
        alarm_after=s.duration("alarm_after", timedelta(minutes=15)),
        attach_max=s.size("attach_max", 10_000_000),
        max_participants=s.number("max_participants", 20),
    )


def _retention(data: dict | None, file: str) -> RetentionConfig:
    s = _Section(data or {}, file, "retention", {"raw_mail", "closed_tickets"})
    raw_mail, closed = s.duration("raw_mail", timedelta(0)), s.duration("closed_tickets", timedelta(0))
    if raw_mail and closed and closed < raw_mail:
        raise s.error("closed_tickets", f"{format_duration(closed)} is shorter than raw_mail "
                                        f"({format_duration(raw_mail)}): the tickets would go before their mails")
    return RetentionConfig(raw_mail=raw_mail, closed_tickets=closed)


def _sqlite_url_from(url: str, base: Path) -> str:
    """A SQLite file given by a relative path is relative to the config file's folder, like every
    other path in it (not to wherever a command was started)."""
    from .db import sqlite_path
    path = sqlite_path(url)
    if path is None or Path(path).is_absolute():
        return url
    return f"sqlite:///{_path(path, base)}"


def _path(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _server(s: _Section, default_security: str) -> tuple[str, str, str | None]:
    """host, security and ca_file of a mail server: never clear text beyond loopback, a CA that exists."""
    host = s.string("host", required=True)
    security = s.string("security", default_security, choices=("ssl", "starttls", "none"))
    _check_plaintext(s, host, security)
    ca = s.string("ca_file")
    if ca and not Path(ca).is_file():
        raise s.error("ca_file", f"{ca} does not exist")
    return host, security, ca


def _imap(data: dict, file: str) -> ImapConfig:
    s = _Section(data, file, "imap", {
        "host", "port", "security", "username", "password", "password_file", "password_env",
        "password_credential", "auth", "oauth2_token_command", "folder", "processed_folder",
        "quarantine_folder", "spam_folder", "idle", "poll_interval", "ca_file", "timeout", "batch_size"})
    host, security, ca = _server(s, default_security="ssl")
    poll = s.duration("poll_interval", timedelta(seconds=60))
    batch = s.number("batch_size", 200)
    return ImapConfig(
        host=host, port=s.port("port", 993 if security == "ssl" else 143), security=security,
        credentials=_auth(s), folder=s.string("folder", "INBOX"),
        processed_folder=s.string("processed_folder", "Processed"),
        quarantine_folder=s.string("quarantine_folder", "Quarantine"),
        spam_folder=s.string("spam_folder", "Junk"),
        idle=s.get("idle", bool, True), poll_interval=poll, ca_file=ca,
        timeout=s.duration("timeout", timedelta(seconds=30)), batch_size=batch)


def _smtp(data: dict, file: str) -> SmtpConfig:
    s = _Section(data, file, "smtp", {
        "host", "port", "security", "username", "password", "password_file", "password_env",
        "password_credential", "auth", "oauth2_token_command", "ca_file", "timeout"})
    host, security, ca = _server(s, default_security="starttls")
    default_port = {"ssl": 465, "starttls": 587, "none": 25}[security]
    return SmtpConfig(host=host, port=s.port("port", default_port), security=security,
                      credentials=_auth(s), ca_file=ca,
                      timeout=s.duration("timeout", timedelta(seconds=30)))


def _listener(data: dict | None, file: str, default_enabled: bool) -> ListenerConfig:
    if data is None:
        return ListenerConfig(enabled=default_enabled)
    s = _Section(data, file, "listener", {"enabled", "host", "port", "protocol"})
    host = s.string("host", "127.0.0.1")
    if not _is_loopback(host):
        raise s.error("host", f"the built-in listener binds to loopback only (127.0.0.1 or ::1), not {host!r}; "
                              "let your MTA deliver to it over LMTP/SMTP on loopback")
    return ListenerConfig(enabled=s.get("enabled", bool, True), host=host, port=s.port("port", 2525),
                          protocol=s.string("protocol", "smtp", choices=("smtp", "lmtp")))


def _outbox(data: dict | None, file: str, base: Path, data_dir: Path, has_smtp: bool) -> OutboxConfig:
    s = _Section(data or {}, file, "outbox", {"maildir", "max_attempts", "retry_base", "retry_max", "max_size"})
    maildir = s.string("maildir")
    attempts = s.number("max_attempts", 8)
    md = _path(maildir, base) if maildir else (None if has_smtp else data_dir / "outgoing")
    max_size = s.size("max_size", 25_000_000)
    return OutboxConfig(maildir=md, max_attempts=attempts, max_size=max_size,
                        retry_base=s.duration("retry_base", timedelta(seconds=30)),
                        retry_max=s.duration("retry_max", timedelta(hours=1)))


def _rate_limits(data: dict | None, file: str) -> RateLimits:
    defaults = {"per_ticket": 3, "per_sender_day": 10, "global_10min": 1000, "queries_per_hour": 10,
                "per_thread_hour": 10, "internal_per_ticket_hour": 20, "tier_notices_per_sender_hour": 10,
                "quarantine_alerts_day": 10, "delivery_alerts_day": 10}
    s = _Section(data or {}, file, "rate_limits", set(defaults))
    values = {}
    for key, default in defaults.items():
        values[key] = s.number(key, default)
    return RateLimits(**values)


def _spam(data: dict | None, file: str) -> SpamConfig:
    s = _Section(data or {}, file, "spam", {"trust_headers"})
    return SpamConfig(trust_headers=s.get("trust_headers", bool, True))


def _tiers(data: dict | None, file: str, domain: str) -> dict[int, TierConfig]:
    if data is None:
        return {n: TierConfig(n, name, f"tier{n}@{domain}", frozenset())
                for n, name in ((1, "Service desk"), (2, "Second line"), (3, "Third line"))}
    if not isinstance(data, dict):
        raise ConfigError("must be a table of [tiers.1], [tiers.2], [tiers.3]", file, "tiers")
    tiers = {}
    for key, value in data.items():
        if key not in ("1", "2", "3"):
            raise ConfigError("tiers are numbered 1, 2 and 3", file, f"tiers.{key}")
        s = _Section(value, file, f"tiers.{key}", {"name", "address", "agents", "locale"})
        agents = s.get("agents", list, [])
        checked = frozenset(_check_address(a, s.error, f"agents[{i}]") if isinstance(a, str)
                            else (_ for _ in ()).throw(s.error(f"agents[{i}]", "must be a string"))
                            for i, a in enumerate(agents))
        tiers[int(key)] = TierConfig(int(key), s.string("name", f"Tier {key}"),
                                     s.address("address", required=True), checked,
                                     s.string("locale", choices=LOCALES))
    missing = [n for n in (1, 2, 3) if n not in tiers]
    if missing:
        raise ConfigError(f"tier {missing[0]} is missing: the escalation ladder needs [tiers.1], [tiers.2] and [tiers.3]",
                          file, f"tiers.{missing[0]}")
    return tiers


TOP_KEYS = {"service", "database", "imap", "smtp", "listener", "outbox", "rate_limits", "tiers", "sla",
            "rules", "priority_matrix", "security", "monitoring", "spam",
            "retention", "reports", "calls"}


def load_config(path: str | os.PathLike | None) -> Config:
    """Read and validate a config file; ``None`` gives the embedded default."""
    if path is None:
        return build_config({}, "<embedded default>", Path.cwd())
    file = str(path)
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("no such file", file) from None
    except PermissionError:
        raise ConfigError("permission denied (the service user must be able to read it)", file) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file) from None
    return build_config(data, file, Path(file).resolve().parent)


def build_config(data: dict, file: str, base: Path) -> Config:
    """The validated config, or a ConfigError naming file and key; with several problems, a
    ConfigErrors holding them all: every bad key of a section (``_note``), and what stopped a
    section's reading. A section that another needs (the service's time zone for the SLA, its
    data_dir for the outbox) is stood in for by a neutral value when it failed, so the others are
    still checked; monitoring, which names the rules' categories, is checked only with valid rules."""
    from .desk import monitoring
    from .desk import rules
    from .desk import reportschedule
    from .desk import sla# pure modules, each validates its own sections

    problems: list[ConfigError] = []

    def checked(build, *args):
        """The section built, or None with its problems added: every bad key (``_note``), then
        what stopped the build unless it only followed from a noted key's default standing in."""
        noted: list[ConfigError] = []
        token = _NOTED.set(noted)
        try:
            built = build(*args)
        except ConfigError as exc:
            problems.extend(noted)
            if not noted or exc.key not in {n.key for n in noted}:
                problems.append(exc)
            return None
        except Exception:
            if not noted:
                raise
            problems.extend(noted)  # a stand-in led the build astray: the noted keys are the problem
            return None
        finally:
            _NOTED.reset(token)
        if noted:
            problems.extend(noted)
            return None
        return built

    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        problems.append(ConfigError(f"unknown section (valid: {', '.join(sorted(TOP_KEYS))})", file, unknown[0]))
    service = checked(_service, data.get("service", {}), file, base)
    data_dir = service.data_dir if service else base / "var"
    database = checked(_database, data.get("database", {}), file, base, data_dir)
    imap = checked(_imap, data["imap"], file) if "imap" in data else None
    smtp = checked(_smtp, data["smtp"], file) if "smtp" in data else None
    listener = checked(_listener, data.get("listener"), file, "imap" not in data)
    if "imap" not in data and listener is not None and not listener.enabled:
        problems.append(ConfigError("no inbox: configure [imap] or enable [listener]", file, "imap"))
    ruleset = checked(rules.load_rules, data, file)
    outbox = checked(_outbox, data.get("outbox"), file, base, data_dir, "smtp" in data)
    rate_limits = checked(_rate_limits, data.get("rate_limits"), file)
    tiers = checked(_tiers, data.get("tiers"), file, service.domain if service else "example.invalid")
    policy = checked(sla.load_policy, data.get("sla", {}), service.timezone if service else "UTC", file)
    spam = checked(_spam, data.get("spam"), file)
    watched = checked(monitoring.load_monitoring, data, file, ruleset.categories) if ruleset else None
    retention = checked(_retention, data.get("retention"), file)
    reports = checked(reportschedule.load_reports, data.get("reports", {}), file)
    calls = checked(_calls, data.get("calls"), file, service, tiers)
    if problems:
        raise problems[0] if len(problems) == 1 else ConfigErrors(problems)
    return Config(
        file=file, service=service, database=database, imap=imap, smtp=smtp, listener=listener, outbox=outbox,
        rate_limits=rate_limits, tiers=tiers, sla=policy, rules=ruleset, monitoring=watched, spam=spam, retention=retention,
        reports=reports, calls=calls,
        raw=data)


def _database(data: dict, file: str, base: Path, data_dir: Path) -> DatabaseConfig:
    db = _Section(data, file, "database", {"url", "lease_ttl"})
    url = db.string("url", f"sqlite:///{data_dir / 'mailticket.db'}")
    if not url.startswith(("sqlite:", "postgres://", "postgresql://", "postgresext://")):
        from .db import redact
        raise db.error("url", f"{redact(url)!r} is neither sqlite:///PATH nor postgresql://USER@HOST/DB")
    lease_ttl = db.duration("lease_ttl", timedelta(seconds=30))
    return DatabaseConfig(_sqlite_url_from(url, base), lease_ttl)



# ---------------------------------------------------------------- [calls]

CALL_LINK_FIELDS = ("agent", "ticket")


def _calls(data: dict | None, file: str, service: ServiceConfig | None, tiers: dict | None) -> CallsConfig:
    agents_data = (data or {}).get("agents", {})
    s = _Section({k: v for k, v in (data or {}).items() if k != "agents"}, file, "calls",
                 {"link", "phone", "remind_before"})
    region = phone_region(service.locale if service else "en", service.timezone if service else "UTC")
    remind = s.duration("remind_before", timedelta(minutes=15))
    if not isinstance(agents_data, dict):
        raise ConfigError('must be a table of [calls.agents."ADDRESS"]', file, "calls.agents")
    known = frozenset().union(*(t.agents for t in tiers.values())) if tiers else None
    agents = {}
    for address, value in agents_data.items():
        a = _Section(value, file, f'calls.agents."{address}"', {"link", "phone"})
        checked_address = _check_address(address, a.error, "")
        if known is not None and checked_address not in known:
            raise ConfigError(f"{address} is not an agent of any tier", file, f'calls.agents."{address}"')
        agents[checked_address] = CallPlace(_call_link(a, "link"), _call_phone(a, "phone", region))
    return CallsConfig(link=_call_link(s, "link"), phone=_call_phone(s, "phone", region), remind_before=remind,
                       agents=agents, region=region)


def _call_link(s: _Section, name: str) -> str | None:
    """A meeting link: http(s), and no placeholder but {agent} and {ticket}."""
    import string
    value = s.string(name)
    if value is None:
        return None
    if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
        raise s.error(name, f"{value!r} is not a web address like https://meet.example.com/{{agent}}")
    try:
        parsed = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(value) if f is not None]
    except ValueError as exc:
        raise s.error(name, f"{value!r} is not a valid template ({exc}); write {{{{ and }}}} for braces") from None
    unknown = sorted({f for f, _, _ in parsed if f not in CALL_LINK_FIELDS})
    if unknown:
        raise s.error(name, f"{{{unknown[0]}}} is not a placeholder; use {{agent}} (the agent's name before the @) "
                            "or {ticket} (the ticket's number)")
    if any(spec or conv for _, spec, conv in parsed):
        raise s.error(name, "placeholders take no format: write {agent} or {ticket} as they are")
    return value


def _call_phone(s: _Section, name: str, region: str | None) -> str | None:
    """A number to ring, kept in international form (+46 8 123 45 67)."""
    import phonenumbers
    value = s.string(name)
    if value is None:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        where = f" for {region}" if region else " (write it with +country code)"
        raise s.error(name, f"{value!r} is not a phone number{where}, e.g. +46 8 123 45 67")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def phone_region(locale: str, timezone: str) -> str | None:
    """The country of a number written without +CC: Sweden for a Swedish desk, else the country
    of the service's time zone (zone.tab), else None (then only international numbers count)."""
    if locale == "sv":
        return "SE"
    return _zone_countries().get(timezone)


@functools.cache
def _zone_countries() -> dict[str, str]:
    import zoneinfo
    texts = []
    for folder in zoneinfo.TZPATH:
        try:
            texts.append(Path(folder, "zone.tab").read_text(encoding="utf-8"))
            break
        except OSError:
            continue
    if not texts:
        try:
            from importlib.resources import files
            texts.append(files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8"))
        except Exception:  # no zone table anywhere: international numbers only
            return {}
    table = {}
    for line in texts[0].splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and not line.startswith("#"):
            table.setdefault(parts[2], parts[0])
    return table

