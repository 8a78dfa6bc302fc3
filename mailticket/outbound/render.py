"""Render outgoing mails from Jinja2 templates: subject, text part and optional HTML part.

Templates live in the top-level ``templates/<locale>/<name>.txt`` and ``<name>.html`` (a wheel
carries them as ``mailticket/templates``); layout shared by both locales sits in ``templates/``. The subject is the ``subject``
block of the ``.txt`` template. An admin's folder overrides any single file: a template is
looked up in ``<override>/<locale>/``, then ``<override>/``, then the shipped folders.

Templates only ever receive values through the context; nothing from a mail is ever
compiled as a template. Every environment is sandboxed, the HTML one autoescaped.
"""

import contextvars
import logging
import re
import traceback
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    nodes,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from . import render_format as fmt
from ..sizes import format_size
from ..i18n import available_locales, shipped_templates_dir, translate
from .template_context import sample_context

log = logging.getLogger("mailticket.render")



SHIPPED_DIR = shipped_templates_dir()
LOCALES = available_locales()  # ("en", "sv"): English and each language with a catalogue
TEMPLATE_NAMES = (
    "acknowledgement",
    "new_ticket",
    "agent_reply",
    "note",
    "requester_update",
    "warning",
    "escalation",
    "escalation_manager",
    "escalated",
    "resolved",
    "closed",
    "reopened",
    "command_error",
    "call_invitation",
    "call_cancelled",
    "call_answer",
    "call_reminder",
    "delivery_failure",
    "delivery_digest",
    "quarantine_alert",
    "quarantine_digest",
    "security_alert",
    "breach_deadline_warning",
    "query_answer",
    "requester_refused",
    "merged",
    "alarm",
    "alarm_cleared",
    "pending_reminder",
    "pending_resolved",
    "assigned",
    "attachment_refused",
    "manager_report",
    "feedback_expired",
    "feedback_rating_invalid",
)
KINDS = (".txt", ".html")


@dataclass(frozen=True)
class Rendered:
    """One rendered mail: a one-line subject, the text part and the HTML part (or None)."""

    subject: str
    text: str
    html: str | None


class _MailEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, plus one rule: a macro defined in a text template returns plain text
    even when an HTML template calls it, so autoescaping still applies to its output.

    (Jinja would otherwise mark such a macro's unescaped output as safe HTML.)
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.verdicts: dict[tuple[type, str], bool] = {}  # is_safe_attribute's, remembered

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        if isinstance(__obj, Macro) and __context.eval_ctx.autoescape and not __obj._default_autoescape:
            if not __self.is_safe_callable(__obj):
                raise SecurityError(f"{__obj!r} is not safely callable")
            kwargs.pop("_block_vars", None)  # Jinja's internal keywords (see Context.call)
            kwargs.pop("_loop_vars", None)
            return str(__obj(*args, **kwargs))  # no eval context: the macro's own (off) autoescape
        return super().call(__context, __obj, *args, **kwargs)

    def make_globals(self, d):
        """A template's globals as one plain dict, not Jinja's ChainMap over the environment's:
        Jinja reads them whole for every render and every import (``dict(globals)``, a set of their
        keys), and a ChainMap builds each of those in Python (4 % of the sender's CPU). The same
        names and values, as long as the environment's globals are not changed once a template is
        loaded, which Jinja's documentation asks anyway and ``_make_env`` never does."""
        return {**self.globals, **(d or {})}

    def getattr(self, obj, attribute):
        """Jinja's sandboxed ``getattr``, with a short way for a key of a plain dict, which the whole
        context is made of. For a name that dict has no attribute of, Jinja tries the attribute,
        catches the AttributeError and reads ``obj[attribute]``: the same answer, but the raised
        error cost most of the lookup (about 60 lookups a mail). Anything else goes Jinja's way."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj, attr, value):
        """The sandbox's verdict, remembered by the object's type and the attribute's name, which
        are all it looks at (not private, not internal to a function, method, type, frame or
        generator, not a mutating method of a list, dict, set or deque; each an isinstance test of
        the object). A mail's 25 or so macro and method lookups asked it anew each time."""
        key = (type(obj), attr)
        verdict = self.verdicts.get(key)
        if verdict is None:
            verdict = super().is_safe_attribute(obj, attr, value)
            if len(self.verdicts) < _MAX_VERDICTS:
                self.verdicts[key] = verdict
        return verdict


_DICT_ATTRIBUTES = frozenset(dir(dict))
_MAX_VERDICTS = 4096  # the names are the templates' own, so far fewer; a bound all the same


def _none_as_empty(value):
    """Print None as nothing rather than the word 'None'."""
    return "" if value is None else value


def _make_env(search_path: list[Path], locale: str, strict: bool) -> _MailEnvironment:
    """A sandboxed environment for one locale that looks templates up along ``search_path``."""
    env = _MailEnvironment(
        loader=ChoiceLoader([FileSystemLoader(str(p)) for p in search_path]),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined if strict else Undefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=-1,  # a plain dict: every template stays compiled (there are about a hundred, and
        # an admin's own), and a lookup takes no lock and moves nothing in an LRU list (2 % of the sender)
        finalize=_none_as_empty,
    )
    env.filters["when"] = pass_context(lambda ctx, v: fmt.format_when(v, _zone_of(ctx), locale))
    env.filters["when_short"] = pass_context(lambda ctx, v: fmt.format_when(v, _zone_of(ctx), locale, year=False))
    env.filters["due"] = pass_context(lambda ctx, v: fmt.format_due(v, _zone_of(ctx), locale, ctx.get("now")
                                                                     or _MAIL_NOW.get()))
    env.filters["span"] = pass_context(lambda ctx, a, b: fmt.format_span(a, b, _zone_of(ctx), locale))
    env.filters["duration"] = partial(fmt.format_duration_words, locale=locale)
    env.filters["filesize"] = partial(format_size, locale=locale)
    env.filters["left"] = partial(fmt.format_time_left, locale=locale)
    env.filters["contact"] = fmt.contact
    env.filters["attachment"] = partial(fmt.attachment, locale=locale)
    env.filters["first_name"] = fmt.first_name
    env.filters["one_line"] = fmt.one_line
    env.filters["paragraphs"] = fmt.paragraphs_html
    env.filters["hours"] = partial(fmt.format_hours, locale=locale)
    env.filters["percent"] = partial(fmt.format_percent, locale=locale)
    env.filters["decimal"] = lambda value, digits=1: fmt.format_decimal(value, locale, digits)
    env.filters["bar"] = fmt.bar_width
    return env


# The time zone of the mail being rendered: a macro imported without the context (``{% import
# "_macros.html" as m %}``) has no ``timezone`` of its own, and must still write local times.
_MAIL_ZONE: contextvars.ContextVar = contextvars.ContextVar("mail_zone", default=None)
_MAIL_NOW: contextvars.ContextVar = contextvars.ContextVar("mail_now", default=None)


def _zone_of(ctx) -> str | None:
    return ctx.get("timezone") or _MAIL_ZONE.get()


def _mail_value(value, *, tz: str | None, locale: str):
    """A value inside a translated Message, written for the mail: local dates, durations in words."""
    if isinstance(value, datetime):
        return fmt.format_when(value, tz, locale)
    if isinstance(value, timedelta):
        return fmt.format_duration_words(value, locale)
    return value


def _search_path(override_dir: Path | None, locale: str) -> list[Path]:
    shipped = [SHIPPED_DIR / locale, SHIPPED_DIR]
    return ([override_dir / locale, override_dir] if override_dir else []) + shipped


class Renderer:
    """Renders the mails mailticket sends, with an optional admin override folder."""

    def __init__(self, override_dir: str | Path | None = None, *, strict: bool = False):
        self.override_dir = Path(override_dir) if override_dir else None
        self.strict = strict
        self.reload()

    def reload(self) -> None:
        """Forget every compiled template so edited files are read again (SIGHUP)."""
        self._shipped = {loc: _make_env(_search_path(None, loc), loc, self.strict) for loc in LOCALES}
        self._full = {loc: _make_env(_search_path(self.override_dir, loc), loc, self.strict) for loc in LOCALES}

    def warm(self) -> int:
        """Compile every template now, so that the first mail does not wait for it (the sender
        process does this before it says it is ready; 0.18 s for the 98 shipped here). One that does not
        compile is left for rendering to report. Returns how many were compiled."""
        compiled = 0
        for env in self._full.values():
            for template_name in env.list_templates(extensions=[k.lstrip(".") for k in KINDS]):
                if "/" in template_name:
                    continue  # another locale's folder seen from the common one: not a name mail uses
                try:
                    env.get_template(template_name)
                    compiled += 1
                except TemplateError:
                    pass
        return compiled

    def render(self, name: str, locale: str, context: dict) -> Rendered:
        """Render mail ``name`` in ``locale``; falls back to the shipped template (and logs
        why) when the admin's override fails."""
        _require_known(name, locale)
        try:
            return _render_with(self._full[locale], name, locale, context)
        except Exception as exc:
            if not self.override_dir:
                raise
            log.error("mail %r (%s) failed with the templates in %s: %s; using the shipped templates",
                      name, locale, self.override_dir, exc)
            return _render_with(self._shipped[locale], name, locale, context)

    def check(self) -> list[str]:
        """Problems with the admin's override templates, each naming the file (and line)."""
        if not self.override_dir:
            return []
        if not self.override_dir.is_dir():
            return [f"{self.override_dir}: template folder does not exist"]
        problems = []
        for path in sorted(self.override_dir.rglob("*")):
            problems += _check_path(path, self.override_dir, self._full["en"])
        if not problems:
            problems += self._check_by_rendering()
        return problems

    def _check_by_rendering(self) -> list[str]:
        """Render every mail with a sample context, strictly, to find run-time errors."""
        strict = {loc: _make_env(_search_path(self.override_dir, loc), loc, True) for loc in LOCALES}
        problems = []
        for locale in LOCALES:
            for name in TEMPLATE_NAMES:
                try:
                    _render_with(strict[locale], name, locale, sample_context(name))
                except Exception as exc:
                    problems.append(_describe_failure(exc, self.override_dir, name, locale))
        return sorted(set(problems))


def _require_known(name: str, locale: str) -> None:
    if name not in TEMPLATE_NAMES:
        raise ValueError(f"unknown mail template {name!r}; known: {', '.join(TEMPLATE_NAMES)}")
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}; shipped: {', '.join(LOCALES)}")


def _render_with(env, name: str, locale: str, context: dict) -> Rendered:
    tz = context.get("timezone")
    values = translate(dict(context, locale=locale), locale, partial(_mail_value, tz=tz, locale=locale))
    token, now_token = _MAIL_ZONE.set(tz), _MAIL_NOW.set(context.get("now"))
    try:
        return _render_parts(env, name, values)
    finally:
        _MAIL_ZONE.reset(token)
        _MAIL_NOW.reset(now_token)


def _render_parts(env, name: str, values: dict) -> Rendered:
    subject, text = _render_text(env.get_template(f"{name}.txt"), values)
    values["subject_line"] = subject
    html = None
    if _exists(env, f"{name}.html"):
        html = env.get_template(f"{name}.html").render(values)
    return Rendered(subject=subject, text=text, html=html)


def _exists(env, template_name: str) -> bool:
    """Whether ``env`` has the template; asked once per environment (a reload makes new ones),
    since each question reads the file from disk."""
    known = _EXISTS.setdefault(env, {})
    if template_name not in known:
        try:
            env.loader.get_source(env, template_name)
            known[template_name] = True
        except TemplateError:
            known[template_name] = False
    return known[template_name]


_EXISTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _render_text(template, values: dict) -> tuple[str, str]:
    """The subject (the ``subject`` block alone, as one clean header line) and the text
    part (the whole template with that block silenced, wherever the layout puts it)."""
    context = template.new_context(values)
    subject_block = context.blocks.get("subject")
    if not subject_block:
        raise TemplateSyntaxError("no {% block subject %} in this template; the mail's subject comes from it",
                                  1, template.name, template.filename)
    concat = template.environment.concat
    captured = []

    def capture_subject(ctx):
        captured.append(concat(subject_block[0](ctx)))
        return iter(())

    context.blocks["subject"] = [capture_subject, *subject_block[1:]]
    try:
        text = concat(template.root_render_func(context))
        if not captured:  # the layout does not place the block: render it on its own
            captured.append(concat(subject_block[0](context)))
    except Exception:
        template.environment.handle_exception()  # re-raises with template file names and lines
    return fmt.one_line(captured[0]), fmt.tidy_text(text)


def _check_path(path: Path, root: Path, env) -> list[str]:
    """Problems with one file or folder of the override folder."""
    rel = path.relative_to(root)
    if any(part.startswith(".") for part in rel.parts):
        return []
    if path.is_dir():
        if len(rel.parts) == 1 and rel.name in LOCALES:
            return []
        return [f"{path}: unexpected folder; only locale folders ({', '.join(LOCALES)}) belong here"]
    if len(rel.parts) > 2 or (len(rel.parts) == 2 and rel.parts[0] not in LOCALES):
        return []  # reported with its folder
    if path.suffix not in KINDS:
        return [f"{path}: not a template; templates end in .txt (text and subject) or .html"]
    if path.stem not in TEMPLATE_NAMES and path.name not in _shipped_partials():
        return [f"{path}: unknown template name {path.stem!r}; known: {', '.join(TEMPLATE_NAMES)}"]
    return _check_source(path, env)


def _check_source(path: Path, env) -> list[str]:
    """Syntax errors, and a missing subject block in a mail's text template."""
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
    except OSError as exc:
        return [f"{path}: cannot be read: {exc.strerror}"]
    try:
        tree = env.parse(source, path.name, str(path))
    except TemplateSyntaxError as exc:
        return [f"{path}:{exc.lineno}: {exc.message}"]
    has_subject = any(block.name == "subject" for block in tree.find_all(nodes.Block))
    if path.suffix == ".txt" and path.stem in TEMPLATE_NAMES and not has_subject:
        return [f"{path}:1: no {{% block subject %}}...{{% endblock %}}; the mail's subject comes from it"]
    return _check_html_is_mail_safe(path, source) if path.suffix == ".html" else []


_NOT_FOR_MAIL = (
    (re.compile(r"<script\b", re.I), "a <script>: mail clients drop scripts, and mail must not run code"),
    (re.compile(r"""\bsrc\s*=\s*["']?\s*(https?:)?//""", re.I),
     "an external image or resource: clients block them and they tell the sender who read the mail"),
)


def _check_html_is_mail_safe(path: Path, source: str) -> list[str]:
    """Scripts and external images in an HTML override, by line."""
    problems = []
    for number, line in enumerate(source.splitlines(), start=1):
        problems += [f"{path}:{number}: {why}" for pattern, why in _NOT_FOR_MAIL if pattern.search(line)]
    return problems


def _shipped_partials() -> set[str]:
    """File names of the shipped layout pieces (``_base.html`` ...) an admin may override."""
    return {p.name for p in SHIPPED_DIR.rglob("_*") if p.suffix in KINDS}


def _describe_failure(exc: Exception, override_dir: Path, name: str, locale: str) -> str:
    """``file:line: error`` for an error raised while rendering, pointing into the override
    folder when the failing line is there."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename and Path(f.filename).suffix in KINDS]
    ours = [f for f in frames if _is_under(f.filename, override_dir)]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, UndefinedError):  # name what the code does pass, so the admin can pick the right one
        given = ", ".join(sorted(sample_context(name)))
        message += f"; mailticket does not pass that to {name} (it passes: {given})"
    if where is None:
        return f"{name} ({locale}): {message}"
    return f"{where.filename}:{where.lineno}: {message} (rendering {name}, {locale})"


def _is_under(filename: str, folder: Path) -> bool:
    try:
        Path(filename).resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
