"""The peewee models. Bound to a database at run time by ``db.connect`` (huey's way)."""

from __future__ import annotations

import json
from datetime import timezone

import peewee as pw

database_proxy = pw.DatabaseProxy()


class JSONField(pw.TextField):
    def db_value(self, value):
        return None if value is None else json.dumps(value, ensure_ascii=False, default=str)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class AwareDateTimeField(pw.DateTimeField):
    """Stored as naive UTC text/timestamp, returned as aware UTC datetimes."""

    def db_value(self, value):
        if value is not None and value.tzinfo is not None:  # about 28 a mail: kept cheap for UTC
            value = (value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value):
        value = super().python_value(value)
        if value is not None and hasattr(value, "tzinfo") and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class BaseModel(pw.Model):
    """Saving one row by id (create, save) runs a statement built once per table and column set.

    Peewee builds each query's SQL afresh: 0.2-0.4 ms of CPU for an INSERT of a dozen columns,
    more than SQLite takes to run it, and a mail makes about eight of them
    (bench/profile_pipeline.py). Anything else (only=, expressions as values, tables keyed by
    name) takes peewee's own path."""

    class Meta:
        database = database_proxy
        legacy_table_names = False

    def save(self, force_insert=False, only=None):
        row = None if only is not None else self._fast_row()
        if row is None:
            return super().save(force_insert, only)
        names, params = row
        pk = self.__data__.get(self._meta.primary_key.name)
        database = self._meta.database
        if pk is not None and not force_insert:
            if not names:
                raise ValueError("no data to save!")
            rows = database.execute_sql(_statement(type(self), "update", names), params + [pk]).rowcount
        else:
            self._inserted(database.execute_sql(_statement(type(self), "insert", names), params), database)
            rows = 1
        self._dirty -= set(names)
        return rows

    def _fast_row(self) -> tuple[tuple, list] | None:
        """The row's column names (the id left out) and their values for the database; None where
        peewee's own path is needed (expressions as values, no auto-increment id)."""
        meta = self._meta
        if not meta.auto_increment:
            return None
        data = dict(self.__data__)
        data.pop(meta.primary_key.name, None)
        if any(isinstance(v, pw.Node) for v in data.values()):
            return None
        names = tuple(data)
        return names, [meta.fields[n].db_value(data[n]) for n in names]

    def _inserted(self, cursor, database) -> None:
        pk_name = self._meta.primary_key.name
        self.__data__[pk_name] = cursor.fetchone()[0] if _returning(database) else cursor.lastrowid
        self._dirty.discard(pk_name)


def insert_together(*rows: BaseModel) -> None:
    """Insert new rows. On PostgreSQL all the statements go in one round trip (psycopg2 binds the
    parameters itself, so one execute can hold several), and only the last row learns its id;
    elsewhere they are inserted one after the other. A queued mail's Message-ID and outbox row go
    this way, and a new ticket's first two events: about 0.2 ms of the daemon's wall time for each
    round trip saved on 127.0.0.1."""
    database = rows[-1]._meta.database
    parts = [row._fast_row() for row in rows] if _returning(database) else None
    if parts is None or None in parts:  # each save works out its own row
        for row in rows:
            row.save(force_insert=True)
        return
    sql = "; ".join(_statement(type(row), "insert", names) for row, (names, _) in zip(rows, parts))
    rows[-1]._inserted(database.execute_sql(sql, [p for _, params in parts for p in params]), database)
    for row, (names, _) in zip(rows, parts):
        row._dirty -= set(names)


_STATEMENTS: dict = {}


def _returning(database) -> bool:
    return isinstance(getattr(database, "obj", database), pw.PostgresqlDatabase)


def _statement(model, verb: str, names: tuple) -> str:
    database = model._meta.database
    key = (model, verb, names, _returning(database))
    sql = _STATEMENTS.get(key)
    if sql is None:
        fields, table, param = model._meta.fields, model._meta.table_name, database.param
        columns = [f'"{fields[n].column_name}"' for n in names]
        pk = f'"{model._meta.primary_key.column_name}"'
        if verb == "insert":
            sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join([param] * len(names))})'
            if key[3]:
                sql += f" RETURNING {pk}"
        else:
            sql = f'UPDATE "{table}" SET {", ".join(f"{c} = {param}" for c in columns)} WHERE {pk} = {param}'
        _STATEMENTS[key] = sql
    return sql


class Ticket(BaseModel):
    """A ticket; its id is the number shown in tags like [SD#42]."""

    type = pw.CharField(default="incident")
    status = pw.CharField(default="new", index=True)
    tier = pw.IntegerField(default=1)
    priority = pw.CharField(default="P3")
    impact = pw.CharField(default="medium")
    urgency = pw.CharField(default="medium")
    category = pw.CharField(default="general")
    subject = pw.TextField(default="")
    description = pw.TextField(default="")
    requester_name = pw.CharField(default="")
    requester_address = pw.CharField(index=True)
    assignee = pw.CharField(null=True)
    decided_by = pw.CharField(null=True)          # the rule that set type/category/priority
    security = pw.BooleanField(default=False)
    alert_key = pw.CharField(null=True, index=True)  # monitoring host/service
    linked_to = pw.IntegerField(null=True)
    created_at = AwareDateTimeField()
    updated_at = AwareDateTimeField()
    first_response_at = AwareDateTimeField(null=True)
    first_response_due = AwareDateTimeField(null=True)
    resolution_due = AwareDateTimeField(null=True)
    # the two SLA clocks (mailticket.desk.sla.Clock), stored field by field; targets come from the priority
    response_started_at = AwareDateTimeField(null=True)
    response_paused_seconds = pw.FloatField(default=0)
    response_paused_since = AwareDateTimeField(null=True)
    response_stopped_at = AwareDateTimeField(null=True)
    resolution_started_at = AwareDateTimeField(null=True)
    resolution_paused_seconds = pw.FloatField(default=0)
    resolution_paused_since = AwareDateTimeField(null=True)
    resolution_stopped_at = AwareDateTimeField(null=True)
    tier_since = AwareDateTimeField(null=True)
    resolved_at = AwareDateTimeField(null=True)
    closed_at = AwareDateTimeField(null=True)
    breach_report_deadline = AwareDateTimeField(null=True)
    next_check_at = AwareDateTimeField(null=True, index=True)  # earliest moment the SLA scan must look
    thread_root = pw.CharField(null=True)          # the requester's first Message-ID
    merged_into = pw.IntegerField(null=True)       # #merge: mail to this ticket lands on that one
    parent = pw.IntegerField(null=True, index=True)  # #parent: the major incident this ticket belongs to
    # contact details and the #call arranged with the requester (desk/calls.py)
    requester_phone = pw.CharField(null=True)      # E.164, from the signature or #phone
    call = JSONField(null=True)                    # uid, sequence, start, duration, agent, mode, state ...
    call_remind_at = AwareDateTimeField(null=True, index=True)  # when the agent's reminder is due
    language = pw.CharField(null=True)             # the requester's language (RequesterLanguage); None: the desk's

    class Meta:
        indexes = ((("status", "next_check_at"), False),
                   (("requester_address", "created_at"), False))  # one sender's tickets of the last hour


class Participant(BaseModel):
    ticket = pw.ForeignKeyField(Ticket, backref="participants", on_delete="CASCADE")
    address = pw.CharField()
    name = pw.CharField(default="")
    role = pw.CharField(default="cc")  # requester | cc

    class Meta:
        indexes = ((("ticket", "address"), True),)


class InboundMail(BaseModel):
    """Every raw mail as it arrived, committed before anything else happens to it."""

    source = pw.CharField()                 # "imap:INBOX", "listener"
    uidvalidity = pw.BigIntegerField(null=True)
    uid = pw.BigIntegerField(null=True)
    message_id = pw.CharField(null=True, index=True)
    raw = pw.BlobField()
    size = pw.IntegerField(default=0)
    received_at = AwareDateTimeField()
    state = pw.CharField(default="received", index=True)  # received|processed|duplicate|dropped|quarantined|spam
    reason = pw.TextField(null=True)
    reason_msg = pw.TextField(null=True)    # the reason as a translatable Message (drafts.dumps_value), or None
    ticket = pw.ForeignKeyField(Ticket, null=True, backref="inbound", on_delete="SET NULL")
    processed_at = AwareDateTimeField(null=True)
    moved = pw.BooleanField(default=False)  # moved out of the IMAP folder
    claimed_by = pw.CharField(null=True)
    claimed_until = AwareDateTimeField(null=True)
    attempts = pw.IntegerField(default=0)
    # quarantined: "sent" (the admin had an alert), "held" (waits for the digest), "digested"
    alert = pw.CharField(null=True, max_length=16)

    class Meta:
        indexes = ((("source", "uidvalidity", "uid"), True),
                   (("source", "moved"), False))  # the alarms' look for mail left in the IMAP folder


class MessageRef(BaseModel):
    """Every Message-ID we stored or sent, for threading and for dropping our own mail."""

    message_id = pw.CharField(unique=True)
    ticket = pw.ForeignKeyField(Ticket, backref="refs", on_delete="CASCADE")
    direction = pw.CharField()  # in | out
    audience = pw.CharField(default="requester")  # requester | internal (agents' mail stays out of
    at = AwareDateTimeField()                     # the References we send requesters)


class Event(BaseModel):
    """The ticket's history: every message and every decision, with actor and time."""

    ticket = pw.ForeignKeyField(Ticket, backref="events", on_delete="CASCADE")
    at = AwareDateTimeField()
    actor = pw.CharField(default="system")
    kind = pw.CharField()
    text = pw.TextField(default="")
    data = JSONField(null=True)
    inbound = pw.ForeignKeyField(InboundMail, null=True, on_delete="SET NULL")

    class Meta:
        indexes = ((("ticket", "at"), False),)


class Attachment(BaseModel):
    inbound = pw.ForeignKeyField(InboundMail, backref="attachments", on_delete="CASCADE")
    ticket = pw.ForeignKeyField(Ticket, null=True, backref="attachments", on_delete="SET NULL")
    filename = pw.CharField()
    content_type = pw.CharField()
    size = pw.IntegerField()
    path = pw.CharField()      # relative to data_dir, generated, never from the mail
    content_id = pw.CharField(null=True)
    inline = pw.BooleanField(default=False)


class Outbox(BaseModel):
    """Outgoing mail, queued in the same transaction as the ticket change that caused it."""

    ticket = pw.ForeignKeyField(Ticket, null=True, backref="outbox", on_delete="SET NULL")
    kind = pw.CharField()                      # the template name
    message_id = pw.CharField(unique=True)
    mail_from = pw.CharField()                 # envelope sender (signed return path)
    recipients = JSONField()
    rcpt_key = pw.CharField(index=True)        # first recipient, lowercased, for rate limits
    automatic = pw.BooleanField(default=True)  # counts against the rate limits
    raw = pw.BlobField()                       # the mail; empty while it is a draft
    draft = pw.TextField(null=True)            # the mail's ingredients, rendered when sent (drafts.py)
    created_at = AwareDateTimeField()
    status = pw.CharField(default="queued", index=True)  # queued | sent | failed | suppressed
    attempts = pw.IntegerField(default=0)
    next_attempt_at = AwareDateTimeField(index=True)
    last_error = pw.TextField(null=True)
    sent_at = AwareDateTimeField(null=True)
    claimed_by = pw.CharField(null=True)
    claimed_until = AwareDateTimeField(null=True)
    admin_told = pw.BooleanField(default=False)
    # a failed delivery: "sent" (the admin had an alert), "held" (waits for the digest), "digested"
    admin_alert = pw.CharField(null=True, max_length=16, index=True)

    class Meta:
        indexes = ((("rcpt_key", "automatic", "created_at"), False),  # the per-recipient rate limits
                   (("rcpt_key", "ticket", "created_at"), False),  # the per-thread caps (check_thread)
                   (("status", "next_attempt_at", "id"), False),  # the drain's order: no sort of the queue
                   (("created_at",), False),
                   # the global rate limit counts the automatic mails of the last 10 minutes: from the
                   # index alone, not each row (bench/RESULTS.md: 12 -> 0.9 ms at 16,000 rows)
                   (("automatic", "created_at"), False))


class SlaMark(BaseModel):
    """Each warning, escalation and auto-close happens once, also across restarts."""

    ticket = pw.ForeignKeyField(Ticket, backref="marks", on_delete="CASCADE")
    key = pw.CharField()
    at = AwareDateTimeField()

    class Meta:
        indexes = ((("ticket", "key"), True),)


class FolderState(BaseModel):
    source = pw.CharField(primary_key=True)
    uidvalidity = pw.BigIntegerField(null=True)
    last_uid = pw.BigIntegerField(default=0)


class KeyValue(BaseModel):
    """Small facts the health check reads: last successful fetch, last error, ..."""

    key = pw.CharField(primary_key=True)
    value = pw.TextField(null=True)
    at = AwareDateTimeField(null=True)


class Lease(BaseModel):
    """Who may read the IMAP folder now, when several daemons share one database."""

    name = pw.CharField(primary_key=True)
    holder = pw.CharField()
    expires_at = AwareDateTimeField()


class AlarmState(BaseModel):
    """One of the admin's alarms (desk/alarms.py): when its problem began, when the alarm mail was
    queued, when it last cleared. A row per kind: mailbox, inbox, outgoing."""

    kind = pw.CharField(primary_key=True)
    raised_at = AwareDateTimeField(null=True)    # set while the alarm is on
    since = AwareDateTimeField(null=True)        # when the problem of the raised alarm began
    detail = pw.TextField(null=True)             # its last error, for `health`
    last_raised_at = AwareDateTimeField(null=True)
    cleared_at = AwareDateTimeField(null=True)


class Erasure(BaseModel):
    """That a person's data was erased (GDPR), when and by whom; never what or whose."""

    at = AwareDateTimeField()
    actor = pw.CharField(default="admin")
    tickets = pw.IntegerField(default=0)         # how many tickets were touched


class Satisfaction(BaseModel):
    """The requester's rating of a resolved ticket (1 bad .. 5 good): one per ticket, the last counts."""

    ticket = pw.ForeignKeyField(Ticket, backref="satisfaction", on_delete="CASCADE", unique=True)
    rating = pw.IntegerField()
    comment = pw.TextField(default="")
    actor = pw.CharField()
    at = AwareDateTimeField()


class RequesterLanguage(BaseModel):
    """The language mail to an address is written in, decided at its first mail (desk/language.py)."""

    address = pw.CharField(unique=True)
    language = pw.CharField()
    how = pw.CharField()            # header | text | short | unsure | switch | agent (#language)
    updated_at = AwareDateTimeField()


class SchemaMigration(BaseModel):
    name = pw.CharField(primary_key=True)
    applied_at = AwareDateTimeField()


ALL_MODELS = [Ticket, Participant, InboundMail, MessageRef, Event, Attachment, Outbox, SlaMark,
              FolderState, KeyValue, Lease, SchemaMigration, AlarmState, Erasure,
              Satisfaction, RequesterLanguage]
