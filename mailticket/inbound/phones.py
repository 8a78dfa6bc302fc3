"""Phone numbers in what people write: the requester's signature, an agent's ``#phone``.

Numbers are found and checked by ``phonenumbers`` (Google's libphonenumber data: which digits
make a real number in which country), so "tfn 08-123 45 67", "070-123 45 67" and
"+46 70 123 45 67" are numbers and a date, an order number or a postcode is not. A number
written without +CC belongs to ``region`` (SE for a Swedish desk). Kept as E.164 (+4681234567),
shown in international form (+46 8 123 45 67).
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberMatcher, NumberParseException

SIGNATURE_LINES = 12  # a signature without a "-- " line: the last lines of the text
_DELIMITER = re.compile(r"^-- ?$")


def parse_number(text: str, region: str | None) -> str | None:
    """``text`` as one phone number in E.164, or None when it is not one."""
    text = (text or "").strip()
    if not text or len(text) > 40 or re.search(r"[^\d\s+().\-/]", text):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def international(e164: str | None) -> str:
    """+4681234567 -> "+46 8 123 45 67"; '' for None; a value it cannot read, as it is."""
    if not e164:
        return ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None), PhoneNumberFormat.INTERNATIONAL)
    except NumberParseException:
        return e164


def signature(text: str) -> str:
    """The signature of a mail's new text: below a "-- " line, else its last lines."""
    lines = (text or "").splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if _DELIMITER.match(lines[index]):
            return "\n".join(lines[index + 1:])
    return "\n".join(lines[-SIGNATURE_LINES:])


def numbers_in_signature(text: str, region: str | None) -> list[str]:
    """The valid numbers in the signature of ``text``, in E.164, in the order written, once each."""
    found: list[str] = []
    for match in PhoneNumberMatcher(signature(text), region, leniency=phonenumbers.Leniency.VALID):
        e164 = phonenumbers.format_number(match.number, PhoneNumberFormat.E164)
        if e164 not in found:
            found.append(e164)
    return found
