"""Reply/quote splitting: corpus thresholds, per-case time limit, and focused behaviour."""
from __future__ import annotations

import time
from email import policy
from email.parser import BytesParser

import pytest
from hypothesis import given, settings, strategies as st

from bench.corpora_quotes import CORPORA, Case, github_timing_cases, matches, run_case
from mailticket.inbound.quote_lines import classify
from mailticket.inbound.quotes import Reply, embedded_sender, split_reply, split_reply_html
from bench.corpora_path import find_corpora

THRESHOLD = 90.0      # per-corpus percentage of exact matches
CASE_LIMIT_S = 1.0    # no single case may take longer



CORPORA_DIR = find_corpora()
needs_corpora = pytest.mark.skipif(
    not CORPORA_DIR.is_dir(),
    reason=f"mail corpora not found at {CORPORA_DIR} (set MAILTICKET_CORPORA)",
)


def _cases(name: str) -> list[Case]:
    return list(CORPORA[name](CORPORA_DIR))


# --- corpora -------------------------------------------------------------------------------

@needs_corpora
@pytest.mark.parametrize("name", sorted(CORPORA))
def test_corpus_exact_matches_reach_threshold(name):
    cases = _cases(name)
    assert cases, f"no cases loaded for {name} from {CORPORA_DIR}"
    missed = [case.name for case in cases if not matches(case, run_case(case)[0])]
    percent = 100.0 * (len(cases) - len(missed)) / len(cases)
    assert percent >= THRESHOLD, f"{name}: {percent:.1f}% exact, missed {missed}"


@needs_corpora
@pytest.mark.parametrize("name", sorted(CORPORA) + ["github-all-bodies"])
def test_every_corpus_case_takes_under_a_second(name):
    cases = list(github_timing_cases(CORPORA_DIR)) if name == "github-all-bodies" else _cases(name)
    slow = []
    for case in cases:
        _, seconds = run_case(case)
        if seconds >= CASE_LIMIT_S:
            slow.append((case.name, round(seconds, 3)))
    assert not slow, f"{name}: cases over {CASE_LIMIT_S}s: {slow}"


def _realclient_replies():
    if not CORPORA_DIR.is_dir():
        return []
    return sorted((CORPORA_DIR / "realclients" / "out").glob("*/*.eml"))


@needs_corpora
@pytest.mark.parametrize("path", _realclient_replies(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_client_replies_keep_only_the_typed_text(path):
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    plain = message.get_body(preferencelist=("plain",))
    if plain is not None:
        reply = split_reply(plain.get_content())
    else:
        reply = split_reply_html(message.get_body(preferencelist=("html",)).get_content())
    assert reply.new, path
    assert not any(line.startswith(">") for line in reply.new.splitlines()), reply.new
    for quoted_phrase in ("Hello Alice", "Mailticket Support", "wrote:", "Forwarded", "Original Message"):
        assert quoted_phrase not in reply.new, (path, reply.new)


# --- the Reply value -----------------------------------------------------------------------

def test_reply_keeps_full_text_and_what_was_removed():
    text = "Thanks, fixed.\n\nOn Mon, 2 Mar 2026 at 10:00, Bob <bob@example.com> wrote:\n> Printer jammed\n"
    reply = split_reply(text)
    assert reply == Reply(
        new="Thanks, fixed.",
        quoted="On Mon, 2 Mar 2026 at 10:00, Bob <bob@example.com> wrote:\n> Printer jammed",
        full=text,
    )


def test_reply_is_frozen():
    reply = split_reply("hi")
    with pytest.raises(AttributeError):
        reply.new = "changed"


@pytest.mark.parametrize("text", ["", "   ", "\n\n\r\n", "\t"])
def test_empty_reply_gives_empty_new_text(text):
    reply = split_reply(text)
    assert reply.new == "" and reply.full == text


def test_reply_that_is_only_a_quoted_chain_has_no_new_text():
    text = "> On Mon, 2 Mar 2026, Bob <b@x.se> wrote:\n>> On Sun, 1 Mar 2026, Ann <a@x.se> wrote:\n>>> hi\n"
    assert split_reply(text).new == ""


def test_plain_quote_without_any_reply_is_kept():
    assert split_reply("> Only a quote.\n").new == "> Only a quote."


# --- quote headers -------------------------------------------------------------------------

def test_swedish_attribution_line():
    text = "Tack, nu fungerar skrivaren.\n\nDen 3 mars 2026 skrev Anna <a@b>:\n> Skrivaren är trasig.\n"
    reply = split_reply(text)
    assert reply.new == "Tack, nu fungerar skrivaren."
    assert reply.quoted.startswith("Den 3 mars 2026 skrev Anna <a@b>:")


def test_swedish_attribution_wrapped_over_two_lines():
    text = "Hej!\n\nDen 3 mars 2026 kl. 10:15 skrev Anna Andersson <\nanna.andersson@example.se>:\n\n> Fråga\n"
    assert split_reply(text).new == "Hej!"


def test_outlook_swedish_header_block():
    text = (
        "Hej Anna,\n\nJag har startat om servern.\n\nMvh\nPer\n\n"
        "Från: Anna Svensson <anna@example.se>\n"
        "Skickat: den 3 mars 2026 10:15\n"
        "Till: support@example.se\n"
        "Ämne: Servern svarar inte\n\n"
        "Servern svarar inte sedan i morse.\n"
    )
    reply = split_reply(text)
    assert reply.new == "Hej Anna,\n\nJag har startat om servern.\n\nMvh\nPer"
    assert reply.quoted.startswith("Från: Anna Svensson")


@pytest.mark.parametrize("header", [
    "On Tue, Mar 3, 2026 at 10:15 AM Anna <anna@example.com> wrote:",
    "Le mar. 3 mars 2026 à 10:15, Anna <anna@example.com> a écrit :",
    "Am 03.03.2026 um 10:15 schrieb Anna <anna@example.com>:",
    "El mar, 3 mar 2026 a las 10:15, Anna (<anna@example.com>) escribió:",
    "Il giorno mar 3 mar 2026 alle ore 10:15 Anna <anna@example.com> ha scritto:",
    "Op di 3 mrt. 2026 om 10:15 schreef Anna <anna@example.com>:",
    "Den tis 3 mars 2026 kl 10:15 skrev Anna <anna@example.com>:",
    "W dniu 3.03.2026 o 10:15, Anna pisze napisał:",
    "2026-03-03 10:15 GMT+01:00 Anna <anna@example.com>:",
    "Anna <anna@example.com> wrote:",
    "Den 2026-03-03 kl. 10:15, skrev Anna Svensson:",
    "Anna Svensson <anna@example.se> skrev den 3 mars 2026 10:15:",
    "Am 03.03.2026 um 10:15 schrieb Anna Berg\n<anna@example.de>:",
    "2026/03/03 10:15、Taro <taro@example.jp> のメッセージ:",
    "-----Original Message-----",
    "-----Ursprüngliche Nachricht-----",
    "________________________________",
])
def test_quote_headers_in_many_languages_end_the_new_text(header):
    text = f"Done, closing.\n\n{header}\n> Please restart the server.\n> Thanks\n"
    assert split_reply(text).new == "Done, closing."


def test_attribution_without_date_needs_a_quote_below():
    text = "Here is what the manual says about it and what Bob wrote:\n\nRestart twice.\n"
    assert split_reply(text).new == text.strip()


def test_sentence_with_skrev_and_a_number_is_not_a_quote_header():
    text = "Per skrev 3 rader om felet:\n\nDisken är full.\n"
    assert split_reply(text).new == text.strip()


def test_gmail_date_attribution_wrapped_before_a_bottom_post():
    text = "2014-10-17 11:28 GMT+03:00 Postmaster <\npostmaster@example.org>:\n\n> First\n>\n\nMy reply"
    assert split_reply(text).new == "My reply"


def test_log_lines_with_dates_are_not_quote_headers():
    text = (
        "The job failed:\n\n2026-03-03 10:15:01 ERROR disk full\n2026-03-03 10:15:02 WARN retrying\n"
        "2026-03-03 10:15 GMT+01:00 backup 2 of 3 failed\n2026-03-03 10:16:00 mail from <cron@example.com>\n\n"
        "Can you look?"
    )
    assert split_reply(text).new == text.strip()


# --- posting styles ------------------------------------------------------------------------

def test_bottom_posting_keeps_text_below_the_quote():
    text = (
        "On Tue, Mar 05, 2024 at 02:07:31PM +0100, Support wrote:\n"
        "> The printer jams.\n> Please check.\n\n"
        "Cleared the jam in tray 2.\n\nAlice\n"
    )
    reply = split_reply(text)
    assert reply.new == "Cleared the jam in tray 2.\n\nAlice"
    assert "> The printer jams." in reply.quoted


def test_inline_reply_below_an_attribution_drops_every_quoted_line():
    text = "Bob wrote:\n> first question\n\nfirst answer\n> second question\nsecond answer\n"
    assert split_reply(text).new == "first answer\nsecond answer"


def test_trailing_quote_without_attribution_is_removed():
    assert split_reply("Yes.\n\n> Shall I restart it?\n>\n").new == "Yes."


# --- signatures, forwards, banners ---------------------------------------------------------

def test_signature_after_dash_dash_space_goes_to_quoted():
    reply = split_reply("Restarted.\n\n-- \nPer Persson\nIT support\n")
    assert reply.new == "Restarted."
    assert reply.quoted == "-- \nPer Persson\nIT support"


@pytest.mark.parametrize("line", [
    "Sent from my iPhone", "Skickat från min iPhone", "Von meinem iPhone gesendet",
    "Envoyé de mon iPhone", "Get Outlook for Android", "Sent from my Samsung Galaxy S22",
])
def test_mobile_signatures_are_removed(line):
    assert split_reply(f"On my way.\n\n{line}\n").new == "On my way."


def test_sentence_starting_like_a_mobile_signature_is_kept():
    text = "Here it is.\n\nSent from my desk, which is much easier than my phone."
    assert split_reply(text).new == text


def test_forward_keeps_the_text_above_and_quotes_the_forwarded_mail():
    text = (
        "Dave, can you take this one?\n\n"
        "---------- Forwarded message ---------\n"
        "From: Bob <bob@example.com>\nDate: Tue, 3 Mar 2026 at 10:15\nSubject: VPN\nTo: <me@example.com>\n\n"
        "The VPN drops every ten minutes.\n"
    )
    reply = split_reply(text)
    assert reply.new == "Dave, can you take this one?"
    assert reply.quoted.endswith("The VPN drops every ten minutes.")


def test_bare_forward_keeps_the_forwarded_body_as_new_text():
    text = (
        "---------- Forwarded message ----------\n"
        "From: Bob <bob@example.com>\nDate: Tue, 3 Mar 2026 at 10:15\nSubject: VPN\nTo: <me@example.com>\n\n"
        "The VPN drops every ten minutes.\n"
    )
    assert split_reply(text).new == "The VPN drops every ten minutes."


def test_embedded_sender_of_a_forward_is_the_original_from():
    text = (
        "Please handle.\n\n---------- Forwarded message ---------\n"
        "*From:* Bob Berg <bob@example.com>\n*Date:* Tue, 3 Mar 2026\n*Subject:* VPN\n\nVPN is down.\n"
    )
    assert embedded_sender(text) == "Bob Berg <bob@example.com>"


def test_embedded_sender_of_a_swedish_outlook_block():
    text = "Se nedan.\n\nFrån: Anna Svensson <anna@example.se>\nSkickat: den 3 mars 2026\nTill: it@x.se\nÄmne: Skrivare\n\nHjälp"
    assert embedded_sender(text) == "Anna Svensson <anna@example.se>"


@pytest.mark.parametrize("text", ["", "Just a note.", "Hi\n\nOn Mon, 2 Mar 2026, Bob <b@x.se> wrote:\n> old"])
def test_embedded_sender_is_none_without_an_embedded_mail(text):
    assert embedded_sender(text) is None


def test_gateway_caution_banner_is_not_new_text():
    text = "CAUTION: This email originated from outside of the organization.\n\nPlease reset my password.\n"
    reply = split_reply(text)
    assert reply.new == "Please reset my password."
    assert reply.quoted.startswith("CAUTION:")


def test_separator_lines_inside_a_code_block_are_kept():
    text = "Config:\n\n```\n####\n-----\n```\n\nThat is all."
    assert split_reply(text).new == text


def test_separator_lines_used_as_formatting_are_kept():
    text = "Analysis:\n----\n\n1. Faster\n2. Smaller\n\n====\n\nThat is all for now, more tomorrow."
    assert split_reply(text).new == text


def test_separator_line_before_a_header_block_ends_the_new_text():
    text = "Done.\n\n----------\nFrom: Bob <b@x.se>\nSent: Monday\nTo: Desk\nSubject: VPN\n\nOld text\n"
    assert split_reply(text).new == "Done."


def test_underscore_line_before_a_short_signature_ends_the_new_text():
    reply = split_reply("Done.\n\n_______________\nPer Persson\nIT\n")
    assert reply.new == "Done."
    assert reply.quoted == "_______________\nPer Persson\nIT"


def test_crlf_and_cr_line_ends_are_understood():
    text = "Fixed.\r\n\r\nOn Mon, 2 Mar 2026 at 10:00, Bob <b@x.se> wrote:\r\n> old\r\n"
    assert split_reply(text).new == "Fixed."
    assert split_reply(text.replace("\r\n", "\r")).new == "Fixed."


def test_classify_names_each_line():
    lines = ["Hi", "", "On Mon, 2 Mar 2026 at 10:00, Bob <b@x.se> wrote:", "> old", "-- ", "sig"]
    assert "".join(classify(lines)) == "tebqct"


# --- HTML ----------------------------------------------------------------------------------

def _squash(text: str) -> str:
    return "".join(text.split())


def test_html_gmail_quote_is_removed():
    html = (
        '<div dir="ltr">Hi. I am fine.<div><br></div><div>Thanks,</div><div>Alex</div></div>'
        '<div class="gmail_quote"><div class="gmail_attr">On Thu, Jun 26, 2014 at 2:14 PM, A &lt;a@b.c&gt; '
        'wrote:<br></div><blockquote class="gmail_quote">Hello! How are you?</blockquote></div>'
    )
    reply = split_reply_html(html)
    assert _squash(reply.new) == _squash("Hi. I am fine.\n\nThanks,\nAlex")
    assert reply.full == html


def test_html_outlook_reply_header_div_and_everything_after_is_removed():
    html = (
        "<html><body><p>Restarted the server.</p>"
        '<div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> Bob<br>'
        "<b>Sent:</b> Tuesday<br><b>Subject:</b> Down</div><div>The server is down.</div></body></html>"
    )
    assert split_reply_html(html).new == "Restarted the server."


@pytest.mark.parametrize("html", ["", "   ", "<<<>>>", "<html>", "\x00<p>x", "<?xml version='1.0'?>", "</div></p>"])
def test_html_that_is_empty_or_broken_does_not_raise(html):
    assert isinstance(split_reply_html(html).new, str)


def test_html_lxml_rejects_falls_back_to_the_text_between_tags():
    reply = split_reply_html("\ud800<p>Please reset my password.</p>")  # a lone surrogate
    assert "Please reset my password." in reply.new


def test_html_horizontal_rule_before_a_header_block_ends_the_reply():
    html = "<div>Hi<div>there</div><div>Bob<hr><b>From: </b>bob@example.com<br><b>To: </b>x@y.z<br>" \
           "<b>Sent: </b>Friday<br><b>Subject: </b>Hello<br><p>Hello</p></div></div>"
    assert split_reply_html(html).new == "Hi\nthere\nBob"


# --- robustness and speed ------------------------------------------------------------------

LINE_PIECES = st.sampled_from([
    "> ", ">", "On ", "Mon, 2 Mar 2026 ", "wrote:", "From: a@b", "Sent: x", "To: y", "Subject: z",
    "-- ", "-----Original Message-----", "---------- Forwarded message ---------", "```",
    "Sent from my iPhone", "<a@b.c>", ":", "\n", "\r", "\r\n", " ", "text", "é", "\x00", "CAUTION: ",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(LINE_PIECES, st.text(max_size=20)), max_size=40).map("".join))
def test_split_reply_never_raises_and_returns_its_input(text):
    reply = split_reply(text)
    assert reply.full == text
    assert reply.new == reply.new.strip()
    for line in reply.new.splitlines():
        assert line in text


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_split_reply_html_never_raises(html):
    assert isinstance(split_reply_html(html).new, str)


def _timed(text: str) -> tuple[Reply, float]:
    start = time.perf_counter()
    reply = split_reply(text)
    return reply, time.perf_counter() - start


def test_five_megabyte_quoted_thread_is_split_in_under_a_second():
    quoted = "> quoted line of the old thread, long enough to look like mail\n" * 80_000
    text = "Fixed, thanks.\n\nOn Mon, 2 Mar 2026 at 10:00, Bob <b@x.se> wrote:\n" + quoted
    assert len(text) >= 5_000_000
    reply, seconds = _timed(text)
    assert reply.new == "Fixed, thanks."
    assert seconds < CASE_LIMIT_S


def test_five_megabyte_bottom_posted_thread_keeps_the_reply_at_the_end():
    quoted = "> quoted line of the old thread, long enough to look like mail\n" * 80_000
    text = "On Mon, 2 Mar 2026 at 10:00, Bob <b@x.se> wrote:\n" + quoted + "\nMy answer.\n"
    reply, seconds = _timed(text)
    assert reply.new == "My answer."
    assert seconds < CASE_LIMIT_S


@pytest.mark.parametrize("text", [
    "a" * 5_000_000,
    " " * 5_000_000,
    "-" * 5_000_000,
    "@" * 2_000_000 + ":",
    "On " + "1 " * 2_000_000 + "wrote:",
    "Sent from my " + "x" * 3_000_000,
    "From: " + "x" * 3_000_000,
    "On 1 2 3 <a@b> \n" * 200_000,
    "From: a\nSent: b\n" * 200_000,
    "\r" * 3_000_000,
])
def test_pathological_input_is_split_in_under_a_second(text):
    reply, seconds = _timed(text)
    assert reply.full is text
    assert seconds < CASE_LIMIT_S
