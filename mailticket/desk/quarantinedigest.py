"""The admin hears of every quarantined mail, and user traffic never silences it.

The first ``[rate_limits] quarantine_alerts_day`` quarantines in 24 hours each get an alert of
their own (``quarantine_alert``). Past that, a quarantined mail is held for the digest
(``inbound_mail.alert = 'held'``, and a log line): once an hour at most (``DIGEST_EVERY``), one
``quarantine_digest`` lists them all (the first ``LISTED`` with their reason, sender and subject,
and how many more), and they are marked ``digested``. Nothing is dropped: a day of 10,000
quarantines is 10 alerts and 24 digests. These mails do not share any cap with user mail
(``Mailer.send`` counts no mail to the admin against the per-thread caps, and these are not
``rate_limited``); the digest is sent from the alarm check (``alarms.check``), so also when no
mail comes in. With several daemons, a conditional update decides which one sends a digest.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

import peewee as pw

from ..db import run, write_transaction
from ..inbound.charsets import header_text
from ..i18n import Message
from ..models import InboundMail, Outbox
from ..outbound.drafts import NotPlain, dumps_value, loads_value
from ..outbound.notify import Recipient

log = logging.getLogger("mailticket.quarantine")

DIGEST_EVERY = timedelta(hours=1)
LISTED = 50


def alert(desk, row, reason: str, sender: str, subject: str, now: datetime) -> None:
    """Tell the admin of one quarantined mail, or hold it for the digest (in the quarantine's transaction)."""
    cfg = desk.config
    cap = cfg.rate_limits.quarantine_alerts_day
    if alerts_since(cfg.service.admin_address, "quarantine_alert", now - timedelta(days=1), cap) >= cap:
        InboundMail.update(alert="held").where(InboundMail.id == row.id).execute()
        log.warning("quarantine alert for stored mail %s held for the digest: %d alerts in 24 hours "
                    "(rate_limits.quarantine_alerts_day = %d)", row.id, cap, cap)
        return
    sent = desk.mailer.send("quarantine_alert", to=[Recipient(cfg.service.admin_address)], now=now,
                            context={"reason": reason, "message_id": row.message_id, "uid": row.uid,
                                     "sender": sender, "subject": subject, "quarantine_id": row.id},
                            reply_purpose=None, automatic=True)
    if sent is not None:  # `mailticket import` mails nobody: then nothing is marked
        InboundMail.update(alert="sent").where(InboundMail.id == row.id).execute()


def alerts_since(admin: str, kind: str, since: datetime, limit: int) -> int:
    """The admin's alerts of ``kind`` queued since ``since``, counted up to ``limit``."""
    return run(_ALERTS_SQL, (admin.lower(), True, Outbox.created_at.db_value(since), kind, limit)).fetchone()[0]


_ALERTS_SQL = """SELECT COUNT(*) FROM (SELECT 1 FROM "outbox" WHERE "rcpt_key" = ? AND "automatic" = ?
 AND "created_at" > ? AND "kind" = ? LIMIT ?) AS alerts"""


def digest_due(admin: str, kind: str, now: datetime) -> bool:
    """No digest of ``kind`` went to the admin in the last ``DIGEST_EVERY``."""
    last = (Outbox.select(Outbox.created_at).where(Outbox.rcpt_key == admin.lower(), Outbox.automatic == True,  # noqa: E712
                                                   Outbox.kind == kind)
            .order_by(Outbox.created_at.desc()).first())
    return last is None or now - last.created_at >= DIGEST_EVERY


def held() -> int:
    """Quarantined mails waiting for the digest (for ``mailticket health``)."""
    return InboundMail.select().where(InboundMail.state == "quarantined", InboundMail.alert == "held").count()


def held_exists() -> bool:
    return InboundMail.select().where(InboundMail.state == "quarantined", InboundMail.alert == "held").exists()


def send_digest(desk, now: datetime) -> int:
    """Mail the digest of the held quarantines when there are some and the last digest is at least
    ``DIGEST_EVERY`` old. Returns how many mails it covers (0: none sent)."""
    if not held_exists():  # from the state index: the quarantined mails are few
        return 0
    if not digest_due(desk.config.service.admin_address, "quarantine_digest", now):
        return 0
    claim = f"d{secrets.token_hex(6)}"  # the rows this daemon takes (another daemon's update waits or finds none)
    with write_transaction(InboundMail._meta.database):
        count = InboundMail.update(alert=claim).where(InboundMail.state == "quarantined",
                                                      InboundMail.alert == "held").execute()
        if not count:
            return 0
        first = list(InboundMail.select().where(InboundMail.state == "quarantined", InboundMail.alert == claim)
                     .order_by(InboundMail.id).limit(LISTED))
        mails = []
        for r in first:
            sender, subject = headers(r, "From", "Subject")
            mails.append({"quarantine_id": r.id, "reason": reason_of(r), "sender": sender, "subject": subject,
                          "at": r.processed_at, "message_id": r.message_id})
        since = InboundMail.select(pw.fn.MIN(InboundMail.processed_at)).where(
            InboundMail.state == "quarantined", InboundMail.alert == claim).scalar()
        InboundMail.update(alert="digested").where(InboundMail.state == "quarantined",
                                                   InboundMail.alert == claim).execute()
        desk.mailer.send("quarantine_digest", to=[Recipient(desk.config.service.admin_address)], now=now,
                         context={"count": count, "mails": mails, "more": count - len(mails),
                                  "since": InboundMail.processed_at.python_value(since),
                                  "alerts_day": desk.config.rate_limits.quarantine_alerts_day},
                         reply_purpose=None, automatic=True)
    log.warning("quarantine digest: %d quarantined mails mailed to %s in one digest", count,
                desk.config.service.admin_address)
    return count


def translatable(reason: str) -> str | None:
    """What ``inbound_mail.reason_msg`` keeps: the reason as a Message, so that the digest, written
    later, says it in the desk's language as the alert did; None for a reason that is plain text."""
    if not isinstance(reason, Message):
        return None
    try:
        kept = dumps_value(reason)
    except NotPlain:  # an argument JSON cannot carry: the English text is kept, as before
        return None
    return kept if len(kept) <= REASON_MSG_MAX else None  # a huge error text: the English one, cut


REASON_MSG_MAX = 8000


def reason_of(row) -> str:
    """A quarantined mail's reason to be written in the reader's language (a Message) when it was
    kept so, else the English text (mails quarantined before 0200, or erased from)."""
    if row.reason_msg:
        try:
            return loads_value(row.reason_msg)
        except (ValueError, TypeError, KeyError):
            log.warning("stored mail %s: its translatable reason is unreadable; the English one is used", row.id)
    return row.reason or ""


def headers(row, *names: str) -> list[str]:
    """The headers as a person reads them, one line each: 8-bit text and encoded words
    (``=?utf-8?q?...?=``) decoded as everywhere else (``charsets.header_text``); '' when unreadable."""
    from email.parser import BytesHeaderParser
    try:
        msg = BytesHeaderParser().parsebytes(bytes(row.raw)[:65536])
        return [" ".join(header_text(str(msg.get(name, "")))[0].split())[:300] for name in names]
    except Exception:  # a quarantined mail may be broken anywhere: the alert goes out all the same
        return [""] * len(names)
