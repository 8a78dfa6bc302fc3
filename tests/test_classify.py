"""classify(): one test per rule, the acknowledgement decision, and robustness."""

from __future__ import annotations

import contextlib
import email
import email.policy
from email.header import Header
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench.corpora_bounces import load_message
from bench.corpora_path import find_corpora
from mailticket.inbound.bounces import parse_bounce
from mailticket.inbound.classify import RULES, Verdict, classify, normalise_line_ends
from tests.harness import at_least

CORPORA = find_corpora()
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"corpora not found at {CORPORA} "
                                   "(set MAILTICKET_CORPORA)")

PLAIN = "From: Anna Svensson <anna@example.org>\nTo: support@example.com\nSubject: Printer broken\n"


def parse(text: str, *, compat32: bool = False) -> Message:
    raw = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    if compat32:
        return email.message_from_bytes(raw)
    return email.message_from_bytes(raw, policy=email.policy.default)


def mail(extra_headers: str = "", body: str = "The printer on floor 2 is broken.\n",
         base: str = PLAIN, **kw) -> Message:
    return parse(base + extra_headers + "\n" + body, **kw)


both_policies = pytest.mark.parametrize("compat32", [False, True], ids=["default", "compat32"])


# --- human mail ------------------------------------------------------------------------------

@both_policies
def test_plain_mail_is_human_and_acknowledged(compat32):
    verdict = classify(mail(compat32=compat32))
    assert (verdict.kind, verdict.rule, verdict.suppress_autoreply) == ("human", "human", False)
    assert verdict.may_acknowledge


@pytest.mark.parametrize("value", ["No", "no", "  NO  ", "no (sent by a person)", "(comment) no"])
def test_auto_submitted_no_is_human(value):
    verdict = classify(mail(f"Auto-Submitted: {value}\n"))
    assert verdict.kind == "human" and verdict.may_acknowledge


@pytest.mark.parametrize("value", ["All", "OOF", "AutoReply", "DR, OOF, AutoReply", "oof"])
def test_auto_response_suppress_is_human_without_acknowledgement(value):
    verdict = classify(mail(f"X-Auto-Response-Suppress: {value}\n"))
    assert verdict.kind == "human"
    assert verdict.rule == "auto_response_suppress"
    assert "X-Auto-Response-Suppress" in verdict.reason
    assert verdict.suppress_autoreply and not verdict.may_acknowledge


def test_auto_response_suppress_of_receipts_only_still_acknowledged():
    verdict = classify(mail("X-Auto-Response-Suppress: DR, RN, NRN\n"))
    assert verdict.kind == "human" and verdict.may_acknowledge


@pytest.mark.parametrize("subject", ["Out of office tomorrow, printer broken",
                                     "Vacation request for next week", "Auto loan form"])
def test_human_subjects_that_mention_absence_stay_human(subject):
    base = PLAIN.replace("Subject: Printer broken", f"Subject: {subject}")
    assert classify(mail(base=base)).kind == "human"


# --- the rules, one by one -------------------------------------------------------------------

@pytest.mark.parametrize("header, kind, rule", [
    ("Auto-Submitted: auto-replied\n", "auto_reply", "auto_submitted_replied"),
    ("auto-submitted: Auto-Replied (vacation)\n", "auto_reply", "auto_submitted_replied"),
    ("Auto-Submitted: auto-generated\n", "auto_generated", "auto_submitted"),
    ("Auto-Submitted: auto-notified; owner-email=x@y\n", "auto_generated", "auto_submitted"),
    ("X-Autoreply: yes\n", "auto_reply", "autoreply_header"),
    ("X-Autorespond: on vacation\n", "auto_reply", "autoreply_header"),
    ("Precedence: auto_reply\n", "auto_reply", "precedence_auto_reply"),
    ("Precedence: bulk\n", "auto_generated", "precedence_bulk"),
    ("precedence: BULK\n", "auto_generated", "precedence_bulk"),
    ("PRECEDENCE: Junk\n", "auto_generated", "precedence_bulk"),
    ("Precedence: list\n", "auto_generated", "precedence_bulk"),
    ("List-Id: Staff news <news.example.org>\n", "auto_generated", "list_headers"),
    ("list-unsubscribe: <mailto:leave@example.org>\n", "auto_generated", "list_headers"),
    ("Return-Path: <>\n", "auto_generated", "empty_return_path"),
])
def test_header_rules(header, kind, rule):
    verdict = classify(mail(header))
    assert (verdict.kind, verdict.rule) == (kind, rule)
    assert verdict.suppress_autoreply and not verdict.may_acknowledge
    assert verdict.reason


def test_reason_names_rfc3834():
    assert classify(mail("Auto-Submitted: auto-replied\n")).reason == "Auto-Submitted: auto-replied (RFC 3834)"


def test_precedence_reason_names_value_in_lowercase():
    assert classify(mail("Precedence: BULK\n")).reason == "Precedence: bulk"


@pytest.mark.parametrize("subject", ["Automatic reply: Printer broken", "AUTO: Anna is out of the office",
                                     "Out of Office: Printer broken", "Re: Printer (Automatic Response)",
                                     "[Automatyczna odpowiedź] test", "Autosvar: Printer broken",
                                     "Abwesenheitsnotiz: Drucker"])
def test_out_of_office_subjects(subject):
    base = PLAIN.replace("Subject: Printer broken", f"Subject: {subject}")
    verdict = classify(mail(base=base))
    assert (verdict.kind, verdict.rule) == ("auto_reply", "out_of_office_subject")


def test_loop_marker_header_any_case():
    verdict = classify(mail("x-mailticket-loop: desk-1\n"))
    assert (verdict.kind, verdict.rule) == ("loop", "loop_marker")
    assert "X-Mailticket-Loop" in verdict.reason


def test_custom_loop_marker():
    message = mail("X-Our-Desk: yes\n")
    assert classify(message).kind == "human"
    assert classify(message, loop_marker="X-Our-Desk").kind == "loop"


def test_own_address_sender_is_loop():
    base = PLAIN.replace("anna@example.org", "Support@Example.com")
    verdict = classify(mail(base=base), own_addresses=frozenset({"support@example.com"}))
    assert (verdict.kind, verdict.rule) == ("loop", "own_address")


def test_loop_marker_wins_over_list_header():
    assert classify(mail("List-Id: <x.example.org>\nX-Mailticket-Loop: 1\n")).rule == "loop_marker"


MAILER_DAEMON_TEXT = """From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: support@example.com
Subject: Mail delivery failed: returning message to sender
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  gone@example.net
    SMTP error from remote mail server after RCPT TO:<gone@example.net>:
    550 5.1.1 User unknown
"""


@both_policies
def test_mailer_daemon_sender_is_bounce(compat32):
    verdict = classify(parse(MAILER_DAEMON_TEXT, compat32=compat32))
    assert verdict.kind == "bounce" and not verdict.may_acknowledge


def test_mailer_daemon_without_failure_text_is_still_not_human():
    verdict = classify(parse("From: MAILER-DAEMON@mx.example.org\nSubject: hello\n\nhi\n"))
    assert verdict.kind == "bounce" and "MAILER-DAEMON" in verdict.reason


def test_postmaster_note_without_failure_text_is_auto_generated():
    verdict = classify(parse("From: postmaster@example.org\nSubject: Welcome\n\nYour new mailbox.\n"))
    assert (verdict.kind, verdict.rule) == ("auto_generated", "mailer_daemon")


def report(report_type: str, second_part: str) -> str:
    return (f"From: mailer@example.org\nTo: support@example.com\nSubject: Report\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type={report_type}; boundary=XX\n\n"
            f"--XX\nContent-Type: text/plain\n\nA report.\n\n--XX\n{second_part}\n--XX--\n")


DSN_FAILED = "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n" \
             "Final-Recipient: rfc822; Gone@Example.net\nAction: failed\nStatus: 5.1.1\n"
DSN_DELIVERED = DSN_FAILED.replace("failed", "delivered").replace("5.1.1", "2.0.0")


@both_policies
def test_multipart_report_delivery_status_is_bounce(compat32):
    verdict = classify(parse(report("delivery-status", DSN_FAILED), compat32=compat32))
    assert (verdict.kind, verdict.rule) == ("bounce", "bounce")
    assert "multipart/report" in verdict.reason


def test_success_report_is_auto_generated_not_bounce():
    verdict = classify(parse(report("delivery-status", DSN_DELIVERED)))
    assert (verdict.kind, verdict.rule) == ("auto_generated", "delivery_success")


@pytest.mark.parametrize("report_type, words", [("disposition-notification", "MDN"),
                                                ("feedback-report", "ARF")])
def test_other_reports_are_auto_generated(report_type, words):
    verdict = classify(parse(report(report_type, "Content-Type: text/plain\n\nx\n")))
    assert (verdict.kind, verdict.rule) == ("auto_generated", "other_report")
    assert words in verdict.reason


def test_challenge_response_is_not_a_bounce():
    text = report("delivery-status", DSN_FAILED.replace(
        "Status: 5.1.1", "Status: 4.7.0\nDiagnostic-Code: X-Boxbe-Notice; Sender not pre-approved."))
    verdict = classify(parse(text))
    assert (verdict.kind, verdict.rule) == ("auto_generated", "challenge_response")


def test_challenge_wording_from_a_person_is_human():
    verdict = classify(mail(body="The firewall change requires confirmation from my manager.\n"))
    assert verdict.kind == "human"


@pytest.mark.parametrize("sender", ["administrator@customer.example", "root@host.example",
                                    "System Administrator <it@customer.example>",
                                    "notifications@customer.example"])
def test_people_with_admin_like_addresses_are_human(sender):
    base = PLAIN.replace("Anna Svensson <anna@example.org>", sender).replace(
        "Printer broken", "My mailbox is full and mail is undeliverable")
    verdict = classify(mail(base=base, body="Mail to me bounces with 'mailbox full'. Please help.\n"))
    assert verdict.kind == "human" and verdict.may_acknowledge, verdict


# --- the table and the contract ----------------------------------------------------------------

def test_rules_have_unique_names_and_known_kinds():
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    assert {rule.kind for rule in RULES} <= {"auto_reply", "auto_generated", "bounce", "loop"}


def test_verdict_is_frozen():
    verdict = classify(mail())
    with pytest.raises(AttributeError):
        verdict.kind = "bounce"  # type: ignore[misc]


def test_a_broken_rule_is_skipped_not_raised():
    from mailticket.inbound.classify import Rule

    def explode(msg, ctx):
        raise RuntimeError("boom")

    verdict = classify(mail("List-Id: <x>\n"), rules=(Rule("explode", "loop", explode),) + RULES)
    assert verdict.rule == "list_headers"


# --- robustness --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"",
    b"\n\n",
    b"garbage without headers",
    b"Subject: =?utf-8?q?broken\nFrom: <<<@@@>>>\n\nx",
    b"From: \xe5\xe4\xf6 <a@b>\nSubject: \xff\xfe\nAuto-Submitted: \xc3\xa5\n\nbody \xff",
    b"From: a@b\nContent-Type: multipart/report; report-type=delivery-status\n\nno boundary",
    b"From: a@b\nContent-Type: multipart/mixed; boundary=Q\n\n--Q\nContent-Type: message/rfc822\n\n--Q--",
    b"Precedence:\nAuto-Submitted:\nReturn-Path:\nList-Id:\n\n",
    b"Content-Type: text/plain; charset=x-unknown-charset\nFrom: MAILER-DAEMON@x\n\n\xff\xfe",
], ids=range(9))
@both_policies
def test_never_raises_on_malformed_mail(raw, compat32):
    message = parse(raw, compat32=compat32)
    verdict = classify(message)
    assert isinstance(verdict, Verdict) and verdict.kind in {"human", "auto_reply", "auto_generated",
                                                             "bounce", "loop"}
    parse_bounce(message)


def test_header_objects_of_compat32_are_read():
    message = email.message.Message()
    message["From"] = Header("Åsa <asa@example.org>", "utf-8")
    message["Precedence"] = Header("bulk")
    message.set_payload("hello")
    assert classify(message).rule == "precedence_bulk"


def test_raw_utf8_subject_is_read():
    base = PLAIN.replace("Subject: Printer broken", "Subject: Automatisk svar: Skrivaren är trasig")
    verdict = classify(parse(base.encode("utf-8") + b"\nhej\n"))
    assert verdict.kind == "auto_reply"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Auto-Submitted", "Precedence", "List-Id", "Return-Path",
                                           "From", "Subject", "X-Autoreply", "Content-Type",
                                           "X-Auto-Response-Suppress", "X-Mailticket-Loop"]),
                          st.text(max_size=40)), max_size=6),
       st.text(max_size=200))
def test_only_plain_human_mail_may_be_acknowledged(headers, body):
    lines = "".join(f"{name}: {' '.join(value.split())}\n" for name, value in headers)
    message = parse((lines + "\n" + body).encode("utf-8", "surrogatepass"))
    verdict = classify(message)
    assert verdict.may_acknowledge == (verdict.kind == "human" and not verdict.suppress_autoreply)
    if verdict.kind != "human":
        assert verdict.suppress_autoreply


# --- line ends -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"A: 1\r\nB: 2\r\n\r\nbody\r\n", b"A: 1\rB: 2\r\rbody\r",
                                 b"A: 1\nB: 2\n\nbody\n"])
def test_normalise_line_ends(raw):
    assert normalise_line_ends(raw) == b"A: 1\nB: 2\n\nbody\n"


def test_cr_only_mail_is_classified_after_normalising():
    raw = b"From: a@example.org\rPrecedence: bulk\rSubject: x\r\rbody\r"
    assert classify(parse(normalise_line_ends(raw))).rule == "precedence_bulk"


# --- corpora: every mail goes through without an exception -----------------------------------

ROBUSTNESS = ["cpython-test_email", "ruby-mail", "flanker", "spamscope-mail-parser",
              "nodemailer-mailparser", "django-helpdesk", "mimekit", "roundup", "realclients"]


def _robustness_files() -> list[Path]:
    if not CORPORA.is_dir():
        return []
    files = []
    for folder in ROBUSTNESS:
        files.extend(p for p in sorted((CORPORA / folder).rglob("*"))
                     if p.is_file() and p.suffix.lower() in {".eml", ".msg", ".txt", ""}
                     and p.stat().st_size < 5_000_000)
    return files


@needs_corpora
def test_robustness_corpora_never_raise():
    files = _robustness_files()
    assert len(files) > at_least(100, 100)
    for path in files:
        message = load_message(path)
        assert isinstance(classify(message), Verdict), path
        parse_bounce(message)


def _roundup_auto_cases() -> list[tuple[str, bool]]:
    labels = CORPORA / "roundup" / "labels.json"
    if not labels.is_file():
        return []
    import json
    cases = json.loads(labels.read_text())["cases"]
    return [(c["file"], c["expect"].startswith("IGNORE")) for c in cases
            if c["expect"].startswith(("IGNORE", "process normally"))]


@needs_corpora
def test_roundup_labelled_auto_mail():
    """roundup's labelled samples: Auto-Generated and an 'Out of office AutoReply' subject are
    ignored, 'Auto-submitted:   No  ' is processed like a human mail."""
    cases = _roundup_auto_cases()
    assert len(cases) == 3
    for name, ignored in cases:
        verdict = classify(load_message(CORPORA / "roundup" / name))
        assert (not verdict.may_acknowledge) == ignored, (name, verdict)
        assert (verdict.kind == "human") == (not ignored), (name, verdict)


# ---------------------------------------------------------------- answers remembered within classify

@needs_corpora
def test_remembered_answers_change_no_verdict_on_any_corpus_mail():
    """classify remembers each header, address and part answer for one mail (mailview.memoised);
    every rule gives the same answer as when each question is asked afresh."""
    from mailticket.inbound.classify import Context, _classify
    paths = sorted(p for p in CORPORA.rglob("*") if p.is_file() and p.suffix in (".eml", ".txt", ".msg", ""))
    assert len(paths) > at_least(500, 400)
    checked = 0
    for path in paths:
        try:
            msg = load_message(path)
        except Exception:  # noqa: BLE001 - not a mail (a README, an expectations file)
            continue
        fresh = _classify(msg, Context(loop_marker="X-Mailticket-Loop", own_addresses=frozenset()), RULES)
        assert classify(msg) == fresh, path
        checked += 1
    assert checked > at_least(500, 400)


def test_a_remembered_list_is_handed_out_as_a_copy_and_forgotten_after_the_block():
    from mailticket.inbound import mailview as mv
    msg = parse("From: Anna <anna@customer.example>\nTo: support@example.com\nSubject: hi\n\nbody\n")
    with mv.memoised():
        first = mv.addresses(msg, "from")
        first.append("mallory@evil.example")
        assert mv.addresses(msg, "from") == ["anna@customer.example"]
        with mv.memoised():  # a nested block keeps what the outer one knows
            assert mv.header(msg, "subject") == "hi"
        msg.replace_header("Subject", "changed")
        assert mv.header(msg, "subject") == "hi", "inside the block the first answer stands"
    assert mv.header(msg, "subject") == "changed", "after the block every question is asked afresh"


# --- mailview reads the headers once per mail: the same answers as a pass per question ----------

def _values_by_scan(msg, name):
    """header_values as it was: a pass over every header for each name asked."""
    from mailticket.inbound.mailview import _as_text, _decode_words
    return [_decode_words(_as_text(v)) for k, v in msg.raw_items() if str(k).strip().lower() == name.lower()]


_HEADER_NAMES = ["From", "from", "FROM", "Auto-Submitted", "X-Autoreply", "Precedence", "List-Id", "Subject",
                 "Return-Path", "X-Empty", "Received", "X-Spaced "]


@given(st.lists(st.tuples(st.sampled_from(_HEADER_NAMES), st.sampled_from(
    ["", "a@b.example", "auto-replied", "=?utf-8?q?caf=C3=A9?=", "bulk", "<list.example>", "x\n y"])), max_size=12),
    st.sampled_from(["policy", "compat32"]))
def test_header_reads_give_what_a_pass_per_name_gave(headers, policy_name):
    import email.policy

    from mailticket.inbound import mailview as mv
    text = "".join(f"{k}: {v}\n" for k, v in headers) + "\nbody\n"
    msg = email.message_from_string(text, policy=email.policy.default if policy_name == "policy" else email.policy.compat32)
    for memo in (False, True):
        with (mv.memoised() if memo else contextlib.nullcontext()):
            for name in {n.strip() for n in _HEADER_NAMES} | {"X-Missing"}:
                for asked in (name, name.upper(), name.lower()):
                    assert mv.header_values(msg, asked) == _values_by_scan(msg, asked)
                    assert mv.has_header(msg, asked) == any(str(k).strip().lower() == asked.lower()
                                                            for k, _ in msg.raw_items())


def test_a_mail_whose_headers_cannot_be_read_has_none():
    from mailticket.inbound import mailview as mv

    class Broken(Message):
        def raw_items(self):
            raise ValueError("unreadable")
    for memo in (False, True):
        with (mv.memoised() if memo else contextlib.nullcontext()):
            assert mv.header_values(Broken(), "from") == [] and not mv.has_header(Broken(), "from")


def _undo_by_loop(text):
    """mailview._undo_surrogates as it was: a Python loop over each character."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _outcome(f, text):
    try:
        return f(text)
    except Exception as exc:  # noqa: BLE001 - the kind of failure is compared
        return type(exc)


@given(st.text(alphabet=st.sampled_from(["a", "é", " ", "\udc80", "\udcc3", "\udca9", "\udcff", "\udc7f", "\ud800", "€"]),
               max_size=12))
def test_raw_8bit_in_a_header_is_read_as_before(text):
    """Surrogate escapes (raw 8-bit header bytes) are found by a search, as the loop over each
    character found them: read as UTF-8, else Latin-1; any other text is left as it is."""
    from mailticket.inbound.mailview import _undo_surrogates
    assert _outcome(_undo_surrogates, text) == _outcome(_undo_by_loop, text)


# --- mailview.content_type reads a well-formed value from its raw text: the stdlib's answer ------

def _content_type_by_stdlib(msg):
    """mailview.content_type as it was: the policy's header object, or text/plain if it fails."""
    try:
        return msg.get_content_type().lower()
    except Exception:  # noqa: BLE001
        return "text/plain"


def _as_the_daemon_reads(raw: bytes):
    from mailticket.inbound.parse import parse_tree, use_default_policy
    msg = parse_tree(raw, [])
    use_default_policy(msg)  # classify reads what parse_mail hands on: policy.default
    return msg


_CT_TOKENS = st.text(st.sampled_from(list("!#$%&'*+.^`|~09AZaz_-")), min_size=1, max_size=3) | st.sampled_from(
    ["text", "plain", "HTML", "multipart", "report", "report-type", "delivery-status", "charset", "boundary"])
_CT_QUOTED = st.lists(st.sampled_from([chr(c) for c in range(0x20, 0x7f)] + ["=?", "\\\"", "å"]), max_size=6).map("".join)
_CT_SPACE = st.sampled_from(["", " ", "\t", "\r\n ", "\n\t", "  "])


@st.composite
def _content_type_values(draw):
    value = draw(_CT_SPACE) + draw(_CT_TOKENS) + draw(st.sampled_from(["/", "/", "", "//", "/ "])) + draw(_CT_TOKENS)
    for _ in range(draw(st.integers(0, 3))):
        quoted = draw(st.booleans())
        rfc2231 = st.sampled_from(["'", "''", "utf-8''%41", "us-ascii'en'x"])  # read specially after a name*
        param = f'"{draw(_CT_QUOTED | rfc2231)}"' if quoted else draw(_CT_TOKENS | rfc2231)
        value += draw(_CT_SPACE) + draw(st.sampled_from([";", ";", "", "(c);"])) + draw(_CT_SPACE) + \
            draw(_CT_TOKENS) + draw(st.sampled_from(["=", "*=", "*=", "*0*=", " = "])) + param
    return value + draw(st.sampled_from(["", ";", " ;", "; ", " (comment)"])) + draw(_CT_SPACE)


@settings(max_examples=400)
@given(_content_type_values())
@example("a/b; x*=\"'\"")  # RFC 2231 read into a quoted value: the stdlib fails, so text/plain
@example("text/html;\r\n charset=\"utf-8\"")
@example("text/plain; name=\"=?utf-8?q?a?=\"")
def test_a_content_type_is_what_the_stdlib_reads(value):
    """Well-formed or not, folded or not, RFC 2231 or quoted: the answer of the policy.default
    message that classify reads, or text/plain where the stdlib fails."""
    from mailticket.inbound import mailview as mv
    msg = _as_the_daemon_reads(f"Content-Type: {value}\nSubject: x\n\nbody\n".encode("utf-8", "surrogateescape"))
    want = _content_type_by_stdlib(msg)
    for memo in (False, True):
        with (mv.memoised() if memo else contextlib.nullcontext()):
            assert mv.content_type(msg) == want


def test_every_part_of_every_corpus_mail_has_the_stdlibs_content_type():
    from mailticket.inbound import mailview as mv
    from tests.harness import corpus_files_or_skip
    parts = 0
    for path in corpus_files_or_skip():
        msg = _as_the_daemon_reads(path.read_bytes())
        with mv.memoised():
            for part in mv.walk(msg):
                assert mv.content_type(part) == _content_type_by_stdlib(part), path
                parts += 1
    assert parts > at_least(5000, 2000)
