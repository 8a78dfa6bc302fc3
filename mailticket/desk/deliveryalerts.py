"""The admin hears of every mail of ours that could not be delivered; a bounce storm is no mail storm.

A mail fails for good in two ways: the relay refuses it until the sender gives up
(``service/sender.py``), or it left and a bounce came back for it (``pipeline._bounce``). Either
way the admin gets one ``delivery_failure`` alert per outbox entry, for the first
``[rate_limits] delivery_alerts_day`` failures in 24 hours. Past that the entry is held for the
digest (``outbox.admin_alert = 'held'``, and a log line): once an hour at most
(``quarantinedigest.DIGEST_EVERY``), one ``delivery_digest`` lists them (the first ``LISTED``
with recipient, reason and ticket, and how many more), and they are marked ``digested``. A wave
of spam with forged senders, whose acknowledgements all bounce, is so 10 alerts and a digest an
hour, not a mail to the admin per bounce; and nothing is dropped.

These alerts count against no cap that user mail or other alerts fill (before, a day of ten
quarantine alerts used up the admin's ``per_sender_day`` and silenced them). The digest is sent
from the alarm check (``alarms.check``), so also when no mail comes in.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

import peewee as pw

from ..db import write_transaction
from ..models import Outbox
from ..outbound.notify import Recipient
from .quarantinedigest import alerts_since, digest_due

log = logging.getLogger("mailticket.delivery")

LISTED = 50
# mail to the admin: a failure of one is in the log and in `mailticket outbox`, never another mail
ADMIN_KINDS = frozenset({"delivery_failure", "delivery_digest", "quarantine_alert", "quarantine_digest",
                         "alarm", "alarm_cleared"})


def alert(desk, entry: Outbox, recipients: str, reason: str, now: datetime, *, bounced: bool) -> None:
    """Tell the admin that ``entry`` could not be delivered to ``recipients`` (``reason``: the
    server's words; ``bounced``: it left and came back, else the relay refused it), once per entry;
    past the day's alerts, hold it for the digest. Call it in a transaction: the entry is marked
    told in the same one."""
    if entry.kind in ADMIN_KINDS:
        return
    admin = desk.config.service.admin_address
    if not Outbox.update(admin_told=True, last_error=pw.fn.COALESCE(Outbox.last_error, reason or None)).where(
            Outbox.id == entry.id, Outbox.admin_told == False).execute():  # noqa: E712
        return  # told already (the same bounce twice, or another daemon)
    cap = desk.config.rate_limits.delivery_alerts_day
    if alerts_since(admin, "delivery_failure", now - timedelta(days=1), cap) >= cap:
        Outbox.update(admin_alert="held").where(Outbox.id == entry.id).execute()
        log.warning("delivery failure of outbox %s (%s to %s) held for the admin's digest: %d alerts in 24 hours "
                    "(rate_limits.delivery_alerts_day = %d)", entry.id, entry.kind, recipients, cap, cap)
        return
    sent = desk.mailer.send("delivery_failure", to=[Recipient(admin)], now=now, ticket=entry.ticket,
                            context={"recipient": recipients, "reason": reason, "outbox_id": entry.id,
                                     "bounced": bounced},
                            reply_purpose=None, automatic=True)
    if sent is not None:
        Outbox.update(admin_alert="sent").where(Outbox.id == entry.id).execute()


def held() -> int:
    """Failed deliveries waiting for the next digest."""
    return Outbox.select().where(Outbox.admin_alert == "held").count()


def send_digest(desk, now: datetime) -> int:
    """Mail the digest of the held failures when there are some and the last digest is at least
    an hour old. Returns how many failures it covers (0: none sent)."""
    if not Outbox.select().where(Outbox.admin_alert == "held").exists():  # from its index: few rows
        return 0
    admin = desk.config.service.admin_address
    if not digest_due(admin, "delivery_digest", now):
        return 0
    claim = f"d{secrets.token_hex(6)}"  # the rows this daemon takes (another daemon's update waits or finds none)
    with write_transaction(Outbox._meta.database):
        count = Outbox.update(admin_alert=claim).where(Outbox.admin_alert == "held").execute()
        if not count:
            return 0
        prefix = desk.config.service.tag_prefix
        failures = [{"outbox_id": e.id, "recipient": ", ".join(e.recipients), "reason": e.last_error or "",
                     "ticket": f"[{prefix}#{e.ticket_id}]" if e.ticket_id else None, "at": e.created_at}
                    for e in Outbox.select().where(Outbox.admin_alert == claim).order_by(Outbox.id).limit(LISTED)]
        since = Outbox.select(pw.fn.MIN(Outbox.created_at)).where(Outbox.admin_alert == claim).scalar()
        Outbox.update(admin_alert="digested").where(Outbox.admin_alert == claim).execute()
        desk.mailer.send("delivery_digest", to=[Recipient(admin)], now=now,
                         context={"count": count, "failures": failures, "more": count - len(failures),
                                  "since": Outbox.created_at.python_value(since),
                                  "alerts_day": desk.config.rate_limits.delivery_alerts_day},
                         reply_purpose=None, automatic=True)
    log.warning("delivery digest: %d mails that could not be delivered mailed to %s in one digest", count, admin)
    return count
