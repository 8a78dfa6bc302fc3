"""A mail queued as a draft (the daemon leaves rendering to its sender process) is sent as exactly
the mail the daemon would have written; what a draft cannot carry is written at once; a draft
that cannot be written fails for good with its reason, and the admin is told."""

import email
import email.policy
import json
from datetime import date, datetime, timedelta, timezone
from http import HTTPStatus

import pytest
from markupsafe import Markup

from mailticket import db

from mailticket.outbound import drafts

from mailticket.outbound import notify

from mailticket.outbound import outbox

from mailticket.desk import pipeline
from mailticket.clock import FakeClock
from mailticket.config import load_config
from mailticket.service.wiring import build_desk
from mailticket.models import Outbox, SchemaMigration, Ticket
from mailticket.outbound.notify import Recipient
from mailticket.outbound.render import LOCALES, TEMPLATE_NAMES, Renderer
from mailticket.outbound.template_context import EXTRA_KEYS, sample_context
from tests.harness import make_mail, write_config

HOSTILE = 'Eve {{7*7}} <script>x</script>\r\nBcc: victim@evil.example \u00e5\u00e4\u00f6 \U0001f600'


@pytest.fixture
def desk(tmp_path, db_url):
    cfg = load_config(write_config(tmp_path, db_url=db_url,
                                   extra={"rate_limits": {"per_ticket": 1000, "per_sender_day": 1000}}))
    db.connect(cfg.database.url)
    return build_desk(cfg, clock=FakeClock(), renderer=Renderer(strict=True))


@pytest.fixture
def fixed_ids(monkeypatch):
    """Message-IDs from a counter that a test can wind back, so one mail can be queued twice."""
    counter = {"n": 0}

    def token_hex(n):
        counter["n"] += 1
        return f"{counter['n']:0{2 * n}x}"
    monkeypatch.setattr(notify.secrets, "token_hex", token_hex)
    return counter


class Recording:
    """A transport that keeps what it is given; ``refuse`` makes any mail a test failure."""

    def __init__(self, refuse: bool = False):
        self.sent, self.refuse = [], refuse

    def send(self, mail_from, recipients, raw):
        assert not self.refuse, "nothing may be sent"
        self.sent.append(raw)

    def close(self):
        pass


def _ticket(desk):
    raw = make_mail(sender="eve@customer.example", subject="Printer on fire", message_id="<root@customer.example>")
    outcome = pipeline.process_one(desk, pipeline.store_raw(raw, source="t", now=desk.clock.now()))
    return Ticket.get_by_id(outcome.ticket)


def _send(desk, ticket, kind, locale, **extra):
    context = {k: v for k, v in sample_context(kind).items() if k in EXTRA_KEYS[kind]}
    for key in ("agent_name", "author_name", "sender", "subject", "reason", "body"):
        if key in context:
            context[key] = HOSTILE
    return desk.mailer.send(kind, to=[Recipient("eve@customer.example", HOSTILE)], now=desk.clock.now(),
                            ticket=ticket, context=context, locale=locale, in_reply_to="root@customer.example",
                            from_name=HOSTILE if kind == "agent_reply" else None,
                            cc=[Recipient("l1@example.com", "Tier 1")] if kind == "note" else (),
                            auto_submitted="no" if kind == "agent_reply" else "auto-replied", **extra)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", TEMPLATE_NAMES)
def test_a_draft_gives_the_very_mail_written_at_once(desk, fixed_ids, kind, locale):
    ticket = _ticket(desk)
    start = fixed_ids["n"]
    database = Outbox._meta.database
    with database.atomic() as txn:  # written at once, then undone: same Message-ID, same thread
        written = _send(desk, ticket, kind, locale)
        expected = bytes(written.raw)
        txn.rollback()
    assert written.draft is None and expected
    fixed_ids["n"] = start
    desk.mailer.defer = True
    queued = Outbox.get_by_id(_send(desk, ticket, kind, locale).id)
    assert queued.draft is not None and bytes(queued.raw) == b""
    assert queued.message_id == written.message_id and queued.mail_from == written.mail_from
    assert desk.mailer.mail_bytes(queued) == expected
    assert desk.mailer.mail_bytes(written) == expected  # a mail written at once is sent as it is


def test_the_daemon_defers_and_the_sender_renders_what_reaches_the_server(desk):
    """Through drain, as the sender process runs it: the server gets the rendered mail."""
    desk.mailer.defer = True
    ticket = _ticket(desk)
    entries = list(Outbox.select().where(Outbox.ticket == ticket))
    assert {e.kind for e in entries} == {"acknowledgement", "new_ticket"}
    assert all(e.draft is not None for e in entries)
    transport = Recording()
    result = outbox.drain(transport, desk.clock.now(), desk.config.outbox, compose=desk.mailer.mail_bytes)
    assert result.sent == 2
    ack = next(email.message_from_bytes(r, policy=email.policy.default) for r in transport.sent
               if b"eve@customer.example" in r.split(b"\r\n\r\n")[0])
    assert f"[SD#{ticket.id}]" in ack["Subject"] and ack["In-Reply-To"] == "<root@customer.example>"
    assert ack["Message-ID"] == "<" + Outbox.get(Outbox.kind == "acknowledgement").message_id + ">"
    assert "Printer on fire" in ack["Subject"]
    assert f"as ticket\r\n[SD#{ticket.id}], priority P3" in ack.get_body(("plain",)).get_content()
    assert ack.get_body(("html",)) is not None


def test_values_come_back_as_they_went():
    now = datetime(2026, 11, 27, 16, 5, 7, 123456, tzinfo=timezone.utc)
    context = {"now": now, "naive": datetime(2026, 1, 2, 3, 4), "day": date(2026, 12, 24),
               "left": timedelta(hours=3, seconds=1.5), "words": ("a", "b"), "n": 3, "x": 0.25, "yes": True,
               "none": None, "text": "r\u00e4ksm\u00f6rg\u00e5s \U0001f600 \ud800", "nested": [{"at": now, "list": [1, [2]]}],
               "two_keys": {"__datetime__": "not a date", "other": 1}}
    heading = drafts.Heading(message_id="mt.1@example.com", date=now, to=(("Eve", "eve@customer.example"),),
                             references=("a@b", "c@d"), reply_to="support+t1@example.com", ticket_id=7)
    back = drafts.loads(drafts.dumps(drafts.Draft("note", "sv", context, heading)))
    assert back.heading == heading and back.kind == "note" and back.locale == "sv"
    assert back.context == {**context, "words": ["a", "b"]}  # a tuple comes back a list, as templates see it
    assert back.context["now"].tzinfo is not None and back.context["naive"].tzinfo is None


@pytest.mark.parametrize("value", [
    {1, 2}, b"bytes", {1: "int key"}, float("nan"), float("inf"), object(), {"__datetime__": "2026-01-01"},
    [datetime.now(timezone.utc), {"deep": {"set": {1}}}], Markup("<b>safe</b>"), HTTPStatus.OK,
], ids=["set", "bytes", "int-key", "nan", "inf", "object", "marker-key", "deep", "markup", "int-enum"])
def test_a_value_a_draft_cannot_carry_is_refused(value):
    heading = drafts.Heading(message_id="mt.1@example.com", date=datetime.now(timezone.utc), to=(("", "a@b.c"),))
    with pytest.raises(drafts.NotPlain):
        drafts.dumps(drafts.Draft("note", "en", {"value": value}, heading))


def test_a_mail_a_draft_cannot_carry_is_written_at_once(desk):
    """Values that are not plain, files and calendar parts: the daemon writes those mails itself."""
    desk.mailer.defer = True
    ticket = _ticket(desk)
    odd = _send(desk, ticket, "note", "en", attachments=[("a.txt", "text/plain", b"file")])
    assert odd.draft is None and b"a.txt" in bytes(odd.raw)
    base = {k: v for k, v in sample_context("note").items() if k in EXTRA_KEYS["note"]}
    strange = desk.mailer.send("note", to=[Recipient("l1@example.com")], now=desk.clock.now(), ticket=ticket,
                               context={**base, "extra": {"a", "set"}})
    assert strange.draft is None and bytes(strange.raw).startswith(b"From:")


def test_a_draft_that_cannot_be_written_fails_for_good_and_the_admin_is_told(desk):
    desk.mailer.defer = True
    ticket = _ticket(desk)
    broken = Outbox.get(Outbox.kind == "acknowledgement")
    Outbox.update(draft=json.dumps({"v": 1, "kind": "no_such_mail", "locale": "en", "context": {},
                                    "heading": json.loads(broken.draft)["heading"]})).where(
        Outbox.id == broken.id).execute()
    garbled = Outbox.get(Outbox.kind == "new_ticket")
    Outbox.update(draft="{not json").where(Outbox.id == garbled.id).execute()
    told, transport = [], Recording()

    result = outbox.drain(transport, desk.clock.now(), desk.config.outbox, compose=desk.mailer.mail_bytes,
                          on_failed=told.append)
    assert transport.sent == [] and sorted(result.failed) == sorted([broken.id, garbled.id])
    for entry in (broken, garbled):
        row = Outbox.get_by_id(entry.id)
        assert row.status == "failed" and row.last_error.startswith("cannot be written: ")
    assert "no_such_mail" in Outbox.get_by_id(broken.id).last_error
    assert sorted(e.id for e in told) == sorted([broken.id, garbled.id])
    assert Ticket.get_by_id(ticket.id).status == "new"


def test_a_drain_given_no_compose_stops_at_a_draft_rather_than_losing_it(desk):
    desk.mailer.defer = True
    _ticket(desk)
    with pytest.raises(RuntimeError, match="draft"):
        outbox.drain(Recording(refuse=True), desk.clock.now(), desk.config.outbox)
    assert Outbox.select().where(Outbox.status == "queued").count() == 2


def test_an_outbox_from_before_drafts_gets_the_column_and_its_mails_still_go(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    database = db.connect(url)
    database.execute_sql('ALTER TABLE "outbox" DROP COLUMN "draft"')
    SchemaMigration.delete().where(SchemaMigration.name == "0004_outbox_drafts").execute()
    now = datetime.now(timezone.utc)
    database.execute_sql(
        'INSERT INTO "outbox" ("kind", "message_id", "mail_from", "recipients", "rcpt_key", "automatic", "raw",'
        ' "created_at", "status", "attempts", "next_attempt_at", "admin_told") VALUES'
        " ('note', 'mt.old@example.com', 'support@example.com', '[\"a@b.c\"]', 'a@b.c', 1, ?, ?, 'queued', 0, ?, 0)",
        (b"Subject: old\r\n\r\nbody\r\n", Outbox.created_at.db_value(now), Outbox.created_at.db_value(now)))
    assert db.pending_migrations(database) == ["0004_outbox_drafts"]
    database.close()
    database = db.connect(url)
    assert "draft" in {c.name for c in database.get_columns("outbox")}
    old = Outbox.get(Outbox.message_id == "mt.old@example.com")
    assert old.draft is None and bytes(old.raw).startswith(b"Subject: old")
    transport = Recording()
    outbox.drain(transport, now, load_config(write_config(tmp_path)).outbox, compose=lambda e: b"never")
    assert transport.sent == [b"Subject: old\r\n\r\nbody\r\n"]

