"""The loop breaker by design: a mail on a ticket that only repeats its sender is recorded, and
sends nothing onward.

A plain vacation responder (``Re: <subject>``, no ``Auto-Submitted``, no ``Precedence``) answers
every mail it gets with the same text. Two of them on two agents turn each internal note into
the next one; one on a tier address or a requester turns each notification into a
``requester_update``, which is the next notification. No header tells such a mail from a
person's, but its text does: it is the same each time. So the rule is

    A mail on a ticket (from the requester's side or the agents' side) whose new text, once
    quotes are taken off and spaces and case ignored, is the same as the new text of that
    sender's previous mail on the same ticket within a day, and that carries no command, is an echo: it is
    kept in the ticket's history (an ``auto_reply`` event with the text, marked as a repeat),
    and causes no note, no update, no reply, no reopening, no mail to anyone.

With it a loop between two responders lasts one round at most: each responder's first answer
goes through (it may be a person's), its second is the same text and stops there. The
per-thread caps (``outbound.outbox.check_thread``) are the second line, for a responder whose
text changes each time (a date, a counter). Auto-reply subjects ("Automatic reply:",
"Autosvar:", "Out of Office", "Frånvaro", "Abwesend" ...) are already caught before this, for
any sender, by ``inbound.classify`` (recorded on the ticket, nothing sent).

A person who sends the very same text twice in a day on one ticket ("Any news?") has it recorded
the second time without anyone hearing of it again (an agent's repeated reply does not go to the
requester either); the history shows it, and anything new in it, even one word, or a day's wait,
makes it a mail like any other. Nobody is mailed about a held echo: that mail could itself start
a loop with the responder.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ..models import Event

log = logging.getLogger("mailticket.echo")

# the events that hold the new text of one sender's mail on a ticket
_TEXT_KINDS = ("note", "reply_in", "reply_out", "auto_reply")
WINDOW = timedelta(days=1)  # a loop repeats within minutes; "Any news?" a week later is news
COMPARED = 20_000  # characters of new text compared (a responder's text is short; a log is not repeated)


def normalised(text: str) -> str:
    return " ".join((text or "")[:COMPARED].split()).casefold()


def repeats(ticket, address: str, new_text: str, now: datetime) -> Event | None:
    """The sender's previous mail on the ticket, when it came within ``WINDOW`` and ``new_text``
    only repeats it; else None."""
    mine = normalised(new_text)
    if not mine:
        return None
    last = (Event.select().where(Event.ticket == ticket, Event.actor == address, Event.kind.in_(_TEXT_KINDS),
                                 Event.inbound.is_null(False), Event.at >= now - WINDOW)
            .order_by(Event.at.desc(), Event.id.desc()).first())
    if last is None or normalised(last.text) != mine:
        return None
    return last


def record(ticket, parsed, new_text: str, previous: Event, now, inbound) -> None:
    """Keep the echo in the history (with its text, so that the next one repeats it too); nothing is sent."""
    from .tickets import event, remember_inbound
    remember_inbound(ticket, parsed.message_id, now)
    event(ticket, now, "auto_reply", new_text, actor=parsed.sender.address, inbound=inbound,
          message_id=parsed.message_id, repeat_of=previous.id,
          why="the same text as this sender's previous mail on the ticket: recorded, nothing sent")
    log.warning("ticket %d: mail <%s> from %s repeats its previous mail (event %d): recorded, nothing sent",
                ticket.id, parsed.message_id, parsed.sender.address, previous.id)
