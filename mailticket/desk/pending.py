"""Pending tickets do not go silent: a reminder to the requester, then a resolution with a notice.

``[sla] pending_reminder`` (default 3 days) after a ticket became pending, its requester (and the
other participants) get one reminder that the desk is waiting for them; after
``pending_resolve_after`` (default 7 days) it is resolved, and they are told that a reply opens it
again. A reply in between resumes the ticket (``tickets.requester_followup``: pending -> open, the
resolution clock running again). The SLA scan decides when (``sla._pending_actions``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from . import tickets
from ..models import Ticket

log = logging.getLogger("mailticket.pending")


def remind(desk, ticket: Ticket, now: datetime, reason: str) -> None:
    """The one reminder of this pending spell."""
    if not tickets.tells_requester(ticket):
        tickets.event(ticket, now, "pending_reminder", f"{reason}; not sent: the requester is a monitoring system")
        return
    to, cc = tickets.requester_recipients(ticket, exclude=set(desk.config.agents),
                                          limit=desk.config.service.max_participants)
    since = ticket.resolution_paused_since
    sent = desk.mailer.send("pending_reminder", to=to, cc=cc, now=now, ticket=ticket, in_reply_to=ticket.thread_root,
                            context=_context(desk, ticket, since, now), automatic=True, rate_limited=True)
    tickets.event(ticket, now, "pending_reminder", reason if sent else f"{reason}; held back by the rate limit")
    log.info("ticket %d: pending reminder to %s", ticket.id, ticket.requester_address)


def resolve(desk, ticket: Ticket, now: datetime, reason: str) -> None:
    """Resolved for want of an answer; the requester is told a reply opens it again."""
    since = ticket.resolution_paused_since
    tickets.set_status(desk, ticket, "resolved", now, actor="system", why=reason, notify=False)
    if tickets.tells_requester(ticket):
        to, cc = tickets.requester_recipients(ticket, exclude=set(desk.config.agents),
                                          limit=desk.config.service.max_participants)
        desk.mailer.send("pending_resolved", to=to, cc=cc, now=now, ticket=ticket, in_reply_to=ticket.thread_root,
                         context=_context(desk, ticket, since, now), automatic=True)
    log.info("ticket %d resolved after waiting for the requester: %s", ticket.id, reason)


def _context(desk, ticket, since, now) -> dict:
    policy = desk.config.sla
    return {"pending_since": since, "waited": (now - since) if since else None,
            "resolve_at": since + policy.pending_resolve_after if since and policy.pending_resolve_after else None,
            "auto_close_after": policy.auto_close_after}
