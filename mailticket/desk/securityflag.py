"""#security on|off: the security classification of a ticket, set or cleared by mail.

A mail that mentions "breach" becomes a P1 security ticket with a 72-hour reporting deadline;
when it was a false alarm, ``#security off REASON`` from a tier-3 agent or the security contact
clears the classification and the deadline (so its warnings stop), recorded with the reason.
``#security on`` (any agent) classifies a ticket as security, starts the reporting deadline
from now and tells the security contact. Priority and tier stay as they are: ``#priority`` and
``#tier`` change those.
"""

from __future__ import annotations

import logging

from ..i18n import Message
from . import slaclock, tickets
from ..outbound.notify import Recipient

log = logging.getLogger("mailticket.securityflag")

SECURITY_CATEGORY = "security"
CLEARED_CATEGORY = "general"


def may_clear(config, agent: str) -> bool:
    return agent in config.tiers[3].agents or agent == config.service.security_address


def set_security(desk, ticket, on: bool, reason: str | None, agent: str, now) -> str | None:
    """Apply the flag; returns a problem for the agent (the ticket unchanged), or None."""
    cfg = desk.config
    if not on and not may_clear(cfg, agent):
        return Message("only tier-3 agents and the security contact ({address}) may clear the security "
                       "classification; ask one of them", address=cfg.service.security_address)
    if on == bool(ticket.security):
        return (Message("the ticket is already classified as security") if on
                else Message("the ticket is not classified as security"))
    if on:
        _set(desk, ticket, agent, reason, now)
    else:
        _clear(desk, ticket, agent, reason, now)
    slaclock.refresh(ticket, cfg.sla)
    ticket.updated_at = now
    ticket.save()
    return None


def _clear(desk, ticket, agent, reason, now) -> None:
    deadline, category = ticket.breach_report_deadline, ticket.category
    ticket.security, ticket.breach_report_deadline = False, None
    if category == SECURITY_CATEGORY:
        ticket.category = CLEARED_CATEGORY
    tickets.event(ticket, now, "security", f"security classification cleared by {agent}: {reason}", actor=agent,
                  on=False, reason=reason, deadline_was=deadline.isoformat() if deadline else None,
                  category_was=category)
    log.info("ticket %d: security classification cleared by %s: %s", ticket.id, agent, reason)


def _set(desk, ticket, agent, reason, now) -> None:
    cfg = desk.config
    ticket.security, ticket.category = True, SECURITY_CATEGORY
    ticket.breach_report_deadline = now + cfg.sla.breach_report_deadline
    tickets.event(ticket, now, "security", f"classified as security by {agent}" + (f": {reason}" if reason else ""),
                  actor=agent, on=True, reason=reason)
    if agent != cfg.service.security_address:
        desk.mailer.send("security_alert", to=[Recipient(cfg.service.security_address)], now=now, ticket=ticket,
                         context={"body": ticket.description, "breach_report_deadline": ticket.breach_report_deadline},
                         in_reply_to=ticket.thread_root)
    log.info("ticket %d: classified as security by %s", ticket.id, agent)
