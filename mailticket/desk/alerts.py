"""Monitoring alerts: a PROBLEM opens an incident for the host/service, repeats are appended,
the RECOVERY resolves it. Nothing is acknowledged: the sender is a machine."""

from __future__ import annotations

import logging

from . import tickets
from ..models import Ticket
from .rules import Decision, priority_for

log = logging.getLogger("mailticket.alerts")


def open_incident(key: str) -> Ticket | None:
    return (Ticket.select().where(Ticket.alert_key == key, Ticket.status.in_(["new", "open", "pending"]))
            .order_by(Ticket.id.desc()).first())


def handle_alert(desk, alert, source, parsed, now, row) -> tuple[Ticket | None, str]:
    existing = open_incident(alert.key)
    if existing is not None:
        tickets.remember_inbound(existing, parsed.message_id, now)
    if alert.state == "recovery":
        if existing is None:
            return None, f"monitoring recovery for {alert.key} without an open incident"
        tickets.event(existing, now, "alert", f"RECOVERY: {alert.summary}", actor=parsed.sender.address, inbound=row)
        tickets.set_status(desk, existing, "resolved", now, actor=parsed.sender.address,
                           why=f"monitoring recovery for {alert.key}", notify=False)
        return existing, f"monitoring recovery resolved the incident for {alert.key}"
    if existing is not None:
        tickets.event(existing, now, "alert", f"repeated PROBLEM: {alert.summary}", actor=parsed.sender.address,
                      inbound=row)
        return existing, f"repeated monitoring problem for {alert.key} appended"
    decision = alert_decision(desk.config, source, alert)
    ticket = tickets.open_ticket(desk, parsed=parsed, decision=decision, requester=(parsed.sender.name,
                                 parsed.sender.address), now=now, inbound=row, acknowledge=False,
                                 ack_skip_reason="monitoring alert: no acknowledgement", alert_key=alert.key)
    return ticket, f"monitoring problem for {alert.key} opened an incident"


def alert_decision(config, source, alert) -> Decision:
    """Category, impact and urgency come from the monitoring source; priority from the matrix."""
    priority = priority_for(source.impact, source.urgency, config.rules.matrix)
    return Decision(type="incident", category=source.category, impact=source.impact, urgency=source.urgency,
                    priority=priority, tier=3 if priority == "P1" else 1, rule_name=f"monitoring:{source.name}",
                    security=False, reasons=[f"monitoring source {source.name!r}: {alert.state} for {alert.key}",
                                             f"priority {priority} from matrix (impact {source.impact}, "
                                             f"urgency {source.urgency})"])
