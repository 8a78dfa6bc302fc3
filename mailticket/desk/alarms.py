"""The admin's alarms: a mail once when a problem has lasted ``[service] alarm_after``, and once
when it clears; ``mailticket health`` lists the alarms that are on.

Three problems are watched (``PROBLEMS``):

  mailbox   the IMAP server unreachable or refusing the login, an OAuth2 token command that
            fails included (the daemon's failing-since mark, ``marks``)
  inbox     mail waiting in the inbox: stored and not processed, or processed and not moved
            out of the IMAP folder
  outgoing  the SMTP server failing: temporary failures and refused connections (the sender's
            mark); a mail one recipient's server rejects for good is not an outage

Each alarm is mailed once an episode and cleared once; a new episode needs the problem to last
``alarm_after`` again, so no alarm comes more often than that. The alarm about outgoing mail
waits in the outbox like any other mail and goes out as soon as the server takes mail again
(alarm mails are never given up, ``outbox.KEEP_TRYING``); the "cleared" mail after it says how
long the problem lasted. With several daemons on one database, the first to see a change sends
its mail (a conditional update decides), the others nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import peewee as pw

from .. import marks
from ..db import write_transaction
from ..durations import format_duration
from ..models import AlarmState, InboundMail
from ..outbound.notify import Recipient

log = logging.getLogger("mailticket.alarms")

PROBLEMS = ("mailbox", "inbox", "outgoing")


@dataclass(frozen=True)
class Observation:
    """A problem as seen now: ``since`` when it began (None: all is well), ``detail`` the last error."""

    problem: str
    since: datetime | None
    detail: str | None = None


@dataclass(frozen=True)
class Change:
    problem: str
    action: str  # "raise" | "clear"
    since: datetime | None
    detail: str | None = None


def decide(observations: list[Observation], states: dict, now: datetime, alarm_after: timedelta) -> list[Change]:
    """Pure: which alarms to raise and clear now. ``states`` maps a problem to its ``AlarmState``
    (or anything with ``raised_at``, ``since`` and ``last_raised_at``)."""
    changes = []
    for seen in observations:
        state = states.get(seen.problem)
        raised = state is not None and state.raised_at is not None
        if seen.since is not None and not raised and now - seen.since >= alarm_after:
            last = state.last_raised_at if state is not None else None
            if last is None or now - last >= alarm_after:
                changes.append(Change(seen.problem, "raise", seen.since, seen.detail))
        elif seen.since is None and raised:
            changes.append(Change(seen.problem, "clear", state.since, None))
    return changes


def observe(config, now: datetime) -> list[Observation]:
    """Each watched problem as the database tells it now."""
    seen = []
    if config.imap is not None:
        mark = marks.failing("mailbox")
        seen.append(Observation("mailbox", mark.at if mark else None, mark.value if mark else None))
    waiting = oldest_waiting_mail(f"imap:{config.imap.folder}" if config.imap is not None else None)
    seen.append(Observation("inbox", waiting, None))
    mark = marks.failing("outgoing")
    seen.append(Observation("outgoing", mark.at if mark else None, mark.value if mark else None))
    return seen


def oldest_waiting_mail(imap_source: str | None) -> datetime | None:
    """When the longest-waiting mail arrived: stored and not processed, or processed and still in
    the IMAP folder (its move failing). Both from indexes (state; source and moved)."""
    stored = (InboundMail.select(pw.fn.MIN(InboundMail.received_at))
              .where(InboundMail.state == "received").scalar())
    unmoved = None if imap_source is None else (
        InboundMail.select(pw.fn.MIN(InboundMail.processed_at))
        .where(InboundMail.source == imap_source, InboundMail.moved == False,  # noqa: E712
               InboundMail.state != "received", InboundMail.processed_at.is_null(False)).scalar())
    times = [InboundMail.received_at.python_value(t) for t in (stored, unmoved) if t is not None]
    return min(times) if times else None


def check(desk, now: datetime) -> list[Change]:
    """Look at every problem; mail the admin about each alarm raised or cleared. Returns the changes."""
    observations = observe(desk.config, now)
    states = {s.kind: s for s in AlarmState.select()}
    done = []
    for change in decide(observations, states, now, desk.config.service.alarm_after):
        with write_transaction():
            if _record(change, now):
                _mail(desk, change, now)
                done.append(change)
    from . import deliveryalerts, quarantinedigest
    quarantinedigest.send_digest(desk, now)  # the quarantines held past the day's alerts, once an hour at most
    deliveryalerts.send_digest(desk, now)  # and the failed deliveries
    for seen in observations:  # a raised alarm shows its latest error in `health`
        state = states.get(seen.problem)
        if state is not None and state.raised_at is not None and seen.detail and seen.detail != state.detail:
            AlarmState.update(detail=seen.detail).where(AlarmState.kind == seen.problem).execute()
    return done


def _record(change: Change, now: datetime) -> bool:
    """Note the change in the alarm's row; False when another daemon did it first."""
    AlarmState.insert(kind=change.problem).on_conflict_ignore().execute()
    row = AlarmState.kind == change.problem
    if change.action == "raise":
        return bool(AlarmState.update(raised_at=now, since=change.since, detail=change.detail, last_raised_at=now)
                    .where(row, AlarmState.raised_at.is_null()).execute())
    return bool(AlarmState.update(raised_at=None, cleared_at=now)
                .where(row, AlarmState.raised_at.is_null(False)).execute())


def _mail(desk, change: Change, now: datetime) -> None:
    cfg = desk.config
    lasted = now - change.since if change.since else None
    if change.action == "raise":
        log.warning("alarm: %s problem since %s (%s); mailing %s: %s", change.problem,
                    change.since.isoformat(timespec="seconds"), format_duration(lasted), cfg.service.admin_address,
                    change.detail or "no error text")
    else:
        log.info("alarm cleared: %s works again after %s; mailing %s", change.problem,
                 format_duration(lasted) if lasted else "?", cfg.service.admin_address)
    context = {"problem": change.problem, "since": change.since, "detail": change.detail,
               "lasted": lasted, "alarm_after": cfg.service.alarm_after,
               "host": cfg.imap.host if change.problem == "mailbox" and cfg.imap else
               (cfg.smtp.host if change.problem == "outgoing" and cfg.smtp else None)}
    desk.mailer.send("alarm" if change.action == "raise" else "alarm_cleared",
                     to=[Recipient(cfg.service.admin_address)], now=now, context=context, reply_purpose=None,
                     automatic=True, rate_limited=False)


def active() -> list[AlarmState]:
    """The alarms that are on, for `mailticket health`."""
    return list(AlarmState.select().where(AlarmState.raised_at.is_null(False)).order_by(AlarmState.kind))
