"""The bridge between tickets in the database and the pure clock logic of ``sla``."""

from __future__ import annotations

from datetime import datetime, timedelta

from . import sla
from ..models import SlaMark, Ticket

CLOCKS = (("first_response", "response"), ("resolution", "resolution"))


def _clock(ticket: Ticket, attr: str, policy) -> sla.Clock:
    clock_name = "first_response" if attr == "response" else "resolution"
    return sla.Clock(
        started_at=getattr(ticket, f"{attr}_started_at") or ticket.created_at,
        target=policy.target(ticket.priority, clock_name),
        paused_total=timedelta(seconds=getattr(ticket, f"{attr}_paused_seconds") or 0),
        paused_since=getattr(ticket, f"{attr}_paused_since"),
        stopped_at=getattr(ticket, f"{attr}_stopped_at"))


def _store(ticket: Ticket, attr: str, clock: sla.Clock) -> None:
    setattr(ticket, f"{attr}_started_at", clock.started_at)
    setattr(ticket, f"{attr}_paused_seconds", clock.paused_total.total_seconds())
    setattr(ticket, f"{attr}_paused_since", clock.paused_since)
    setattr(ticket, f"{attr}_stopped_at", clock.stopped_at)


def state_of(ticket: Ticket, policy) -> sla.TicketState:
    marks = frozenset(m.key for m in SlaMark.select(SlaMark.key).where(SlaMark.ticket == ticket))
    return sla.TicketState(
        priority=ticket.priority, tier=ticket.tier, status=ticket.status, created_at=ticket.created_at,
        response=_clock(ticket, "response", policy), resolution=_clock(ticket, "resolution", policy),
        already_sent=marks, resolved_at=ticket.resolved_at, breach_report_deadline=ticket.breach_report_deadline)


def save_state(ticket: Ticket, state: sla.TicketState, policy, now: datetime | None = None) -> None:
    """Store the clocks; ``now`` = the scan that just did everything due up to now."""
    _store(ticket, "response", state.response)
    _store(ticket, "resolution", state.resolution)
    refresh(ticket, policy, after=now)


def start(ticket: Ticket, config, now: datetime, decision) -> None:
    """Both clocks start now; a personal-data breach also carries the reporting deadline."""
    policy = config.sla
    for _, attr in CLOCKS:
        _store(ticket, attr, sla.Clock(now, policy.target(ticket.priority, "first_response")))
    if getattr(decision, "breach_report", False):
        ticket.breach_report_deadline = sla.breach_report_deadline(now, policy)
    refresh(ticket, policy)


def refresh(ticket: Ticket, policy, after: datetime | None = None) -> None:
    """Due times and the next moment the scan must look at this ticket (None: nothing left to do).

    ``after``: the moment of a scan that has just acted on everything due until then; earlier
    moments are done and left out, so a warned or breached ticket does not stay due for ever."""
    cal = policy.calendar_for(ticket.priority)
    response, resolution = _clock(ticket, "response", policy), _clock(ticket, "resolution", policy)
    ticket.first_response_due = response.due(cal) if not response.stopped_at else None
    ticket.resolution_due = resolution.due(cal) if not resolution.stopped_at else None
    moments = []
    if ticket.status in ("new", "open", "pending"):
        for clock in (response, resolution):
            if clock.stopped_at or clock.paused_since:
                continue
            warn = sla.add_working_time(clock.started_at, clock.target * policy.warn_at + clock.paused_total, cal)
            due = clock.due(cal)
            moments += [warn, due] if due else [warn]
    if ticket.status == "pending":
        moments += [at for _, at in sla.pending_moments(ticket.resolution_paused_since, policy)]
    if ticket.status == "resolved" and ticket.resolved_at:
        moments.append(ticket.resolved_at + policy.auto_close_after)
    if ticket.breach_report_deadline and ticket.status != "closed":
        for before in policy.breach_report_warn_before:
            moments.append(ticket.breach_report_deadline - before)
    moments = sorted(m for m in moments if after is None or m > after)
    ticket.next_check_at = moments[0] if moments else None


def on_status(ticket: Ticket, config, old: str, new: str, now: datetime) -> None:
    """``pending`` pauses the resolution clock; resolving stops both; reopening runs on.
    Call after the ticket's status and timestamps are set."""
    policy = config.sla
    cal = policy.calendar_for(ticket.priority)
    response, resolution = _clock(ticket, "response", policy), _clock(ticket, "resolution", policy)
    if new == "pending":
        resolution = resolution.pause(now)
    elif old == "pending" and new == "open":
        resolution = resolution.resume(now, cal)
    if new in ("resolved", "closed"):
        resolution = resolution.resume(now, cal).stop(now) if resolution.paused_since else resolution.stop(now)
        response = response.stop(now)
    elif old in ("resolved", "closed") and new == "open":
        resolution = resolution.reopen(now, cal)
    _store(ticket, "response", response)
    _store(ticket, "resolution", resolution)
    refresh(ticket, policy)


def first_response(ticket: Ticket, config, now: datetime) -> None:
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    _store(ticket, "response", _clock(ticket, "response", config.sla).stop(now))
    refresh(ticket, config.sla)


def on_priority(ticket: Ticket, config) -> None:
    """Targets follow the priority (they are derived, not stored): only due times move."""
    refresh(ticket, config.sla)
