"""Every requester in their own language: decided at their first mail, remembered per address.

The order (issue 26): an explicit choice remembered for the address (an agent's ``#language``),
then the mail's ``Content-Language``, then the language of its new text, else the desk's locale
(``inbound.language``). Later mails keep the remembered language unless one is written clearly in
another offered language (``SWITCH_WORDS`` words told with ``SWITCH_CONFIDENCE``); an agent's
choice is kept even then. Mail to requesters and participants then goes out in their language
(``outbound.notify.Mailer.languages``); mail to agents stays in the desk's.
"""

from __future__ import annotations

import logging
from datetime import datetime

from . import tickets
from ..inbound.language import first_mail, switched
from ..models import RequesterLanguage, Ticket

log = logging.getLogger("mailticket.language")

AGENT = "agent"  # how: set by #language, never changed by detection


def remembered(address: str) -> RequesterLanguage | None:
    return RequesterLanguage.get_or_none(RequesterLanguage.address == address)


def _remember(address: str, language: str, how: str, now: datetime) -> None:
    updated = (RequesterLanguage.update(language=language, how=how, updated_at=now)
               .where(RequesterLanguage.address == address).execute())
    if not updated:
        RequesterLanguage.insert(address=address, language=language, how=how, updated_at=now) \
            .on_conflict_ignore().execute()


def for_new_ticket(desk, address: str, parsed, new_text: str, now: datetime) -> str:
    """The language of a new ticket's requester: remembered (and perhaps switched by this mail), else
    decided from this mail and remembered."""
    svc = desk.config.service
    row = remembered(address) if address else None
    if row is not None and row.language in svc.languages:
        if row.how != AGENT:
            change = switched(new_text, svc.languages, row.language)
            if change is not None:
                _remember(address, change.language, "switch", now)
                return change.language
        return row.language
    guess = first_mail(new_text, svc.languages, svc.locale, _content_language(parsed))
    if address and not desk.config.is_internal_address(address):
        _remember(address, guess.language, guess.how, now)
    log.info("%s writes in %s (%s, %d words)", address, guess.language, guess.how, guess.words)
    return guess.language


def on_followup(desk, ticket: Ticket, address: str, parsed, new_text: str, now: datetime) -> None:
    """A requester or participant wrote on a ticket: remember a participant's first language, and
    follow a clear switch of language for the whole mail (the ticket's too, for its requester)."""
    svc = desk.config.service
    if not address or desk.config.is_internal_address(address):
        return
    row = remembered(address)
    current = row.language if row is not None and row.language in svc.languages else None
    if address == ticket.requester_address and current is None:
        current = ticket.language if ticket.language in svc.languages else None
    if current is None:  # a participant's first mail, or a requester from before languages were kept
        guess = first_mail(new_text, svc.languages, svc.locale, _content_language(parsed))
        _remember(address, guess.language, guess.how, now)
        if address == ticket.requester_address and ticket.language is None:
            ticket.language = guess.language
            ticket.save(only=[Ticket.language])
        return
    if row is not None and row.how == AGENT:
        return
    change = switched(new_text, svc.languages, current)
    if change is None:
        return
    _remember(address, change.language, "switch", now)
    if address == ticket.requester_address and ticket.language != change.language:
        old = ticket.language
        ticket.language = change.language
        ticket.save(only=[Ticket.language])
        tickets.event(ticket, now, "language", f"{old or svc.locale} -> {change.language}: the requester wrote "
                      f"{change.words} words in it", actor=address, old=old, new=change.language)


def set_by_agent(desk, ticket: Ticket, language: str, agent: str, now: datetime) -> None:
    """``#language xx``: the requester's language from now on, kept whatever they write."""
    old = ticket.language
    ticket.language = language
    _remember(ticket.requester_address, language, AGENT, now)
    tickets.event(ticket, now, "language", f"{old or desk.config.service.locale} -> {language}", actor=agent,
                  old=old, new=language)


def _content_language(parsed) -> str | None:
    try:
        value = parsed.message.get("Content-Language")
        return str(value) if value is not None else None
    except Exception:  # a broken header is no language
        return None
