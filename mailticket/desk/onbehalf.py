"""On someone's behalf: an agent's new mail whose first line is ``#requester ADDRESS [Name]``.

The ticket is opened for that user (a phone call or a walk-in): the user is the requester and gets
the acknowledgement, the rest of the mail is the description, and the history records the agent
as the one who logged it. The agent's mail must prove itself as for commands (a passing DKIM/DMARC
verdict from the trusted server). A malformed address, or a mail that does not prove itself,
opens nothing: the agent gets a reply naming the line, with their text, and the mail is kept.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from .commands import address_and_name
from ..inbound.authres import trusted_verdict
from ..outbound.notify import Recipient

log = logging.getLogger("mailticket.onbehalf")

_LINE = re.compile(r"#(requester|anmälare)(?::|(?=\s)|$)(.*)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Behalf:
    """The requester to open the ticket for and its description; or why nothing was opened."""

    requester: tuple[str, str] | None
    body: str
    refused: str = ""


def behalf_of(desk, parsed, now) -> Behalf | None:
    """None when the mail's first line is not ``#requester``; else the requester, or a refusal
    already answered to the agent."""
    lines = parsed.text.splitlines()
    index = next((i for i, line in enumerate(lines) if line.strip()), None)
    match = _LINE.fullmatch(lines[index].strip()) if index is not None else None
    if match is None:
        return None
    line, body = lines[index].strip(), "\n".join(lines[index + 1:]).strip("\n")
    address, name = address_and_name(match.group(2).strip())
    code = ""
    verdict = trusted_verdict(parsed.message, desk.config.service.trusted_authserv_id,
                              parsed.sender.address.rpartition("@")[2])
    if not verdict.passed:
        code = "unverified"
        log.warning("mail <%s> from agent address %s not verified (%s): %s not used", parsed.message_id,
                    parsed.sender.address, verdict.reason, line)
    elif address is None:
        code = "bad_address"
    elif desk.config.is_own_address(address) or desk.config.agent_tier(address) is not None:
        code = "not_a_user"
    if not code:
        return Behalf((name, address), body)
    desk.mailer.send("requester_refused", to=[Recipient(parsed.sender.address, parsed.sender.name)], now=now,
                     context={"line": line, "line_no": index + 1, "problem": code, "address": address or "",
                              "body": body, "original_subject": parsed.subject},
                     locale=desk.config.locale_for_tier(desk.config.agent_tier(parsed.sender.address) or 1),
                     in_reply_to=parsed.message_id, reply_purpose=None, auto_submitted="auto-replied",
                     automatic=True, rate_limited=True)
    return Behalf(None, body, f"{line!r} on line {index + 1}: {code}; no ticket opened, the agent was told")
