"""Does a short mail read as an absence notice ("I am out of the office until Monday")?

Plain vacation responders (an Outlook rule, an old Exchange, a web mailer) answer with
``Re: <subject>`` and no ``Auto-Submitted`` or ``Precedence``, so no header tells them from a
person. Their text does: it says the writer is away. This module only reads the text; the desk
decides what such a mail may do (``desk.agentmail``: an agent's absence notice never goes to the
requester). Patterns cover the desk's languages (English, Swedish) and the neighbours' most
common wordings (Norwegian, Danish, German); a mail longer than ``MAX_WORDS`` is a person's
message, whatever it says.
"""

from __future__ import annotations

import re

MAX_WORDS = 120  # responders are short; a person explaining an absence and the next steps writes more

_PHRASES = re.compile(
    r"\b(?:"
    # English
    r"out of (?:the )?office|on (?:annual |parental |sick |study )?leave|on (?:vacation|holiday)|"
    r"away from (?:the office|my desk|work)|limited access to (?:my )?e-?mail|"
    r"(?:will|shall) (?:be )?(?:back|return) (?:on|in|at|after)|no access to (?:my )?e-?mail|"
    # Swedish
    r"frånvarande|på semester|semester (?:till|t\.? ?o\.? ?m\.?|from|fram till)|har semester|"
    r"(?:föräldra|tjänst|studie)?ledig (?:till|t\.? ?o\.? ?m\.?|from|fram till|under)|"
    r"åter (?:den|på|i tjänst|måndag|tisdag|onsdag|torsdag|fredag)|är tillbaka (?:den|på|i|efter)|"
    r"läser (?:inte|inga) (?:min )?(?:e-?post|mejl|mail)|"
    # Norwegian, Danish, German
    r"fraværende|på ferie|holder ferie|er tilbake|er tilbage|"
    r"nicht im büro|abwesend|im urlaub|außer haus"
    r")",
    re.IGNORECASE,
)


def absence_phrase(text: str) -> str | None:
    """The words that make ``text`` an absence notice, or None (also for a text of more than
    ``MAX_WORDS`` words)."""
    text = text or ""
    if len(text.split()) > MAX_WORDS:
        return None
    found = _PHRASES.search(text[:5000])
    return found.group(0) if found else None
