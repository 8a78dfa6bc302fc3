"""An agent's mail on a ticket: verified first, then commands, then a public reply or a note.

Nobody acts in an agent's name: a mail from an agent address acts only when it was sent to
the signed reply address of this ticket's notifications, or carries a passing DKIM/DMARC
verdict from the trusted server. Otherwise it is kept as an internal note marked unverified.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from . import files as ticket_files
from . import history as people_history
from . import echo, related, slaclock, tickets
from ..inbound.absence import absence_phrase
from ..inbound.authres import trusted_verdict
from .commands import VALID, parse_commands
from ..i18n import Message
from ..models import Outbox, Ticket
from ..outbound.notify import Recipient
from ..inbound.quotes import split_reply
from .rules import priority_for

log = logging.getLogger("mailticket.agentmail")

AGENT_PURPOSES = ("reply", "note")
# a line that starts with a command word: such a mail is an agent's act, never an echo
VALID_COMMAND_LINE = re.compile(r"^\s*#[a-z]", re.M | re.I)


def verify_agent(desk, match, parsed) -> tuple[bool, str]:
    """Does this mail prove it comes from the agent it names?"""
    if match.how == "token" and match.token_purpose in AGENT_PURPOSES:
        return True, "sent to the ticket's signed reply address"
    domain = parsed.sender.address.rpartition("@")[2]
    verdict = trusted_verdict(parsed.message, desk.config.service.trusted_authserv_id, domain)
    if verdict.passed:
        return True, verdict.reason
    return False, f"no signed reply address and {verdict.reason}"


ABSENCE_WINDOW = timedelta(minutes=15)  # a responder answers at once; a person's reply comes later


def _absence_notice(match, parsed, new_text: str, now) -> str | None:
    """An agent's public reply that is really their vacation responder's: it reads as an absence
    notice (``inbound.absence``), is not a note, and answers one of our mails within
    ``ABSENCE_WINDOW`` of its sending (the caller asks only for a mail without a command line). Returns the words that tell it, or None. The
    agent is not mailed about it (that mail would feed the responder); the history and the log
    say it, and a ``#command`` line on top sends such a text anyway."""
    if match.token_purpose == "note":
        return None
    phrase = absence_phrase(new_text or "")
    if phrase is None or not parsed.in_reply_to:
        return None
    sent = Outbox.select(Outbox.created_at).where(Outbox.message_id.in_(list(parsed.in_reply_to))).first()
    if sent is None or not timedelta(0) <= now - sent.created_at <= ABSENCE_WINDOW:
        return None
    return phrase


def handle_agent_mail(desk, match, parsed, now, row) -> Ticket:
    cfg, ticket = desk.config, match.ticket
    agent, agent_name = parsed.sender.address, parsed.sender.name or parsed.sender.address
    tickets.remember_inbound(ticket, parsed.message_id, now, audience="internal")
    # kept whatever the mail turns out to be (a note, unverified)
    stored = ticket_files.store(desk, row, ticket, parsed.attachments, actor=agent, now=now)
    new_text = split_reply(parsed.text).new
    verified, how = verify_agent(desk, match, parsed)
    commanded = bool(VALID_COMMAND_LINE.search(new_text or ""))
    if not commanded:
        previous = echo.repeats(ticket, agent, new_text or parsed.text, now)
        if previous is not None:  # a responder's same text again: kept, nothing sent (desk/echo.py)
            echo.record(ticket, parsed, new_text or parsed.text, previous, now, row)
            return ticket
    if not verified:
        tickets.event(ticket, now, "note", new_text or parsed.text, actor=agent, inbound=row, unverified=True,
                      why=how)
        _notify_note(desk, ticket, agent, agent_name, new_text or parsed.text, now, parsed, unverified=True)
        log.warning("ticket %d: mail <%s> from agent address %s not verified (%s): kept as an unverified note",
                    ticket.id, parsed.message_id, agent, how)
        return ticket
    absent = None if commanded else _absence_notice(match, parsed, new_text, now)
    if absent is not None:  # the agent's vacation responder answering our notification: never to the requester
        tickets.event(ticket, now, "note", new_text or parsed.text, actor=agent, inbound=row, absence=absent,
                      why=f"reads as an absence notice ({absent!r}) answering our mail at once, with no #command: "
                          "kept as an internal note, sent to nobody")
        log.warning("ticket %d: mail <%s> from agent %s reads as an absence notice (%r): kept as an internal note, "
                    "not sent to the requester", ticket.id, parsed.message_id, agent, absent)
        return ticket
    result = parse_commands(new_text, now=now, timezone=cfg.service.timezone, agents=set(cfg.agents),
                            categories=set(cfg.rules.categories), phone_region=cfg.calls.region,
                            languages=cfg.service.languages)
    is_note = match.token_purpose == "note" or any(c.name == "note" for c in result.commands)
    body = result.body.strip()
    errors = [{"line": e.line, "line_no": e.line_no, "problem": e.problem, "valid": e.valid} for e in result.errors]
    resolution_text = None
    priority_before = ticket.priority
    carried, refused = ticket_files.for_requester(desk, ticket, stored) if not is_note else (None, [])
    for command in result.commands:
        if command.name == "note":
            continue
        if command.name == "broadcast":
            problem = related.broadcast(desk, ticket, agent, agent_name, body, is_note, now, row, parsed,
                                        reply=public_reply)
            if problem:
                errors.append({"line": command.line.strip(), "line_no": command.line_no, "problem": problem,
                               "valid": VALID["broadcast"]})
            continue
        resolving = command.name == "status" and command.args.get("value") == "resolved" and body and not is_note
        problem = apply_command(desk, ticket, command, agent, agent_name, now, body if resolving else None, parsed,
                                carried=carried if resolving else None)
        if problem:
            errors.append({"line": command.line.strip(), "line_no": command.line_no, "problem": problem,
                           "valid": VALID.get(command.name, "")})
        elif command.name == "status":
            related.after_status(desk, ticket, command.args["value"], body if not is_note else None, agent, now)
            if resolving:
                resolution_text = body  # it went to the requester with the resolved mail
    p1_to_tier_3(desk, ticket, result.commands, priority_before, agent, now)
    if errors:
        desk.mailer.send("command_error", to=[Recipient(agent, parsed.sender.name)], now=now, ticket=ticket,
                         context={"errors": errors}, locale=cfg.locale_for_tier(ticket.tier),
                         in_reply_to=parsed.message_id, auto_submitted="auto-replied", automatic=True,
                         rate_limited=True)
        tickets.event(ticket, now, "command_error",
                      "; ".join(f"line {e['line_no']} {e['line']!r}: {e['problem']}" for e in errors), actor=agent)
    if is_note:
        tickets.event(ticket, now, "note", body, actor=agent, inbound=row, verified_by=how)
        _notify_note(desk, ticket, agent, agent_name, body, now, parsed, unverified=False)
    elif (body or (carried and carried.files)) and resolution_text is None:
        public_reply(desk, ticket, agent, agent_name, body, now, row, parsed, carried=carried)
    elif resolution_text is not None:
        tickets.event(ticket, now, "reply_out", body, actor=agent, inbound=row, resolution=True)
        if ticket.first_response_at is None:
            tickets.event(ticket, now, "first_response", f"first response by {agent} (resolved)", actor=agent)
        slaclock.first_response(ticket, cfg, now)
    if refused and not is_note:
        _tell_refused(desk, ticket, agent, parsed, refused, now)
    ticket.updated_at = now
    ticket.save()
    return ticket


def public_reply(desk, ticket, agent, agent_name, body, now, row, parsed, carried=None) -> None:
    """The agent's new text (and files) go to the requester and participants, threaded in their conversation."""
    agents = desk.config.agents
    to, cc = tickets.requester_recipients(ticket, exclude=set(agents) | {agent},
                                          limit=desk.config.service.max_participants)
    last_in = _last_requester_message(ticket) or ticket.thread_root
    extra = ticket_files.mail_context(carried, desk) if carried else {}
    desk.mailer.send("agent_reply", to=to, cc=cc, now=now, ticket=ticket, from_name=agent_name,
                     context={"agent_name": agent_name, "body": body, **extra}, in_reply_to=last_in,
                     auto_submitted="no", automatic=False, files=carried.files if carried else ())
    sent = [f["name"] for f in extra.get("files", ())]
    tickets.event(ticket, now, "reply_out", body, actor=agent, inbound=row, **({"files": sent} if sent else {}))
    if ticket.first_response_at is None:
        slaclock.first_response(ticket, desk.config, now)
        tickets.event(ticket, now, "first_response", f"first response by {agent}", actor=agent)
    if ticket.status == "new":
        tickets.set_status(desk, ticket, "open", now, actor=agent, why="first agent reply", notify=False)


def _tell_refused(desk, ticket, agent, parsed, refused, now) -> None:
    """The agent hears which files did not go to the requester, and why; they stay on the ticket."""
    desk.mailer.send("attachment_refused", to=[Recipient(agent, parsed.sender.name)], now=now, ticket=ticket,
                     context={"refused": refused}, locale=desk.config.locale_for_tier(ticket.tier),
                     in_reply_to=parsed.message_id, auto_submitted="auto-replied", automatic=True, rate_limited=True)
    tickets.event(ticket, now, "files_not_sent", "; ".join(
        f"{f['name']} ({f['size']} bytes): {'empty' if f['why'] == 'empty' else 'over the mail server limit'}"
        for f in refused), actor=agent)


def _last_requester_message(ticket) -> str | None:
    from ..models import Event
    ev = (Event.select().where(Event.ticket == ticket, Event.kind.in_(["reply_in", "logged"]))
          .order_by(Event.at.desc(), Event.id.desc()).first())
    return (ev.data or {}).get("message_id") if ev else None


def _notify_note(desk, ticket, agent, agent_name, body, now, parsed, unverified) -> None:
    cfg = desk.config
    tier = cfg.tiers[ticket.tier]
    others = sorted(a for a in tier.agents if a != agent)
    to = [Recipient(a) for a in others] or [Recipient(tier.address, tier.name)]
    desk.mailer.send("note", to=to, now=now, ticket=ticket, locale=cfg.locale_for_tier(ticket.tier),
                     context={"agent_name": agent_name, "body": body, "unverified": unverified},
                     in_reply_to=parsed.message_id, reply_purpose="note")


def apply_command(desk, ticket, command, agent, agent_name, now, resolution_text, parsed,
                  carried=None) -> str | None:
    """Apply one valid command; returns a problem to tell the agent, or None. Recorded in the history."""
    cfg, name, args = desk.config, command.name, command.args
    if name == "status":
        try:
            tickets.set_status(desk, ticket, args["value"], now, actor=agent, why=f"#status by {agent}",
                               body=resolution_text, carried=carried)
        except ValueError:  # a move the status machine does not allow; anything else is a bug
            return Message("a ticket that is {old} cannot be set to {new}",
                           old=Message(people_history.STATUS_WORDS[ticket.status]),
                           new=Message(people_history.STATUS_WORDS[args["value"]]))
    elif name == "priority":
        old = ticket.priority
        ticket.priority = args["value"]
        slaclock.on_priority(ticket, cfg)
        tickets.event(ticket, now, "priority", f"{old} -> {ticket.priority}", actor=agent, old=old,
                      new=ticket.priority)
    elif name in ("impact", "urgency"):
        setattr(ticket, name, args["value"])
        old = ticket.priority
        ticket.priority = priority_for(ticket.impact, ticket.urgency, cfg.rules.matrix)
        slaclock.on_priority(ticket, cfg)
        tickets.event(ticket, now, "priority", f"{name} {args['value']}: {old} -> {ticket.priority}", actor=agent,
                      old=old, new=ticket.priority)
    elif name == "assign":
        assign(desk, ticket, None if args.get("none") else (agent if args.get("me") else args["address"]),
               agent, agent_name, now)
    elif name == "security":
        from .securityflag import set_security
        problem = set_security(desk, ticket, args["on"], args.get("reason"), agent, now)
        if problem:
            return problem
    elif name == "escalate":
        if ticket.tier >= 3:
            tickets.escalate_to_manager(desk, ticket, now,
                                        reason=args.get("reason") or Message("#escalate by {agent}", agent=agent))
        else:
            tickets.escalate(desk, ticket, now, reason=args.get("reason") or Message("#escalate by {agent}", agent=agent),
                             actor=agent, restart_clocks=lambda t: _restart_clocks(t, now, cfg.sla))
    elif name == "tier":
        if args["value"] != ticket.tier:
            tickets.escalate(desk, ticket, now, to_tier=args["value"],
                             reason=Message("#tier {tier} by {agent}", tier=args["value"], agent=agent),
                             actor=agent, restart_clocks=lambda t: _restart_clocks(t, now, cfg.sla))
    elif name in ("category", "type"):
        old = getattr(ticket, name)
        setattr(ticket, name, args["value"])
        tickets.event(ticket, now, name, f"{old} -> {args['value']}", actor=agent, old=old, new=args["value"])
    elif name in related.COMMANDS:
        problem = related.apply(desk, ticket, command, agent, now)
        if problem:
            return problem
    elif name == "language":
        from .language import set_by_agent
        set_by_agent(desk, ticket, args["value"], agent, now)
    elif name == "call":
        from . import calls
        problem = calls.apply(desk, ticket, agent, agent_name, args, now)
        if problem:
            return problem
    elif name == "phone":
        from . import calls
        calls.set_phone(desk, ticket, args["number"], agent, now)
    else:
        return Message("#{name} is not handled", name=name)
    tickets.event(ticket, now, "command", command.line.strip(), actor=agent)
    ticket.updated_at = now
    ticket.save()
    return None


def assign(desk, ticket, who: str | None, agent, agent_name, now) -> None:
    """#assign: the ticket's mails go to ``who`` from now on (None: back to the tier); the new
    assignee hears of it once, unless they assigned themselves."""
    old = ticket.assignee
    if who == old:
        tickets.event(ticket, now, "assign", f"already assigned to {who}" if who else "already unassigned",
                      actor=agent)
        return
    ticket.assignee = who
    tickets.event(ticket, now, "assign", f"assigned to {who}" if who else f"unassigned (was {old}): back to the tier",
                  actor=agent, old=old, new=who)
    if who is None or who == agent:
        return
    cfg = desk.config
    carried = ticket_files.for_notification(desk, ticket, ticket_files.of_ticket(ticket))
    desk.mailer.send("assigned", to=[Recipient(who)], now=now, ticket=ticket, in_reply_to=ticket.thread_root,
                     locale=cfg.locale_for_tier(cfg.agent_tier(who) or ticket.tier), files=carried.files,
                     context={"assigned_by": agent, "assigned_by_name": agent_name,
                              **ticket_files.mail_context(carried, desk)})


PRIORITY_COMMANDS = ("priority", "impact", "urgency")


def p1_to_tier_3(desk, ticket, commands, priority_before, agent, now) -> None:
    """SPEC: "P1 tickets go to tier 3 at once", also when an agent's command makes a ticket P1.

    Decided once all the commands of the mail have been applied, so the order of its lines does
    not matter: a ticket that this mail's #priority, #impact or #urgency made P1 and that is below
    tier 3 goes there the way #tier 3 takes it (escalation mail, event, clocks restarted). A #tier
    in the same mail is the agent's own choice and wins; a ticket the mail resolved or closed is
    not escalated; a lower priority never lowers the tier."""
    if priority_before == "P1" or ticket.priority != "P1" or ticket.tier >= 3:
        return
    if any(c.name == "tier" for c in commands) or ticket.status in ("resolved", "closed"):
        return
    lines = ", ".join(c.line.strip() for c in commands if c.name in PRIORITY_COMMANDS)
    tickets.escalate(desk, ticket, now, to_tier=3,
                     reason=Message("P1: straight to tier 3 ({lines} by {agent})", lines=lines, agent=agent),
                     actor=agent, restart_clocks=lambda t: _restart_clocks(t, now, desk.config.sla))
    ticket.save()


def _restart_clocks(ticket, now, policy) -> None:
    """A new tier gets its own window for the clocks still running (and the scan a new moment)."""
    for attr in ("response", "resolution"):
        if getattr(ticket, f"{attr}_stopped_at") is None:
            setattr(ticket, f"{attr}_started_at", now)
            setattr(ticket, f"{attr}_paused_seconds", 0)
    slaclock.refresh(ticket, policy)
