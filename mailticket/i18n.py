"""Words that code writes into mails, in the desk's language: gettext catalogues through Babel.

Two ways to use it, from any module:

``_(locale, msgid, **args)``
    The text now, translated and filled in: ``_("sv", "{word!r} is not a priority", word="P7")``.
    For text whose language is known where it is written.

``Message(msgid, **args)`` (also ``msg``)
    Text whose language is decided later, when the mail is rendered in its recipient's locale. A
    ``Message`` *is* its English text (a ``str``: logs, events and tests read it as before) and
    carries its msgid and arguments; ``outbound.render`` translates every Message in a mail's
    context into the mail's locale, and a queued draft keeps it as a Message (``outbound.drafts``).
    Arguments may be text, numbers, datetimes, durations, or Messages themselves (translated too).

msgids are English with ``str.format`` fields (``{tier}``). The catalogues are the ``.po`` files
in ``mailticket/locale/<lang>/LC_MESSAGES/mailticket.po``, committed; they are compiled in memory
the first time a language is used (Babel reads the .po and writes the .mo into a buffer), so a
clean checkout and an installed wheel work alike, with no build step and no .mo in git.
A third language is one more .po file (``scripts/i18n`` extracts the msgids and updates them).
English needs no catalogue: a msgid is its own English.
"""

from __future__ import annotations

import gettext
import io
import logging
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from .durations import format_duration

log = logging.getLogger("mailticket.i18n")

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "mailticket"


class Message(str):
    """Text to be translated when the mail is written; its ``str`` value is the English text."""

    __slots__ = ("msgid", "args")

    def __new__(cls, msgid: str, **args):
        self = super().__new__(cls, _fill(msgid, args, _english_value) or msgid)
        self.msgid, self.args = msgid, args
        return self

    def __reduce__(self):
        return (_rebuild, (self.msgid, self.args))

    def translated(self, locale: str, format_value=None) -> str:
        """The text in ``locale``; ``format_value(value)`` writes datetimes and durations there."""
        fmt = format_value or _english_value
        args = {k: (v.translated(locale, format_value) if isinstance(v, Message) else v) for k, v in self.args.items()}
        translation = gettext_for(locale).gettext(self.msgid)
        filled = _fill(translation, args, fmt)
        return _fill(self.msgid, args, fmt) if filled is None else filled


msg = Message


def _rebuild(msgid, args):
    return Message(msgid, **args)


def _(locale: str, msgid: str, **args) -> str:
    """``msgid`` translated into ``locale`` and filled in with ``args``."""
    return Message(msgid, **args).translated(locale)


def N_(msgid: str) -> str:
    """Marks a msgid for extraction where it is only looked up later (a table of words)."""
    return msgid


def translate(value, locale: str, format_value=None):
    """``value`` with every Message in it (in lists, tuples and dicts too) translated into ``locale``;
    what holds no Message is returned as it is, not copied."""
    if isinstance(value, Message):
        return value.translated(locale, format_value)
    kind = type(value)
    if kind is dict:
        out = None
        for key, item in value.items():
            done = translate(item, locale, format_value)
            if done is not item:
                out = out if out is not None else dict(value)
                out[key] = done
        return value if out is None else out
    if kind is list or kind is tuple:
        done = [translate(item, locale, format_value) for item in value]
        return value if all(a is b for a, b in zip(done, value)) else kind(done)
    return value


def _english_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    return value


def _fill(template: str, args: dict, format_value) -> str | None:
    """``template`` with its fields filled in; None when it has a field ``args`` does not give
    (a translation with a typo: the caller then uses the English)."""
    try:
        return template.format(**{k: format_value(v) for k, v in args.items()}) if args else template
    except (KeyError, IndexError, ValueError) as exc:
        log.error("translation %r cannot be filled in (%s); using the English", template, exc)
        return None


def available_locales() -> tuple[str, ...]:
    """English and every language with a catalogue."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return ("en", *[name for name in found if name != "en"])


def shipped_templates_dir() -> Path:
    """The stock mail templates: inside the installed package (a wheel), else the checkout's ``templates/``."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parents[1] / "templates"


def missing_language_files(language: str) -> list[Path]:
    """What the desk lacks to write mail in ``language``: its folder of templates and (but for
    English, whose words are the msgids) its catalogue. Empty when it can."""
    templates = shipped_templates_dir() / language
    catalogue = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    missing = [] if templates.is_dir() and any(templates.glob("*.txt")) else [templates]
    if language != "en" and not catalogue.is_file():
        missing.append(catalogue)
    return missing


@lru_cache(maxsize=None)
def gettext_for(locale: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``locale`` (NullTranslations, the msgids, for English or an unknown one)."""
    po = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if locale == "en" or not po.is_file():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    with po.open("rb") as f:
        catalog = read_po(f, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries left out, as msgfmt does
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def missing(locale: str) -> list[str]:
    """msgids of the code that ``locale``'s catalogue does not translate (tests/test_i18n.py)."""
    from babel.messages.pofile import read_po

    po = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale, domain=DOMAIN)
    return [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
