"""Pure pieces of admin safety at intake: the spam verdict table, the sender recovery order, the
loop headers of other systems, junk before the header block; and ``[spam] trust_headers = false``."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from mailticket.config import build_config
from mailticket.errors import ConfigError, QuarantineError
from mailticket.inbound.classify import FOREIGN_LOOP_HEADERS, classify
from mailticket.inbound.parse import parse_mail
from mailticket.inbound.rawmail import JUNK_LINES
from mailticket.inbound.senders import ORDER, recover_sender
from mailticket.inbound.spam import VERDICTS, spam_verdict
from mailticket.models import InboundMail, Ticket
from tests.harness import make_mail
from tests.test_conversations_agents import Bench


def msg(text: str):
    return email.message_from_string(text, policy=policy.default)


@pytest.mark.parametrize("header, spam", [
    ("X-Spam-Flag: YES", True), ("X-Spam-Flag: yes", True), ("X-Spam-Flag: NO", False),
    ("X-Spam-Status: Yes, score=7.1 required=5.0", True), ("X-Spam-Status: No, score=4.9 required=5.0", False),
    ("X-Spam-Status: Yesterday", False), ("X-Spam: Yes", True), ("X-Spam: no", False),
    ("X-MS-Exchange-Organization-SCL: 5", True), ("X-MS-Exchange-Organization-SCL: 9", True),
    ("X-MS-Exchange-Organization-SCL: 4", False), ("X-MS-Exchange-Organization-SCL: -1", False),
    ("X-MS-Exchange-Organization-SCL: high", False), ("X-Spam-Level: *******", False),
])
def test_spam_verdicts(header, spam):
    assert (spam_verdict(msg(f"{header}\nFrom: a@b.example\n\nhi")) is not None) is spam


def test_only_the_topmost_verdict_counts():
    """Our filter writes on top; a 'Yes' the sender wrote lower down does not count, nor does their 'No'."""
    assert spam_verdict(msg("X-Spam-Flag: NO\nX-Spam-Flag: YES\nFrom: a@b.example\n\nhi")) is None
    assert spam_verdict(msg("X-Spam-Flag: YES\nX-Spam-Flag: NO\nFrom: a@b.example\n\nhi")) is not None


def test_every_verdict_names_its_filter():
    assert all(v.filter and v.note and v.header == v.header.lower() for v in VERDICTS)
    assert all(source for _, _, source in FOREIGN_LOOP_HEADERS)


def test_trust_headers_false_makes_spam_a_ticket(tmp_path):
    bench = Bench(tmp_path, extra={"spam": {"trust_headers": False}})
    outcome = bench.process(make_mail(headers={"X-Spam-Flag": "YES"}))
    assert outcome.state == "processed" and Ticket.get_by_id(outcome.ticket)
    assert bench.sent(kind="acknowledgement")


def test_spam_is_not_acknowledged_nor_alerted(tmp_path):
    bench = Bench(tmp_path)
    outcome = bench.process(make_mail(headers={"X-Spam": "Yes"}))
    assert (outcome.state, outcome.ticket) == ("spam", None)
    assert bench.sent() == [] and InboundMail.get().state == "spam"


@pytest.mark.parametrize("value", ["maybe", 1, "yes"])
def test_trust_headers_must_be_a_boolean(value):
    with pytest.raises(ConfigError) as caught:
        build_config({"spam": {"trust_headers": value}}, "f.toml", Path("."))
    assert caught.value.key == "spam.trust_headers"


def test_an_unknown_spam_key_is_named():
    with pytest.raises(ConfigError) as caught:
        build_config({"spam": {"trust": True}}, "f.toml", Path("."))
    assert caught.value.key == "spam.trust"


# ---------------------------------------------------------------- sender recovery

@pytest.mark.parametrize("headers, source, address", [
    ("From: \nSender: s@x.example\nReply-To: r@x.example\nReturn-Path: <p@x.example>", "Sender", "s@x.example"),
    ("From: <>\nReply-To: r@x.example\nReturn-Path: <p@x.example>", "Reply-To", "r@x.example"),
    ("From: Name Only\nReturn-Path: <p@x.example>", "Return-Path", "p@x.example"),
    ("From: Name Only\nFrom: Second <f2@x.example>\nSender: s@x.example", "second From", "f2@x.example"),
    ("From: Loose loose@x.example\nSender: s@x.example", "From", "loose@x.example"),
])
def test_recovery_order(headers, source, address):
    found = recover_sender(msg(headers + "\n\nhi"))
    assert (found.source, found.sender.address, found.sender.defective) == (source, address, True)
    assert source in found.reason


def test_recovery_order_is_the_documented_one():
    assert ORDER == ("From", "second From", "Sender", "Reply-To", "Return-Path")


def test_nothing_usable_names_what_was_tried():
    found = recover_sender(msg("From: Nobody\nReturn-Path: <>\n\nhi"))
    assert found.sender is None
    assert found.reason == ("no usable sender address: From 'Nobody' has no usable address, and none in "
                            "second From, Sender, Reply-To, Return-Path")


def test_a_from_line_after_a_broken_header_line_is_found_in_the_raw_mail():
    raw = b"Received: x\r\nbroken line\r\nFrom: Real <real@x.example>\r\n\r\nhi\r\n"
    assert recover_sender(parse_mail(raw).message, raw).sender.address == "real@x.example"


# ---------------------------------------------------------------- loop headers of other systems

@pytest.mark.parametrize("name, _, source", FOREIGN_LOOP_HEADERS)
def test_each_loop_header_suppresses_the_acknowledgement(name, _, source):
    verdict = classify(msg(f"{name}: something\nFrom: a@b.example\nSubject: hi\n\nhello"))
    assert verdict.kind == "human" and not verdict.may_acknowledge and name in verdict.reason


def test_x_otrs_loop_no_is_no_loop():
    assert classify(msg("X-OTRS-Loop: no\nFrom: a@b.example\n\nhello")).may_acknowledge


# ---------------------------------------------------------------- junk before the header block

def test_junk_lines_before_a_header_block_are_skipped_and_noted():
    parsed = parse_mail(b"Forwarded as attachment:\r\n\r\nFrom: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n")
    assert (parsed.sender.address, parsed.subject, parsed.text.strip()) == ("a@b.example", "hi", "body")
    assert any("before the header block skipped" in n for n in parsed.notes)


def test_a_byte_order_mark_before_the_headers_is_removed():
    assert parse_mail(b"\xef\xbb\xbfFrom: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n").subject == "hi"


@pytest.mark.parametrize("raw", [
    b"Just some text\r\nwith no headers at all\r\n",
    b"x\r\n" * JUNK_LINES + b"From: a@b.example\r\nSubject: too late\r\n\r\nbody\r\n",
    b"text\r\nFoo: bar\r\nBaz: qux\r\n\r\nno mail header among them\r\n",
])
def test_text_without_a_real_header_block_is_still_not_a_mail(raw):
    with pytest.raises(QuarantineError, match="not a mail"):
        parse_mail(raw)
