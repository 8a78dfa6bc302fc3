"""parse_bounce(): RFC 3464 reports, free-text MTA notices, and the corpus thresholds."""

from __future__ import annotations

import email
import email.policy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.corpora_bounces import load_message, score_bounces
from bench.corpora_path import corpus_files, find_corpora
from mailticket.inbound.bounces import Bounce, parse_bounce
from mailticket.inbound.classify import classify
from tests.harness import at_least

CORPORA = find_corpora()
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"corpora not found at {CORPORA} "
                                   "(set MAILTICKET_CORPORA)")
both_policies = pytest.mark.parametrize("compat32", [False, True], ids=["default", "compat32"])


def parse(text: str, *, compat32: bool = False):
    raw = text.encode("utf-8")
    return email.message_from_bytes(raw) if compat32 else email.message_from_bytes(
        raw, policy=email.policy.default)


def dsn(action: str = "failed", status: str = "5.1.1", original: str = "", to: str = "support@example.com",
        returned_part: str = "Content-Type: message/rfc822\n\nMessage-ID: <t42.abc@desk.example.com>\n"
                             "From: support@example.com\nTo: gone@example.net\nSubject: [SD-42]\n\nhi\n"):
    return f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: {to}
Delivered-To: bounces+T42.SIG@desk.example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

{original}Final-Recipient: rfc822; Gone@Example.NET
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected

--B
{returned_part}
--B--
"""


@both_policies
def test_rfc3464_report_is_read(compat32):
    bounce = parse_bounce(parse(dsn(), compat32=compat32))
    assert bounce == Bounce(
        recipients=["gone@example.net"], temporary=False, status="5.1.1",
        diagnostic="550 5.1.1 <gone@example.net>: Recipient address rejected",
        original_message_id="<t42.abc@desk.example.com>", return_path_token="T42.SIG")


def test_delayed_report_is_temporary():
    bounce = parse_bounce(parse(dsn(action="delayed", status="4.4.1")))
    assert bounce.temporary and bounce.status == "4.4.1"


def test_original_recipient_is_preferred():
    bounce = parse_bounce(parse(dsn(original="Original-Recipient: rfc822; Anna@Example.org\n")))
    assert bounce.recipients == ["anna@example.org"]


def test_original_message_id_from_rfc822_headers_part():
    part = "Content-Type: text/rfc822-headers\n\nMessage-ID: <hdr.1@desk.example.com>\nSubject: x\n"
    assert parse_bounce(parse(dsn(returned_part=part))).original_message_id == "<hdr.1@desk.example.com>"


def test_token_from_to_header_wins_and_keeps_case():
    bounce = parse_bounce(parse(dsn(to="Desk <bounces+AbC-9@desk.example.com>")))
    assert bounce.return_path_token == "AbC-9"


def test_no_token_without_plus_address():
    text = dsn().replace("Delivered-To: bounces+T42.SIG@desk.example.com\n", "")
    assert parse_bounce(parse(text)).return_path_token is None


def test_success_report_is_not_a_bounce():
    assert parse_bounce(parse(dsn(action="delivered", status="2.0.0"))) is None


QMAIL = """From: MAILER-DAEMON@mail.example.net
To: bounces+T7@desk.example.com
Subject: failure notice

Hi. This is the qmail-send program at mail.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<Nobody@Example.net>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <bounces+T7@desk.example.com>
Message-ID: <t7.x@desk.example.com>
From: support@example.com
To: Nobody@Example.net
Subject: [SD-7] Your ticket

Hello
"""

EXIM = """From: Mail Delivery System <Mailer-Daemon@relay.example.net>
To: support@example.com
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  someone@example.net
    retry timeout exceeded

------ This is a copy of the message, including all the headers. ------

Message-ID: <t8.y@desk.example.com>
From: support@example.com
To: someone@example.net, list@lists.example.org
"""

SENDMAIL = """From: Mail Delivery Subsystem <MAILER-DAEMON@example.net>
To: support@example.com
Subject: Returned mail: see transcript for details

The original message was received at Tue, 14 Oct 2014 02:34:14 GMT

   ----- The following addresses had permanent fatal errors -----
missing@example.net
    (reason: 550 5.1.1 User unknown)

   ----- Transcript of session follows -----
550 5.1.1 missing@example.net... User unknown
"""

WARNING = """From: postmaster@example.net
To: support@example.com
Subject: Warning: message still undelivered after 4 hours

THIS IS A WARNING MESSAGE ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE.
Your message to slow@example.net has not yet been delivered.
It will be retried for 5 days.

<slow@example.net>: connection timed out
"""


@pytest.mark.parametrize("text, recipients, temporary, message_id, token", [
    (QMAIL, ["nobody@example.net"], False, "<t7.x@desk.example.com>", "T7"),
    (EXIM, ["someone@example.net"], False, "<t8.y@desk.example.com>", None),
    (SENDMAIL, ["missing@example.net"], False, None, None),
    (WARNING, ["slow@example.net"], True, None, None),
], ids=["qmail", "exim", "sendmail", "warning"])
@both_policies
def test_free_text_notices(text, recipients, temporary, message_id, token, compat32):
    message = parse(text, compat32=compat32)
    assert classify(message).kind == "bounce"
    bounce = parse_bounce(message)
    assert bounce.recipients == recipients
    assert bounce.temporary is temporary
    assert bounce.original_message_id == message_id
    assert bounce.return_path_token == token


def test_sendmail_status_and_diagnostic():
    bounce = parse_bounce(parse(SENDMAIL))
    assert bounce.status == "5.1.1"
    assert "550" in bounce.diagnostic


@pytest.mark.parametrize("text", [
    "From: anna@example.org\nSubject: Printer\n\nThe printer could not be delivered to floor 2.\n",
    "From: anna@example.org\nSubject: Out of office\nAuto-Submitted: auto-replied\n\nAway.\n",
    "",
    "From: MAILER-DAEMON@x\nContent-Type: multipart/report; report-type=delivery-status\n\nbroken",
])
def test_non_bounces_and_broken_input(text):
    message = parse(text)
    result = parse_bounce(message)
    if classify(message).kind != "bounce":
        assert result is None
    else:
        assert isinstance(result, Bounce)


def test_human_mail_mentioning_delivery_is_not_a_bounce():
    message = parse("From: anna@example.org\nSubject: Printer\n\nThe toner could not be delivered.\n")
    assert parse_bounce(message) is None and classify(message).kind == "human"


# --- corpora ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scores():
    if not CORPORA.is_dir():
        pytest.skip(f"corpora not found at {CORPORA} (set MAILTICKET_CORPORA)")
    return {row["corpus"]: row for row in score_bounces(CORPORA)}


# flufl.bounce (LGPL) is scored only with the full corpora, not on the share bundled with the tests
HAS_FLUFL = (CORPORA / "flufl.bounce").is_dir()


@needs_corpora
@pytest.mark.parametrize("corpus", ["sisimai (bsd+not)", "sisimai dos (CRLF)", "sisimai mac (CR)",
                                    "perl-bounceparser"] + ["flufl.bounce"] * HAS_FLUFL)
def test_at_least_98_percent_of_bounces_recognised(scores, corpus):
    row = scores[corpus]
    assert row["bounces"] > 0
    assert row["bounces_recognised_pct"] >= 98.0, row["missed"]


@needs_corpora
@pytest.mark.parametrize("corpus", ["sisimai (bsd+not)", "perl-bounceparser"])
def test_at_most_2_percent_of_non_bounces_taken_for_bounces(scores, corpus):
    row = scores[corpus]
    assert row["non_bounces"] >= 8
    assert row["non_bounces_misread_pct"] <= 2.0, row["misread"]


@needs_corpora
@pytest.mark.parametrize("corpus", ["sisimai (bsd+not)", "perl-bounceparser"])
def test_every_vacation_reply_is_automatic(scores, corpus):
    row = scores[corpus]
    assert row["vacations"] >= at_least(4, 3)
    assert row["vacations_recognised_pct"] == 100.0


@needs_corpora
def test_extraction_figures_do_not_regress(scores):
    if HAS_FLUFL:
        assert scores["flufl.bounce"]["addresses_exact_pct"] >= 92.0
        assert scores["flufl.bounce"]["temporary_right_pct"] >= 95.0
    assert scores["perl-bounceparser"]["addresses_exact_pct"] >= 95.0
    assert scores["sisimai (bsd+not)"]["status_right_pct"] >= 90.0
    assert scores["sisimai (bsd+not)"]["recipient_count_right_pct"] >= 85.0


@needs_corpora
def test_no_vacation_or_challenge_is_acknowledged():
    labels = json.loads((CORPORA / "perl-bounceparser" / "expected.json").read_text())
    negatives = [k for k, v in labels.items() if v.get("is_bounce") is False]
    assert len(negatives) >= 8
    for key in negatives:
        verdict = classify(load_message(CORPORA / "perl-bounceparser" / key))
        assert not verdict.may_acknowledge, (key, verdict)


@needs_corpora
def test_delay_warning_is_a_temporary_bounce():
    """perl-bounceparser calls warning-8 'not a bounce'; like flufl.bounce we report it as a
    temporary failure, so the ticket shows a delay and no one resends."""
    message = load_message(CORPORA / "perl-bounceparser" / "t/corpus/warning-8.msg")
    assert classify(message).kind == "bounce"
    assert parse_bounce(message).temporary is True


@needs_corpora
def test_perl_original_message_ids():
    labels = json.loads((CORPORA / "perl-bounceparser" / "expected.json").read_text())
    cases = {k: v["orig_message_id"] for k, v in labels.items() if "orig_message_id" in v}
    assert cases
    for key, expected in cases.items():
        found = parse_bounce(load_message(CORPORA / "perl-bounceparser" / key)).original_message_id
        assert found.strip("<>") == expected.strip("<>")


@needs_corpora
def test_token_of_signed_return_address_in_real_bounce():
    message = load_message(CORPORA / "perl-bounceparser" / "t/corpus/warning-8.msg")
    assert parse_bounce(message).return_path_token == "6D45B302-E65D-11DE-A26F-A183DD31F8F5"


@pytest.mark.parametrize("text", [
    "From: anna@example.org\nSubject: Fwd: Mail delivery failed: returning message to sender\n\n"
    "Why does this happen?\n\n---------- Forwarded message ---------\n" + EXIM.split("\n\n", 1)[1],
    "From: anna@example.org\nUser-Agent: Mozilla Thunderbird\nSubject: Mail delivery failed\n\n"
    "All my mails to the boss come back with 'user unknown'. Please help.\n",
])
def test_person_writing_about_a_bounce_gets_a_ticket(text):
    message = parse(text)
    verdict = classify(message)
    assert verdict.kind == "human" and verdict.may_acknowledge, verdict
    assert parse_bounce(message) is None


# --- _cut_original looks for its patterns' words first: the same cut ---------------------------

def _cut_by_patterns(text: str) -> str:
    from mailticket.inbound import bounces
    for pattern in (bounces._ORIGINAL_MARKERS, bounces._ORIGINAL_HEADER_BLOCK):
        marker = pattern.search(text)
        if marker:
            text = text[:marker.start()]
    return text


_NOTICE_PIECES = ["Below this line is a copy of the message.\n", "----- Original Message -----\n",
                  "--- The text you sent follows:\n", "RETURNED MAIL FOLLOWS\n", "the header and first 20 lines follows\n",
                  "Original message headers:\n", "Received: from mx.example\n", "return-path: <a@b>\n",
                  "Content-Type: message/rfc822\n", "CONTENT-TYPE:text/rfc822-headers\n", "Your message reads\n",
                  "Delivery failed.\n", "\n", "  ", "mail ", "Mail Delivery System\n", "Återvänt meddelande\n",
                  "Below this line is a copy of the meſſage\n", "the text you ſent follows\n", "RETURNED MAİL FOLLOWS\n",
                  "Returned maıl follows\n", "Received: \u212a\n"]


@given(st.lists(st.sampled_from(_NOTICE_PIECES) | st.text(max_size=15), max_size=25).map("".join))
def test_the_original_is_cut_where_the_patterns_alone_cut_it(text):
    """ASCII texts and texts with the letters that Python's case-insensitive match takes for
    ASCII ones (ſ for s, İ and ı for i: a marker spelt with them holds none of the words) alike."""
    from mailticket.inbound.bounces import _cut_original
    assert _cut_original(text) == _cut_by_patterns(text)


@needs_corpora
def test_the_original_is_cut_as_before_in_every_corpus_mail():
    from mailticket.inbound.bounces import _cut_original
    files = corpus_files(CORPORA, max_size=2_000_000)
    assert len(files) > at_least(1000, 900)
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")[:50_000]
        assert _cut_original(text) == _cut_by_patterns(text), path
