"""The mail renderer and the shipped templates (en, sv): contexts, safety, overrides, check()."""

import logging
import re
from datetime import datetime, timedelta, timezone

import pytest

from mailticket.outbound.render import KINDS, LOCALES, SHIPPED_DIR, TEMPLATE_NAMES, Rendered, Renderer
from mailticket.outbound.template_context import EXTRA_KEYS, NOW, sample_context

NO_TICKET = ("delivery_failure", "quarantine_alert", "quarantine_digest", "requester_refused", "alarm",
             "alarm_cleared", "manager_report")
ABOUT_OTHER_TICKETS = ("query_answer", "delivery_digest")  # about no one ticket, but names several
HOSTILE = "Eve\r\nBcc: x@evil\x00 {{7*7}} <script>alert(1)</script>"
CASES = [(name, locale) for name in TEMPLATE_NAMES for locale in LOCALES]


@pytest.fixture(scope="module")
def renderer():
    return Renderer(strict=True)


def none_context(name):
    """The sample context with every field that may be missing set to None (or empty)."""
    ctx = sample_context(name)
    ctx["ticket"] = None if name in NO_TICKET + ABOUT_OTHER_TICKETS else ctx["ticket"] | {
        "assignee": None, "category": None, "first_response_due": None, "resolution_due": None,
        "requester_name": None, "subject": None, "description": None, "impact": None, "urgency": None,
    }
    optional = {"reason": None, "body": None, "breach_report_deadline": None, "uid": None,
                "message_id": None, "sender": None, "subject": None, "decision_reasons": [],
                "history": [], "auto_close_after": None, "duration": None}
    for key, value in optional.items():
        if key in EXTRA_KEYS[name] and not (name in ("agent_reply", "note", "requester_update", "reopened")
                                             and key == "body"):
            ctx[key] = value
    if "errors" in ctx:
        ctx["errors"] = [{"line": "#tier 9", "problem": "no tier 9", "valid": None}]
    return ctx


def assert_safe_html(html):
    assert "<script" not in html.lower()
    assert not re.search(r"""src\s*=\s*["']?\s*(https?:)?//""", html, re.I), "external image/resource"
    assert not re.search(r"<link\b", html, re.I)
    assert "<table" in html and 'style="' in html
    assert "<style" not in html.lower(), "styles must be inline"


# --- every template, both locales -------------------------------------------------------------

@pytest.mark.parametrize("name,locale", CASES)
def test_renders_with_full_context(renderer, name, locale):
    ctx = sample_context(name)
    mail = renderer.render(name, locale, ctx)
    assert isinstance(mail, Rendered)
    assert mail.subject and "\n" not in mail.subject and "\r" not in mail.subject
    assert mail.subject == mail.subject.strip()
    if name not in NO_TICKET + ABOUT_OTHER_TICKETS:
        assert ctx["ticket"]["tag"] in mail.subject
    assert mail.text.endswith("\n") and len(mail.text.strip()) > 20
    assert "None" not in mail.text and "None" not in mail.html
    assert f'<html lang="{locale}">' in mail.html
    assert f"<title>{mail.subject}</title>" in mail.html
    assert_safe_html(mail.html)
    # the subject block never leaks into the body
    assert mail.subject not in mail.text


@pytest.mark.parametrize("name,locale", CASES)
def test_renders_with_missing_fields(renderer, name, locale):
    ctx = none_context(name)
    mail = renderer.render(name, locale, ctx)
    assert mail.subject and "\n" not in mail.subject
    assert "None" not in mail.subject and "None" not in mail.text and "None" not in mail.html
    assert_safe_html(mail.html)
    if ctx["ticket"]:
        assert ctx["ticket"]["tag"] in mail.subject


@pytest.mark.parametrize("name", NO_TICKET)
def test_mail_about_no_ticket_has_no_tag(renderer, name):
    ctx = none_context(name)
    for locale in LOCALES:
        mail = renderer.render(name, locale, ctx)
        assert "[SD#" not in mail.subject + mail.text + mail.html


def test_every_template_renders_from_the_defaults_renderer():
    """The lenient production renderer renders the same mails as the strict one."""
    lenient, strict = Renderer(), Renderer(strict=True)
    for name, locale in CASES:
        assert lenient.render(name, locale, sample_context(name)) == strict.render(name, locale, sample_context(name))


def test_every_shipped_template_has_both_parts_in_both_locales():
    from mailticket.outbound.render import SHIPPED_DIR
    for name, locale in CASES:
        assert (SHIPPED_DIR / locale / f"{name}.txt").is_file()
        assert (SHIPPED_DIR / locale / f"{name}.html").is_file()


# --- values from mail can neither break headers nor become template code ------------------------

HOSTILE_KEYS = ("agent_name", "author_name", "sender", "subject", "recipient", "body", "reason")


@pytest.mark.parametrize("name,locale", CASES)
def test_hostile_values_stay_data(renderer, name, locale):
    ctx = sample_context(name)
    if ctx["ticket"]:
        ctx["ticket"] = ctx["ticket"] | {"subject": HOSTILE, "requester_name": HOSTILE, "description": HOSTILE}
    for key in HOSTILE_KEYS:
        if key in ctx:
            ctx[key] = HOSTILE
    mail = renderer.render(name, locale, ctx)
    for bad in ("\r", "\n", "\x00"):
        assert bad not in mail.subject
    assert "49" not in mail.subject and "49" not in mail.text
    assert "<script>" not in mail.html
    assert_safe_html(mail.html)
    shows_hostile = "{{7*7}}" in mail.text
    if shows_hostile:
        assert "&lt;script&gt;" in mail.html
    if (ctx["ticket"] or name == "quarantine_alert") and name != "command_error":
        assert "{{7*7}}" in mail.subject and "Bcc: x@evil" in mail.subject


def test_hostile_subject_is_one_clean_line(renderer):
    ctx = sample_context("acknowledgement")
    ctx["ticket"] = ctx["ticket"] | {"subject": "a\r\nBcc: x@evil\x00\tb\u2028c\x85d"}
    mail = renderer.render("acknowledgement", "en", ctx)
    assert mail.subject == "[SD#42] Received: a Bcc: x@evil b c d"


def test_overlong_subject_is_cut(renderer):
    ctx = sample_context("closed")
    ctx["ticket"] = ctx["ticket"] | {"subject": "x" * 5000}
    subject = renderer.render("closed", "en", ctx).subject
    assert len(subject) == 250 and subject.endswith("…")


def test_html_escapes_body_and_keeps_line_breaks(renderer):
    ctx = sample_context("agent_reply") | {"body": "Line <b>one</b>\nline & two\n\nNew paragraph"}
    html = renderer.render("agent_reply", "en", ctx).html
    assert "Line &lt;b&gt;one&lt;/b&gt;<br>\nline &amp; two</p>" in html
    assert ">New paragraph</p>" in html


# --- what the mails say --------------------------------------------------------------------------

def test_acknowledgement_in_english(renderer):
    mail = renderer.render("acknowledgement", "en", sample_context("acknowledgement"))
    assert mail.subject == "[SD#42] Received: Printer on floor 3 prints blank pages"
    assert mail.text.startswith("Hi Anna,\n")
    assert "P3 (medium)" in mail.text
    assert "Fri 27 Nov 2026 15:00 CET" in mail.text  # first_response_due in Europe/Stockholm
    assert "reply to this mail" in mail.text and "keep [SD#42] in the subject" in mail.text


def test_acknowledgement_in_swedish(renderer):
    mail = renderer.render("acknowledgement", "sv", sample_context("acknowledgement"))
    assert mail.text.startswith("Hej Anna!\n")
    assert "Vi har registrerat ärendet [SD#42]" in mail.text
    assert "prioritet P3 (medel)" in mail.text
    assert "första svar senast fre 27 nov 2026 kl. 15:00" in mail.text
    assert "Svara bara på det här" in mail.text
    assert "biljett" not in mail.text.lower()


def test_greeting_without_a_name(renderer):
    ctx = sample_context("closed")
    ctx["ticket"] = ctx["ticket"] | {"requester_name": "anna@example.com"}
    assert renderer.render("closed", "en", ctx).text.startswith("Hello,\n")
    assert renderer.render("closed", "sv", ctx).text.startswith("Hej!\n")


def swedish_sample(name):
    """A sample written by Swedish users, so that any English left in the output is ours."""
    ctx = sample_context(name)
    if ctx["ticket"]:
        ctx["ticket"] = ctx["ticket"] | {"subject": "Skrivaren skriver ut tomma sidor",
                                         "description": "Hej, skrivaren på plan 3 krånglar.",
                                         "category": "hårdvara", "tier_name": "Servicedesk"}
    swedish = {"body": "Jag har startat om skrivarservern.", "reason": "lösningstiden har gått ut",
               "decision_reasons": ["regeln 'skrivare' matchade ämnet"], "subject": "Hjälp med VPN",
               "history": [{"at": NOW, "who": "alice@example.com", "what": "Svar till anmälaren", "text": "Testa igen",
                            "unverified": False, "important": False}],
               "errors": [{"line": "#priority P7", "problem": "okänd prioritet", "valid": "#priority P1..P4"}],
               "comment": "Kan vi ta det på tisdag i stället?"}
    ctx.update({k: v for k, v in swedish.items() if k in ctx})
    if name == "quarantine_alert":
        ctx["reason"] = "för djupt nästlad MIME"
    if name == "delivery_failure":
        ctx["reason"] = "550 5.1.1 okänd mottagare"
    return ctx


ENGLISH_WORDS = re.compile(r"\b(the|your|ticket|please|reply|with|has been|you|we|is|to)\b", re.I)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_swedish_mails_have_no_english_left(renderer, name):
    mail = renderer.render(name, "sv", swedish_sample(name))
    for part in (mail.subject, mail.text, re.sub(r"<[^>]+>", " ", mail.html)):
        found = ENGLISH_WORDS.findall(part)
        assert not found, f"{name}: English words {found} in Swedish mail"
        assert "biljett" not in part.lower()


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_english_mails_have_no_swedish_left(renderer, name):
    mail = renderer.render(name, "en", sample_context(name))
    for part in (mail.subject, mail.text, mail.html):
        assert not re.search(r"[åäöÅÄÖ]|\bkl\.|\bärende", part), f"{name}: Swedish in English mail"


def test_unverified_note_carries_a_warning(renderer):
    ctx = sample_context("note") | {"unverified": False}
    plain = renderer.render("note", "en", ctx)
    warned = renderer.render("note", "en", ctx | {"unverified": True})
    assert "could not be verified" not in plain.text + plain.html
    assert "could not be verified" in warned.text.lower() and "could not be verified" in warned.html
    assert "UNVERIFIED" in warned.subject and "UNVERIFIED" not in plain.subject
    sv = renderer.render("note", "sv", ctx | {"unverified": True})
    assert "kunde inte verifieras" in sv.text.lower() and "kunde inte verifieras" in sv.html
    assert "OVERIFIERAD" in sv.subject


def test_warning_names_the_clock(renderer):
    ctx = sample_context("warning")
    first = renderer.render("warning", "en", ctx | {"clock": "first_response", "time_left": timedelta(minutes=15)})
    resolution = renderer.render("warning", "en", ctx | {"clock": "resolution"})
    assert first.subject.startswith("[SD#42] 15 min left for a first response")
    assert resolution.subject.startswith("[SD#42] 6 h left to resolve")
    assert "#status pending" in resolution.text and "#status pending pauses" not in first.text
    sv = renderer.render("warning", "sv", ctx | {"clock": "first_response", "time_left": timedelta(minutes=15)})
    assert sv.subject.startswith("[SD#42] 15 min kvar till första svar")


def test_new_ticket_lists_reasons_and_commands(renderer):
    mail = renderer.render("new_ticket", "en", sample_context("new_ticket"))
    assert "rule “printers”: the subject contains “printer”" in mail.text
    assert "regeln ”printers”: ämnesraden innehåller ”printer”" in renderer.render(
        "new_ticket", "sv", sample_context("new_ticket")).text
    assert "#assign me" in mail.text and "#escalate" in mail.text and "#note" in mail.text
    assert "only prints blank pages" in mail.text and "only prints blank pages" in mail.html
    assert "Anna Svensson <anna.svensson@example.com>" in mail.text
    assert "Anna Svensson\nanna.svensson@example.com" in mail.html  # the address on a line of its own


def test_escalation_shows_history_and_reason(renderer):
    mail = renderer.render("escalation", "en", sample_context("escalation"))
    assert "from tier 1 to\ntier 2 (Second line)" in mail.text
    assert "P3 resolution target 8 h breached at tier 1" in mail.text
    assert "Could you send a photo" in mail.text and "Could you send a photo" in mail.html
    empty = renderer.render("escalation", "sv", none_context("escalation"))
    assert "Ingen historik än." in empty.text


def test_command_error_lists_each_error(renderer):
    ctx = sample_context("command_error") | {"errors": [
        {"line": "#priority P7", "problem": "unknown priority P7", "valid": "#priority P1..P4"},
        {"line": "#tier 9", "problem": "no tier 9", "valid": "#tier 1..3"}]}
    mail = renderer.render("command_error", "en", ctx)
    assert mail.text.index("#priority P7") < mail.text.index("#tier 9")
    assert "Valid:   #tier 1..3" in mail.text


def test_call_invitation_gives_the_time_span(renderer):
    mail = renderer.render("call_invitation", "en", sample_context("call_invitation"))
    assert "Sat 28 Nov 2026 15:00–15:30 CET (30 min)" in mail.text
    sv = renderer.render("call_invitation", "sv", sample_context("call_invitation"))
    assert "lör 28 nov 2026 kl. 15:00–15:30 (30 min)" in sv.text


def test_quarantine_alert_says_how_to_reprocess(renderer):
    ctx = none_context("quarantine_alert") | {"quarantine_id": 9}
    for locale in LOCALES:
        mail = renderer.render("quarantine_alert", locale, ctx)
        assert "mailticket quarantine --reprocess 9" in mail.text
        assert "mailticket quarantine --reprocess 9" in mail.html


def test_resolved_invites_a_reply_and_shows_resolution(renderer):
    mail = renderer.render("resolved", "en", sample_context("resolved"))
    assert "If it is not fixed, just reply to this mail" in mail.text
    assert "We replaced the toner cartridge" in mail.text
    assert "closes by itself\nin 3 days" in mail.text
    without = renderer.render("resolved", "sv", {k: v for k, v in sample_context("resolved").items()
                                                  if k != "auto_close_after"})
    assert "stängs automatiskt" not in without.text


def test_security_mails_name_the_breach_deadline(renderer):
    alert = renderer.render("security_alert", "en", sample_context("security_alert"))
    assert "Mon 30 Nov 2026 12:00 CET" in alert.text and "P1 (critical)" in alert.text
    warn = renderer.render("breach_deadline_warning", "sv", sample_context("breach_deadline_warning"))
    assert warn.subject.startswith("[SD#42] 12 tim kvar att anmäla personuppgiftsincident")


def test_unknown_name_or_locale_is_refused(renderer):
    with pytest.raises(ValueError, match="unknown mail template 'nope'"):
        renderer.render("nope", "en", {})
    with pytest.raises(ValueError, match="unknown locale 'de'"):
        renderer.render("closed", "de", sample_context("closed"))


def test_unknown_time_zone_is_named(renderer):
    with pytest.raises(ValueError, match="Mars/Olympus"):
        renderer.render("acknowledgement", "en", sample_context("acknowledgement") | {"timezone": "Mars/Olympus"})


def test_summer_time_is_shown(renderer):
    ctx = sample_context("acknowledgement")
    ctx["ticket"] = ctx["ticket"] | {"first_response_due": datetime(2026, 7, 1, 8, 0, tzinfo=timezone.utc)}
    assert "Wed 1 Jul 2026 10:00 CEST" in renderer.render("acknowledgement", "en", ctx).text
    assert "ons 1 juli 2026 kl. 10:00" in renderer.render("acknowledgement", "sv", ctx).text


# --- the admin's override folder -----------------------------------------------------------------

ACK_OVERRIDE = '{% extends "_base.txt" %}{% block subject %}Got it {{ ticket.tag }}{% endblock %}' \
               '{% block body %}Our own words for {{ ticket.requester_name }}.{% endblock %}'


def test_override_replaces_one_template(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "acknowledgement.txt").write_text(ACK_OVERRIDE)
    r = Renderer(tmp_path, strict=True)
    mail = r.render("acknowledgement", "en", sample_context("acknowledgement"))
    assert mail.subject == "Got it [SD#42]"
    assert mail.text.startswith("Our own words for Anna Svensson.")
    assert "Thanks for getting in touch" in mail.html  # the HTML part is still the shipped one
    assert r.render("acknowledgement", "sv", sample_context("acknowledgement")).text.startswith("Hej Anna!")
    assert r.render("closed", "en", sample_context("closed")).subject.startswith("[SD#42] Closed")
    assert r.check() == []


def test_override_without_locale_folder_serves_every_locale(tmp_path):
    (tmp_path / "closed.txt").write_text("{% block subject %}Done {{ ticket.tag }}{% endblock %}Bye.")
    r = Renderer(tmp_path, strict=True)
    for locale in LOCALES:
        mail = r.render("closed", locale, sample_context("closed"))
        assert mail.subject == "Done [SD#42]"
        assert mail.text == "Bye.\n"  # a standalone template: its subject block stays out of the body


def test_locale_folder_wins_over_the_common_one(tmp_path):
    (tmp_path / "sv").mkdir()
    (tmp_path / "closed.txt").write_text("{% block subject %}common{% endblock %}x")
    (tmp_path / "sv" / "closed.txt").write_text("{% block subject %}svensk{% endblock %}x")
    r = Renderer(tmp_path)
    assert r.render("closed", "en", sample_context("closed")).subject == "common"
    assert r.render("closed", "sv", sample_context("closed")).subject == "svensk"


def test_override_of_a_layout_piece(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "_footer.txt").write_text("-- \nThe IT crew")
    r = Renderer(tmp_path, strict=True)
    assert r.render("new_ticket", "en", sample_context("new_ticket")).text.endswith("-- \nThe IT crew\n")
    assert r.check() == []


def test_override_html_is_autoescaped_and_sandboxed(tmp_path):
    (tmp_path / "closed.html").write_text("<p>{{ ticket.subject }}</p>{{ ticket.__class__ }}")
    r = Renderer(tmp_path, strict=True)
    ctx = sample_context("closed")
    ctx["ticket"] = ctx["ticket"] | {"subject": "<b>x</b>"}
    problems = r.check()
    assert len(problems) == 2 and all(str(tmp_path / "closed.html") + ":1:" in p for p in problems)
    assert "<p>&lt;b&gt;x&lt;/b&gt;</p>" not in r.render("closed", "en", ctx).html  # fell back to shipped
    (tmp_path / "closed.html").write_text("<p>{{ ticket.subject }}</p>")
    r.reload()
    assert r.render("closed", "en", ctx).html == "<p>&lt;b&gt;x&lt;/b&gt;</p>"


def test_sandbox_blocks_unsafe_attribute_access(tmp_path):
    (tmp_path / "closed.txt").write_text(
        "{% block subject %}x{% endblock %}{{ ''.__class__.__mro__[1].__subclasses__() }}")
    problems = Renderer(tmp_path).check()
    assert problems and "closed.txt:1:" in problems[0] and "SecurityError" in problems[0]


def test_broken_override_falls_back_to_shipped_and_logs(tmp_path, caplog):
    (tmp_path / "closed.txt").write_text("{% block subject %}{{ ticket.tag }{% endblock %}")
    r = Renderer(tmp_path)
    with caplog.at_level(logging.ERROR, logger="mailticket.render"):
        mail = r.render("closed", "en", sample_context("closed"))
    assert mail.subject == "[SD#42] Closed: Printer on floor 3 prints blank pages"
    assert "closed" in caplog.text and str(tmp_path) in caplog.text


def test_shipped_failure_is_raised_not_hidden():
    with pytest.raises(Exception, match="ticket"):
        Renderer(strict=True).render("closed", "en", {"service": {}, "timezone": "UTC", "now": NOW})


def test_check_reports_syntax_error_with_file_and_line(tmp_path):
    (tmp_path / "en").mkdir()
    bad = tmp_path / "en" / "closed.txt"
    bad.write_text("{% block subject %}ok{% endblock %}\nline two\n{% if %}\n")
    problems = Renderer(tmp_path).check()
    assert problems == [f"{bad}:3: Expected an expression, got 'end of statement block'"]


def test_check_reports_missing_subject_block(tmp_path):
    (tmp_path / "resolved.txt").write_text("Resolved, {{ ticket.tag }}.\n")
    problems = Renderer(tmp_path).check()
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'resolved.txt'}:1: no {{% block subject %}}")


def test_html_override_needs_no_subject_block(tmp_path):
    (tmp_path / "resolved.html").write_text("<p>{{ ticket.tag }}</p>")
    assert Renderer(tmp_path).check() == []


def test_check_reports_unknown_names_folders_and_files(tmp_path):
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "closed.txt").write_text("x")
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "acknowledgment.txt").write_text("{% block subject %}x{% endblock %}")
    (tmp_path / "closed.htm").write_text("x")
    (tmp_path / ".swp").write_text("editor junk is ignored")
    problems = Renderer(tmp_path).check()
    assert problems == [
        f"{tmp_path / 'closed.htm'}: not a template; templates end in .txt (text and subject) or .html",
        f"{tmp_path / 'de'}: unexpected folder; only locale folders (en, sv) belong here",
        f"{tmp_path / 'en' / 'acknowledgment.txt'}: unknown template name 'acknowledgment'; known: "
        + ", ".join(TEMPLATE_NAMES),
    ]


def test_check_reports_undefined_names_at_their_line(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "closed.txt").write_text("{% block subject %}x{% endblock %}\n\n{{ tikcet.tag }}\n")
    problems = Renderer(tmp_path).check()
    assert problems == [f"{tmp_path / 'en' / 'closed.txt'}:3: UndefinedError: 'tikcet' is undefined; mailticket "
                        "does not pass that to closed (it passes: auto_close_after, body, now, service, ticket, "
                        "timezone) (rendering closed, en)"]


def test_check_reports_a_missing_include(tmp_path):
    (tmp_path / "closed.txt").write_text('{% block subject %}x{% endblock %}\n{% include "_nope.txt" %}')
    problems = Renderer(tmp_path).check()
    assert len(problems) == 2  # once per locale
    assert all(p.startswith(f"{tmp_path / 'closed.txt'}:2: TemplateNotFound: _nope.txt") for p in problems)


def test_check_reports_non_utf8(tmp_path):
    (tmp_path / "closed.txt").write_bytes(b"{% block subject %}St\xe4ngt{% endblock %}")
    problems = Renderer(tmp_path).check()
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'closed.txt'}: not UTF-8 text")


def test_check_without_override_and_with_a_missing_folder(tmp_path):
    assert Renderer().check() == []
    missing = tmp_path / "nowhere"
    assert Renderer(missing).check() == [f"{missing}: template folder does not exist"]


def test_reload_reads_edited_templates(tmp_path):
    target = tmp_path / "closed.txt"
    target.write_text("{% block subject %}one{% endblock %}")
    r = Renderer(tmp_path)
    assert r.render("closed", "en", sample_context("closed")).subject == "one"
    target.write_text("{% block subject %}two{% endblock %}")
    assert r.render("closed", "en", sample_context("closed")).subject == "one"
    r.reload()
    assert r.render("closed", "en", sample_context("closed")).subject == "two"


def test_check_reports_scripts_and_external_images_in_html(tmp_path):
    page = tmp_path / "closed.html"
    page.write_text('<p>ok</p>\n<script>x()</script>\n<img src="https://tracker.example/p.gif">\n<img src="cid:logo">\n')
    problems = Renderer(tmp_path).check()
    assert [p.split(": ", 1)[0] for p in problems] == [f"{page}:2", f"{page}:3"]
    assert "script" in problems[0] and "external image" in problems[1]


def test_warm_compiles_every_template_at_once_and_leaves_a_broken_override_to_rendering(tmp_path):
    shipped = {p.relative_to(SHIPPED_DIR).name for p in SHIPPED_DIR.rglob("*") if p.suffix in KINDS}
    plain = Renderer()
    # each locale's environment sees the common files and its own folder
    assert plain.warm() == sum(len({p.name for p in (SHIPPED_DIR / loc).iterdir() if p.suffix in KINDS}
                                   | {p.name for p in SHIPPED_DIR.iterdir() if p.suffix in KINDS})
                               for loc in LOCALES) and shipped
    env = plain._full["en"]
    assert env.cache and all(env.get_template(n) is env.get_template(n) for n in ("acknowledgement.txt", "_base.html"))
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "closed.txt").write_text("{% block subject %}Done{% endblock %}{% if %}")
    broken = Renderer(tmp_path)
    assert broken.warm() == plain.warm() - 1, "the broken file is skipped, not raised"
    assert broken.render("closed", "en", sample_context("closed")).subject.startswith("[SD#")  # the shipped one


# --- the sandbox's two short ways (render._MailEnvironment) give Jinja's own answers ----------

def _jinja_and_ours():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from mailticket.outbound.render import _MailEnvironment
    return ImmutableSandboxedEnvironment(), _MailEnvironment()


def _same_lookup(a, b) -> bool:
    from jinja2 import Undefined
    if isinstance(a, Undefined) or isinstance(b, Undefined):
        return type(a) is type(b) and a._undefined_name == b._undefined_name and a._undefined_hint == b._undefined_hint
    return a == b


@pytest.mark.parametrize("key", ["tag", "subject", "missing", "items", "get", "clear", "keys", "__class__",
                                 "_private", "__len__", "copy", "fromkeys", ""])
def test_a_dict_key_is_looked_up_as_jinja_looks_it_up(key):
    """A key of a plain dict, present or not, and the names dict has methods or dunders of."""
    jinja, ours = _jinja_and_ours()
    d = {"tag": "[SD#1]", "subject": "Printer", "items": "a key named items", "_private": 1, "": 2}
    assert _same_lookup(ours.getattr(d, key), jinja.getattr(d, key))


def test_a_dict_subclass_and_other_objects_go_jinjas_way():
    class Attrs(dict):
        tag = "from the class"
    jinja, ours = _jinja_and_ours()
    for obj, name in [(Attrs(tag="from the key"), "tag"), ("text", "upper"), ([1], "append"), ({1}, "add")]:
        assert _same_lookup(ours.getattr(obj, name), jinja.getattr(obj, name))
    assert ours.getattr(Attrs(tag="from the key"), "tag") == "from the class"


@pytest.mark.parametrize("obj, attr", [
    ({}, "clear"), ({}, "get"), ([], "append"), ([], "index"), (set(), "add"), ("x", "upper"), ("x", "_x"),
    (len, "__self__"), (str, "mro"), (str, "upper"), (_same_lookup, "__code__"), (_same_lookup, "__name__"),
    (iter(range(2)), "__next__"), ((i for i in ()), "gi_frame"), ("x".upper, "__self__")])
def test_the_remembered_verdicts_are_the_sandboxs(obj, attr):
    """Asked twice (the second answer is the remembered one), each verdict is Jinja's."""
    jinja, ours = _jinja_and_ours()
    want = jinja.is_safe_attribute(obj, attr, None)
    assert ours.is_safe_attribute(obj, attr, None) is want
    assert ours.is_safe_attribute(obj, attr, None) is want
    assert ours.verdicts[(type(obj), attr)] is want


def test_a_verdict_belongs_to_the_type_and_the_name_together():
    """One environment asked about the same names on different types, in turn: a string's
    ``clear`` would be harmless, a dict's is not; a string has no unsafe ``mro``, a type does."""
    jinja, ours = _jinja_and_ours()
    pairs = [("x", "clear"), ({}, "clear"), ("x", "mro"), (str, "mro"), ({}, "clear"), ("x", "clear")]
    assert [ours.is_safe_attribute(o, a, None) for o, a in pairs] == \
        [jinja.is_safe_attribute(o, a, None) for o, a in pairs] == [True, False, True, False, False, True]


def test_a_mutating_method_stays_blocked_after_safe_lookups():
    """Safe lookups first (a string's method, a dict's ``get``, both remembered), then a dict's
    ``clear``: still a SecurityError, on every render."""
    from jinja2.sandbox import SecurityError

    from mailticket.outbound.render import _MailEnvironment
    env = _MailEnvironment()
    template = env.from_string("{{ ticket.subject.upper() }}{{ ticket.get('tag') }}{{ ticket.clear() }}")
    for _ in range(2):
        with pytest.raises(SecurityError, match="clear"):
            template.render(ticket={"subject": "printer", "tag": "[SD#1]"})
    assert env.verdicts[(str, "upper")] is True and env.verdicts[(dict, "get")] is True
    assert env.verdicts[(dict, "clear")] is False


def test_flat_globals_render_every_mail_as_jinjas_chainmap(monkeypatch):
    """``_MailEnvironment.make_globals`` gives each template a plain dict: every shipped mail, both
    locales, comes out the same as with Jinja's own ChainMap."""
    from jinja2 import Environment

    from mailticket.outbound.render import _MailEnvironment

    def every_mail():
        renderer = Renderer(strict=True)
        return [renderer.render(name, locale, sample_context(name)) for name, locale in CASES]

    ours = every_mail()
    template = Renderer()._full["en"].get_template("acknowledgement.txt")
    assert type(template.globals) is dict and "range" in template.globals
    monkeypatch.setattr(_MailEnvironment, "make_globals", Environment.make_globals)
    assert type(Renderer()._full["en"].get_template("acknowledgement.txt").globals).__name__ == "ChainMap"
    assert every_mail() == ours
