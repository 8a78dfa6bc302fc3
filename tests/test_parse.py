"""parse_mail on raw bytes: charsets, HTML, attachments, broken MIME, limits."""

import base64
from datetime import datetime, timezone
from email import policy

import pytest
from hypothesis import given, settings, strategies as st

from mailticket.errors import QuarantineError
from mailticket.inbound.parse import Address, Limits, parse_mail, sanitize_filename
from bench.corpora_path import find_corpora
from tests import hostile_mails as hostile
from tests.harness import at_least
from tests.hostile_mails import mail, nested_multiparts


CORPORA = find_corpora()
TNEF_DIR = CORPORA / "mimekit" / "UnitTests" / "TestData" / "tnef"


# The hostile mails below (tests/hostile_mails.py) are checked for what parse_mail makes of
# them; how long each takes, against a plain mail of its size, is bench/hostile_parse.py's. The
# timeout fails one that turned quadratic (minutes) without a wall-time assertion.
HOSTILE_TIMEOUT = pytest.mark.timeout(60)


def outcome(raw: bytes):
    """parse_mail's result, or the QuarantineError it raised."""
    try:
        return parse_mail(raw)
    except QuarantineError as exc:
        return exc


# ---------------------------------------------------------------- charsets

def test_swedish_iso_8859_1_body_and_q_encoded_subject():
    raw = mail("Subject: =?iso-8859-1?Q?Skrivaren_p=E5_plan_3_=E4r_trasig?=\n"
               "Content-Type: text/plain; charset=iso-8859-1\n"
               "Content-Transfer-Encoding: 8bit",
               "Hej, skrivaren är trasig på plan 3. Åtgärda, tack! ÅÄÖ åäö\n".encode("latin-1"))
    parsed = parse_mail(raw)
    assert parsed.subject == "Skrivaren på plan 3 är trasig"
    assert "skrivaren är trasig på plan 3. Åtgärda" in parsed.text
    assert "ÅÄÖ åäö" in parsed.text


def test_windows_1252_bytes_declared_as_latin_1_are_read_as_windows_1252():
    body = "Kostnad 100 € – “offert” för år 2026\n".encode("cp1252")
    raw = mail("Subject: Offert\nContent-Type: text/plain; charset=iso-8859-1", body)
    parsed = parse_mail(raw)
    assert "100 € – “offert” för år 2026" in parsed.text
    assert any("windows-1252" in note for note in parsed.notes)


def test_windows_1252_declared():
    raw = mail("Subject: x\nContent-Type: text/plain; charset=windows-1252",
               "Hälsningar – Örjan\n".encode("cp1252"))
    assert parse_mail(raw).text.strip() == "Hälsningar – Örjan"


def test_utf8_base64_body_and_b_encoded_subject():
    subject = base64.b64encode("Lösenordet går inte att återställa".encode()).decode()
    body = base64.b64encode("Jag kan inte logga in på VPN:et. /Göran\n".encode()).decode()
    raw = mail(f"Subject: =?UTF-8?B?{subject}?=\nContent-Type: text/plain; charset=utf-8\n"
               "Content-Transfer-Encoding: base64", body + "\n")
    parsed = parse_mail(raw)
    assert parsed.subject == "Lösenordet går inte att återställa"
    assert parsed.text.strip() == "Jag kan inte logga in på VPN:et. /Göran"


def test_adjacent_encoded_words_are_joined_without_the_space_between():
    raw = mail("Subject: =?utf-8?Q?Fr=C3=A5ga_om?= =?utf-8?Q?_l=C3=B6n?= i maj")
    assert parse_mail(raw).subject == "Fråga om lön i maj"


def test_raw_utf8_and_latin1_bytes_in_headers_are_decoded():
    raw = ("From: Åsa Öberg <asa@example.se>\nTo: s@example.com\n"
           "Subject: Hjälp med skrivaren\n\nbody\n").encode("utf-8")
    parsed = parse_mail(raw)
    assert parsed.subject == "Hjälp med skrivaren"
    assert parsed.sender == Address("Åsa Öberg", "asa@example.se", False)
    latin = "From: x@example.se\nSubject: Fråga\n\nbody\n".encode("latin-1")
    assert parse_mail(latin).subject == "Fråga"


def test_utf8_cut_mid_character_stays_utf8():
    subject = "Картинка с очень длинным именем".encode() + "т".encode()[:1]
    parsed = parse_mail(b"From: a@example.com\nSubject: " + subject + b"\n\nx\n")
    assert parsed.subject == "Картинка с очень длинным именем\ufffd"


def test_iso_gb2312_is_decoded_as_chinese_with_a_note():
    raw = mail("Subject: =?iso-gb2312?B?" + base64.b64encode("打印机".encode("gb2312")).decode()
               + "?=\nContent-Type: text/plain; charset=iso-gb2312",
               "打印机坏了，请帮忙。\n".encode("gb2312"))
    parsed = parse_mail(raw)
    assert parsed.subject == "打印机"
    assert "打印机坏了，请帮忙。" in parsed.text
    assert any("iso-gb2312" in note for note in parsed.notes)


def test_unknown_charset_falls_back_to_utf8_then_windows_1252():
    utf8 = parse_mail(mail("Subject: x\nContent-Type: text/plain; charset=x-klingon",
                           "Tack så mycket\n".encode()))
    assert "Tack så mycket" in utf8.text
    assert any("unknown charset x-klingon" in note for note in utf8.notes)
    cp = parse_mail(mail("Subject: x\nContent-Type: text/plain; charset=x-klingon",
                         "Tack så mycket\n".encode("cp1252")))
    assert "Tack så mycket" in cp.text


def test_text_invalid_in_its_declared_charset_is_recovered():
    raw = mail("Subject: x\nContent-Type: text/plain; charset=us-ascii",
               "Fel på nätverket\n".encode())
    parsed = parse_mail(raw)
    assert "Fel på nätverket" in parsed.text
    assert any("not valid us-ascii" in note for note in parsed.notes)


def test_non_text_codec_names_are_refused_as_charsets():
    raw = mail("Subject: x\nContent-Type: text/plain; charset=unicode_escape", b"a\\u0041b\n")
    assert parse_mail(raw).text.strip() == "a\\u0041b"


@pytest.mark.parametrize("subject, expected", [
    ("=?utf-8?B?w6XDpMO2?", "=?utf-8?B?w6XDpMO2?"),          # never closed: kept as is
    ("=?utf-8?B?w6XDpMO2w?=", "åäö"),                          # one stray base64 char
    ("=?utf-8?B?w6XDpM?=", "åä"),                              # padding missing
    ("=?x-nonsense?Q?caf=E9?=", "café"),                       # unknown charset
    ("=?utf-8?Q?caf=E9?=", "café"),                            # bytes not utf-8
    ("=?utf-8*sv?Q?f=C3=B6r?=", "för"),                        # RFC 2231 language tag
    ("=?utf-8?Q?a=ZZb?=", "a=ZZb"),                            # bad escape kept
])
def test_broken_encoded_words_give_the_best_text(subject, expected):
    assert parse_mail(mail(f"Subject: {subject}")).subject == expected


def test_subject_has_no_cr_lf_nul_and_collapsed_whitespace():
    raw = mail("Subject: a\x00b   c\n\t d =?utf-8?Q?e=0D=0Af?=")
    assert parse_mail(raw).subject == "a b c d e f"


# ---------------------------------------------------------------- structure and body

def test_plain_text_is_preferred_over_html_which_is_kept():
    raw = mail('MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b"',
               "--b\nContent-Type: text/plain\n\nPlain words\n"
               "--b\nContent-Type: text/html\n\n<p>HTML <b>words</b></p>\n--b--\n")
    parsed = parse_mail(raw)
    assert parsed.text.strip() == "Plain words"
    assert "<b>words</b>" in parsed.html
    assert parsed.attachments == ()


def test_empty_plain_alternative_gives_way_to_the_html():
    raw = mail('Content-Type: multipart/alternative; boundary="b"',
               "--b\nContent-Type: text/plain\n\n \n"
               "--b\nContent-Type: text/html\n\n<p>The real text</p>\n--b--\n")
    assert parse_mail(raw).text.strip() == "The real text"


def test_html_only_mail_becomes_readable_text_without_style_or_script():
    html = ("<html><head><style>p {color: red}</style><script>alert(1)</script></head>"
            "<body><p>Hej,</p><p>min sk&auml;rm <b>flimrar</b>.</p>"
            "<p>Se <a href='https://example.com/kb/42'>artikeln</a>.</p></body></html>")
    parsed = parse_mail(mail("Subject: x\nContent-Type: text/html; charset=utf-8", html))
    assert "Hej," in parsed.text and "min skärm flimrar." in parsed.text
    assert "color" not in parsed.text and "alert" not in parsed.text
    assert "artikeln" in parsed.text and "https://example.com/kb/42" in parsed.text
    assert parsed.html == html + "\n" or parsed.html.strip() == html


def test_cid_inline_image_is_kept_with_its_content_id():
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    raw = mail('Content-Type: multipart/related; boundary="r"',
               '--r\nContent-Type: text/html\n\n<p>Se bild: <img src="cid:img1@example"></p>\n'
               "--r\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n"
               "Content-ID: <img1@example>\n\n" + base64.encodebytes(png).decode() + "--r--\n")
    parsed = parse_mail(raw)
    [image] = parsed.attachments
    assert image.content_id == "img1@example"
    assert image.inline is True
    assert image.data == png
    assert image.content_type == "image/png"
    assert image.filename == "attachment.png"
    assert "Se bild" in parsed.text


def test_attachment_names_with_nul_and_dot_dot_are_sanitised():
    raw = mail('Content-Type: multipart/mixed; boundary="m"',
               "--m\nContent-Type: text/plain\n\nSee attached\n"
               '--m\nContent-Type: application/pdf\nContent-Disposition: attachment; '
               'filename="../../etc/pass\x00wd.pdf"\n\n%PDF-1.4\n'
               '--m\nContent-Type: text/plain\nContent-Disposition: attachment; '
               'filename="..\\\\..\\\\boot.ini"\n\n[boot]\n--m--\n')
    parsed = parse_mail(raw)
    names = [a.filename for a in parsed.attachments]
    assert names == ["pass_wd.pdf", "boot.ini"]
    assert parsed.attachments[0].data.startswith(b"%PDF-1.4")
    assert parsed.attachments[0].inline is False
    assert parsed.text.strip() == "See attached"


def test_rfc2231_and_encoded_word_attachment_names_are_decoded():
    raw = mail('Content-Type: multipart/mixed; boundary="m"',
               "--m\nContent-Type: text/plain\n\nx\n"
               "--m\nContent-Type: application/octet-stream\nContent-Disposition: attachment;"
               " filename*=utf-8''r%C3%A4kning%20maj.pdf\n\nA\n"
               '--m\nContent-Type: application/octet-stream; name="=?utf-8?Q?l=C3=B6n.xlsx?="\n'
               "\nB\n--m--\n")
    assert [a.filename for a in parse_mail(raw).attachments] == ["räkning maj.pdf", "lön.xlsx"]


def test_raw_8bit_attachment_names_are_decoded():
    raw = mail('Content-Type: multipart/mixed; boundary="m"',
               "--m\nContent-Type: text/plain\n\nx\n".encode() +
               '--m\nContent-Type: text/plain\nContent-Disposition: attachment; '
               'filename="Lönespec maj.txt"\n\nA\n'.encode("utf-8") +
               '--m\nContent-Type: text/plain\nContent-Disposition: attachment; '
               'filename=ciële.txt\n\nB\n--m--\n'.encode("latin-1"))
    assert [a.filename for a in parse_mail(raw).attachments] == ["Lönespec maj.txt", "ciële.txt"]


@pytest.mark.parametrize("name, ctype, expected", [
    ("../../etc/passwd", "text/plain", "passwd"),
    ("..\\..\\windows\\win.ini", "text/plain", "win.ini"),
    ("a\x00b\x07c.txt", "text/plain", "a_b_c.txt"),
    ("..", "application/pdf", "attachment.pdf"),
    ("...hidden..tar..gz", "application/gzip", "hidden.tar.gz"),
    (None, "image/jpeg", "attachment.jpg"),
    ("", "application/x-unknown-thing", "attachment.bin"),
    ("CON.txt", "text/plain", "_CON.txt"),
    ("C:\\Users\\a\\report.docx", "application/octet-stream", "report.docx"),
    ('a<b>c:d"e|f?g*h.txt', "text/plain", "a_b_c_d_e_f_g_h.txt"),
    ("invoice\u202egpj.exe", "application/octet-stream", "invoicegpj.exe"),
    ("r\u00e4kning\u200b.pdf", "application/pdf", "räkning.pdf"),
])
def test_sanitize_filename(name, ctype, expected):
    assert sanitize_filename(name, ctype) == expected


def test_sanitize_filename_caps_length_and_keeps_the_extension():
    name = sanitize_filename("x" * 1000 + ".pdf", "application/pdf")
    assert len(name) == 150 and name.endswith(".pdf")


def test_forwarded_message_is_one_attachment_with_its_bytes():
    raw = mail('Content-Type: multipart/mixed; boundary="m"',
               "--m\nContent-Type: text/plain\n\nFYI\n"
               "--m\nContent-Type: message/rfc822\n\n"
               "From: b@example.com\nSubject: Inner\n\nInner body\n--m--\n")
    parsed = parse_mail(raw)
    [fwd] = parsed.attachments
    assert fwd.content_type == "message/rfc822" and fwd.filename == "attachment.eml"
    assert b"Subject: Inner" in fwd.data and b"Inner body" in fwd.data
    assert parsed.text.strip() == "FYI"


def test_multipart_without_closing_boundary_keeps_text_and_attachment():
    raw = mail('Content-Type: multipart/mixed; boundary="m"',
               "--m\nContent-Type: text/plain\n\nThe text\n"
               '--m\nContent-Type: application/octet-stream; name="a.bin"\n\nDATA\n')
    parsed = parse_mail(raw)
    assert parsed.text.strip() == "The text"
    assert [a.filename for a in parsed.attachments] == ["a.bin"]


def test_multipart_with_wrong_boundary_is_split_on_the_boundary_in_the_body():
    raw = mail('Content-Type: multipart/mixed; boundary="declared"',
               "--real\nContent-Type: text/plain\n\nRecovered text\n"
               '--real\nContent-Type: image/gif; name="x.gif"\n\nGIF89a\n--real--\n')
    parsed = parse_mail(raw)
    assert parsed.text.strip() == "Recovered text"
    assert [a.filename for a in parsed.attachments] == ["x.gif"]
    assert any("boundary" in note for note in parsed.notes)


def test_multipart_that_cannot_be_split_keeps_its_raw_body_as_text():
    raw = mail("Content-Type: multipart/mixed", "Just some text, no parts at all.\n")
    parsed = parse_mail(raw)
    assert "Just some text, no parts at all." in parsed.text
    assert any("cannot be split" in note for note in parsed.notes)


def test_cr_only_line_ends_are_normalised():
    raw = (b"From: Anna <anna@example.se>\rTo: support@example.com\rSubject: CR mail\r"
           b"Content-Type: text/plain; charset=utf-8\r\rLine one\rLine two\r")
    parsed = parse_mail(raw)
    assert parsed.subject == "CR mail"
    assert parsed.sender.address == "anna@example.se"
    assert parsed.text == "Line one\nLine two\n"
    assert "CR-only line ends normalised" in parsed.notes


def test_crlf_mail_gives_lf_text_without_a_note():
    raw = b"From: a@example.com\r\nSubject: crlf\r\n\r\nOne\r\nTwo\r\n"
    parsed = parse_mail(raw)
    assert parsed.text == "One\nTwo\n" and parsed.notes == ()


def test_nul_in_body_text_is_removed_with_a_note():
    parsed = parse_mail(mail("Subject: x", b"ab\x00cd\n"))
    assert parsed.text == "abcd\n"
    assert any("NUL" in note for note in parsed.notes)


def test_tnef_winmail_dat_is_opened_into_its_files():
    tnef = TNEF_DIR / "two-files.tnef"
    if not tnef.exists():
        pytest.skip(f"corpora missing: {tnef}")
    raw = mail('Content-Type: multipart/mixed; boundary="m"',
               "--m\nContent-Type: text/plain\n\nOutlook text\n"
               '--m\nContent-Type: application/ms-tnef; name="winmail.dat"\n'
               "Content-Transfer-Encoding: base64\n\n"
               + base64.encodebytes(tnef.read_bytes()).decode() + "--m--\n")
    parsed = parse_mail(raw)
    assert sorted(a.filename for a in parsed.attachments) == ["AUTHORS", "README"]
    assert {a.content_type for a in parsed.attachments} == {"application/octet-stream"}
    assert all(a.data for a in parsed.attachments)
    assert parsed.text.strip() == "Outlook text"


def test_unreadable_tnef_is_kept_as_an_attachment():
    raw = mail('Content-Type: multipart/mixed; boundary="m"',
               b"--m\nContent-Type: text/plain\n\nx\n"
               b'--m\nContent-Type: application/ms-tnef; name="winmail.dat"\n\n'
               b"\x78\x9f\x3e\x22 truncated\n--m--\n")
    parsed = parse_mail(raw)
    assert [a.filename for a in parsed.attachments] == ["winmail.dat"]


# ---------------------------------------------------------------- headers

def test_ids_addresses_and_date():
    raw = ("From: =?utf-8?Q?G=C3=B6ran?= <Goran@Example.SE>\n"
           "Reply-To: Helpdesk <HELP@example.se>\n"
           'To: "Support, IT" <support@example.com>, b@example.com\n'
           "Cc: c@example.com\nDelivered-To: Support+abc@Example.com\n"
           "X-Original-To: support@example.com\n"
           "Message-ID:  <abc.123@mail.example.se> \n"
           "In-Reply-To: <x1@example.com>\n"
           "References: <x0@example.com>\n <x1@example.com>\n"
           "Date: Fri, 27 Nov 2026 09:15:00 +0100\nSubject: Re: [SD#12] test\n\nbody\n").encode()
    parsed = parse_mail(raw)
    assert parsed.message_id == "abc.123@mail.example.se"
    assert parsed.in_reply_to == ("x1@example.com",)
    assert parsed.references == ("x0@example.com", "x1@example.com")
    assert parsed.sender == Address("Göran", "goran@example.se", False)
    assert parsed.reply_to == (Address("Helpdesk", "help@example.se", False),)
    assert parsed.to == (Address("Support, IT", "support@example.com", False),
                         Address("", "b@example.com", False))
    assert parsed.cc == (Address("", "c@example.com", False),)
    assert parsed.delivered_to == ("support+abc@example.com", "support@example.com")
    assert parsed.date == datetime(2026, 11, 27, 8, 15, tzinfo=timezone.utc)
    assert parsed.size == len(raw)


def test_missing_message_id_gets_a_stable_generated_one():
    raw = b"From: a@example.com\nSubject: no id\n\nbody\n"
    first, second = parse_mail(raw), parse_mail(raw)
    assert first.message_id == second.message_id
    assert first.message_id.startswith("generated-")
    assert first.message_id.endswith("@mailticket.invalid")
    assert len(first.message_id.split("@")[0]) == len("generated-") + 32
    assert parse_mail(raw + b"x").message_id != first.message_id


def test_missing_from_gives_an_empty_defective_sender():
    parsed = parse_mail(b"Subject: anonymous\n\nbody\n")
    assert parsed.sender == Address("", "", True)
    assert parsed.to == () and parsed.date is None


@pytest.mark.parametrize("value", [
    "Mailer-Daemon",                          # no domain
    "a@b@example.com",                        # two @
    "<<attacker@example.net>> agent@example.com",
    "agent@example.com (((((((((((((((((",    # unclosed comments
    "Name <agent@example.com",                # unclosed angle
])
def test_addresses_with_parse_defects_are_marked_defective(value):
    sender = parse_mail(f"From: {value}\nSubject: x\n\nb\n".encode()).sender
    assert sender.defective is True


def test_plain_and_strict_address_parsing_agree_on_ordinary_addresses():
    value = '"Doe, Jane" <jane@example.com>, Bob Smith <bob@example.org>, c@example.net'
    plain = parse_mail(f"From: x@example.com\nTo: {value}\nSubject: x\n\nb\n".encode()).to
    # a trailing comment takes the same header through the stdlib parser
    strict = parse_mail(f"From: x@example.com\nTo: {value} (IT)\nSubject: x\n\nb\n"
                        .encode()).to
    assert plain == strict
    assert not any(a.defective for a in plain)


def test_unreadable_and_zone_less_dates():
    assert parse_mail(mail("Date: yesterday-ish")).date is None
    naive = parse_mail(mail("Date: Fri, 27 Nov 2026 09:15:00 -0000")).date
    assert naive == datetime(2026, 11, 27, 9, 15, tzinfo=timezone.utc)


def test_message_is_an_email_message_with_policy_default():
    parsed = parse_mail(mail("Subject: =?utf-8?Q?h=C3=A4r?="))
    from mailticket.inbound.mailpolicy import POLICY
    assert parsed.message.policy is POLICY  # policy.default that parses each header text once
    assert all(getattr(POLICY, k) == getattr(policy.default, k) for k in
               ("linesep", "max_line_length", "utf8", "cte_type", "raise_on_defect", "refold_source", "mangle_from_"))
    assert parsed.message["subject"] == "här"


# ---------------------------------------------------------------- bad input and limits

@pytest.mark.parametrize("raw, reason", [
    (b"", "empty"),
    (b" \r\n\t\n", "empty"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200), "not a mail: an Outlook .msg"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a mail: no header block"),
    (b"Hi team,\nthe printer is broken.\n", "not a mail"),
])
def test_unusable_input_is_quarantined_with_a_reason(raw, reason):
    with pytest.raises(QuarantineError, match=reason):
        parse_mail(raw)


def test_message_over_max_size_is_quarantined():
    with pytest.raises(QuarantineError, match="max_size 1000"):
        parse_mail(mail("Subject: big", b"x" * 2000), Limits(max_size=1000))


@HOSTILE_TIMEOUT
def test_one_megabyte_header_line_is_cut():
    parsed = parse_mail(hostile.megabyte_header_line())
    assert len(parsed.subject) <= Limits().max_header_line
    assert parsed.message["x-other"] == "kept"
    assert parsed.text == "body\n"
    assert any("cut to" in note for note in parsed.notes)


@HOSTILE_TIMEOUT
def test_one_megabyte_address_header_keeps_the_first_thousand():
    parsed = parse_mail(hostile.megabyte_address_header())
    assert len(parsed.cc) == Limits().max_addresses and all(a.defective for a in parsed.cc)
    assert parsed.cc[1] == Address("Nämn1", "u1@example.com", True)
    assert any("only the first 1000 kept" in note for note in parsed.notes)


@HOSTILE_TIMEOUT
def test_megabyte_header_in_a_nested_part_is_cut():
    parsed = parse_mail(hostile.megabyte_header_in_a_nested_part())
    [att] = parsed.attachments
    assert att.content_type == "application/pdf" and len(att.filename) <= 150


def test_display_names_are_capped():
    sender = parse_mail(mail("Subject: x").replace(b"Anna <", b"A" * 5000 + b" <")).sender
    assert sender.address == "anna@example.se" and len(sender.name) == 200


@HOSTILE_TIMEOUT
def test_ten_thousand_nested_parts_are_quarantined():
    result = outcome(hostile.ten_thousand_nested_parts())
    assert isinstance(result, QuarantineError) and "max_parts" in str(result)


def test_nesting_deeper_than_max_depth_is_quarantined_naming_the_limit():
    with pytest.raises(QuarantineError, match="max_depth 20"):
        parse_mail(nested_multiparts(30))
    assert parse_mail(nested_multiparts(15)).text.strip() == "deep"


@HOSTILE_TIMEOUT
def test_deep_nesting_over_a_big_body_is_refused_before_parsing():
    result = outcome(hostile.deep_nesting_over_a_big_body())
    assert isinstance(result, QuarantineError) and "max_depth 20" in str(result)


def test_many_sibling_multiparts_are_not_mistaken_for_deep_nesting():
    parts = "".join(f'--top\nContent-Type: multipart/alternative; boundary="alt{i}"\n\n'
                    f"--alt{i}\nContent-Type: text/plain\n\npart {i}\n--alt{i}--\n"
                    for i in range(40))
    parsed = parse_mail(mail('Content-Type: multipart/mixed; boundary="top"', parts + "--top--\n"))
    assert "part 0" in parsed.text and "part 39" in parsed.text


@HOSTILE_TIMEOUT
def test_ten_thousand_sibling_parts_are_quarantined():
    result = outcome(hostile.ten_thousand_sibling_parts())
    assert isinstance(result, QuarantineError) and "max_parts 500" in str(result)


def test_nested_attached_messages_count_towards_the_limits():
    inner = "From: a@example.com\nSubject: innermost\n\nx\n"
    for _ in range(40):
        inner = f"From: a@example.com\nContent-Type: message/rfc822\n\n{inner}"
    with pytest.raises(QuarantineError, match="max_depth"):
        parse_mail(inner.encode())


@HOSTILE_TIMEOUT
def test_five_megabyte_quoted_thread_is_kept_whole():
    parsed = parse_mail(hostile.five_megabyte_quoted_thread())
    assert parsed.text.startswith("My answer on top.") and len(parsed.text) > 5_000_000


@HOSTILE_TIMEOUT
def test_huge_html_only_mail_gives_text_from_its_start():
    parsed = parse_mail(hostile.huge_html_only())
    assert parsed.text.startswith("row bold & more")
    assert len(parsed.html) > 2_000_000
    assert any("text taken from its first" in note for note in parsed.notes)


@HOSTILE_TIMEOUT
@pytest.mark.parametrize("name", hostile.HOSTILE_HTML)
def test_hostile_html_gives_text(name):
    parsed = parse_mail(hostile.hostile_html(name))
    assert isinstance(parsed.text, str)


def test_deeply_nested_html_still_gives_its_text():
    parsed = parse_mail(mail("Content-Type: text/html", "<div>" * 50_000 + "deep text"))
    assert parsed.text.strip() == "deep text"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise_anything_but_quarantine(data):
    for raw in (data, b"From: a@example.com\nContent-Type: multipart/mixed; boundary=x\n\n" + data):
        try:
            parsed = parse_mail(raw)
        except QuarantineError as exc:
            assert str(exc)
            continue
        assert "\x00" not in parsed.text and "\n" not in parsed.subject


TEMPLATE = mail('Subject: =?utf-8?Q?R=C3=A4kning?=\nContent-Type: multipart/mixed; boundary="m"',
                '--m\nContent-Type: multipart/alternative; boundary="a"\n\n'
                "--a\nContent-Type: text/plain; charset=iso-8859-1\n\nHej d\xe5\n"
                "--a\nContent-Type: text/html\n\n<p>Hej</p>\n--a--\n"
                '--m\nContent-Type: application/pdf; name="r.pdf"\n'
                "Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n"
                "--m\nContent-Type: message/rfc822\n\nFrom: b@example.com\n\ninner\n--m--\n"
                .encode("latin-1"))
TOKENS = [b"--", b"--m", b"--a--", b"=?", b"?=", b"\r", b"\n", b"\x00", b'"', b";", b"\\",
          b"boundary=", b"Content-Type: multipart/mixed", b"=?utf-8?B?", b"*0*=", b"\xff", b":"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(TEMPLATE)), st.integers(0, 40),
                          st.sampled_from(TOKENS)), max_size=6))
def test_mutated_real_structures_never_raise_anything_but_quarantine(edits):
    raw = TEMPLATE
    for position, cut, token in edits:
        raw = raw[:position] + token + raw[position + cut:]
    try:
        parsed = parse_mail(raw)
    except QuarantineError as exc:
        assert str(exc)
        return
    assert isinstance(parsed.text, str) and "\x00" not in parsed.text
    assert all("/" not in a.filename and "\x00" not in a.filename for a in parsed.attachments)


# --- rawmail.check_nesting counts words before it runs its patterns: the same verdicts ----------

def _check_nesting_by_patterns(data: bytes, limits) -> str | None:
    """check_nesting as it was, the patterns run on every mail: the refusal, or None."""
    from mailticket.inbound import rawmail
    nesting = len(rawmail._NESTING_TYPE.findall(data))
    if nesting > limits.max_parts:
        return f"{nesting} multipart/message parts exceed max_parts {limits.max_parts}"
    if len(rawmail._BOUNDARY.findall(data)) > limits.max_depth and \
            rawmail.boundary_depth(data, limits.max_depth) > limits.max_depth:
        return f"MIME nesting deeper than max_depth {limits.max_depth}"
    return None


_NESTING_PIECES = [b"Content-Type: multipart/mixed; boundary=a\n", b"CONTENT-TYPE:\tMESSAGE/rfc822\n",
                   b"content-type: Multipart/Alternative;\n boundary=\"b c\"\n", b"--a\n", b"--b c\n", b"--a--\n",
                   b"BOUNDARY=d\n", b"boundary =\"\"\n", b"multipart/", b"message/", b"Message/x", b"\xc4\xe5 ",
                   b"Content-Type: text/plain\n", b"\n", b"x-multipart/y\n", b" boundary=e; x=multipart/\n"]


@given(st.lists(st.sampled_from(_NESTING_PIECES) | st.binary(max_size=12), max_size=30).map(b"".join),
       st.integers(0, 4), st.integers(0, 4))
def test_nesting_is_refused_as_the_patterns_alone_refuse_it(data, max_parts, max_depth):
    from mailticket.inbound.rawmail import check_nesting
    limits = Limits(max_parts=max_parts, max_depth=max_depth)
    want = _check_nesting_by_patterns(data, limits)
    if want is None:
        check_nesting(data, limits)
    else:
        with pytest.raises(QuarantineError) as exc:
            check_nesting(data, limits)
        assert str(exc.value) == want


def test_nesting_checks_on_the_corpora_agree_with_the_patterns():
    """Every mail of the shared corpora, with the default limits and with tight ones."""
    from mailticket.inbound.rawmail import check_nesting
    from tests.harness import corpus_files_or_skip
    files = corpus_files_or_skip()
    assert len(files) > at_least(1000, 900)
    for raw in (p.read_bytes() for p in files):
        for limits in (Limits(), Limits(max_parts=2, max_depth=1), Limits(max_parts=0, max_depth=0)):
            want = _check_nesting_by_patterns(raw, limits)
            try:
                check_nesting(raw, limits)
                got = None
            except QuarantineError as exc:
                got = str(exc)
            assert got == want
