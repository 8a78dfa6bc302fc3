"""`mailticket health`: one line per problem, nothing when all is well."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..durations import format_duration


def check_health(config, now: datetime, *, max_fetch_age: timedelta, max_queue_age: timedelta) -> list[str]:
    from .. import db
    from ..models import InboundMail, KeyValue, Outbox
    from ..outbound.outbox import oldest_queued_age
    try:
        db.connect(config.database.url, migrate=False)
        InboundMail.select().limit(1).count()
    except Exception as exc:
        return [f"database unreachable: {db.redact(config.database.url)}: {str(exc).strip()}"]
    problems = alarm_lines(now)
    if config.imap is not None:
        last = KeyValue.get_or_none(KeyValue.key == "last_fetch_ok")
        err = KeyValue.get_or_none(KeyValue.key == "last_mailbox_error")
        if last is None or last.at is None:
            problems.append(f"no successful fetch from {config.imap.host} yet"
                            + (f" (last error: {err.value})" if err else ""))
        elif now - last.at > max_fetch_age:
            problems.append(f"no successful fetch from {config.imap.host} for {format_duration(now - last.at)} "
                            f"(limit {format_duration(max_fetch_age)})" + (f"; last error: {err.value}" if err else ""))
    stuck = InboundMail.select().where(InboundMail.state == "received",
                                       InboundMail.received_at < now - max_fetch_age).count()
    if stuck:
        problems.append(f"{stuck} stored mail(s) not processed for over {format_duration(max_fetch_age)}")
    quarantined = InboundMail.select().where(InboundMail.state == "quarantined").count()
    if quarantined:
        problems.append(f"{quarantined} mail(s) in quarantine (see `mailticket quarantine`)" + _held_for_digest())
    failed = Outbox.select().where(Outbox.status == "failed").count()
    if failed:
        problems.append(f"{failed} outgoing mail(s) failed (see `mailticket outbox`, retry with --retry)")
    age = oldest_queued_age(now)
    if age is not None and age > max_queue_age:
        oldest = Outbox.select().where(Outbox.status == "queued").order_by(Outbox.created_at).first()
        why = f"last error: {oldest.last_error}" if oldest and oldest.last_error else "is the SMTP server reachable?"
        problems.append(f"outgoing mail waiting for {format_duration(age)} (limit {format_duration(max_queue_age)}; "
                        f"{why})")
    return problems


def _held_for_digest() -> str:
    """How many of the quarantined mails wait for the admin's next digest (desk/quarantinedigest.py)."""
    from ..desk.quarantinedigest import held
    try:
        waiting = held()
    except Exception:  # a database the daemon has not migrated yet (0160)
        return ""
    return f"; the admin's next digest lists {waiting} of them" if waiting else ""


ALARM_WORDS = {"mailbox": "the mailbox is unreachable or refuses the login",
               "inbox": "mail is waiting in the inbox unprocessed",
               "outgoing": "outgoing mail is failing"}


def alarm_lines(now: datetime) -> list[str]:
    """One line per alarm that is on (the admin was mailed about it)."""
    from ..desk.alarms import active
    from ..models import AlarmState
    if not AlarmState.table_exists():  # a database the daemon has not migrated yet
        return []
    lines = []
    for alarm in active():
        since = alarm.since or alarm.raised_at
        lines.append(f"ALARM {alarm.kind}: {ALARM_WORDS.get(alarm.kind, alarm.kind)} since "
                     f"{since.isoformat(timespec='seconds')} ({format_duration(now - since)}; the admin was mailed)"
                     + (f": {alarm.detail}" if alarm.detail else ""))
    return lines
