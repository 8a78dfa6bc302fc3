import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailticket.inbound.forwarded import is_forward, name_and_address, original_sender

from bench.corpora_path import find_corpora

CORPORA = find_corpora()  # the full corpora beside the checkout, else the share in tests/data/corpora
REALCLIENTS = CORPORA / "realclients" / "out"
DISCOURSE = CORPORA / "discourse-email_reply_trimmer" / "test" / "emails"
SUPPORT = ("Mailticket Support", "support@mailticket.test")


def load(path: Path) -> EmailMessage:
    return message_from_bytes(path.read_bytes(), policy=policy.default)


def plain_text(msg: EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


# --- the real clients corpus ----------------------------------------------------------------

FORWARDS = sorted(REALCLIENTS.glob("*/*forward*.eml"))
REPLIES = sorted(p for p in REALCLIENTS.glob("*/*.eml") if "forward" not in p.name)


def test_the_corpus_is_there():
    assert len(FORWARDS) == 7 and len(REPLIES) >= 30


@pytest.mark.parametrize("path", FORWARDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_client_forwards(path):
    msg = load(path)
    assert is_forward(msg["Subject"])
    expected = None if path.parent.name == "aerc" else SUPPORT  # aerc writes a name, no address
    assert original_sender(msg, plain_text(msg)) == expected


@pytest.mark.parametrize("path", REPLIES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_client_replies_are_not_forwards(path):
    msg = load(path)
    assert not is_forward(msg["Subject"])
    body = msg.get_body(("plain", "html"))
    assert original_sender(msg, body.get_content() if body else "") is None


# --- the forwards of the discourse corpus ---------------------------------------------------------

DISCOURSE_EXPECTED = {
    "forwarded_gmail": ("Foo Discourse", "foo@discourse.org"),
    "forwarded_apple": ("Foo Discourse", "foo@discourse.org"),  # quoted with "> "
    "forwarded_message": ("Some One", "foo@bar.com"),  # subject wraps over two lines
    "embedded_email_german_3": ("Discourse Team", "team@discourse.org"),  # Von:/Gesendet:
    "embedded_email_spanish_2": ("Miguel", "foo@bar.es"),  # De:/Enviado:
    "embedded_email_swedish": ("Foo Bar", "noreply@foo.bar"),  # Från: .. [mailto:..]/Skickat:
    "email_headers_3": ("Some One", "discuss@foo.bar"),  # addr<mailto:addr>
    "email_headers_1": None,  # *From:* Outlook user  (a name, no address)
    "email_headers_2": None,  # From: Discourse <info@discourse.org.   (broken)
    "email_headers_4": None,  # Da: Sally54721  (a name, no address)
}


@pytest.mark.parametrize("name,expected", sorted(DISCOURSE_EXPECTED.items()))
def test_discourse_forward_cases(name, expected):
    assert original_sender(None, (DISCOURSE / f"{name}.txt").read_text()) == expected


def test_other_corpora_forward_cases():
    crisp = CORPORA / "crisp-email-reply-parser" / "test" / "fixtures"
    assert original_sender(None, (crisp / "email_tricky_17_forward_header.txt").read_text()) == (
        "John Smith", "john@example.com")
    assert original_sender(None, (crisp / "email_tricky_15_original_message_variations.txt").read_text()) == (
        "", "sender@example.com")
    assert original_sender(None, (crisp / "email_original_message_2.txt").read_text()) is None  # no headers
    helpdesk = load(CORPORA / "django-helpdesk" / "tests" / "test_files" / "forwarded-message.eml")
    assert original_sender(helpdesk, plain_text(helpdesk)) == ("GitHub", "noreply@github.com")


# --- each client style, written out -----------------------------------------------------------

CLIENT_STYLES = {
    "gmail": "FYI\n\n---------- Forwarded message ---------\nFrom: Bob User <bob@users.org>\n"
             "Date: Tue, 5 Mar 2024 at 14:07\nSubject: VPN down\nTo: <alice@example.com>\n\nHelp!\n",
    "outlook original message": "See below\n\n-----Original Message-----\nFrom: Bob User <bob@users.org>\n"
                                "Sent: Tuesday, March 5, 2024 2:07 PM\nTo: Alice\nSubject: VPN down\n\nHelp!",
    "outlook separator": "See below\r\n\r\n________________________________\r\nFrom: Bob User <bob@users.org>\r\n"
                         "Sent: Tuesday, March 5, 2024 2:07 PM\r\nTo: Alice <alice@example.com>\r\n"
                         "Subject: VPN down\r\n\r\nHelp!\r\n",
    "outlook bold html-to-text": "See below\n\n*From:* Bob User <bob@users.org>\n*Sent:* Tuesday\n"
                                 "*To:* Alice\n*Subject:* VPN down\n\nHelp!",
    "outlook swedish": "Kolla\n\n________________________________\nFrån: Bob User <bob@users.org>\n"
                       "Skickat: den 5 mars 2024 14:07\nTill: Alice\nÄmne: VPN nere\n\nHjälp!",
    "outlook mailto": "FYI\n\nFrom: Bob User [mailto:bob@users.org]\nSent: Tuesday\nTo: Alice\n\nHelp!",
    "outlook on behalf": "FYI\n\n-----Original Message-----\nFrom: Bob User <bob@users.org> On Behalf Of IT Helpdesk\n"
                         "Sent: Tuesday\n\nHelp!",
    "apple mail": "FYI\n\nBegin forwarded message:\n\nFrom: Bob User <bob@users.org>\n"
                  "Subject: VPN down\nDate: 5 March 2024 at 14:07:31 CET\nTo: alice@example.com\n\nHelp!",
    "apple mail swedish": "FYI\n\nVidarebefordrat brev:\n\nFrån: Bob User <bob@users.org>\n"
                          "Ämne: VPN nere\nDatum: 5 mars 2024 14:07:31 CET\nTill: alice@example.com\n\nHjälp!",
    "thunderbird": "FYI\n\n-------- Forwarded Message --------\nSubject: \tVPN down\n"
                   "Date: \tTue, 5 Mar 2024 14:07:31 +0100\nFrom: \tBob User <bob@users.org>\nTo: \talice@example.com\n\nHelp!",
    "alpine": "FYI\n\n---------- Forwarded message ----------\nDate: Tue, 05 Mar 2024 14:07:31 +0100\n"
              "From: Bob User <bob@users.org>\nTo: alice@example.com\nSubject: VPN down\n\nHelp!",
    "mutt": "FYI\n\n----- Forwarded message from Bob User <bob@users.org> -----\n\n"
            "Date: Tue, 05 Mar 2024\nFrom: Someone Else <other@users.org>\n\nHelp!\n\n----- End forwarded message -----",
    "aerc with address": "FYI\n\nForwarded message from Bob User <bob@users.org> on Tue Mar 5, 2024 at 2:07 PM:\nHelp!",
    "outlook last-first name": "FYI\n\n-----Original Message-----\nFrom: User, Bob <bob@users.org>\n"
                               "Sent: Tuesday\n\nHelp!",
    "wrapped from": "FYI\n\n-----Original Message-----\nFrom: Bob User <\nbob@users.org>\nSent: Tuesday\n\nHelp!",
}


@pytest.mark.parametrize("style", sorted(CLIENT_STYLES))
def test_client_style(style):
    name, address = original_sender(None, CLIENT_STYLES[style])
    assert address == "bob@users.org"
    assert name == ("User, Bob" if "last-first" in style else "Bob User")


def test_the_first_forward_decides():
    text = CLIENT_STYLES["gmail"].replace("Bob User <bob@users.org>", "Bob User") + CLIENT_STYLES["alpine"]
    assert original_sender(None, text) is None


@pytest.mark.parametrize(
    "text",
    ["", "Please help, the VPN is down.", "From: the network team\n\nwe need a fix",
     "-----------\nRegards,\nAlice", "Forwarded message from Bob on Tue Mar 5, 2024 at 2:07 PM:\nHelp",
     "---------- Forwarded message ---------\nFrom: bob@users.org, eve@users.org\nDate: today\n",
     "---------- Forwarded message ---------\nFrom: Bob <bob@users>\nDate: today\n",
     "---------- Forwarded message ---------\nFrom: Bob <bob@@users.org>\nDate: today\n",
     "Thanks!\n\nFrom: Bob <bob@users.org>\n\nDate: today\n"],  # From and Date in different paragraphs
)
def test_no_usable_original_sender(text):
    assert original_sender(None, text) is None


def test_signature_dashes_before_a_real_forward_are_skipped():
    text = "Hi\n----------\nAlice\n\n" + CLIENT_STYLES["gmail"]
    assert original_sender(None, text) == ("Bob User", "bob@users.org")


# --- forwarded as an attachment -------------------------------------------------------------------


def forward_as_attachment(inner_from: str, body: str = "see attached") -> EmailMessage:
    inner = EmailMessage()
    inner["From"] = inner_from
    inner["To"] = "alice@example.com"
    inner["Subject"] = "VPN down"
    inner.set_content("Help!")
    outer = EmailMessage()
    outer["From"] = "Alice <alice@example.com>"
    outer["To"] = "support@example.com"
    outer["Subject"] = "FW: VPN down"
    outer.set_content(body)
    outer.add_attachment(inner)
    return outer


def test_attached_message_wins_over_the_text():
    outer = forward_as_attachment("=?utf-8?q?Bj=C3=B6rn_User?= <Bjorn@Users.org>", CLIENT_STYLES["gmail"])
    reparsed = message_from_bytes(outer.as_bytes(), policy=policy.default)
    assert original_sender(reparsed, plain_text(reparsed)) == ("Björn User", "bjorn@users.org")


def test_attached_message_in_a_compat32_parse():
    raw = forward_as_attachment("Bob User <bob@users.org>").as_bytes()
    msg = message_from_bytes(raw)  # the legacy policy
    assert original_sender(msg, "") == ("Bob User", "bob@users.org")


def test_attached_message_with_a_defective_from_gives_none():
    raw = forward_as_attachment("Bob User <bob@users.org>").as_bytes().replace(
        b"From: Bob User <bob@users.org>", b"From: Bob User <bob@users.org")
    msg = message_from_bytes(raw, policy=policy.default)
    assert original_sender(msg, CLIENT_STYLES["gmail"]) is None


# --- helpers ---------------------------------------------------------------------------------


def test_name_and_address():
    assert name_and_address('"User, Bob" <Bob@Users.ORG>') == ("User, Bob", "bob@users.org")
    assert name_and_address("bob@users.org") == ("", "bob@users.org")
    assert name_and_address("Bob") is None
    assert name_and_address("Bob <bob@users.org> <eve@users.org>") is None
    assert name_and_address("Dr. J. Smith <j@users.org>") == ("Dr. J. Smith", "j@users.org")
    assert name_and_address("Smith, John <j@users.org>") is None  # two addresses in a real header
    assert name_and_address("John <j@[192.0.2.1]>") is None


@pytest.mark.parametrize(
    "subject",
    ["Fwd: VPN", "FW: VPN", "Fw: VPN", "VB: VPN", "WG: VPN", "Vs: VPN", "Doorst: VPN", "TR: VPN",
     "RV: VPN", "Re: Fwd: VPN", "[SD-12] FW: VPN", "SV: VB: VPN", "FW:VPN", "Fwd[2]: VPN",
     "转发：VPN", "VPN down (fwd)", "[bob@users.org: VPN down]"],
)
def test_is_forward(subject):
    assert is_forward(subject)


@pytest.mark.parametrize(
    "subject",
    [None, "", "VPN", "Re: VPN", "SV: AW: VPN", "Forward planning", "Fwd planning", "Printer: FW: jam",
     "[Ticket #1042] VPN", "TRAP: fwd", "[SD-12] Re: VPN"],
)
def test_is_not_forward(subject):
    assert not is_forward(subject)


def test_big_hostile_text_is_fast():
    text = ("Forwarded message from " + "x on " * 20000 + "\n") + ("From: a\n" * 20000) + "-" * 100000
    started = time.perf_counter()
    assert original_sender(None, text) is None
    assert time.perf_counter() - started < 1  # no case over 1 s
