"""Connect to SQLite or PostgreSQL, bind the models, apply named migrations."""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import peewee as pw
from playhouse.db_url import connect as url_connect

from . import models
from .errors import ConfigError, MailticketError

log = logging.getLogger(__name__)


class DatabaseError(MailticketError):
    """The database cannot be reached or used."""


def connect(url: str, *, migrate: bool = True) -> pw.Database:
    """Open the database at ``url``, bind the models and bring the schema up to date."""
    if url.startswith("sqlite:"):
        database = _sqlite(url)
    else:
        try:
            database = url_connect(url.replace("postgres://", "postgresql://", 1), autorollback=False)
        except Exception as exc:  # bad scheme or options
            raise ConfigError(f"cannot use database URL: {exc}", key="database.url") from None
    models.database_proxy.initialize(database)
    try:
        database.connect(reuse_if_open=True)
    except pw.OperationalError as exc:
        raise DatabaseError(f"cannot open database {redact(url)}: {str(exc).strip()}") from None
    if migrate:
        apply_migrations(database)
    return database


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:`` URL; None for PostgreSQL and for an in-memory database."""
    if not url.startswith("sqlite:"):
        return None
    path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url[len("sqlite:"):]
    return path if path and path != ":memory:" else None


def _sqlite(url: str) -> pw.SqliteDatabase:
    path = sqlite_path(url) or ""
    if path and path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the folder for {path}: {exc.strerror}") from None
    return pw.SqliteDatabase(path or ":memory:", timeout=30, pragmas={
        "journal_mode": "wal", "synchronous": "full", "foreign_keys": 1, "busy_timeout": 30000,
        "temp_store": "memory"})


def redact(url: str) -> str:
    """The URL without a password (user:PASSWORD@ or ?password=), for messages and logs."""
    url = re.sub(r"([?&]password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in cred else url
    return url


def _real(database) -> pw.Database:
    """The database itself, also when given the models' DatabaseProxy (``Model._meta.database``)."""
    database = database or models.database_proxy
    return database.obj if isinstance(database, pw.DatabaseProxy) else database


def is_postgres(database: pw.Database | None = None) -> bool:
    return isinstance(_real(database), pw.PostgresqlDatabase)


def write_transaction(database: pw.Database | None = None):
    """A transaction for read-then-write work. On SQLite it takes the write lock at once (BEGIN
    IMMEDIATE): another connection that writes in between then makes us wait (busy_timeout)
    instead of failing with "database is locked" half-way. On PostgreSQL a plain transaction."""
    database = _real(database)
    if isinstance(database, pw.SqliteDatabase):
        return database.atomic("IMMEDIATE")
    return database.atomic()


_PG_SQL: dict[str, str] = {}


def run(sql: str, params: tuple | list = ()):
    """A hand-written statement on the hot path of processing a mail (``?`` placeholders, the
    same text on SQLite and PostgreSQL): peewee would build it afresh each time, which costs
    more CPU than the database takes to run it (bench/profile_pipeline.py). Returns the cursor."""
    database = _real(None)
    return database.execute_sql(_dialect(database, sql), params)


def fetch_models(model, sql: str, params: tuple | list = ()) -> list:
    """Rows of a hand-written SELECT of ``model``'s columns (``?`` placeholders) as model
    instances, each column converted by its field, as ``model.raw`` would make them.

    Peewee's raw query works out afresh, for every query, which field each column of the cursor
    is (30 columns of a ticket): 5 % of the daemon's Python time went to the one reply lookup
    (py-spy ``--gil``). That answer is kept here by model and column names (``_row_plan``)."""
    database = _real(None)
    sql = _dialect(database, sql)
    cursor = database.execute_sql(sql, tuple(params))
    names = tuple(d[0] for d in cursor.description)
    plan = _ROW_PLANS.get((model, names))
    if plan is None:
        plan = _row_plan(model, names)
        if plan is None:  # a column name peewee would rename: its own way (the query runs again)
            return list(pw.ModelRaw(model, sql, tuple(params)))
        _ROW_PLANS[(model, names)] = plan
    instances = []
    for row in cursor.fetchall():
        instance = model(__no_default__=1, **{name: (convert(value) if convert is not None else value)
                                                for (name, convert), value in zip(plan, row)})
        instance._dirty.clear()
        instances.append(instance)
    return instances


_ROW_PLANS: dict = {}


def _row_plan(model, columns: tuple[str, ...]) -> list[tuple[str, object]] | None:
    """(attribute name, converter) for each column, as peewee's ``_resolve_model_columns`` gives
    them for a raw query: a column of the model is its field's name with its ``python_value``; any
    other keeps its name, unconverted. None where peewee would rename a column (a duplicate, or a
    name that is not an identifier)."""
    combined = model._meta.combined
    plan = []
    for column in columns:
        field = combined.get(column)
        if field is not None:
            plan.append((field.name, field.python_value if field._coerce else None))
        else:
            plan.append((column, None))
    names = [name for name, _ in plan]
    if len(set(names)) != len(names) or not all(name.isidentifier() for name in names):
        return None
    return plan


def _dialect(database, sql: str) -> str:
    if isinstance(database, pw.PostgresqlDatabase):
        return _PG_SQL.get(sql) or _PG_SQL.setdefault(sql, sql.replace("?", "%s"))
    return sql


@contextmanager
def lazy_commits():
    """Commits inside are not flushed to disk one by one (SQLite synchronous=NORMAL for the
    block; PostgreSQL's per-transaction ``SET LOCAL synchronous_commit = off`` is the caller's).

    For marks whose loss only repeats work already done, such as "this mail was sent": they
    survive a crash of our process (SQLite's WAL and PostgreSQL's server have them), and only a
    power cut or OS crash can take the last of them, whose mails are then sent once more with the
    same Message-ID. Each costs a flush otherwise (1.8 ms here, more than sending the mail)."""
    database = _real(None)
    if not isinstance(database, pw.SqliteDatabase):
        yield
        return
    database.execute_sql("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        database.execute_sql("PRAGMA synchronous = FULL")


def insert_or_ignore(sql_tail: str) -> str:
    """``INSERT OR IGNORE`` in SQLite's words or PostgreSQL's, for ``run``."""
    if is_postgres():
        return f"INSERT INTO {sql_tail} ON CONFLICT DO NOTHING"
    return f"INSERT OR IGNORE INTO {sql_tail}"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- migrations

def _initial(database: pw.Database) -> None:
    database.create_tables(models.ALL_MODELS, safe=True)


def _indexes(database: pw.Database) -> None:
    """Indexes added to the models after 0001 (create_tables(safe=True) adds only what is missing)."""
    database.create_tables(models.ALL_MODELS, safe=True)


def _rate_indexes(database: pw.Database) -> None:
    """The rate limits count automatic mails from indexes alone: (rcpt_key, automatic, created_at)
    replaces (rcpt_key, created_at), and (automatic, created_at) serves the global count."""
    database.execute_sql('DROP INDEX IF EXISTS "outbox_rcpt_key_created_at"')
    _indexes(database)


def _outbox_drafts(database: pw.Database) -> None:
    """Outbox entries may hold a draft that the sender renders (drafts.py)."""
    if "draft" not in {c.name for c in database.get_columns("outbox")}:
        database.execute_sql('ALTER TABLE "outbox" ADD COLUMN "draft" TEXT')


def _related_tickets(database: pw.Database) -> None:
    """#merge and #parent: a merged ticket names its survivor, a child its major incident."""
    columns = {c.name for c in database.get_columns("ticket")}
    for name in ("merged_into", "parent"):
        if name not in columns:
            database.execute_sql(f'ALTER TABLE "ticket" ADD COLUMN "{name}" INTEGER')
    database.execute_sql('CREATE INDEX IF NOT EXISTS "ticket_parent" ON "ticket" ("parent")')


def _alarms_erasures(database: pw.Database) -> None:
    """The admin's alarms and the record of erasures (desk/alarms.py, desk/erasure.py)."""
    database.create_tables([models.AlarmState, models.Erasure], safe=True)


def _satisfaction(database: pw.Database) -> None:
    """Requesters' ratings of resolved tickets (the "Was it solved?" links), and an index that finds
    a period's tickets for the report."""
    database.create_tables([models.Satisfaction], safe=True)
    database.execute_sql('CREATE INDEX IF NOT EXISTS "ticket_created_at" ON "ticket" ("created_at")')


def _thread_caps(database: pw.Database) -> None:
    """The per-thread caps count from an (rcpt_key, ticket_id, created_at) index; a quarantined
    mail notes whether the admin was alerted or it waits for the digest (desk/quarantinedigest.py)."""
    if "alert" not in {c.name for c in database.get_columns("inbound_mail")}:
        database.execute_sql('ALTER TABLE "inbound_mail" ADD COLUMN "alert" VARCHAR(16)')
    _indexes(database)


def _calls(database: pw.Database) -> None:
    """The requester's phone number and the #call on a ticket, and the reminder's due time (indexed:
    the daemon looks for due reminders every minute)."""
    columns = {c.name for c in database.get_columns("ticket")}
    for name, kind in (("requester_phone", "VARCHAR(255)"), ("call", "TEXT"), ("call_remind_at", "TIMESTAMP")):
        if name not in columns:
            database.execute_sql(f'ALTER TABLE "ticket" ADD COLUMN "{name}" {kind}')
    database.execute_sql('CREATE INDEX IF NOT EXISTS "ticket_call_remind_at" ON "ticket" ("call_remind_at")')


def _languages(database: pw.Database) -> None:
    """Every requester in their own language: the language remembered per address, and the
    ticket's (None on older tickets: the desk's language)."""
    database.create_tables([models.RequesterLanguage], safe=True)
    if "language" not in {c.name for c in database.get_columns("ticket")}:
        database.execute_sql('ALTER TABLE "ticket" ADD COLUMN "language" VARCHAR(255)')


def _quarantine_reason_msg(database: pw.Database) -> None:
    """A quarantine's reason kept translatable too, so the admin's digest is in the desk's language."""
    if "reason_msg" not in {c.name for c in database.get_columns("inbound_mail")}:
        database.execute_sql('ALTER TABLE "inbound_mail" ADD COLUMN "reason_msg" TEXT')


def _delivery_alerts(database: pw.Database) -> None:
    """A failed delivery notes whether the admin was alerted or it waits for the digest
    (desk/deliveryalerts.py); the digest finds the held ones by an index."""
    if "admin_alert" not in {c.name for c in database.get_columns("outbox")}:
        database.execute_sql('ALTER TABLE "outbox" ADD COLUMN "admin_alert" VARCHAR(16)')
    database.execute_sql('CREATE INDEX IF NOT EXISTS "outbox_admin_alert" ON "outbox" ("admin_alert")')


MIGRATIONS: list[tuple[str, Callable[[pw.Database], None]]] = [
    ("0001_initial", _initial),
    ("0002_outbox_indexes", _indexes),
    ("0003_outbox_rate_indexes", _rate_indexes),
    ("0004_outbox_drafts", _outbox_drafts),
    ("0111_related_tickets", _related_tickets),
    ("0131_satisfaction", _satisfaction),
    ("0151_alarms_erasures", _alarms_erasures),
    ("0152_inbound_unmoved_index", _indexes),
    ("0160_outbox_thread_index_quarantine_digest", _thread_caps),
    ("0180_requester_languages", _languages),
    ("0190_calls", _calls),
    ("0200_quarantine_reason_msg", _quarantine_reason_msg),
    ("0201_delivery_alerts", _delivery_alerts),
]


def pending_migrations(database: pw.Database) -> list[str]:
    if not database.table_exists("schema_migration"):
        return [name for name, _ in MIGRATIONS]
    done = {m.name for m in models.SchemaMigration.select()}
    return [name for name, _ in MIGRATIONS if name not in done]


def apply_migrations(database: pw.Database) -> list[str]:
    """Apply every migration not yet recorded, all in one transaction: a failing one leaves the schema
    as it was. Safe to run concurrently (an advisory lock on PostgreSQL, the write lock on SQLite
    serialise daemons starting together)."""
    applied = []
    with write_transaction(database):
        if is_postgres(database):
            database.execute_sql("SELECT pg_advisory_xact_lock(424242)")
        database.create_tables([models.SchemaMigration], safe=True)
        for name, step in MIGRATIONS:
            if models.SchemaMigration.get_or_none(models.SchemaMigration.name == name):
                continue
            try:
                with database.atomic():
                    step(database)
            except pw.PeeweeException as exc:
                raise DatabaseError(f"database migration {name} failed, nothing of it applied: "
                                    f"{str(exc).strip()}") from exc
            models.SchemaMigration.create(name=name, applied_at=now_utc())
            applied.append(name)
            log.info("database migration %s applied", name)
    return applied


def describe_error(exc: BaseException, path: str | Path | None = None) -> str:
    """The cause worth telling the admin. SQLite rolls back by itself on a full disk, so the ORM's
    own rollback then fails with 'no transaction is active' and hides 'database or disk is full'.
    With the database file's ``path``, a full disk is named as such (ENOSPC, the file system, the
    space left) rather than SQLite's either-or."""
    message = str(exc).strip() or type(exc).__name__
    cause = exc.__context__
    if "no transaction is active" in message and cause is not None:
        return describe_error(cause, path)
    if path is not None and "database or disk is full" in message and "on the file system of" not in message:
        return f"{message}: {space_left(path)}"
    return message


def space_left(path: str | Path) -> str:
    """What the file system of ``path`` has left, worded for a 'database or disk is full'."""
    import errno
    import os
    folder = Path(path).parent
    try:
        st = os.statvfs(folder)
    except OSError as exc:
        return f"cannot look at the file system of {folder}: {exc.strerror}"
    free = st.f_bavail * st.f_frsize
    if free < 1024 * 1024:  # less than SQLite needs for a journal and a few pages
        return (f"no space left on device ({errno.errorcode[errno.ENOSPC]}): {free} bytes free on the file system "
                f"of {folder}, which holds {path}")
    return f"{free // (1024 * 1024)} MB are free on the file system of {folder}: the file {path} reached a size limit"
