"""Is a reply to a resolved ticket only a thank-you? ("Tack, nu fungerar det!", "thanks, works now")

Such a reply is kept on the ticket but does not reopen it. Recognised conservatively: every
word of the new text must be one of the thank-you vocabulary below (English and Swedish), with at
least one word of thanks, and at most ``MAX_WORDS`` words; greetings, sign-offs and a short name
line are allowed around it. Anything else — a question, "but", "still", "not", a word about the
problem — still reopens, so nothing is lost.
"""

from __future__ import annotations

import re

MAX_WORDS = 20
THANKS = frozenset({
    "thanks", "thank", "thx", "thanx", "ty", "cheers", "appreciated", "appreciate",
    "tack", "tackar", "tacksam", "tusen",
})
# words that may stand with the thanks; never a negation, "but", "still" or a word about a fault
WORDS = THANKS | frozenset({
    # en
    "you", "so", "much", "very", "a", "lot", "many", "again", "for", "the", "your", "help", "quick", "fast",
    "great", "perfect", "works", "working", "work", "now", "it", "is", "it's", "its", "all", "good", "fine",
    "ok", "okay", "awesome", "excellent", "brilliant", "wonderful", "lovely", "super", "nice", "really",
    "that", "did", "trick", "fixed", "solved", "sorted", "everything", "problem", "issue", "resolved",
    "hi", "hello", "hey", "regards", "best", "kind", "br", "thank-you", "and", "have", "day", "weekend",
    "all's", "well", "fantastic", "amazing", "support", "team", "guys", "again!",
    # sv
    "så", "mycket", "stort", "för", "hjälpen", "hjälp", "nu", "fungerar", "funkar", "det", "allt", "bra",
    "toppen", "perfekt", "kanon", "utmärkt", "jättebra", "grymt", "löst", "är", "problemet", "okej",
    "hej", "vad", "snabbt", "ni", "du", "era", "din", "er", "igen", "och", "med", "vänlig", "vänliga",
    "hälsning", "hälsningar", "mvh", "ha", "en", "fin", "trevlig", "dag", "helg", "superbra", "fint",
    "snabb", "åtgärd", "alla", "jättemycket", "klart", "ordnat", "gick",
})
_WORD = re.compile(r"[\w'’-]+", re.UNICODE)
_SIGN_OFF = re.compile(r"^\s*[-–—/]*\s*[A-ZÅÄÖ][\w.-]*(\s+[A-ZÅÄÖ][\w.-]*)?\s*$")


def only_thanks(text: str | None) -> bool:
    """True when ``text`` (the new text of a reply, quotes and signature removed) only thanks."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    if not lines or len(lines) > 6 or "?" in (text or ""):  # a question wants an answer
        return False
    if len(lines) > 1 and _SIGN_OFF.match(lines[-1]) and not _all_known(lines[-1]):
        lines = lines[:-1]  # a name under the thanks: "/Anna", "Anna Svensson"
    words = [w.lower().replace("’", "'").strip("-") for line in lines for w in _WORD.findall(line)]
    words = [w for w in words if w]
    if not words or len(words) > MAX_WORDS:
        return False
    return any(w in THANKS for w in words) and all(w in WORDS for w in words)


def _all_known(line: str) -> bool:
    return all(w.lower() in WORDS for w in _WORD.findall(line))
