"""The language a mail is written in, among the languages the desk offers.

Read in this order: the ``Content-Language`` header (its first language the desk offers), then
the words of the new text (quotes and signatures already removed by ``quotes.split_reply``),
told apart by lingua (``lingua-language-detector``) limited to the offered languages, in its
low-accuracy mode (trigrams only: +11 MiB resident instead of +95 MiB; as right as the full mode on
mails of 20 words or more, and its misses on shorter ones come with low confidence, which the
``SWITCH_CONFIDENCE`` floor turns into the desk's language). Fewer than ``MIN_WORDS`` words is too
short to tell: the desk's language. The detector is built on first use, per set of offered
languages, and kept (bench/language.py measures the candidates and what this one costs).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

log = logging.getLogger("mailticket.language")

MIN_WORDS = 5            # fewer words than this: too short to tell
SWITCH_WORDS = 20        # a later mail changes a remembered language only with this many words ...
SWITCH_CONFIDENCE = 0.9  # ... told with at least this confidence

_WORD = re.compile(r"[^\W\d_]{2,}")  # a run of two or more letters: numbers, codes and "I"/"a" do not count
READ_CHARS = 20_000  # words are counted in the first this many characters (the rule needs at most 20)
_TAG = re.compile(r"^[a-z]{2,3}(?=$|[-_])", re.I)


@dataclass(frozen=True)
class Guess:
    language: str          # a language the desk offers
    how: str               # "header" | "text" | "short" (the default) | "unsure" (the default)
    words: int = 0
    confidence: float = 0.0


def words(text: str) -> int:
    """How many words the text has (runs of letters; addresses and links left out), counted in
    its first ``READ_CHARS`` characters."""
    return len(_WORD.findall(_plain(text, READ_CHARS)))


def _plain(text: str, limit: int) -> str:
    """The first ``limit`` characters without links and addresses (split by white space: linear
    whatever the text, unlike a pattern that backtracks over a long word)."""
    return " ".join(w for w in (text or "")[:limit].split()
                    if "://" not in w and "@" not in w and not w.lower().startswith("www."))


def header_language(value: str | None, offered: tuple[str, ...]) -> str | None:
    """The first language of a ``Content-Language`` value (``sv-SE, en``) that the desk offers."""
    for item in str(value or "").split(","):
        m = _TAG.match(item.strip())
        if m and m.group(0).lower() in offered:
            return m.group(0).lower()
    return None


def first_mail(text: str, offered: tuple[str, ...], default: str, content_language: str | None = None) -> Guess:
    """The language of a requester's first mail: its ``Content-Language`` when the desk offers it,
    else the language of its new text when that is told with ``SWITCH_CONFIDENCE``, else ``default``
    (fewer than ``MIN_WORDS`` words always give ``default``)."""
    n = words(text)
    stated = header_language(content_language, offered)
    if stated is not None:
        return Guess(stated, "header", n, 1.0)
    if n < MIN_WORDS or len(offered) < 2:
        return Guess(default, "short", n)
    language, confidence = detect(text, offered)
    if language is None or (language != default and confidence < SWITCH_CONFIDENCE):
        return Guess(default, "unsure", n, confidence)
    return Guess(language, "text", n, confidence)


def switched(text: str, offered: tuple[str, ...], current: str) -> Guess | None:
    """A later mail written clearly in another offered language than ``current`` (at least
    ``SWITCH_WORDS`` words told with ``SWITCH_CONFIDENCE``): its language; else None."""
    n = words(text)
    if n < SWITCH_WORDS or len(offered) < 2:
        return None
    language, confidence = detect(text, offered)
    if language is None or language == current or confidence < SWITCH_CONFIDENCE:
        return None
    return Guess(language, "text", n, confidence)


def detect(text: str, offered: tuple[str, ...]) -> tuple[str | None, float]:
    """The most likely of the offered languages for ``text`` and its confidence (0-1)."""
    try:
        detector = _detector(tuple(sorted(offered)))
        if detector is None:
            return None, 0.0
        sample = _plain(text, MAX_CHARS).encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
        values = detector.compute_language_confidence_values(sample)
    except Exception as exc:  # never a reason to lose or hold up a mail: the caller keeps the desk's language
        log.warning("language detection failed: %s: %s", type(exc).__name__, exc)
        return None, 0.0
    if not values:
        return None, 0.0
    best = values[0]
    return best.language.iso_code_639_1.name.lower(), float(best.value)


MAX_CHARS = 4000  # the first few paragraphs tell the language; a 5 MB log pasted below does not


_detectors: dict[tuple[str, ...], object] = {}
_lock = threading.Lock()


def _detector(offered: tuple[str, ...]):
    """lingua's detector for these languages, built once (None for fewer than two it knows)."""
    with _lock:
        if offered not in _detectors:
            from lingua import IsoCode639_1, LanguageDetectorBuilder
            codes = [getattr(IsoCode639_1, code.upper(), None) for code in offered]
            codes = [c for c in codes if c is not None]
            _detectors[offered] = (LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
                                   .with_low_accuracy_mode().build()
                                   if len(codes) >= 2 else None)
        return _detectors[offered]
