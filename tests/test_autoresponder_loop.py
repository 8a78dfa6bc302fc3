"""Two autoresponders answering each other for an hour cause a handful of mails, not hundreds."""

import email
import email.policy
from datetime import timedelta

import pytest

from mailticket import db

from mailticket.service import intake

from mailticket.desk import pipeline
from mailticket.clock import FakeClock
from mailticket.config import load_config
from mailticket.service.daemon import Daemon
from mailticket.service.wiring import build_desk
from tests.harness import make_mail, write_config

RESPONDER = "robot@partner.example"


class RecordingTransport:
    def __init__(self):
        self.sent = []

    def send(self, mail_from, recipients, raw):
        self.sent.append((recipients, email.message_from_bytes(raw, policy=email.policy.default)))

    def close(self):
        pass


def _responder_reply(style: str, ours, n: int, now) -> bytes:
    """What an autoresponder that answers every mail writes back."""
    subject = ours["Subject"]
    if style == "rfc3834":      # a well-behaved one: marks its answer as automatic, and threads it
        return make_mail(sender=RESPONDER, subject=f"Automatic reply: {subject}", in_reply_to=ours["Message-ID"],
                         headers={"Auto-Submitted": "auto-replied"}, body="I am away.", date=now,
                         message_id=f"<auto{n}@partner.example>")
    if style == "threading":    # no auto headers, but a proper reply to our mail
        return make_mail(sender=RESPONDER, subject=f"Re: {subject}", in_reply_to=ours["Message-ID"],
                         references=ours["Message-ID"], body="Thank you for your message.", date=now,
                         message_id=f"<auto{n}@partner.example>")
    # the worst kind: looks like a person, new subject every time, no threading at all
    return make_mail(sender=RESPONDER, subject=f"We received your message (case {n})", body="We will answer.",
                     date=now, message_id=f"<auto{n}@partner.example>")


@pytest.mark.parametrize("style", ["rfc3834", "threading", "new-subject"])
def test_an_hour_of_autoresponder_ping_pong_stays_within_the_caps(tmp_path, style):
    cfg = load_config(write_config(tmp_path))          # default rate limits
    db.connect(cfg.database.url)
    clock = FakeClock()
    desk = build_desk(cfg, clock=clock)
    transport = RecordingTransport()
    daemon = Daemon(desk, transport=transport)
    first = make_mail(sender=RESPONDER, subject="Hello", date=clock.now(), message_id="<start@partner.example>")
    pipeline.store_raw(first, source="test", now=clock.now())
    answered, responder_sent = 0, 1
    end = clock.now() + timedelta(hours=1)
    while clock.now() < end:
        intake.process_pending(desk, "test")
        daemon.drain()
        to_responder = [m for rcpts, m in transport.sent if RESPONDER in rcpts]
        for ours in to_responder[answered:]:
            responder_sent += 1
            pipeline.store_raw(_responder_reply(style, ours, responder_sent, clock.now()), source="test",
                               now=clock.now())
        answered = len(to_responder)
        clock.advance(timedelta(seconds=20))
    ours_to_responder = len([1 for rcpts, _ in transport.sent if RESPONDER in rcpts])
    assert ours_to_responder <= cfg.rate_limits.per_sender_day, f"we sent {ours_to_responder} mails to the robot"
    assert responder_sent <= ours_to_responder + 1
    if style in ("rfc3834", "threading"):
        assert ours_to_responder == 1, "one acknowledgement, then the robot's answers only land on the ticket"
    # the whole hour, everything included (notifications to the tier too), is a handful, not hundreds
    assert len(transport.sent) <= 2 * cfg.rate_limits.per_sender_day + 2
