"""Asking by mail: a new mail whose subject (or first line) is a query gets one answer, no ticket.

``#mytickets`` (anyone: their own open and recently resolved tickets), and for agents whose mail
proves itself (a passing DKIM/DMARC verdict from the trusted server, as for commands)
``#list [TIER]``, ``#mine`` and ``#show NUMBER``. The answer goes to the ``From`` address only,
never to ``Reply-To``, and at most ``[rate_limits] queries_per_hour`` answers go to one address
in an hour; the rest are logged and left unanswered. From anyone else, an agent query is answered
with a refusal that shows no ticket.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from . import history as people_history
from .commands import ticket_number
from .correlate import format_tag, strip_prefixes, ticket_by_id
from ..inbound.authres import trusted_verdict
from ..models import Outbox, Ticket
from ..outbound.notify import Recipient

log = logging.getLogger("mailticket.queries")

QUERIES = {"mytickets": "mytickets", "minaärenden": "mytickets", "list": "list", "lista": "list",
           "mine": "mine", "mina": "mine", "show": "show", "visa": "show"}
LIVE = ("new", "open", "pending")
MAX_LISTED = 100
MAX_EVENTS = 200  # #show: the latest events of a very long history
_FIRST_LINE = re.compile(r"\s*([^\r\n]*)")
_LINE = re.compile(r"#([^\W\d_][\w-]*)(?::|(?=\s)|$)(.*)", re.DOTALL)


@dataclass(frozen=True)
class Query:
    name: str       # mytickets | list | mine | show
    argument: str
    line: str       # as written
    where: str      # subject | body


def find_query(subject: str, text: str) -> Query | None:
    """The query in the subject (under any reply prefix), else in the first non-blank line."""
    candidates = [(strip_prefixes(subject or ""), "subject")]
    first = _FIRST_LINE.match(text or "").group(1)  # not text.splitlines(): a body may be megabytes
    candidates.append((first, "body"))
    for line, where in candidates:
        match = _LINE.fullmatch(line.strip())
        if match and match.group(1).lower() in QUERIES:
            return Query(QUERIES[match.group(1).lower()], match.group(2).strip(), line.strip(), where)
    return None


def agent_tiers(config, address: str) -> list[int]:
    return [n for n in sorted(config.tiers) if address.lower() in config.tiers[n].agents]


def may_see(config, agent: str, ticket: Ticket) -> bool:
    """An agent sees the tickets of their own tier and the tiers below it, and those assigned to
    them; a security ticket only tier-3 agents (and its assignee)."""
    tiers = agent_tiers(config, agent)
    if not tiers:
        return False
    if ticket.assignee and ticket.assignee.lower() == agent.lower():
        return True
    if ticket.security and max(tiers) < 3:
        return False
    return ticket.tier <= max(tiers)


def answer(desk, parsed, query: Query, now) -> str:
    """Answer ``query`` by one mail to the sender's From; returns what was done, for the log."""
    cfg = desk.config
    sender = parsed.sender
    if sender.defective or not sender.address or cfg.is_own_address(sender.address):
        return f"query {query.line!r} not answered: no usable From address"
    limit = cfg.rate_limits.queries_per_hour
    asked = (Outbox.select().where(Outbox.rcpt_key == sender.address.lower(), Outbox.kind == "query_answer",
                                   Outbox.created_at > now - timedelta(hours=1)).count())
    if asked >= limit:
        log.warning("query %r from %s not answered: rate limit: %d answers in the last hour "
                    "(rate_limits.queries_per_hour = %d)", query.line, sender.address, asked, limit)
        return f"query not answered: rate limit ({asked} answers to {sender.address} in the last hour)"
    context, locale = _answer_context(desk, parsed, query, now)
    desk.mailer.send("query_answer", to=[Recipient(sender.address, sender.name)], now=now, context=context,
                     locale=locale, in_reply_to=parsed.message_id, reply_purpose=None,
                     auto_submitted="auto-replied", automatic=False)
    problem = context["problem"]
    return f"query {query.line!r} answered" + (f" with a refusal: {problem['code']}" if problem else "")


def _answer_context(desk, parsed, query, now) -> tuple[dict, str | None]:
    """The answer's context and language: None (a requester's own: Mailer.languages) for a
    requester's #mytickets and for "agents only"; the agent's tier's for an agent."""
    cfg, address = desk.config, parsed.sender.address
    base = {"query": {"name": query.name, "line": query.line, "where": query.where}, "tickets": [],
            "shown": None, "history": [], "history_more": 0, "problem": None, "tier": None}
    if query.name == "mytickets":
        return base | {"tickets": _rows(cfg, _own_tickets(cfg, address, now))}, None
    tiers = agent_tiers(cfg, address)
    if not tiers:
        return base | {"problem": {"code": "agents_only"}}, None
    locale = cfg.locale_for_tier(tiers[0])
    verdict = trusted_verdict(parsed.message, cfg.service.trusted_authserv_id, address.rpartition("@")[2])
    if not verdict.passed:
        log.warning("query %r from agent address %s not verified (%s): answered without tickets",
                    query.line, address, verdict.reason)
        return base | {"problem": {"code": "unverified"}}, locale
    return base | _agent_answer(cfg, address, tiers, query), locale


def _agent_answer(cfg, agent, tiers, query) -> dict:
    if query.name == "mine":
        found = Ticket.select().where(Ticket.assignee == agent, Ticket.status.in_(LIVE),
                                      Ticket.merged_into.is_null())
        return {"tickets": _rows(cfg, _by_urgency(found))}
    if query.name == "list":
        tier = tiers[0] if not query.argument else _tier(query.argument)
        if tier is None:
            return {"problem": {"code": "bad_tier", "value": query.argument}}
        if tier > max(tiers):
            return {"problem": {"code": "tier_not_visible", "value": tier}}
        found = Ticket.select().where(Ticket.tier == tier, Ticket.status.in_(LIVE), Ticket.merged_into.is_null())
        return {"tier": tier, "tickets": _rows(cfg, [t for t in _by_urgency(found) if may_see(cfg, agent, t)])}
    number = ticket_number(query.argument)
    if number is None:
        return {"problem": {"code": "bad_number", "value": query.argument}}
    ticket = ticket_by_id(number)
    if ticket is None:
        return {"problem": {"code": "unknown_ticket", "value": number}}
    if not may_see(cfg, agent, ticket):
        return {"problem": {"code": "not_visible", "value": number}}
    from ..outbound.notify import ticket_context
    shown = ticket_context(ticket, cfg) | _extras(cfg, ticket)
    return {"shown": shown, **people_history.for_people(ticket, limit=MAX_EVENTS)}


def _own_tickets(cfg, address, now) -> list[Ticket]:
    recent = now - cfg.service.reopen_window
    found = (Ticket.select().where(Ticket.requester_address == address, Ticket.merged_into.is_null(),
                                   (Ticket.status != "closed") | (Ticket.closed_at > recent))
             .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(MAX_LISTED))
    return list(found)


def _by_urgency(query) -> list[Ticket]:
    """Most urgent first: by priority (P1 first), then the resolution due soonest (none: last)."""
    return list(query.order_by(Ticket.priority, Ticket.resolution_due.is_null(), Ticket.resolution_due,
                               Ticket.id).limit(MAX_LISTED))


def _rows(cfg, found) -> list[dict]:
    return [{"number": t.id, "tag": format_tag(cfg.service.tag_prefix, t.id), "subject": t.subject,
             "status": t.status, "priority": t.priority, "tier": t.tier, "assignee": t.assignee,
             "requester_name": t.requester_name, "requester_address": t.requester_address} | _extras(cfg, t)
            for t in found]


def _extras(cfg, t) -> dict:
    """Due times that still matter: first response while none was given, resolution until resolved."""
    done = t.status in ("resolved", "closed")
    return {"first_response_due": t.first_response_due if t.first_response_at is None and not done else None,
            "resolution_due": t.resolution_due if not done else None, "resolved_at": t.resolved_at,
            "merged_into": format_tag(cfg.service.tag_prefix, t.merged_into) if t.merged_into else None,
            "parent": format_tag(cfg.service.tag_prefix, t.parent) if t.parent else None}


def _tier(argument: str) -> int | None:
    match = re.fullmatch(r"(?:tier|nivå|t)?\s*([1-3])", argument.strip(), re.IGNORECASE)
    return int(match.group(1)) if match else None


