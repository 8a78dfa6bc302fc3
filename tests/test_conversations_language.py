"""Every requester in their own language (issue 26): conversations through Dovecot and the SMTP
sink, on SQLite and PostgreSQL, with a Swedish desk and an English one.

The requester's language is decided at their first mail (Content-Language, then the new text,
else the desk's locale; under 5 words always the desk's), remembered per address, and every mail
to them goes out in it; the agents' mail stays in the desk's language and names the requester's.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from mailticket.models import Event, InboundMail, RequesterLanguage, Ticket
from tests.harness import ConversationDesk, make_mail, wait_until
from tests.test_conversations_agents import gmail_reply, plain_text

ANNA = "anna@customer.example"
BO = "bo@customer.example"
L1 = "l1@example.com"

ENGLISH = ("Hello, the printer on the third floor has stopped printing since this morning. It shows a paper "
           "jam error although there is no paper stuck inside. Could someone please have a look at it today?")
SWEDISH = ("Hej! Skrivaren på tredje våningen har slutat skriva ut sedan i morse. Den visar ett fel om "
           "pappersstopp fast det inte sitter något papper fast. Kan någon titta på den i dag?")
ACK = {"en": "Received:", "sv": "Vi har tagit emot ditt ärende"}
RESOLVED = {"en": "Resolved:", "sv": "Löst:"}
NOTE_LINE = {("en", "en"): "The requester writes in English", ("en", "sv"): "The requester writes in Swedish",
             ("sv", "en"): "Anmälaren skriver på engelska", ("sv", "sv"): "Anmälaren skriver på svenska"}
NEW_TICKET = {"en": "A new ticket has come in", "sv": "Ett nytt ärende har kommit in"}


def with_content_language(raw: bytes, value: str) -> bytes:
    """The mail with a Content-Language header (EmailMessage.set_content drops every Content-* one)."""
    return f"Content-Language: {value}\r\n".encode() + raw


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


class Desk(ConversationDesk):
    """Dovecot in, the daemon in a thread, the sink out."""

    def __init__(self, tmp_path, user, sink, db_url: str, locale: str):
        super().__init__(tmp_path, user, sink, db_url=db_url, extra={"service": {"locale": locale}})
        self.locale = locale

    def mails(self, rcpt: str) -> list[EmailMessage]:
        return [parse(m.data) for m in self.sink.received if rcpt in m.rcpt_tos]

    def wait_mail(self, rcpt: str, subject: str, count: int = 1) -> list[EmailMessage]:
        return wait_until(lambda: (lambda found: found if len(found) >= count else None)(
            [m for m in self.mails(rcpt) if subject in str(m["Subject"])]),
            timeout=30, what=f"{count} mail(s) to {rcpt} with {subject!r}")

    def new_ticket(self, body: str, *, sender: str = f"Anna Svensson <{ANNA}>", headers=None, raw: bytes = None,
                   subject: str = "Printer") -> tuple[Ticket, EmailMessage]:
        """A requester's mail -> its ticket and the tier's notification."""
        message_id = make_msgid(domain="customer.example")
        before = len(self.mails(L1))
        if raw is None:
            raw = make_mail(sender=sender, subject=subject, body=body, message_id=message_id)
            if headers and "Content-Language" in headers:
                raw = with_content_language(raw, headers["Content-Language"])
        self.deliver(raw)
        notes = wait_until(lambda: (lambda m: m if len(m) > before else None)(self.mails(L1)),
                           timeout=30, what="the tier notification")
        ticket = Ticket.get(Ticket.thread_root == parse(raw)["Message-ID"].strip("<>"))
        return ticket, notes[-1]


@pytest.fixture(params=["sv", "en"])
def desk(request, tmp_path, mailbox_user, smtp_sink, db_url):
    with Desk(tmp_path, mailbox_user, smtp_sink, db_url, request.param) as live:
        yield live


def other(locale: str) -> str:
    return "en" if locale == "sv" else "sv"


def test_a_requester_in_the_other_language_is_answered_in_it(desk):
    """An English mail to the Swedish desk gets an English acknowledgement and English updates (and a
    Swedish one to the English desk Swedish ones); the agents' mail stays in the desk's language
    and names the requester's."""
    theirs = other(desk.locale)
    ticket, notification = desk.new_ticket(ENGLISH if theirs == "en" else SWEDISH)
    assert ticket.language == theirs
    ack = desk.wait_mail(ANNA, ACK[theirs])[-1]
    assert ACK[desk.locale] not in str(ack["Subject"])
    # the agent's notification: in the desk's language, naming the requester's
    text = plain_text(notification)
    assert NEW_TICKET[desk.locale] in text and NOTE_LINE[(desk.locale, theirs)] in text
    # the agent resolves it with a few words: the requester's resolved mail is in their language
    desk.deliver(gmail_reply(notification, "#status resolved\n\nThe print server is restarted."))
    resolved = desk.wait_mail(ANNA, RESOLVED[theirs])[-1]
    assert RESOLVED[desk.locale] not in str(resolved["Subject"])
    assert RequesterLanguage.get(RequesterLanguage.address == ANNA).language == theirs
    # the next ticket of the same requester: remembered, even for a short mail
    second, _ = desk.new_ticket("Same again, sorry!", subject="Printer again")
    assert second.language == theirs
    assert len(desk.wait_mail(ANNA, ACK[theirs], count=2)) == 2


def test_a_one_line_mail_gets_the_desks_language(desk):
    ticket, notification = desk.new_ticket("Help!", sender=f"Bo Ek <{BO}>")
    assert ticket.language == desk.locale
    desk.wait_mail(BO, ACK[desk.locale])
    assert NOTE_LINE[(desk.locale, desk.locale)] in plain_text(notification)


def test_content_language_wins_over_the_text(desk):
    """Content-Language: sv on an English text: Swedish (and en on a Swedish text: English)."""
    stated = other(desk.locale)
    body = ENGLISH if desk.locale == "en" else SWEDISH  # the text says the desk's language, the header the other
    ticket, _ = desk.new_ticket(body, headers={"Content-Language": f"{stated}-{'SE' if stated == 'sv' else 'GB'}"})
    assert ticket.language == stated
    desk.wait_mail(ANNA, ACK[stated])


def test_language_command_switches_the_next_mails(desk):
    """#language: the requester's language from now on, whatever they write; the agent's own mail
    stays in the desk's language."""
    ticket, notification = desk.new_ticket(SWEDISH if desk.locale == "sv" else ENGLISH)
    assert ticket.language == desk.locale
    desk.wait_mail(ANNA, ACK[desk.locale])
    switch_to = other(desk.locale)
    desk.deliver(gmail_reply(notification, f"#language {switch_to}\n#status resolved\n\nDone."))
    desk.wait_mail(ANNA, RESOLVED[switch_to])
    assert Ticket.get_by_id(ticket.id).language == switch_to
    row = RequesterLanguage.get(RequesterLanguage.address == ANNA)
    assert (row.language, row.how) == (switch_to, "agent")
    assert Event.select().where(Event.ticket == ticket.id, Event.kind == "language").exists()
    # a long mail in the desk's language later does not undo an agent's choice
    second, note2 = desk.new_ticket(SWEDISH if desk.locale == "sv" else ENGLISH, subject="Scanner")
    assert second.language == switch_to
    assert NEW_TICKET[desk.locale] in plain_text(note2)


def test_a_clear_switch_for_a_whole_mail_is_followed(desk):
    """Later mails keep the language unless one is written clearly (20 words or more) in another."""
    ticket, _ = desk.new_ticket(ENGLISH if desk.locale == "en" else SWEDISH)
    assert ticket.language == desk.locale
    switch_to = other(desk.locale)
    second, _ = desk.new_ticket("Thanks, it works now!" if switch_to == "en" else "Tack, nu funkar det!",
                                subject="Other thing")
    assert second.language == desk.locale  # a few words in the other language: kept
    third, _ = desk.new_ticket(ENGLISH if switch_to == "en" else SWEDISH, subject="Third thing")
    assert third.language == switch_to
    desk.wait_mail(ANNA, ACK[switch_to])


def test_a_participant_gets_their_own_language(desk):
    """A participant whose language is known gets a copy of their own; the requester theirs."""
    theirs = other(desk.locale)
    desk.new_ticket(ENGLISH if theirs == "en" else SWEDISH, sender=f"Bo Ek <{BO}>", subject="Bo's own")
    desk.wait_mail(BO, ACK[theirs])
    ticket, notification = desk.new_ticket(SWEDISH if desk.locale == "sv" else ENGLISH, subject="Shared",
                                           raw=make_mail(sender=f"Anna Svensson <{ANNA}>", cc=f"Bo Ek <{BO}>",
                                                         subject="Shared",
                                                         body=SWEDISH if desk.locale == "sv" else ENGLISH))
    assert ticket.language == desk.locale
    desk.deliver(gmail_reply(notification, "#status resolved\n\nFixed for both of you."))
    anna = desk.wait_mail(ANNA, RESOLVED[desk.locale])[-1]
    bo = desk.wait_mail(BO, RESOLVED[theirs])[-1]
    assert BO not in str(anna.get("Cc", "")) and ANNA not in str(bo["To"])


# ---------------------------------------------------------------- bad input

def test_bad_input_gets_the_desks_language_or_a_clear_reply(desk):
    locale = desk.locale
    # only a signature: nothing to tell by
    sig, _ = desk.new_ticket("-- \nAnna Svensson\nIT-avdelningen\n+46 8 123 45 67", subject="Signature")
    assert sig.language == locale
    # a Content-Language the desk does not offer: ignored; a short text gets the desk's language,
    # a long one its own
    theirs = other(locale)
    german, _ = desk.new_ticket("Drucker kaputt, bitte helfen", headers={"Content-Language": "de-DE"},
                                subject="German header", sender="Cy <cy@customer.example>")
    assert german.language == locale
    german_long, _ = desk.new_ticket(ENGLISH if theirs == "en" else SWEDISH, headers={"Content-Language": "de"},
                                     subject="German header again", sender="Fa <fa@customer.example>")
    assert german_long.language == theirs
    # a mixed mail, half each: one of the offered languages, no error
    mixed, _ = desk.new_ticket(ENGLISH + "\n\n" + SWEDISH, subject="Mixed", sender="Di <di@customer.example>")
    assert mixed.language in ("sv", "en")
    # an HTML-only mail in the other language: told from its text
    html = EmailMessage()
    html["From"], html["To"], html["Subject"] = "Ed <ed@customer.example>", "support@example.com", "HTML only"
    html["Message-ID"] = make_msgid(domain="customer.example")
    html.set_content(f"<html><body><p>{ENGLISH if theirs == 'en' else SWEDISH}</p></body></html>", subtype="html")
    html_ticket, notification = desk.new_ticket("", raw=html.as_bytes(policy=html.policy.clone(linesep="\r\n")))
    assert html_ticket.language == theirs
    desk.wait_mail("ed@customer.example", ACK[theirs])
    # #language xx: a clear reply to the agent, in the desk's language; nothing changed
    desk.deliver(gmail_reply(notification, "#language xx\n\nNoted."))
    error = desk.wait_mail("alice@example.com", {"en": "Some commands in your reply were not applied",
                                                 "sv": "Några kommandon i ditt svar kunde inte utföras"}[locale])[-1]
    text = plain_text(error)
    assert "#language xx" in text and f"#language {locale}|{theirs}" in text
    assert {"en": "is not a language this desk writes in", "sv": "är inget språk som servicedesken skriver på"}[locale] in text
    assert Ticket.get_by_id(html_ticket.id).language == theirs
    assert InboundMail.select().where(InboundMail.state == "quarantined").count() == 0
