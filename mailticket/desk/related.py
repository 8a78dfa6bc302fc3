"""Participants and related tickets by agent command: #cc, #link, #merge, #parent, #broadcast.

Each function runs inside the agent's mail's transaction, records what it did in the history of
every ticket it touched, and returns a problem for the agent (in the tier's language) or None,
in which case the ticket is unchanged by that line.

- ``#merge N``: this ticket's history, mail references, attachments and participants move to N;
  this ticket is closed and names N as its survivor (``correlate`` follows it, so later mail to
  either lands on N); its requester is told once, in their own thread.
- ``#parent N``: this ticket becomes a child of the major incident N (no cycles).
- ``#broadcast`` on a parent: the agent's public reply also goes to the requester of every open
  child, in that child's own thread. Resolving or closing a parent does the same to its open
  children, with the parent's text (``after_status``).
"""

from __future__ import annotations

import logging

from . import tickets
from .correlate import format_tag, ticket_by_id
from ..db import is_postgres, run
from ..i18n import N_, Message
from ..models import Participant, Ticket
from ..outbound.notify import Recipient

log = logging.getLogger("mailticket.related")

COMMANDS = ("cc", "link", "merge", "parent")
LIVE = ("new", "open", "pending")

# what an agent is told when a line cannot be applied (translated in the mail's language)
PROBLEMS = {
    "no_ticket": N_("there is no ticket {number}"),
    "not_visible": N_("ticket {number} is not one your tier may see"),
    "itself_link": N_("a ticket cannot be linked to itself"),
    "itself_merge": N_("a ticket cannot be merged into itself"),
    "itself_parent": N_("a ticket cannot be the parent of itself"),
    "closed": N_("ticket {number} is closed; reopen it first or choose another"),
    "merged": N_("ticket {number} was merged into {survivor}; use {survivor}"),
    "cycle": N_("ticket {number} is already below this ticket; a major incident cannot be its own child"),
    "own_address": N_("{address} is one of the desk's own addresses, not a participant"),
    "requester": N_("{address} is already the requester of this ticket"),
    "participants_full": N_("the ticket already has {limit} people in Cc, the most allowed (max_participants); "
                            "{address} was not added"),
    "no_children": N_("this ticket has no open child tickets to broadcast to (make tickets its children with "
                      "#parent)"),
    "no_text": N_("a broadcast needs the text of a public reply below the commands"),
    "as_note": N_("a note stays internal and cannot be broadcast"),
}


def problem(key: str, **values) -> Message:
    """The problem ``key``, put in words in the language of the mail that tells the agent."""
    return Message(PROBLEMS[key], **values)


def apply(desk, ticket: Ticket, command, agent: str, now) -> str | None:
    """Apply #cc, #link, #merge or #parent; a problem for the agent, or None."""
    if command.name == "cc":
        return add_cc(desk, ticket, command.args["address"], command.args.get("name", ""), agent, now)
    other, trouble = _other(desk, ticket, command, agent)
    if trouble:
        return trouble
    return {"link": link, "merge": merge, "parent": set_parent}[command.name](desk, ticket, other, agent, now)


def _other(desk, ticket, command, agent) -> tuple[Ticket | None, str | None]:
    from .queries import may_see
    number, tag = command.args["number"], lambda n: format_tag(desk.config.service.tag_prefix, n)
    if number == ticket.id:
        return None, problem(f"itself_{command.name}")
    other = ticket_by_id(number, for_update=is_postgres())  # held until the commit, as this ticket is
    if other is None:
        return None, problem("no_ticket", number=number)
    if not may_see(desk.config, agent, other):
        return None, problem("not_visible", number=number)
    if other.merged_into:
        return None, problem("merged", number=number, survivor=tag(other.merged_into))
    if other.status == "closed" and command.name in ("merge", "parent"):
        return None, problem("closed", number=number)
    return other, None


def add_cc(desk, ticket, address, name, agent, now) -> str | None:
    if desk.config.is_own_address(address):
        return problem("own_address", address=address)
    if address == ticket.requester_address:
        return problem("requester", address=address)
    limit = desk.config.service.max_participants
    present = ticket.participants.where(Participant.address != address)
    if not ticket.participants.where(Participant.address == address).exists() and present.count() >= limit:
        return problem("participants_full", limit=limit, address=address)
    tickets.add_participant(ticket, address, name)
    tickets.event(ticket, now, "participant", f"{address} added in Cc by {agent}", actor=agent, address=address)
    return None


def link(desk, ticket, other, agent, now) -> str | None:
    tag = lambda t: format_tag(desk.config.service.tag_prefix, t.id)  # noqa: E731
    tickets.event(ticket, now, "link", f"linked to {tag(other)} by {agent}", actor=agent, other=other.id)
    tickets.event(other, now, "link", f"linked to {tag(ticket)} by {agent}", actor=agent, other=ticket.id)
    return None


def set_parent(desk, ticket, other, agent, now) -> str | None:
    above, seen = other, set()
    while above is not None and above.parent and above.id not in seen:
        if above.parent == ticket.id:
            return problem("cycle", number=other.id)
        seen.add(above.id)
        above = ticket_by_id(above.parent)
    tag = lambda t: format_tag(desk.config.service.tag_prefix, t.id)  # noqa: E731
    ticket.parent = other.id
    ticket.save()
    tickets.event(ticket, now, "parent", f"made a child of the major incident {tag(other)} by {agent}",
                  actor=agent, parent=other.id)
    tickets.event(other, now, "child", f"{tag(ticket)} added as a child by {agent}", actor=agent, child=ticket.id)
    return None


_MOVE = ('UPDATE "{table}" SET "ticket_id" = ? WHERE "ticket_id" = ?')


def merge(desk, ticket, survivor, agent, now) -> str | None:
    """Merge ``ticket`` into ``survivor``: history, mail, files and people move; the requester is told once."""
    tag = lambda t: format_tag(desk.config.service.tag_prefix, t.id)  # noqa: E731
    people = [(ticket.requester_address, ticket.requester_name)] + [
        (p.address, p.name) for p in ticket.participants]
    for table in ("event", "message_ref", "attachment", "inbound_mail"):
        run(_MOVE.format(table=table), (survivor.id, ticket.id))
    # the merged ticket's people join the survivor, within max_participants (the rest is in its history)
    tickets.add_participants(desk, survivor, [(address, name) for address, name in people
                                              if not desk.config.is_own_address(address)
                                              and desk.config.agent_tier(address) is None],
                             now, proven=True, actor=agent)
    Ticket.update(parent=survivor.parent if survivor.parent != ticket.id else None).where(
        Ticket.id == survivor.id).execute()
    survivor.parent = None if survivor.parent == ticket.id else survivor.parent
    Ticket.update(parent=survivor.id).where(Ticket.parent == ticket.id, Ticket.id != survivor.id).execute()
    ticket.merged_into = survivor.id
    if ticket.status != "closed":
        tickets.set_status(desk, ticket, "closed", now, actor=agent, why=f"merged into {tag(survivor)}",
                           notify=False)
    ticket.save()
    tickets.event(ticket, now, "merge", f"merged into {tag(survivor)} by {agent}", actor=agent, into=survivor.id)
    tickets.event(survivor, now, "merge", f"{tag(ticket)} ({ticket.subject}) merged into this ticket by {agent}",
                  actor=agent, merged=ticket.id)
    if tickets.tells_requester(ticket):
        desk.mailer.send("merged", to=[Recipient(ticket.requester_address, ticket.requester_name)], now=now,
                         ticket=survivor, in_reply_to=ticket.thread_root, automatic=True,
                         context={"merged_from": {"number": ticket.id, "tag": tag(ticket), "subject": ticket.subject,
                                                  "requester_name": ticket.requester_name}})
    log.info("ticket %d merged into %d by %s", ticket.id, survivor.id, agent)
    return None


def open_children(ticket: Ticket) -> list[Ticket]:
    return list(Ticket.select().where(Ticket.parent == ticket.id, Ticket.status.in_(LIVE),
                                      Ticket.merged_into.is_null()).order_by(Ticket.id))


def broadcast(desk, ticket, agent, agent_name, body, is_note, now, row, parsed, *, reply) -> str | None:
    """#broadcast: the reply goes to the requester of every open child, in the child's own thread
    (``reply`` is ``agentmail.public_reply``: the same mail and history as a reply on the child)."""
    if is_note:
        return problem("as_note")
    if not body:
        return problem("no_text")
    children = open_children(ticket)
    if not children:
        return problem("no_children")
    told = {ticket.requester_address} | {p.address for p in ticket.participants.where(Participant.role == "cc")}
    tag = lambda t: format_tag(desk.config.service.tag_prefix, t.id)  # noqa: E731
    for child in children:
        if child.requester_address in told:  # already has the text from the parent's own reply
            continue
        reply(desk, child, agent, agent_name, body, now, row, parsed)
        tickets.event(child, now, "broadcast", f"reply broadcast from the major incident {tag(ticket)}",
                      actor=agent, parent=ticket.id)
        child.updated_at = now
        child.save()
    tickets.event(ticket, now, "broadcast", f"reply broadcast to {len(children)} child tickets: "
                  + ", ".join(tag(c) for c in children), actor=agent, children=[c.id for c in children])
    return None


def after_status(desk, ticket, status, body, agent, now) -> None:
    """Resolving or closing a major incident resolves or closes its open children, with its text."""
    if status not in ("resolved", "closed"):
        return
    tag = format_tag(desk.config.service.tag_prefix, ticket.id)
    live = LIVE if status == "resolved" else LIVE + ("resolved",)
    children = list(Ticket.select().where(Ticket.parent == ticket.id, Ticket.status.in_(live),
                                          Ticket.merged_into.is_null()).order_by(Ticket.id))
    for child in children:
        tickets.set_status(desk, child, status, now, actor=agent, why=f"the major incident {tag} is {status}",
                           body=body)
    if children:
        tickets.event(ticket, now, "children", f"{len(children)} child tickets {status} with this ticket: "
                      + ", ".join(format_tag(desk.config.service.tag_prefix, c.id) for c in children), actor=agent)
