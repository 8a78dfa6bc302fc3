"""Every mail mailticket sends, parsed back: the right headers, threading, and no way for a value
from a mail (name, subject) to add a header or reach a template as code."""

import email
import email.policy
from datetime import timedelta

import pytest

from mailticket import db

from mailticket.desk import pipeline
from mailticket.clock import FakeClock
from mailticket.config import load_config
from mailticket.service.wiring import build_desk
from mailticket.models import Outbox, Ticket
from mailticket.outbound.notify import Recipient
from mailticket.outbound.render import LOCALES, TEMPLATE_NAMES, Renderer
from mailticket.outbound.template_context import EXTRA_KEYS, sample_context
from tests.harness import make_mail, write_config

HOSTILE_NAME = 'Eve {{7*7}} <script>alert(1)</script>\r\nBcc: victim@evil.example'
HOSTILE_SUBJECT = 'Help {{7*7}} <script>x</script>\r\nBcc: victim@evil.example\x00'
NO_MAIL_DATA = {"closed", "escalated", "warning", "breach_deadline_warning", "delivery_failure", "command_error",
                "query_answer",
                "alarm", "alarm_cleared"}
EXPECTED_HEADERS = {"from", "to", "subject", "date", "message-id", "in-reply-to", "references", "reply-to",
                    "auto-submitted", "x-auto-response-suppress", "precedence", "x-mailticket-loop",
                    "x-mailticket-ticket", "mime-version", "content-type"}


@pytest.fixture
def desk(tmp_path):
    cfg = load_config(write_config(tmp_path, extra={"rate_limits": {"per_ticket": 100, "per_sender_day": 100}}))
    db.connect(cfg.database.url)
    return build_desk(cfg, clock=FakeClock(), renderer=Renderer(strict=True))


def _hostile_ticket(desk):
    raw = make_mail(sender="x@customer.example", subject="placeholder", message_id="<hostile@customer.example>")
    # the name and subject arrive encoded, as a real client would send them
    from email.header import Header
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    del msg["From"], msg["Subject"]
    msg["From"] = f'{Header(HOSTILE_NAME, "utf-8").encode()} <eve@customer.example>'
    msg["Subject"] = Header(HOSTILE_SUBJECT, "utf-8").encode()
    row = pipeline.store_raw(msg.as_bytes(), source="test", now=desk.clock.now())
    outcome = pipeline.process_one(desk, row)
    assert outcome.state == "processed", outcome
    return Ticket.get_by_id(outcome.ticket)


@pytest.mark.parametrize("locale", LOCALES)
# the manager's report is about no ticket: its headers are checked in tests/test_report_cli.py
@pytest.mark.parametrize("kind", [k for k in TEMPLATE_NAMES if k != "manager_report"])
def test_every_mail_parses_back_with_exactly_the_expected_headers(desk, kind, locale):
    ticket = _hostile_ticket(desk)
    extras = {k: v for k, v in sample_context(kind).items() if k in EXTRA_KEYS[kind]}
    for key in ("agent_name", "author_name", "sender", "subject", "reason", "body", "detail"):
        if key in extras:
            extras[key] = HOSTILE_SUBJECT
    if kind == "quarantine_digest":  # the quarantined mails' own headers, listed
        extras["mails"] = [dict(m, sender=HOSTILE_SUBJECT, subject=HOSTILE_SUBJECT, reason=HOSTILE_SUBJECT)
                           for m in extras["mails"]]
    if kind == "delivery_digest":  # the refused addresses and the servers' words, listed
        extras["failures"] = [dict(f, recipient=HOSTILE_SUBJECT, reason=HOSTILE_SUBJECT) for f in extras["failures"]]
    entry = desk.mailer.send(kind, to=[Recipient("eve@customer.example", HOSTILE_NAME)], now=desk.clock.now(),
                             ticket=ticket, context=extras, locale=locale, in_reply_to="hostile@customer.example",
                             from_name=HOSTILE_NAME if kind == "agent_reply" else None,
                             auto_submitted="no" if kind == "agent_reply" else "auto-replied")
    raw = bytes(entry.raw)
    assert b"\r\n" in raw and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    names = {k.lower() for k in msg.keys()}
    expected = EXPECTED_HEADERS - ({"precedence"} if kind == "agent_reply" else set())
    assert names == expected, f"{kind}/{locale}: {sorted(names ^ expected)}"
    assert not msg.defects
    subject = msg["Subject"]
    assert "\n" not in subject and "\r" not in subject and "\x00" not in subject
    assert f"[SD#{ticket.id}]" in subject
    assert "49" not in subject.replace(str(ticket.id), "")
    assert [a.addr_spec for a in msg["To"].addresses] == ["eve@customer.example"]
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    assert msg["In-Reply-To"] == "<hostile@customer.example>"
    assert "<hostile@customer.example>" in msg["References"]
    assert msg["Message-ID"].startswith("<mt.") and msg["Message-ID"].endswith("@example.com>")
    assert msg["X-Mailticket-Loop"] == "support@example.com"
    assert msg["Auto-Submitted"] == ("no" if kind == "agent_reply" else "auto-replied")
    assert msg["Reply-To"].addresses[0].addr_spec.startswith("support+t")
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "<script" not in html.lower(), "autoescaped"
    if "script" in html:
        assert "&lt;script&gt;" in html
    for part in (text, html):  # mail data is shown, never evaluated
        assert "Help 49" not in part and "Eve 49" not in part
    assert "{{7*7}}" in text or "{{7*7}}" in html or kind in NO_MAIL_DATA
    assert entry.mail_from.startswith("support+b.")


def test_a_name_with_crlf_cannot_add_a_bcc(desk):
    ticket = _hostile_ticket(desk)
    assert ticket.requester_name and "\n" not in ticket.requester_name
    ack = Outbox.get(Outbox.kind == "acknowledgement")
    msg = email.message_from_bytes(bytes(ack.raw), policy=email.policy.default)
    assert msg["Bcc"] is None and "victim@evil.example" not in ack.recipients
    assert [a.addr_spec for a in msg["To"].addresses] == ["eve@customer.example"]
    assert "{{7*7}}" in msg["Subject"] and "49" not in msg["Subject"].replace(str(ticket.id), "")


def test_replies_keep_one_thread_for_the_requester(desk):
    """The acknowledgement and an agent's reply both refer to the requester's own mail."""
    raw = make_mail(message_id="<root@customer.example>")
    t = Ticket.get_by_id(pipeline.process_one(desk, pipeline.store_raw(raw, source="t", now=desk.clock.now())).ticket)
    ack = email.message_from_bytes(bytes(Outbox.get(Outbox.kind == "acknowledgement").raw), policy=email.policy.default)
    desk.clock.advance(timedelta(minutes=5))
    desk.mailer.send("agent_reply", to=[Recipient(t.requester_address)], now=desk.clock.now(), ticket=t,
                     context={"agent_name": "Alice", "body": "On it."}, in_reply_to="root@customer.example",
                     from_name="Alice", auto_submitted="no")
    reply = email.message_from_bytes(bytes(Outbox.get(Outbox.kind == "agent_reply").raw), policy=email.policy.default)
    assert reply["References"].split()[0] == "<root@customer.example>"
    assert ack["Message-ID"] in reply["References"]
    assert reply["From"].addresses[0].display_name == "Alice via Service Desk"
    # nothing internal in what the requester's client sees
    internal = [o.message_id for o in Outbox.select().where(Outbox.kind == "new_ticket")]
    assert internal and not any(i in reply["References"] for i in internal)
