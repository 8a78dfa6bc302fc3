"""Who may join a ticket, attacked through the running desk (Dovecot in, the SMTP sink out,
SQLite and PostgreSQL, English and Swedish): a forged From with the subject tag and a Cc, a
bare In-Reply-To naming the requester's Message-ID, a follow-up with 1,500 addresses in Cc.
A follow-up adds people only when it proves its sender is one of the ticket's people (the
ticket's signed reply address); a ticket has at most ``max_participants`` in Cc; the agent is
told who was left out; no reply goes to more than the cap and the requester.

The cases around the edges (a new ticket's Cc, #cc and #merge on a full ticket, a ticket that
already had too many people, the config key's bounds) run the same pipeline in-process
(store_raw + process_one, a fake clock)."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest

from mailticket import db
from mailticket.clock import FakeClock
from mailticket.config import load_config
from mailticket.desk import pipeline
from mailticket.errors import ConfigError
from mailticket.models import Event, InboundMail, Outbox, Participant, Ticket
from mailticket.service.wiring import build_desk
from tests.harness import ConversationDesk, make_mail, wait_until, write_config
from tests.test_conversations_threading import deliver

ANNA = "Anna Svensson <anna@customer.example>"
ALICE = "Alice <alice@example.com>"
CAP = 20

# what the tier's mail says about people left out, per language (templates/*/_left_out.txt)
NOT_ADDED = {"en": "NOT ADDED to the ticket", "sv": "INTE TILLAGDA i ärendet"}
UNPROVEN = {"en": "did not come through the ticket's signed reply address",
            "sv": "kom inte via ärendets signerade svarsadress"}
OVER_CAP = {"en": f"a ticket has at most {CAP} people in Cc (max_participants)",
            "sv": f"ett ärende kan ha högst {CAP} personer på kopia (max_participants)"}
MORE = {"en": "and {n} more", "sv": "och {n} till"}


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


def words(msg: EmailMessage) -> str:
    """The plain text with every run of white space as one space (long lines may be wrapped)."""
    return " ".join(text_of(msg).split())


def reply_to(msg: EmailMessage) -> str:
    return msg["Reply-To"].addresses[0].addr_spec


def reply(original: EmailMessage, text: str, *, sender: str, cc: str | None = None) -> bytes:
    """A reply as a mail client writes it: to the Reply-To (the signed reply address), threaded."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = reply_to(original)
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = "Re: " + str(original["Subject"])
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain="customer.example")
    msg["In-Reply-To"] = original["Message-ID"]
    msg["References"] = original["Message-ID"]
    msg.set_content(f"{text}\n\n> {text_of(original).splitlines()[0]}\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


class LiveDesk(ConversationDesk):
    """The daemon in a thread between Dovecot and the sink; helpers to talk to it."""

    def __init__(self, tmp_path, user, sink, db_url, locale):
        super().__init__(tmp_path, user, sink, db_url=db_url, extra={
            "service": {"locale": locale}, "rate_limits": {"per_ticket": 1000}})
        self.locale = locale

    def mails(self, rcpt: str) -> list:
        return [m for m in self.sink.received if rcpt in m.rcpt_tos]

    def wait_mail(self, rcpt: str, count: int) -> EmailMessage:
        """The ``count``-th mail to ``rcpt``, once it has arrived."""
        found = wait_until(lambda: (lambda got: got if len(got) >= count else None)(self.mails(rcpt)),
                           timeout=60, what=f"{count} mail(s) to {rcpt}")
        return parse(found[count - 1].data)

    def processed(self, n: int) -> None:
        wait_until(lambda: InboundMail.select().where(InboundMail.state != "received").count() >= n,
                   timeout=60, what=f"{n} mails processed")

    def drained(self) -> None:
        wait_until(lambda: not Outbox.select().where(Outbox.status == "queued").exists(), timeout=60,
                   what="outbox drained")

    def open_ticket(self, root: str) -> tuple[Ticket, EmailMessage, EmailMessage]:
        """Anna's first mail: the ticket, the tier's notification, Anna's acknowledgement."""
        self.deliver(make_mail(sender=ANNA, message_id=root))
        notification = self.wait_mail("l1@example.com", 1)
        ack = self.wait_mail("anna@customer.example", 1)
        return Ticket.get(Ticket.thread_root == root.strip("<>")), notification, ack


@pytest.fixture(params=["en", "sv"])
def live(request, tmp_path, mailbox_user, smtp_sink, db_url):
    with LiveDesk(tmp_path, mailbox_user, smtp_sink, db_url, request.param) as desk:
        yield desk


def left_out_events(ticket) -> list[tuple]:
    q = Event.select().where(Event.ticket == ticket, Event.kind == "participants_left_out").order_by(Event.id)
    return [(e.data["reason"], e.data["count"]) for e in q]


def people(ticket) -> set[str]:
    return {p.address for p in Participant.select().where(Participant.ticket == ticket)}


# ---------------------------------------------------------------- eavesdropping

def test_forged_from_tag_or_bare_in_reply_to_adds_nobody_and_the_signed_address_still_does(live):
    lang = live.locale
    root = "<root.eavesdrop@customer.example>"
    ticket, notification, ack = live.open_ticket(root)
    tag = f"[SD#{ticket.id}]"
    # 1. Mallory forges Anna's From, copies the tag, puts herself in Cc
    live.deliver(make_mail(sender=ANNA, subject=f"Re: {tag} Printer broken", cc="Mallory <mallory@evil.example>",
                           body="Please keep my colleague Mallory informed."))
    first = words(live.wait_mail("l1@example.com", 2))
    assert "Mallory informed" in first  # the text still counts
    assert f"{NOT_ADDED[lang]} (1): mallory@evil.example." in first and UNPROVEN[lang] in first
    # 2. a bare In-Reply-To naming Anna's Message-ID, forged From, no tag, a Cc
    live.deliver(make_mail(sender=ANNA, subject="more", in_reply_to=root, cc="Trudy <trudy@evil.example>",
                           body="Also Trudy, please."))
    second = words(live.wait_mail("l1@example.com", 3))
    assert f"{NOT_ADDED[lang]} (1): trudy@evil.example." in second and UNPROVEN[lang] in second
    # 3. the same from Mallory's own address: she does not join either
    live.deliver(make_mail(sender="Mallory <mallory@evil.example>", subject="hello", in_reply_to=root,
                           body="I work with Anna."))
    third = words(live.wait_mail("l1@example.com", 4))
    assert f"{NOT_ADDED[lang]} (1): mallory@evil.example." in third
    live.processed(4)
    assert people(ticket) == set()
    assert left_out_events(ticket) == [("unverified", 1)] * 3
    replies = Event.select().where(Event.ticket == ticket, Event.kind == "reply_in").order_by(Event.id)
    assert [bool((e.data or {}).get("unverified")) for e in replies] == [True, True, True]

    # the agent answers: the reply goes to Anna alone
    live.deliver(reply(notification, "We are on it.", sender=ALICE))
    answer = live.wait_mail("anna@customer.example", 2)
    assert "We are on it." in text_of(answer) and answer["Cc"] is None
    live.drained()
    sent = [m for m in live.sink.received if b"We are on it." in m.data]
    assert [m.rcpt_tos for m in sent] == [["anna@customer.example"]]

    # Anna replies through the signed address with a colleague in Cc: he joins
    live.deliver(reply(answer, "Carl sits next to me, keep him posted.", sender=ANNA,
                       cc="Carl Berg <carl@customer.example>"))
    update = words(live.wait_mail("l1@example.com", 5))
    assert "keep him posted" in update and NOT_ADDED[lang] not in update
    wait_until(lambda: people(ticket) == {"carl@customer.example"}, timeout=30, what="Carl joined")
    notice = parse(live.mails("l1@example.com")[-1].data)
    live.deliver(reply(notice, "The driver is reinstalled.", sender=ALICE))
    live.wait_mail("carl@customer.example", 1)
    live.drained()
    sent = [m for m in live.sink.received if b"driver is reinstalled" in m.data]
    assert [sorted(m.rcpt_tos) for m in sent] == [["anna@customer.example", "carl@customer.example"]]
    # nothing ever reached the eavesdroppers
    assert not [m for m in live.sink.received if {"mallory@evil.example", "trudy@evil.example"} & set(m.rcpt_tos)]


# ---------------------------------------------------------------- one mail, a thousand people

def test_fifteen_hundred_cc_add_the_cap_and_the_agent_is_told(live):
    lang = live.locale
    ticket, notification, ack = live.open_ticket("<root.crowd@customer.example>")
    crowd = [f"u{i}@crowd.example" for i in range(1, 1501)]
    # through the signed address: proven, so only the cap holds it back
    live.deliver(reply(ack, "Everyone here has the problem.", sender=ANNA, cc=", ".join(crowd)))
    update = words(live.wait_mail("l1@example.com", 2))
    live.processed(2)
    assert people(ticket) == set(crowd[:CAP])
    [(reason, count)] = left_out_events(ticket)
    assert (reason, count) == ("limit", 1000 - CAP)  # the parser keeps the first 1,000 addresses of a header
    assert f"{NOT_ADDED[lang]} ({count}): " + ", ".join(crowd[CAP:CAP + 10]) in update
    assert MORE[lang].format(n=count - 10) in update and OVER_CAP[lang] in update
    assert Event.get(Event.ticket == ticket, Event.kind == "participants_left_out").data["added"] == CAP

    live.deliver(reply(parse(live.mails("l1@example.com")[-1].data), "Fixed for all of you.", sender=ALICE))
    live.wait_mail("anna@customer.example", 2)
    live.drained()
    [sent] = [m for m in live.sink.received if b"Fixed for all of you." in m.data]
    assert len(sent.rcpt_tos) == CAP + 1
    assert set(sent.rcpt_tos) == {"anna@customer.example", *crowd[:CAP]}


# ---------------------------------------------------------------- the edges, in-process

@pytest.fixture
def desk(tmp_path, db_url):
    cfg = load_config(write_config(tmp_path, db_url=db_url, extra={
        "service": {"max_participants": 3},
        "rate_limits": {"global_10min": 1000, "per_sender_day": 1000, "per_ticket": 1000}}))
    db.connect(cfg.database.url)
    return build_desk(cfg, clock=FakeClock())


def outbox(kind: str) -> list[EmailMessage]:
    return [parse(bytes(r.raw)) for r in Outbox.select().where(Outbox.kind == kind).order_by(Outbox.id)]


def test_a_new_tickets_cc_is_capped_and_the_tier_told(desk):
    out = deliver(desk, make_mail(sender=ANNA, cc=", ".join(f"p{i}@customer.example" for i in range(1, 8)),
                                  date=desk.clock.now()))
    assert people(out.ticket) == {"p1@customer.example", "p2@customer.example", "p3@customer.example"}
    [notice] = outbox("new_ticket")
    text = " ".join(text_of(notice).split())
    assert "NOT ADDED to the ticket (4): p4@customer.example, p5@customer.example, p6@customer.example, " \
           "p7@customer.example." in text
    assert "at most 3 people in Cc" in text
    assert left_out_events(out.ticket) == [("limit", 4)]


def _agent_reply(desk, notice: EmailMessage, text: str) -> pipeline.Outcome:
    msg = parse(reply(notice, text, sender=ALICE))
    del msg["Date"]
    msg["Date"] = format_datetime(desk.clock.now())
    return deliver(desk, msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))


def test_cc_command_on_a_full_ticket_is_refused_with_the_reason(desk):
    out = deliver(desk, make_mail(sender=ANNA, cc="a@customer.example, b@customer.example, c@customer.example",
                                  date=desk.clock.now()))
    [notice] = outbox("new_ticket")
    _agent_reply(desk, notice, "#cc d@customer.example")
    assert people(out.ticket) == {"a@customer.example", "b@customer.example", "c@customer.example"}
    [error] = outbox("command_error")
    assert "the ticket already has 3 people in Cc, the most allowed (max_participants); d@customer.example " \
           "was not added" in " ".join(text_of(error).split())
    assert not Event.select().where(Event.ticket == out.ticket, Event.kind == "participant").exists()
    # one who is there already is no new person: #cc on them is no problem
    _agent_reply(desk, notice, "#cc b@customer.example")
    assert len(outbox("command_error")) == 1


def test_cc_command_refusal_in_swedish(tmp_path, db_url):
    cfg = load_config(write_config(tmp_path, db_url=db_url, extra={"service": {"max_participants": 1,
                                                                                "locale": "sv"}}))
    db.connect(cfg.database.url)
    desk = build_desk(cfg, clock=FakeClock())
    deliver(desk, make_mail(sender=ANNA, cc="a@customer.example", date=desk.clock.now()))
    [notice] = outbox("new_ticket")
    _agent_reply(desk, notice, "#kopia d@customer.example")
    [error] = outbox("command_error")
    assert "ärendet har redan så många på kopia som tillåts (1, max_participants); d@customer.example " \
           "lades inte till" in " ".join(text_of(error).split())


def test_merge_moves_people_up_to_the_cap_and_records_the_rest(desk):
    one = deliver(desk, make_mail(sender=ANNA, cc="a@customer.example, b@customer.example", date=desk.clock.now(),
                                  subject="First"))
    two = deliver(desk, make_mail(sender="Bo <bo@customer.example>", cc="c@customer.example, d@customer.example",
                                  date=desk.clock.now(), subject="Second"))
    notice = [m for m in outbox("new_ticket") if f"[SD#{two.ticket}]" in m["Subject"]][0]
    _agent_reply(desk, notice, f"#merge {one.ticket}")
    assert Ticket.get_by_id(two.ticket).merged_into == one.ticket
    # Bo (the merged ticket's requester) joins first, then his Cc until the cap of 3
    assert people(one.ticket) == {"a@customer.example", "b@customer.example", "bo@customer.example"}
    assert left_out_events(one.ticket) == [("limit", 2)]


def test_a_ticket_that_already_has_too_many_people_replies_to_the_cap(desk):
    """A ticket from before the cap (or a lowered cap) keeps its people, but a reply goes to
    the requester and the first max_participants of them only."""
    out = deliver(desk, make_mail(sender=ANNA, date=desk.clock.now()))
    for i in range(10):
        Participant.create(ticket=out.ticket, address=f"old{i}@customer.example", name="", role="cc")
    [notice] = outbox("new_ticket")
    _agent_reply(desk, notice, "Looking into it.")
    [answer] = outbox("agent_reply")
    assert [a.addr_spec for a in answer["To"].addresses] == ["anna@customer.example"]
    assert [a.addr_spec for a in answer["Cc"].addresses] == [f"old{i}@customer.example" for i in range(3)]
    row = Outbox.get(Outbox.kind == "agent_reply")
    assert len(row.recipients) == 4


def test_the_mailer_never_sends_more_than_the_cap_besides_its_to(desk):
    from mailticket.outbound.notify import Recipient
    out = deliver(desk, make_mail(sender=ANNA, date=desk.clock.now()))
    ticket = Ticket.get_by_id(out.ticket)
    entry = desk.mailer.send("closed", to=[Recipient("anna@customer.example")], now=desk.clock.now(), ticket=ticket,
                             cc=[Recipient(f"x{i}@customer.example") for i in range(50)],
                             context={"body": "", "auto_close_after": desk.config.sla.auto_close_after})
    assert entry.recipients == ["anna@customer.example"] + [f"x{i}@customer.example" for i in range(3)]


@pytest.mark.parametrize("value, problem", [
    (0, "0 is outside 1..500"),
    (501, "501 is outside 1..500"),
    (10**30, "is outside 1..500"),
    (-1, "-1 is outside 1..500"),
    ("20", "must be int (1..500"),
    (True, "must be int (1..500"),
    (2.5, "must be int (1..500"),
])
def test_max_participants_out_of_bounds_is_a_config_error_naming_file_and_key(tmp_path, value, problem):
    path = write_config(tmp_path, extra={"service": {"max_participants": value}})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert problem in str(caught.value)
    assert "service.max_participants" in str(caught.value) and str(path) in str(caught.value)


def test_max_participants_default_and_bounds_accepted(tmp_path):
    assert load_config(write_config(tmp_path)).service.max_participants == 20
    for value in (1, 500):
        assert load_config(write_config(tmp_path, extra={"service": {"max_participants": value}})
                           ).service.max_participants == value


def _with_auth_results(raw: bytes, value: str) -> bytes:
    return b"Authentication-Results: " + value.encode() + b"\r\n" + raw


@pytest.mark.parametrize("results, joins", [
    ("mx.example.com; dkim=pass header.d=customer.example; dmarc=pass header.from=customer.example", True),
    ("evil.example; dmarc=pass header.from=customer.example", False),        # not our trusted server
    ("mx.example.com; dmarc=pass header.from=evil.example", False),          # another domain's pass
    ("mx.example.com; dkim=fail header.d=customer.example; dmarc=fail header.from=customer.example", False),
])
def test_a_known_sender_with_the_trusted_dmarc_pass_may_add_people_by_the_tag(desk, results, joins):
    """Anna writes a new mail with the tag (no signed address): her From is proven only by the
    trusted server's DKIM/DMARC pass for her domain; anything else adds her text but nobody."""
    out = deliver(desk, make_mail(sender=ANNA, date=desk.clock.now()))
    raw = make_mail(sender=ANNA, subject=f"[SD#{out.ticket}] one more thing", cc="Carl <carl@customer.example>",
                    body="Carl needs to know too.", date=desk.clock.now())
    follow = deliver(desk, _with_auth_results(raw, results))
    assert (follow.state, follow.ticket, follow.reason) == ("processed", out.ticket, "threaded by tag")
    assert people(out.ticket) == ({"carl@customer.example"} if joins else set())
    assert left_out_events(out.ticket) == ([] if joins else [("unverified", 1)])
    [update] = outbox("requester_update")
    assert "Carl needs to know too." in text_of(update)
    assert ("NOT ADDED" in text_of(update)) is not joins
