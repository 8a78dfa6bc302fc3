"""What happens to a ticket: open, follow-up, agent reply, note, commands, status, escalation.

Each function runs inside the caller's transaction and queues the mails it causes.
"""

from __future__ import annotations

import logging
from datetime import datetime

from . import files as ticket_files
from . import history as people_history
from . import slaclock
from .feedback_links import links
from .correlate import clean_subject, format_tag
from ..db import insert_or_ignore, run
from ..models import Event, MessageRef, Participant, Ticket, insert_together
from ..outbound import outbox
from ..outbound.notify import Recipient
from ..inbound.phones import numbers_in_signature

log = logging.getLogger("mailticket.tickets")

DESCRIPTION_LIMIT = 100_000  # characters of the first mail kept as the ticket's description
STATUSES = ("new", "open", "pending", "resolved", "closed")
# allowed moves of the status machine (agents may also close from any state)
TRANSITIONS = {
    "new": {"open", "pending", "resolved", "closed"},
    "open": {"pending", "resolved", "closed"},
    "pending": {"open", "resolved", "closed"},
    "resolved": {"open", "closed"},
    "closed": {"open"},
}


def event(ticket: Ticket, now: datetime, kind: str, text: str = "", actor: str = "system",
          inbound=None, **data) -> Event:
    entry = new_event(ticket, now, kind, text, actor, inbound, **data)
    entry.save(force_insert=True)
    return entry


def new_event(ticket: Ticket, now: datetime, kind: str, text: str = "", actor: str = "system",
              inbound=None, **data) -> Event:
    """The event, not yet stored (for ``models.insert_together``)."""
    return Event(ticket=ticket, at=now, kind=kind, text=text, actor=actor, inbound=inbound, data=data or None)


def tier_recipients(desk, tier: int) -> list[Recipient]:
    t = desk.config.tiers[tier]
    return [Recipient(t.address, t.name)]


def team_recipients(desk, ticket: Ticket, *, also_tier: bool = False) -> list[Recipient]:
    """Who works the ticket: its assignee while it has one, else its tier's address. Warnings and
    escalations (``also_tier``) go to the tier as well."""
    tier = tier_recipients(desk, ticket.tier)
    if not ticket.assignee:
        return tier
    return [Recipient(ticket.assignee)] + (tier if also_tier else [])


def requester_recipients(ticket: Ticket, exclude: set[str] = frozenset(), *, limit: int) -> tuple[list, list]:
    """The requester (To) and the other participants (Cc), without agents or ourselves: at most
    ``limit`` in Cc (``max_participants``), the earliest added first."""
    to = [Recipient(ticket.requester_address, ticket.requester_name)]
    cc = [Recipient(p.address, p.name)
          for p in ticket.participants.where(Participant.role == "cc").order_by(Participant.id)
          if p.address not in exclude]
    if len(cc) > limit:
        log.warning("ticket %d has %d participants: the mail goes to the first %d (max_participants)",
                    ticket.id, len(cc), limit)
    return to, cc[:limit]


def tells_requester(ticket: Ticket) -> bool:
    """Automatic notices go to the requester, unless that is a monitoring system (an alert incident)."""
    return not ticket.alert_key


def remember_inbound(ticket, message_id: str, now: datetime, audience: str = "requester") -> None:
    """Threading and de-duplication know this Message-ID from now on (the first record stays)."""
    run(insert_or_ignore('"message_ref" ("message_id", "ticket_id", "direction", "audience", "at") '
                         'VALUES (?, ?, ?, ?, ?)'),
        (message_id, getattr(ticket, "id", ticket), "in", audience, MessageRef.at.db_value(now)))


def add_participant(ticket: Ticket, address: str, name: str, role: str = "cc") -> None:
    if not address or address == ticket.requester_address:
        return
    Participant.insert(ticket=ticket, address=address, name=name or "", role=role).on_conflict_ignore().execute()


LEFT_OUT_SHOWN = 10  # addresses named in the agent's mail; the history keeps the count


def add_participants(desk, ticket: Ticket, people, now: datetime, *, proven: bool, why: str = "", actor: str,
                     inbound=None) -> dict | None:
    """Add ``people`` ((address, name) pairs a mail names) to the ticket's Cc: only when the mail
    ``proven`` its sender a participant (``why`` says why not), and no more than ``max_participants``
    in the ticket's Cc. Returns what was left out, for the agent's notification of that mail (its
    ``left_out``), or None; the history records it (``participants_left_out``)."""
    limit = desk.config.service.max_participants
    present = {a for (a,) in Participant.select(Participant.address).where(Participant.ticket == ticket).tuples()}
    new, seen = [], set(present) | {ticket.requester_address}
    for address, name in people:
        if address and address not in seen:
            seen.add(address)
            new.append((address, name))
    if not new:
        return None
    room = 0 if not proven else max(limit - len(present), 0)
    for address, name in new[:room]:
        add_participant(ticket, address, name)
    left = [address for address, _ in new[room:]]
    if not left:
        return None
    reason = "limit" if proven else "unverified"
    because = (f"the ticket may have at most {limit} people in Cc (max_participants)" if proven
               else f"the mail does not prove its sender is a participant ({why})")
    event(ticket, now, "participants_left_out",
          f"{len(left)} address(es) not added in Cc: {because}: " + ", ".join(left[:LEFT_OUT_SHOWN])
          + (f" and {len(left) - LEFT_OUT_SHOWN} more" if len(left) > LEFT_OUT_SHOWN else ""),
          actor=actor, inbound=inbound, reason=reason, count=len(left), added=min(room, len(new)), limit=limit,
          addresses=left[:LEFT_OUT_SHOWN])
    log.warning("ticket %d: %d address(es) not added in Cc: %s", ticket.id, len(left), because)
    return {"reason": reason, "count": len(left), "addresses": left[:LEFT_OUT_SHOWN],
            "more": max(len(left) - LEFT_OUT_SHOWN, 0), "added": min(room, len(new)), "limit": limit}


def mail_people(cfg, addresses, *, agents: bool = True) -> list[tuple[str, str]]:
    """The (address, name) of a mail's To/Cc that may join a ticket: not ours, not broken, and
    (unless ``agents``) not an agent's."""
    return [(a.address, a.name) for a in addresses
            if a.address and not a.defective and not cfg.is_own_address(a.address)
            and (agents or cfg.agent_tier(a.address) is None)]


# ---------------------------------------------------------------- opening

def open_ticket(desk, *, parsed, decision, requester: tuple[str, str], now: datetime, inbound,
                acknowledge: bool, ack_skip_reason: str = "", linked_to: Ticket | None = None,
                alert_key: str | None = None, body: str | None = None, notify_tier: bool = True,
                language: str | None = None) -> Ticket:
    """A new ticket from a mail: stored, logged, its files stored, acknowledged, the tier told (the
    tier's mail carries or lists the files)."""
    cfg = desk.config
    name, address = requester
    tier = 3 if decision.priority == "P1" or decision.security else (decision.tier or 1)
    ticket = Ticket(
        type=decision.type, status="new", tier=tier, priority=decision.priority, impact=decision.impact,
        urgency=decision.urgency, category=decision.category,
        subject=clean_subject(parsed.subject, cfg.service.tag_prefix)[:500],
        description=(body if body is not None else parsed.text)[:DESCRIPTION_LIMIT], requester_name=name[:200],
        requester_address=address, decided_by=decision.rule_name, security=decision.security,
        alert_key=alert_key, linked_to=linked_to.id if linked_to else None, created_at=now, updated_at=now,
        tier_since=now, thread_root=parsed.message_id, language=language)
    phone_from_mail(cfg, ticket, parsed.text, parsed.sender.address)  # the requester's signature
    slaclock.start(ticket, cfg, now, decision)
    ticket.save()  # one INSERT with the clocks already set
    remember_inbound(ticket, parsed.message_id, now)
    insert_together(
        new_event(ticket, now, "logged", f"{ticket.type} logged from mail by {address}: {ticket.subject}",
                  actor=address, inbound=inbound, message_id=parsed.message_id),
        new_event(ticket, now, "categorised",
                  f"type {ticket.type}, category {ticket.category}, impact {ticket.impact}, urgency {ticket.urgency} "
                  f"-> {ticket.priority}, tier {tier}"
                  + (f" (rule {decision.rule_name})" if decision.rule_name else " (defaults)"),
                  reasons=list(decision.reasons)))
    # the requester's own mail: its people join (they are the requester's), up to max_participants
    left_out = add_participants(desk, ticket, mail_people(cfg, (*parsed.to, *parsed.cc)), now, proven=True,
                                actor=address, inbound=inbound)
    if linked_to is not None:
        event(ticket, now, "link", f"linked to {format_tag(cfg.service.tag_prefix, linked_to.id)}")
        event(linked_to, now, "link", f"new linked ticket {format_tag(cfg.service.tag_prefix, ticket.id)}")
    stored = ticket_files.store(desk, inbound, ticket, parsed.attachments, actor=address, now=now)
    _announce_new(desk, ticket, parsed, decision, now, acknowledge, ack_skip_reason, notify_tier, stored, left_out)
    log.info("ticket %d opened from <%s> by %s: %s %s tier %d", ticket.id, parsed.message_id, address,
             ticket.priority, ticket.category, ticket.tier)
    return ticket


def phone_from_mail(cfg, ticket: Ticket, text: str, author: str) -> str | None:
    """Set the ticket's number from the signature of the requester's own mail when it has none yet;
    returns the number set, or None. (Someone else's signature, an agent logging the ticket for
    the user, is not the requester's number.)"""
    if ticket.requester_phone or (author or "").lower() != (ticket.requester_address or "").lower():
        return None
    found = numbers_in_signature(text or "", cfg.calls.region)
    if found:
        ticket.requester_phone = found[0]
        return found[0]
    return None


def _announce_new(desk, ticket, parsed, decision, now, acknowledge, ack_skip_reason, notify_tier=True, stored=(),
                  left_out=None):
    cfg, mailer = desk.config, desk.mailer
    carried = ticket_files.for_notification(desk, ticket, stored)
    if acknowledge:
        empty = [f["name"] for f in carried.context if f["state"] == "empty"]  # the requester is asked again
        sent = mailer.send("acknowledgement", to=[Recipient(ticket.requester_address, ticket.requester_name)],
                           now=now, ticket=ticket, in_reply_to=parsed.message_id, auto_submitted="auto-replied",
                           automatic=True, rate_limited=True, context={"empty_files": empty} if empty else None,
                           global_cap=lambda: _has_earlier_ticket(ticket))
        if sent:
            event(ticket, now, "acknowledged", f"acknowledgement queued to {ticket.requester_address}")
    else:
        event(ticket, now, "not-acknowledged", ack_skip_reason or "no acknowledgement")
    if not notify_tier and not (ticket.security or ticket.priority == "P1"):
        # a mailbox full of old mail must not mail the tier once per past mail; a breach report or
        # a P1 is told even when old (a weekend's outage, a wrong clock): someone must act on it
        event(ticket, now, "not-notified", "old mail: logged without notifying the tier")
        return
    ctx = {"decision_reasons": list(decision.reasons), "body": ticket.description, "for_information": False,
           **ticket_files.mail_context(carried, desk)}
    if not _tier_told_enough(ticket, now, cfg.rate_limits.tier_notices_per_sender_hour):
        mailer.send("new_ticket", to=tier_recipients(desk, ticket.tier), now=now, ticket=ticket,
                    context=dict(ctx, left_out=left_out),
                    locale=cfg.locale_for_tier(ticket.tier), in_reply_to=parsed.message_id, files=carried.files)
        if ticket.tier == 3 and ticket.priority == "P1":  # tier 1 only hears of it: no "how to act" for them
            mailer.send("new_ticket", to=tier_recipients(desk, 1), now=now, ticket=ticket,
                        context=dict(ctx, for_information=True, left_out=left_out), locale=cfg.locale_for_tier(1),
                        in_reply_to=parsed.message_id, files=carried.files)
            event(ticket, now, "escalation", "P1: straight to tier 3, tier 1 informed", to_tier=3)
    if ticket.security:  # the security contact is told of every one, whatever the tier's cap
        mailer.send("security_alert", to=[Recipient(cfg.service.security_address)], now=now, ticket=ticket,
                    context=ctx, in_reply_to=parsed.message_id, files=carried.files)
        event(ticket, now, "security", f"security contact {cfg.service.security_address} told")


def _tier_told_enough(ticket: Ticket, now: datetime, cap: int) -> bool:
    """One sender's flood (a script, a broken monitoring, a responder opening ticket after ticket)
    must not become a flood of notices to the tier: its tickets are all opened and listed
    (``mailticket tickets``), the tier told of the first ``cap`` an hour; the others say so in
    their history, and the log has a line for each. A configured monitoring source's incidents
    (``alert_key``) are exempt: each is another host or service, and the admin chose the source."""
    if ticket.alert_key or outbox.tier_notices_for_sender(ticket.requester_address, now, cap) < cap:
        return False
    why = (f"the tier was not told: {cap} new tickets from {ticket.requester_address} were announced in the "
           f"last hour (rate_limits.tier_notices_per_sender_hour = {cap})")
    log.warning("ticket %d: %s", ticket.id, why)
    event(ticket, now, "not-notified", why)
    return True


def _has_earlier_ticket(ticket: Ticket) -> bool:
    """Did this requester open a ticket before this one? (Their first one's acknowledgement passes
    the global fuse, ``outbox.check_rate``.)"""
    return Ticket.select().where(Ticket.requester_address == ticket.requester_address,
                                 Ticket.id != ticket.id).exists()


# ---------------------------------------------------------------- mail on an existing ticket

def requester_followup(desk, ticket: Ticket, *, parsed, new_text: str, author: tuple[str, str], now, inbound,
                       proven: bool, why: str = "", joining=()) -> Ticket:
    """The requester (or a participant) wrote again: record, reopen if needed, tell the tier.

    The people of its Cc (and ``joining``, the sender when new to the ticket) join the ticket only
    when the mail is ``proven`` to come from a participant (``pipeline._proves_participant``); the
    tier's mail says who was left out and why."""
    cfg = desk.config
    name, address = author
    remember_inbound(ticket, parsed.message_id, now)
    left_out = add_participants(desk, ticket, [*joining, *mail_people(cfg, parsed.cc, agents=False)], now,
                                proven=proven, why=why, actor=address, inbound=inbound)
    event(ticket, now, "reply_in", new_text, actor=address, inbound=inbound, message_id=parsed.message_id,
          **({} if proven else {"unverified": True, "why": why}))
    carried = ticket_files.for_notification(desk, ticket,
                                            ticket_files.store(desk, inbound, ticket, parsed.attachments,
                                                               actor=address, now=now))
    kind = "requester_update"
    if ticket.status in ("resolved", "closed"):
        set_status(desk, ticket, "open", now, actor=address, why="reopened by the requester's reply", notify=False)
        event(ticket, now, "reopen", f"reopened by a reply from {address}", actor=address)
        kind = "reopened"
    elif ticket.status == "pending":
        set_status(desk, ticket, "open", now, actor=address, why="the requester answered", notify=False)
    phone_from_mail(cfg, ticket, new_text, address)  # a number in the requester's signature, if none yet
    ticket.updated_at = now
    ticket.save()
    desk.mailer.send(kind, to=team_recipients(desk, ticket), now=now, ticket=ticket,
                     context={"body": new_text, "author_name": name or address, "left_out": left_out,
                              **ticket_files.mail_context(carried, desk)},
                     locale=cfg.locale_for_tier(ticket.tier), in_reply_to=parsed.message_id, files=carried.files)
    return ticket


def record_thanks(ticket: Ticket, parsed, text: str, now, inbound) -> None:
    """A reply to a resolved (or recently closed) ticket that only thanks: kept, the ticket stays as it is."""
    remember_inbound(ticket, parsed.message_id, now)
    event(ticket, now, "reply_in", text, actor=parsed.sender.address, inbound=inbound, message_id=parsed.message_id,
          thanks=True)
    log.info("ticket %d: a thank-you from %s, not reopened", ticket.id, parsed.sender.address)


def record_auto_reply(ticket: Ticket, parsed, verdict, now, inbound) -> None:
    remember_inbound(ticket, parsed.message_id, now)
    event(ticket, now, "auto_reply", f"{verdict.reason}: {parsed.subject}", actor=parsed.sender.address,
          inbound=inbound, message_id=parsed.message_id)


# ---------------------------------------------------------------- status and escalation

def set_status(desk, ticket: Ticket, status: str, now: datetime, *, actor: str, why: str = "",
               notify: bool = True, body: str | None = None, carried=None) -> None:
    """Move the ticket; the requester hears of a resolution or closure (with ``body``, and the
    files ``carried`` of the agent's reply that did it)."""
    old = ticket.status
    if status == old:
        return
    if status not in TRANSITIONS.get(old, ()):
        raise ValueError(f"a {old} ticket cannot become {status}")
    ticket.status = status
    ticket.updated_at = now
    if status == "resolved":
        ticket.resolved_at = now
    if status == "closed":
        ticket.closed_at = now
    if status == "open" and old in ("resolved", "closed"):
        ticket.resolved_at = ticket.closed_at = None
    slaclock.on_status(ticket, desk.config, old, status, now)
    ticket.save()
    event(ticket, now, "status", f"{old} -> {status}" + (f": {why}" if why else ""), actor=actor,
          old=old, new=status)
    if notify and status in ("resolved", "closed") and tells_requester(ticket):
        to, cc = requester_recipients(ticket, limit=desk.config.service.max_participants)
        extra = ticket_files.mail_context(carried, desk) if carried else {}
        context = {"body": body or "", "auto_close_after": desk.config.sla.auto_close_after, **extra}
        if status == "resolved":
            context["feedback"] = links(desk, ticket, now)
        desk.mailer.send(status, to=to, cc=cc, now=now, ticket=ticket, context=context,
                         in_reply_to=ticket.thread_root, automatic=True, files=carried.files if carried else ())


def escalate(desk, ticket: Ticket, now: datetime, *, to_tier: int | None = None, reason: str,
             actor: str = "system", time_used=None, restart_clocks=None) -> int:
    """Move the ticket up (or to ``to_tier``); tell the new tier and the requester. Returns the tier.

    ``restart_clocks(ticket)`` gives the new tier its own window before the mail is written, so the
    mail shows the new tier's targets rather than the deadline that has just passed."""
    cfg = desk.config
    old = ticket.tier
    new = to_tier or min(old + 1, 3)
    if new == old and to_tier is None:
        return old
    carried = ticket_files.for_notification(desk, ticket, ticket_files.of_ticket(ticket))
    ctx = {"from_tier": old, "to_tier": new, "reason": reason, "time_used": time_used,
           **people_history.for_people(ticket), **ticket_files.mail_context(carried, desk)}
    ticket.tier, ticket.tier_since, ticket.updated_at = new, now, now
    if restart_clocks is not None:
        restart_clocks(ticket)
    ticket.save()
    event(ticket, now, "escalation", f"tier {old} -> tier {new}: {reason}", actor=actor, from_tier=old, to_tier=new)
    desk.mailer.send("escalation", to=team_recipients(desk, ticket, also_tier=True), now=now, ticket=ticket,
                     context=ctx, locale=cfg.locale_for_tier(new), in_reply_to=ticket.thread_root, files=carried.files)
    if new > old and tells_requester(ticket):
        to = [Recipient(ticket.requester_address, ticket.requester_name)]
        desk.mailer.send("escalated", to=to, now=now, ticket=ticket, context={"from_tier": old, "to_tier": new},
                         in_reply_to=ticket.thread_root,
                         automatic=True, rate_limited=True)
    log.info("ticket %d escalated tier %d -> %d: %s", ticket.id, old, new, reason)
    return new


def escalate_to_manager(desk, ticket: Ticket, now: datetime, *, reason: str, time_used=None) -> None:
    manager = desk.config.service.manager_address
    desk.mailer.send("escalation_manager", to=[Recipient(manager)], now=now,
                     ticket=ticket, in_reply_to=ticket.thread_root,
                     context={"from_tier": 3, "to_tier": 3, "reason": reason, "time_used": time_used,
                              **people_history.for_people(ticket)})
    event(ticket, now, "escalation", f"tier 3 -> escalation manager {manager}: {reason}", from_tier=3,
          to="manager")
    log.info("ticket %d escalated to the manager: %s", ticket.id, reason)
