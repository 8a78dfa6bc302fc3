"""The SLA scan: warnings, escalations up the ladder, the manager, auto-close, breach-report reminders.

The decisions are ``sla.due_actions`` (pure); this module only performs them, each once:
its key is recorded in ``SlaMark`` in the same transaction as the mail it causes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import peewee as pw

from . import sla

from . import slaclock

from . import tickets
from ..db import is_postgres, write_transaction
from ..models import SlaMark, Ticket
from ..outbound.notify import Recipient

log = logging.getLogger("mailticket.escalation")

OPEN_STATES = ("new", "open", "pending", "resolved")


@dataclass
class ScanResult:
    looked_at: int = 0
    actions: int = 0


def due_tickets(now: datetime, limit: int = 1000):
    """Tickets whose next check time has come (the index on next_check_at finds them; a ticket
    with nothing left to watch has none), the longest-waiting first."""
    return (Ticket.select().where(Ticket.next_check_at <= now, Ticket.status.in_(OPEN_STATES))
            .order_by(Ticket.next_check_at).limit(limit))


def run_sla_check(desk, now: datetime) -> ScanResult:
    result = ScanResult()
    db = Ticket._meta.database
    for ticket in due_tickets(now):
        result.looked_at += 1
        try:
            with write_transaction(db):
                ticket = _locked(ticket.id)
                result.actions += check_ticket(desk, ticket, now)
        except (pw.OperationalError, pw.InterfaceError):
            raise  # the database is gone: the daemon's back-off handles it
        except Exception:
            # rolled back, marks included: retried next scan; the other tickets go on
            log.exception("SLA check of ticket %d failed", ticket.id)
    if result.actions:
        log.info("SLA check: %d ticket(s) looked at, %d action(s)", result.looked_at, result.actions)
    return result


def _locked(ticket_id: int) -> Ticket:
    """The ticket read afresh; on PostgreSQL its row is held, so another daemon's change waits."""
    q = Ticket.select().where(Ticket.id == ticket_id)
    return (q.for_update() if is_postgres() else q).get()


def check_ticket(desk, ticket: Ticket, now: datetime) -> int:
    policy = desk.config.sla
    state = slaclock.state_of(ticket, policy)
    done = 0
    for action in sla.due_actions(state, now, policy):
        if not SlaMark.insert(ticket=ticket, key=action.key, at=now).on_conflict_ignore().execute():
            continue  # another daemon did it
        state = perform(desk, ticket, state, action, now)
        done += 1
    slaclock.save_state(ticket, state, policy, now)
    ticket.save()
    return done


def perform(desk, ticket: Ticket, state, action, now: datetime):
    cfg, policy = desk.config, desk.config.sla
    cal = policy.calendar_for(ticket.priority)
    clock = state.response if action.clock == "first_response" else state.resolution
    used = clock.used(now, cal) if action.clock else None
    if action.kind == "warn":
        due = clock.due(cal)
        left = max(due - now, timedelta(0)) if due else None
        desk.mailer.send("warning", to=tickets.team_recipients(desk, ticket, also_tier=True), now=now, ticket=ticket,
                         locale=cfg.locale_for_tier(ticket.tier), in_reply_to=ticket.thread_root,
                         context={"clock": action.clock, "due": due, "time_used": used, "time_left": left})
        tickets.event(ticket, now, "warning", action.reason, clock=action.clock, tier=ticket.tier)
        log.info("ticket %d: SLA warning to tier %d: %s", ticket.id, ticket.tier, action.reason)
        return state
    if action.kind == "escalate":
        after = sla.escalated(state, now, policy)
        tickets.escalate(desk, ticket, now, to_tier=action.to_tier, reason=action.reason, time_used=used,
                         restart_clocks=lambda t: slaclock.save_state(t, after, policy, now))
        return after
    if action.kind == "escalate_manager":
        tickets.escalate_to_manager(desk, ticket, now, reason=action.reason, time_used=used)
        return state
    if action.kind == "auto_close":
        tickets.set_status(desk, ticket, "closed", now, actor="system", why=action.reason)
        return slaclock.state_of(ticket, policy)
    if action.kind in ("pending_reminder", "pending_resolve"):
        from .pending import remind, resolve
        (remind if action.kind == "pending_reminder" else resolve)(desk, ticket, now, action.reason)
        return slaclock.state_of(ticket, policy)
    if action.kind == "breach_deadline_warning":
        left = ticket.breach_report_deadline - now
        desk.mailer.send("breach_deadline_warning", to=[Recipient(cfg.service.security_address)], now=now,
                         ticket=ticket, context={"breach_report_deadline": ticket.breach_report_deadline,
                                                 "time_left": left})
        tickets.event(ticket, now, "breach_deadline", action.reason)
        return state
    raise ValueError(f"unknown SLA action {action.kind}")
