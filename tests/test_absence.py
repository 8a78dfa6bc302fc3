"""inbound.absence: which short texts read as an absence notice (a vacation responder's), in the
desk's languages and the neighbours', and which do not."""

import pytest

from mailticket.inbound.absence import MAX_WORDS, absence_phrase


@pytest.mark.parametrize("text", [
    "Thank you for your mail. I am on vacation until 20 November and read no mail until then.",
    "I am currently out of the office with limited access to email.",
    "I'm out of office until Monday 7 December. For urgent matters call the service desk.",
    "I am on parental leave and will be back on 1 March.",
    "Tack för ditt mejl. Jag har semester till den 20 november och läser inga mejl förrän dess.",
    "Jag är frånvarande och åter den 4 januari.",
    "Hej! Jag är föräldraledig till 1 mars. Vid brådskande ärenden, kontakta servicedesken.",
    "Jag är ledig t.o.m. fredag.",
    "Jeg er på ferie og er tilbake 3. januar.",
    "Ich bin bis zum 3. Januar nicht im Büro.",
])
def test_absence_notices_are_told(text):
    assert absence_phrase(text) is not None


@pytest.mark.parametrize("text", [
    "I restarted the print server; please try again.",
    "Starta om datorn och försök igen, så återkommer jag.",
    "The VPN certificate was renewed. Your laptop picks it up at the next login.",
    "",
])
def test_ordinary_replies_are_not(text):
    assert absence_phrase(text) is None


def test_a_long_mail_is_a_persons_whatever_it_says():
    text = "I will be out of the office tomorrow. " + "Here is what I found in the logs today. " * MAX_WORDS
    assert absence_phrase(text) is None
