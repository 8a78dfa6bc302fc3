"""The "Was it solved?" links of the resolved mail: three signed addresses per ticket.

``support+t<ticket>-s-…@`` (yes, solved), ``-u-`` (no, still broken) and ``-v-`` (a rating), made
with the desk's token signer (``tokens.py``); ``feedback.py`` acts on the mails they send. They
expire with the reopen window: until the ticket closes by itself, then for the reopen window.
"""

from __future__ import annotations

from datetime import datetime

from .tokens import reply_address

PURPOSES = ("solved", "unsolved", "rating")


def expiry(desk, now: datetime) -> datetime:
    return now + desk.config.sla.auto_close_after + desk.config.service.reopen_window


def links(desk, ticket, now: datetime) -> dict:
    """The signed addresses of the resolved mail's links, by purpose."""
    until = expiry(desk, now)
    return {purpose: reply_address(desk.config.service.address, desk.signer.make(ticket.id, purpose, until))
            for purpose in PURPOSES}
