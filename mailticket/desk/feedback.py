"""Was it solved? The resolved mail's links, and the mails they send.

The resolved mail carries three signed addresses (``support+t<ticket>-<s|u|v>-<expiry>-<mac>@``,
``tokens.py``) as mailto links: "Yes, solved" closes the ticket at once, "No, still broken" reopens
it (as a plain reply does), and a rating from 1 (bad) to 5 (good), read from the subject (or the
first line of the text), records satisfaction: one per ticket, the last counts, the mail's new text
kept as the comment. They expire with the reopen window (auto-close after resolving, then the
reopen window after closing).

Only the ticket's requester or a participant can answer; a link used in a mail whose subject tag
names another ticket changes nothing (recorded on that ticket); an expired link gets a polite
answer; a rating that is not a whole number from 1 to 5 gets a clear one. Each is in the history.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from . import tickets
from .correlate import tag_number, tag_pattern, ticket_by_id
from .feedback_links import PURPOSES, links
from .tokens import TokenClaim, token_from_addresses
from ..db import is_postgres
from ..inbound.quotes import split_reply
from ..models import Participant, Satisfaction, Ticket
from ..outbound.notify import Recipient

log = logging.getLogger("mailticket.feedback")

RATINGS = range(1, 6)


@dataclass(frozen=True)
class FeedbackClaim:
    claim: TokenClaim
    expired: bool


def find_claim(desk, parsed, now: datetime) -> FeedbackClaim | None:
    """The first genuine feedback token among the mail's recipients (expired ones included)."""
    addresses = [a.address for a in (*parsed.to, *parsed.cc)] + list(parsed.delivered_to)
    for token in token_from_addresses(desk.config.service.address, addresses):
        claim = desk.signer.genuine(token)
        if claim is not None and claim.purpose in PURPOSES:
            return FeedbackClaim(claim, now >= claim.expires_at)
    return None


_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


def read_rating(subject: str, text: str, prefix: str) -> tuple[int | None, str]:
    """(rating, what was given): the first number of the subject (our tag left out), else of the
    text's first line; the rating is None unless that is a whole number from 1 to 5."""
    subject = tag_pattern(prefix).sub(" ", subject or "")
    first_line = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    for source in (subject, first_line):
        found = _NUMBER.search(source)
        if found:
            given = found.group(0)
            value = int(given) if given.lstrip("+-").isdigit() else None
            return (value if value in RATINGS else None), given
    words = re.sub(r"^\W*(re|sv|aw|fwd?)\s*:\s*", "", subject.strip(), flags=re.I).strip()
    return None, (words or first_line)[:60]


def handle(desk, row, parsed, found: FeedbackClaim, now: datetime) -> tuple[int | None, str]:
    """Act on a feedback mail; returns (ticket it is recorded on, what happened)."""
    claim, address = found.claim, parsed.sender.address
    ticket = ticket_by_id(claim.ticket, for_update=is_postgres())
    text = split_reply(parsed.text).new or ""
    if ticket is None or found.expired:
        _answer_expired(desk, parsed, claim, ticket, now)
        if ticket is not None:
            _record(ticket, now, row, parsed, f"expired '{claim.purpose}' link used by {address}: nothing changed",
                    address)
        return (ticket.id if ticket else None), f"expired {claim.purpose} link: answered politely"
    tagged = tag_number(parsed.subject, desk.config.service.tag_prefix)
    if tagged is not None and tagged != ticket.id:
        other = ticket_by_id(tagged)
        where = other or ticket
        _record(where, now, row, parsed, f"a '{claim.purpose}' link of ticket {ticket.id} was used on ticket "
                f"{tagged} by {address}: nothing changed", address, text)
        return where.id, f"{claim.purpose} link of ticket {ticket.id} used on ticket {tagged}: ignored"
    if not _may_answer(ticket, address):
        _record(ticket, now, row, parsed, f"'{claim.purpose}' link used by {address}, who is neither requester nor "
                "participant: nothing changed", address, text)
        return ticket.id, f"{claim.purpose} link from a stranger: ignored"
    tickets.remember_inbound(ticket, parsed.message_id, now)
    return ticket.id, _ACTIONS[claim.purpose](desk, ticket, row, parsed, text, now)


def _may_answer(ticket: Ticket, address: str) -> bool:
    return address == ticket.requester_address or ticket.participants.where(Participant.address == address).exists()


def _record(ticket, now, row, parsed, what: str, actor: str, text: str = "") -> None:
    tickets.event(ticket, now, "feedback", what + (f"\n\n{text}" if text else ""), actor=actor, inbound=row,
                  message_id=parsed.message_id)


def _solved(desk, ticket, row, parsed, text, now) -> str:
    address = parsed.sender.address
    _record(ticket, now, row, parsed, f"the requester says it is solved (status {ticket.status})", address, text)
    if ticket.status != "resolved":
        return f"'solved' on a {ticket.status} ticket: recorded"
    tickets.set_status(desk, ticket, "closed", now, actor=address, why="the requester confirmed it is solved",
                       notify=False)
    return "solved: closed at once"


def _unsolved(desk, ticket, row, parsed, text, now) -> str:
    address = parsed.sender.address
    tickets.requester_followup(desk, ticket, parsed=parsed, new_text=text or "(still broken)",
                               author=(parsed.sender.name, address), now=now, inbound=row,
                               proven=True)  # a signed link of this ticket, used by its requester or a participant
    return "not solved: reopened" if ticket.status == "open" else "not solved: recorded"


def _rating(desk, ticket, row, parsed, text, now) -> str:
    address = parsed.sender.address
    value, given = read_rating(parsed.subject, text, desk.config.service.tag_prefix)
    if value is None:
        _record(ticket, now, row, parsed, f"a rating that is not 1-5 ({given!r}): nothing recorded", address, text)
        desk.mailer.send("feedback_rating_invalid", to=[Recipient(address, parsed.sender.name)], now=now,
                         ticket=ticket, context={"given": given, "feedback": links(desk, ticket, now)},
                         in_reply_to=parsed.message_id, auto_submitted="auto-replied", automatic=True,
                         rate_limited=True, reply_purpose=None)
        return f"rating {given!r} is not 1-5: answered"
    comment = _comment(text, given)
    (Satisfaction.insert(ticket=ticket, rating=value, comment=comment, actor=address, at=now)
     .on_conflict(conflict_target=[Satisfaction.ticket],
                  update={Satisfaction.rating: value, Satisfaction.comment: comment, Satisfaction.actor: address,
                          Satisfaction.at: now})
     .execute())
    _record(ticket, now, row, parsed, f"rated {value} of 5 by {address}", address, comment)
    log.info("ticket %d rated %d by %s", ticket.id, value, address)
    return f"rated {value}"


def _comment(text: str, given: str) -> str:
    """The mail's text as the comment, without a first line that only repeats the rating."""
    lines = text.strip().splitlines()
    if lines and lines[0].strip() == given:
        lines = lines[1:]
    return "\n".join(lines).strip()[:4000]


def _answer_expired(desk, parsed, claim: TokenClaim, ticket: Ticket | None, now: datetime) -> None:
    desk.mailer.send("feedback_expired", to=[Recipient(parsed.sender.address, parsed.sender.name)], now=now,
                     ticket=ticket,
                     context={"number": claim.ticket, "feedback_kind": claim.purpose}, reply_purpose=None,
                     in_reply_to=parsed.message_id, auto_submitted="auto-replied", automatic=True, rate_limited=True)


_ACTIONS = {"solved": _solved, "unsolved": _unsolved, "rating": _rating}
