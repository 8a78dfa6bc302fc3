"""Unlabelled or mislabelled 8-bit text: charset-normalizer finds the charset, guarded so that Western
text (Swedish å ä ö in Latin-1 above all) stays Windows-1252/Latin-1 and is never "detected" as
something else."""

from __future__ import annotations

import pytest

from mailticket.inbound.charsets import decode_bytes, guess_decode, header_text, reads_as_western
from mailticket.inbound.parse import parse_mail

SWEDISH = "Hej! Skrivaren på våning 3 är trasig, kan ni åtgärda det? Hälsningar Åsa Öberg, Växjö"
RUSSIAN = "Здравствуйте! Принтер на третьем этаже не работает, помогите пожалуйста."
GREEK = "Καλημέρα, ο εκτυπωτής δεν λειτουργεί. Ευχαριστώ πολύ για τη βοήθεια."
CHINESE = "您好，三楼的打印机坏了，无法打印任何文件。我们已经尝试重新启动，但是问题仍然存在。"
JAPANESE = "お世話になっております。三階のプリンターが故障しており、印刷ができません。"


@pytest.mark.parametrize("label", [None, "", "unknown-8bit", "iso-8859-1", "windows-1252", "iso-8859-15",
                                   "utf-8", "us-ascii"])
@pytest.mark.parametrize("text", [SWEDISH, "åäö ÅÄÖ", "Tack på förhand!", "ö", "Åsa"])
def test_swedish_latin1_stays_latin1_whatever_the_label(label, text):
    decoded, _ = decode_bytes(text.encode("latin-1"), label)
    assert decoded == text


def test_swedish_in_windows_1252_keeps_its_quotes_and_dash():
    text = "”Skrivaren” – den på plan 3 – är trasig… €100"
    assert decode_bytes(text.encode("cp1252"), None)[0] == text
    assert decode_bytes(text.encode("cp1252"), "iso-8859-1")[0] == text


@pytest.mark.parametrize("text, charset", [
    (RUSSIAN, "cp1251"), (RUSSIAN, "koi8_r"), (GREEK, "cp1253"), (GREEK, "iso8859_7"),
    (CHINESE, "gb18030"), (JAPANESE, "cp932"), (JAPANESE, "euc_jp"),
])
def test_unlabelled_legacy_text_is_detected(text, charset):
    decoded, used = guess_decode(text.encode(charset))
    assert decoded == text, used
    assert decode_bytes(text.encode(charset), None)[0] == text


@pytest.mark.parametrize("text, charset", [(RUSSIAN, "cp1251"), (RUSSIAN, "koi8_r"), (GREEK, "cp1253")])
def test_a_western_label_on_other_text_is_corrected_and_noted(text, charset):
    decoded, notes = decode_bytes(text.encode(charset), "iso-8859-1")
    assert decoded == text
    assert any("declared, but the text reads as" in n for n in notes)


def test_utf8_labelled_latin1_is_read_as_utf8():
    decoded, notes = decode_bytes(SWEDISH.encode("utf-8"), "iso-8859-1")
    assert decoded == SWEDISH
    assert notes == ["charset iso-8859-1 declared, but the text is UTF-8: decoded as utf-8"]


def test_short_non_western_text_is_not_guessed_wildly():
    """Six Cyrillic letters are too few to tell: the old Windows-1252 reading, no invented charset."""
    assert decode_bytes("Привет".encode("cp1251"), None)[0] == "Привет".encode("cp1251").decode("cp1252")


def test_reads_as_western():
    assert reads_as_western(SWEDISH) and reads_as_western("Hyvää päivää, kiitos paljon avusta")
    assert not reads_as_western(RUSSIAN.encode("cp1251").decode("cp1252"))
    assert reads_as_western("") and reads_as_western("12345 !!!")


def test_an_8bit_swedish_header_stays_swedish():
    raw = "Åsa Öberg <asa@example.se>".encode("latin-1").decode("ascii", "surrogateescape")
    assert header_text(raw)[0] == "Åsa Öberg <asa@example.se>"


def test_a_whole_mail_without_a_charset_keeps_its_swedish():
    raw = (b"From: =?iso-8859-1?q?=C5sa_=D6berg?= <asa@example.se>\r\nTo: support@example.com\r\n"
           b"Subject: Skrivaren\r\nMessage-ID: <sv1@example.se>\r\nContent-Type: text/plain\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n" + SWEDISH.encode("latin-1") + b"\r\n")
    parsed = parse_mail(raw)
    assert parsed.text.strip() == SWEDISH and parsed.sender.name == "Åsa Öberg"


def test_a_whole_russian_mail_labelled_latin1_reads_as_russian():
    raw = (b"From: ivan@example.ru\r\nTo: support@example.com\r\nSubject: printer\r\n"
           b"Message-ID: <ru1@example.ru>\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n" + RUSSIAN.encode("cp1251") + b"\r\n")
    parsed = parse_mail(raw)
    assert parsed.text.strip() == RUSSIAN
    assert any("reads as cp1251" in n for n in parsed.notes)
