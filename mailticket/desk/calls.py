"""Calls that happen: where to join, the requester's number, moving and cancelling a call, the
requester's answer from their calendar, and the agent's reminder.

The call is kept on the ticket (``Ticket.call``): its UID, SEQUENCE, start, length, the agent who
arranged it, the mode ("meeting": the requester joins the link or rings the desk's number;
"phone": the agent rings the requester), its state (requested, accepted, declined, tentative,
countered, cancelled) and the last answer. A later ``#call`` moves the same meeting (same UID,
SEQUENCE + 1, METHOD:REQUEST); ``#call cancel`` sends METHOD:CANCEL. ``Ticket.call_remind_at`` is
when the agent's reminder is due (``send_reminders``, a periodic job of the daemon).

The requester's number (``Ticket.requester_phone``, E.164) comes from the signature of their mail
(``tickets.phone_from_mail``) or from an agent's ``#phone``; every mail to agents shows it.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta, timezone

from . import tickets
from .correlate import ticket_by_id
from ..db import is_postgres
from ..i18n import Message, _
from ..inbound.phones import international
from ..models import Ticket
from ..outbound.invitation import build_invitation, content_type
from ..outbound.notify import Recipient

log = logging.getLogger("mailticket.calls")

STATES = ("requested", "accepted", "declined", "tentative", "countered", "cancelled")
ANSWER_STATES = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative"}
_UID = re.compile(r"call-(\d{1,12})-[0-9a-f]{6,32}@", re.IGNORECASE)


# ---------------------------------------------------------------- the requester's number

def set_phone(desk, ticket: Ticket, number: str | None, agent: str, now: datetime) -> None:
    """#phone NUMBER (or none): the requester's number, recorded in the history."""
    old = ticket.requester_phone
    ticket.requester_phone = number
    tickets.event(ticket, now, "phone", f"requester's phone {old or 'none'} -> {number or 'none'}", actor=agent,
                  old=old, new=number)


# ---------------------------------------------------------------- where the call happens

def place(cfg, agent: str, ticket: Ticket, mode: str) -> dict:
    """Where to join: the agent's (or desk's) link with its placeholders filled, the number to ring,
    and for a "phone" call the requester's number that the agent rings."""
    where = cfg.calls.place_for(agent)
    link = where.link.format(agent=agent.partition("@")[0], ticket=ticket.id) if where.link else None
    if mode == "phone":
        return {"mode": "phone", "link": None, "phone": international(ticket.requester_phone)}
    return {"mode": "meeting", "link": link, "phone": where.phone}


def _requester_language(desk, ticket: Ticket) -> str:
    """The invitation, its move and its cancellation speak the requester's language (issue 26), as
    the mailer decides it for any mail to them; the calendar text is written before the mail."""
    return desk.mailer.languages([Recipient(ticket.requester_address, ticket.requester_name)], (), ticket)[0][0]


def _location(locale: str, where: dict, agent_name: str) -> tuple[str, str, str]:
    """LOCATION, URL and the description's sentence, in the requester's language."""
    if where["mode"] == "phone":
        said = _(locale, "{agent} will call you on {number}.", agent=agent_name, number=where["phone"])
        return _(locale, "{agent} calls you on {number}", agent=agent_name, number=where["phone"]), "", said
    if where["link"] and where["phone"]:
        said = _(locale, "Join the call at {link}, or ring {number}.", link=where["link"], number=where["phone"])
        return where["link"], where["link"], said
    if where["link"]:
        return where["link"], where["link"], _(locale, "Join the call at {link}.", link=where["link"])
    if where["phone"]:
        tel = "tel:" + re.sub(r"[^\d+]", "", where["phone"])
        return (_(locale, "Phone {number}", number=where["phone"]), tel,
                _(locale, "Ring {number} at that time.", number=where["phone"]))
    return "", "", _(locale, "{agent} will contact you at that time.", agent=agent_name)


# ---------------------------------------------------------------- #call

def apply(desk, ticket: Ticket, agent: str, agent_name: str, args: dict, now: datetime) -> Message | None:
    """#call ...: arrange, move or cancel the ticket's call; a problem for the agent, or None."""
    if args.get("cancel"):
        return cancel(desk, ticket, agent, agent_name, now)
    return arrange(desk, ticket, agent, agent_name, args, now)


def current(ticket: Ticket) -> dict | None:
    """The ticket's call unless there is none or it was cancelled."""
    call = ticket.call
    return call if call and call.get("state") != "cancelled" else None


def arrange(desk, ticket: Ticket, agent: str, agent_name: str, args: dict, now: datetime) -> Message | None:
    cfg = desk.config
    mode = args.get("mode", "meeting")
    if mode == "phone" and not ticket.requester_phone:
        return Message("the requester's phone number is not known; give it first with #phone NUMBER")
    start, duration = args["start"], args["duration"]
    before = current(ticket)
    uid = before["uid"] if before else f"call-{ticket.id}-{secrets.token_hex(8)}@{cfg.service.domain}"
    sequence = before["sequence"] + 1 if before else 0
    where = place(cfg, agent, ticket, mode)
    locale = _requester_language(desk, ticket)
    try:
        ics = _calendar(cfg, locale, ticket, agent_name, uid, sequence, start, duration, where, now, "REQUEST")
    except ValueError as exc:  # an address the invitation cannot carry
        return Message("no invitation could be made: {problem}", problem=str(exc))
    previous_start = datetime.fromisoformat(before["start"]) if before else None
    desk.mailer.send("call_invitation", to=[Recipient(ticket.requester_address, ticket.requester_name)], now=now,
                     ticket=ticket, from_name=agent_name, in_reply_to=ticket.thread_root, auto_submitted="no",
                     locale=locale,
                     context={"agent_name": agent_name, "start": start, "end": start + duration,
                              "duration": duration, "mode": where["mode"], "link": where["link"],
                              "phone": where["phone"], "previous_start": previous_start},
                     alternatives=[(content_type("REQUEST"), ics)],
                     attachments=[("invite.ics", "application/ics", ics)])
    ticket.call = {"uid": uid, "sequence": sequence, "start": start.astimezone(timezone.utc).isoformat(),
                   "duration": int(duration.total_seconds()), "timezone": args.get("timezone") or cfg.service.timezone,
                   "agent": agent, "agent_name": agent_name, "mode": where["mode"], "link": where["link"],
                   "phone": where["phone"], "attendee": ticket.requester_address, "state": "requested",
                   "answer": None, "reminded": False}
    ticket.call_remind_at = _remind_at(cfg, start, now)
    if before:
        tickets.event(ticket, now, "call_moved", f"call moved from {before['start']} to {start.isoformat()} for "
                      f"{duration} (sequence {sequence})", actor=agent, uid=uid, sequence=sequence, mode=mode)
    else:
        tickets.event(ticket, now, "call", f"call with the requester {start.isoformat()} for {duration}"
                      + (" (the agent rings the requester)" if mode == "phone" else ""), actor=agent, uid=uid,
                      sequence=sequence, mode=mode)
    return None


def _remind_at(cfg, start: datetime, now: datetime) -> datetime | None:
    """The reminder's moment; None when the call is sooner than that (the agent has just booked it)."""
    at = start - cfg.calls.remind_before
    return at if at > now else None


def cancel(desk, ticket: Ticket, agent: str, agent_name: str, now: datetime) -> Message | None:
    cfg = desk.config
    call = current(ticket)
    if call is None:
        return Message("no call is arranged on this ticket, so there is none to cancel")
    start, duration = datetime.fromisoformat(call["start"]), timedelta(seconds=call["duration"])
    sequence = call["sequence"] + 1
    where = {k: call.get(k) for k in ("mode", "link", "phone")}
    locale = _requester_language(desk, ticket)
    try:
        ics = _calendar(cfg, locale, ticket, call.get("agent_name") or agent_name, call["uid"], sequence, start,
                        duration, where, now, "CANCEL")
    except ValueError as exc:
        return Message("no invitation could be made: {problem}", problem=str(exc))
    desk.mailer.send("call_cancelled", to=[Recipient(ticket.requester_address, ticket.requester_name)], now=now,
                     ticket=ticket, from_name=agent_name, in_reply_to=ticket.thread_root, auto_submitted="no",
                     locale=locale,
                     context={"agent_name": agent_name, "start": start, "end": start + duration, "duration": duration},
                     alternatives=[(content_type("CANCEL"), ics)],
                     attachments=[("invite.ics", "application/ics", ics)])
    ticket.call = dict(call, sequence=sequence, state="cancelled")
    ticket.call_remind_at = None
    tickets.event(ticket, now, "call_cancelled", f"call of {call['start']} cancelled (sequence {sequence})",
                  actor=agent, uid=call["uid"], sequence=sequence)
    return None


def _calendar(cfg, locale, ticket, agent_name, uid, sequence, start, duration, where, now, method) -> bytes:
    tag = f"[{cfg.service.tag_prefix}#{ticket.id}]"
    location, url, said = _location(locale, where, agent_name)
    description = _(locale, "{service}: a call with {agent} about your ticket {tag}, {subject}.",
                    service=cfg.service.name, agent=agent_name, tag=tag, subject=ticket.subject) + "\n\n" + said
    return build_invitation(
        uid=uid, summary=_(locale, "Call about {tag} {subject}", tag=tag, subject=ticket.subject),
        description=description, start=start, duration=duration, timezone=cfg.service.timezone,
        organizer_name=agent_name, organizer_email=cfg.service.address, attendee_name=ticket.requester_name,
        attendee_email=ticket.requester_address, now=now, sequence=sequence, location=location, url=url,
        method=method)


# ---------------------------------------------------------------- the requester's answer

def ticket_for_answer(answer) -> Ticket | None:
    """The ticket whose current call has this UID, or None (a UID we never sent, or an old one)."""
    found = _UID.match(answer.uid or "")
    if not found:
        return None
    ticket = ticket_by_id(int(found.group(1)), for_update=is_postgres())  # held until the commit
    if ticket is None or not ticket.call or ticket.call.get("uid") != answer.uid:
        return None
    return ticket


def handle_answer(desk, row, parsed, answer, now: datetime) -> tuple[int, str] | None:
    """Record a calendar's answer (REPLY or COUNTER) on its ticket and tell the agent who arranged
    the call, once. None when it is not an answer to one of our calls from its attendee: the mail
    is then read as ordinary text."""
    ticket = ticket_for_answer(answer)
    if ticket is None:
        return None
    call = ticket.call
    sender = (parsed.sender.address or "").lower()
    attendee = (call.get("attendee") or "").lower()
    if parsed.sender.defective or sender != attendee or answer.attendee != attendee:
        log.info("ticket %d: calendar answer from %s for attendee %s, not the call's attendee %s: ordinary text",
                 ticket.id, sender, answer.attendee, attendee)
        return None
    tickets.remember_inbound(ticket, parsed.message_id, now)
    what = "COUNTER" if answer.method == "COUNTER" else answer.partstat
    proposed = answer.proposed_start.isoformat() if answer.proposed_start else None
    data = {"answer": what, "uid": answer.uid, "sequence": answer.sequence, "comment": answer.comment or None,
            "proposed_start": proposed, "message_id": parsed.message_id}
    if call.get("state") == "cancelled" or answer.sequence < call.get("sequence", 0):
        tickets.event(ticket, now, "call_answer", f"{what} from {sender} to an earlier version of the call "
                      f"(sequence {answer.sequence}, now {call.get('sequence')}): recorded only", actor=sender,
                      inbound=row, stale=True, **data)
        return ticket.id, f"calendar answer {what} to an earlier version of the call: recorded"
    if what not in ANSWER_STATES and what != "COUNTER":
        tickets.event(ticket, now, "call_answer", f"calendar answer {what} from {sender}: recorded only",
                      actor=sender, inbound=row, **data)
        return ticket.id, f"calendar answer {what}: recorded"
    same = call.get("answer") == {"what": what, "sequence": answer.sequence, "proposed_start": proposed,
                                  "comment": answer.comment or None}
    tickets.event(ticket, now, "call_answer", f"{what} by {sender}" + (f", proposes {proposed}" if proposed else "")
                  + (f": {answer.comment}" if answer.comment else "") + (" (the same answer again)" if same else ""),
                  actor=sender, inbound=row, **data)
    ticket.call = dict(call, state="countered" if what == "COUNTER" else ANSWER_STATES[what],
                       answer={"what": what, "sequence": answer.sequence, "proposed_start": proposed,
                               "comment": answer.comment or None})
    ticket.updated_at = now
    ticket.save()
    if same:
        return ticket.id, f"calendar answer {what} again: recorded, the agent was told already"
    agent = call.get("agent")
    cfg = desk.config
    desk.mailer.send("call_answer", to=[Recipient(agent, call.get("agent_name") or "")], now=now, ticket=ticket,
                     locale=cfg.locale_for_tier(cfg.agent_tier(agent) or ticket.tier), in_reply_to=parsed.message_id,
                     context={"answer": what.lower(), "start": datetime.fromisoformat(call["start"]),
                              "proposed_start": answer.proposed_start, "proposed_end": answer.proposed_end,
                              "comment": answer.comment or None, "author_name": parsed.sender.name or sender})
    return ticket.id, f"calendar answer {what} recorded, {agent} told"


# ---------------------------------------------------------------- the agent's reminder

def send_reminders(desk, now: datetime) -> int:
    """Remind each agent whose call's reminder is due; once per call (a moved call anew). A call
    that is already over when the daemon comes to it is not reminded of any more. Each reminder is
    claimed by clearing its due time where it still holds, so two daemons never both send it."""
    due = [(t.id, t.call_remind_at) for t in Ticket.select(Ticket.id, Ticket.call_remind_at).where(
        Ticket.call_remind_at.is_null(False), Ticket.call_remind_at <= now).order_by(Ticket.call_remind_at)]
    sent = 0
    for ticket_id, remind_at in due:
        with Ticket._meta.database.atomic():
            if not Ticket.update(call_remind_at=None).where(Ticket.id == ticket_id,
                                                             Ticket.call_remind_at == remind_at).execute():
                continue  # another daemon took it, or the call was moved or cancelled meanwhile
            ticket = Ticket.get_by_id(ticket_id)
            sent += _remind(desk, ticket, now)
    return sent


def _remind(desk, ticket: Ticket, now: datetime) -> int:
    cfg, call = desk.config, current(ticket)
    if call is None or call.get("reminded"):
        return 0
    start = datetime.fromisoformat(call["start"])
    end = start + timedelta(seconds=call["duration"])
    if now >= end:
        tickets.event(ticket, now, "call_reminder", f"reminder of the call at {call['start']} not sent: "
                      "the call is over", skipped=True)
        return 0
    agent = call["agent"]
    desk.mailer.send("call_reminder", to=[Recipient(agent, call.get("agent_name") or "")], now=now,
                     ticket=ticket, locale=cfg.locale_for_tier(cfg.agent_tier(agent) or ticket.tier),
                     in_reply_to=ticket.thread_root,
                     context={"start": start, "end": end, "duration": end - start, "mode": call["mode"],
                              "link": call.get("link"), "phone": call.get("phone"), "state": call.get("state")})
    Ticket.update(call=dict(call, reminded=True)).where(Ticket.id == ticket.id).execute()
    tickets.event(ticket, now, "call_reminder", f"reminder of the call at {call['start']} sent to {agent}",
                  sequence=call["sequence"])
    return 1
