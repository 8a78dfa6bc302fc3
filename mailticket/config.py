"""Load the TOML configuration into frozen, typed settings.

Every problem is a ``ConfigError`` that names the file and the key. ``load_config(None)``
gives the embedded default: SQLite under ``./var``, the built-in listener on
127.0.0.1:2525 as inbox, outgoing mail written to a maildir under ``./var``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .durations import format_duration, parse_duration
from .errors import ConfigError, ConfigErrors
from .sizes import format_size, parse_size

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

class _Section:
    """A table of the TOML file, read key by key; every error names file and key."""

    def __init__(self, data: dict, file: str, path: str, known: set[str]):
        if not isinstance(data, dict):
            raise ConfigError("must be a table", file, path)
        self.data, self.file, self.path = data, file, path
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown key (valid: {', '.join(sorted(known))})", file, self.key(unknown[0]))

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
            raise self.error(name, f"must be {names}, not {type(value).__name__} {value!r}")
        return value

    def string(self, name, default=None, required=False, choices=None) -> str | None:
        value = self.get(name, str, default, required)
        if choices and value is not None and value not in choices:
            raise self.error(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def duration(self, name, default) -> timedelta:
        return self._parsed(name, default, parse_duration)

    def size(self, name, default: int) -> int:
        return self._parsed(name, default, parse_size)

    def _parsed(self, name, default, parse):
        """The key read by ``parse`` (a ValueError names the key), or ``default`` when it is absent."""
        if name not in self.data:
            return default
        try:
            return parse(self.data[name])
        except ValueError as exc:
            raise self.error(name, str(exc)) from None

    def address(self, name, default=None, required=False) -> str | None:
        value = self.string(name, default, required)
        if value is None:
            return None
        return _check_address(value, self.error, name)

    def port(self, name, default) -> int:
        value = self.get(name, int, default)
        if not 0 < value < 65536:
            raise self.error(name, f"{value} is not a TCP port (1-65535)")
        return value


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

SERVICE_KEYS = {"name", "address", "tag_prefix", "locale", "timezone", "data_dir", "admin_address", "manager_address",
                "security_address", "templates_dir", "ack_max_age", "reopen_window", "vip",
                "trusted_authserv_id", "secret", "secret_file", "secret_env", "secret_credential",
                "token_lifetime", "categories", "alarm_after",
                "attach_max"}


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
    return ServiceConfig(
        name=s.string("name", "Service Desk"),
        address=s.address("address", "support@localhost"),
        tag_prefix=prefix,
        locale=s.string("locale", "en", choices=LOCALES),
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
        alarm_after=_alarm_after(s),
        attach_max=s.size("attach_max", 10_000_000),
    )


def _alarm_after(s: _Section) -> timedelta:
    value = s.duration("alarm_after", timedelta(minutes=15))
    if value.total_seconds() < 1:
        raise s.error("alarm_after", "must be 1s or more (a problem must last that long before the admin is mailed)")
    return value


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
    if poll.total_seconds() <= 0:
        raise s.error("poll_interval", "must be more than 0s")
    batch = s.get("batch_size", int, 200)
    if not 1 <= batch <= 5000:
        raise s.error("batch_size", "must be between 1 and 5000")
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
    attempts = s.get("max_attempts", int, 8)
    if attempts < 1:
        raise s.error("max_attempts", "must be 1 or more")
    md = _path(maildir, base) if maildir else (None if has_smtp else data_dir / "outgoing")
    max_size = s.size("max_size", 25_000_000)
    if max_size < 100_000:
        raise s.error("max_size", f"{format_size(max_size)} is too small for a mail; give the mail server's "
                                  "limit, e.g. 25MB")
    return OutboxConfig(maildir=md, max_attempts=attempts, max_size=max_size,
                        retry_base=s.duration("retry_base", timedelta(seconds=30)),
                        retry_max=s.duration("retry_max", timedelta(hours=1)))


def _rate_limits(data: dict | None, file: str) -> RateLimits:
    defaults = {"per_ticket": 3, "per_sender_day": 10, "global_10min": 1000, "queries_per_hour": 10,
                "per_thread_hour": 10, "internal_per_ticket_hour": 20, "tier_notices_per_sender_hour": 10,
                "quarantine_alerts_day": 10}
    s = _Section(data or {}, file, "rate_limits", set(defaults))
    values = {}
    for key, default in defaults.items():
        v = s.get(key, int, default)
        if v < 1:
            raise s.error(key, "must be 1 or more (a limit of 0 would silence every acknowledgement)")
        values[key] = v
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
            "retention", "reports"}


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
    """The validated config, or a ConfigError naming file and key; with problems in several
    sections, a ConfigErrors holding the first problem of each. A section that another needs
    (the service's time zone for the SLA, its data_dir for the outbox) is stood in for by a
    neutral value when it failed, so the others are still checked; monitoring, which names the
    rules' categories, is checked only with valid rules."""
    from .desk import monitoring
    from .desk import rules
    from .desk import reportschedule
    from .desk import sla# pure modules, each validates its own sections

    problems: list[ConfigError] = []

    def checked(build, *args):
        try:
            return build(*args)
        except ConfigError as exc:
            problems.append(exc)
            return None

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
    if problems:
        raise problems[0] if len(problems) == 1 else ConfigErrors(problems)
    return Config(
        file=file, service=service, database=database, imap=imap, smtp=smtp, listener=listener, outbox=outbox,
        rate_limits=rate_limits, tiers=tiers, sla=policy, rules=ruleset, monitoring=watched, spam=spam, retention=retention,
        reports=reports,
        raw=data)


def _database(data: dict, file: str, base: Path, data_dir: Path) -> DatabaseConfig:
    db = _Section(data, file, "database", {"url", "lease_ttl"})
    url = db.string("url", f"sqlite:///{data_dir / 'mailticket.db'}")
    if not url.startswith(("sqlite:", "postgres://", "postgresql://", "postgresext://")):
        from .db import redact
        raise db.error("url", f"{redact(url)!r} is neither sqlite:///PATH nor postgresql://USER@HOST/DB")
    lease_ttl = db.duration("lease_ttl", timedelta(seconds=30))
    if not timedelta(seconds=1) <= lease_ttl <= timedelta(hours=1):
        raise db.error("lease_ttl", f"{format_duration(lease_ttl)} is outside 1s..1h")
    return DatabaseConfig(_sqlite_url_from(url, base), lease_ttl)

