"""The hand-written statements on the hot path (models.BaseModel.save, db.run) do what peewee's
own would, on SQLite and PostgreSQL; "sent" marks skip the per-commit flush and only them."""

from datetime import datetime, timedelta, timezone

import pytest

from mailticket import db

from mailticket.outbound import outbox

from mailticket.desk import tickets
from mailticket.config import RateLimits
from mailticket.models import Event, MessageRef, Outbox, Ticket
from peewee import fn

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def _ticket(**kw) -> Ticket:
    return Ticket.create(requester_address="ann@x.example", created_at=NOW, updated_at=NOW, **kw)


def test_create_and_save_round_trip_every_kind_of_field(db_url):
    db.connect(db_url)
    t = _ticket(subject="Skrivaren är trasig", security=True, first_response_due=NOW + timedelta(hours=1))
    assert isinstance(t.id, int) and not t.is_dirty()
    again = Ticket.get_by_id(t.id)
    assert (again.subject, again.security, again.first_response_due, again.status) == \
        ("Skrivaren är trasig", True, NOW + timedelta(hours=1), "new")  # the model's default is stored
    t.status, t.assignee = "in_progress", "bob@desk.example"
    assert t.save() == 1
    assert Ticket.get_by_id(t.id).status == "in_progress"
    second = _ticket()
    assert second.id == t.id + 1
    e = Event.create(ticket=t, at=NOW, kind="note", data={"k": ["v"]})
    assert Event.get_by_id(e.id).data == {"k": ["v"]} and Event.get_by_id(e.id).ticket_id == t.id


def _statements_run(monkeypatch) -> list[str]:
    """Each SQL text the connected database executes from now on, until ``monkeypatch.undo()``."""
    executed = []
    database_class = type(Outbox._meta.database.obj)
    real = database_class.execute_sql
    monkeypatch.setattr(database_class, "execute_sql",
                        lambda self, sql, params=None, *a, **kw: executed.append(sql) or real(self, sql, params, *a, **kw))
    return executed


def test_an_outbox_row_and_its_message_id_are_inserted_together(db_url, monkeypatch):
    """One round trip on PostgreSQL (one execute holding both INSERTs), two on SQLite; either way
    both rows are stored as save() would store them, and the outbox row knows its id."""
    db.connect(db_url)
    t = _ticket()
    before = Outbox.create(kind="x", message_id="before@x", mail_from="a@x", recipients=["b@x"], rcpt_key="b@x",
                           raw=b"", created_at=NOW, next_attempt_at=NOW)
    executed = _statements_run(monkeypatch)
    ref = MessageRef(message_id="mt.1@desk.example", ticket=t, direction="out", audience="internal", at=NOW)
    entry = outbox.enqueue(b"", "mt.1@desk.example", kind="new_ticket", mail_from="bounce@desk.example",
                           recipients=["Tier1@desk.example"], now=NOW, ticket=t, draft='{"k": 1}', along=ref)
    monkeypatch.undo()
    assert len(executed) == (1 if db.is_postgres() else 2)
    assert entry.id == before.id + 1 and not entry.is_dirty()
    got = Outbox.get_by_id(entry.id)
    assert (got.message_id, got.recipients, got.rcpt_key, got.draft, got.status, got.ticket_id, got.next_attempt_at) == \
        ("mt.1@desk.example", ["Tier1@desk.example"], "tier1@desk.example", '{"k": 1}', "queued", t.id, NOW)
    stored = MessageRef.get(MessageRef.message_id == "mt.1@desk.example")
    assert (stored.ticket_id, stored.direction, stored.audience, stored.at) == (t.id, "out", "internal", NOW)


def test_a_new_tickets_first_two_events_are_inserted_together(db_url, monkeypatch):
    from mailticket.models import insert_together
    db.connect(db_url)
    t = _ticket()
    executed = _statements_run(monkeypatch)
    first = tickets.new_event(t, NOW, "logged", "logged from mail", actor="ann@x.example", message_id="<m@x>")
    second = tickets.new_event(t, NOW, "categorised", "type incident", reasons=["default"])
    insert_together(first, second)
    monkeypatch.undo()
    assert len(executed) == (1 if db.is_postgres() else 2)
    stored = [(e.kind, e.text, e.actor, e.data, e.at) for e in Event.select().where(Event.ticket == t).order_by(Event.id)]
    assert stored == [("logged", "logged from mail", "ann@x.example", {"message_id": "<m@x>"}, NOW),
                      ("categorised", "type incident", "system", {"reasons": ["default"]}, NOW)]
    assert second.id == Event.select(fn.MAX(Event.id)).scalar()


def test_a_failing_insert_together_stores_neither_row(db_url):
    import peewee as pw
    db.connect(db_url)
    t = _ticket()
    MessageRef.create(message_id="taken@x", ticket=t, direction="out", at=NOW)
    with pytest.raises(pw.IntegrityError):
        with Outbox._meta.database.atomic():
            outbox.enqueue(b"", "mt.2@x", kind="x", mail_from="a@x", recipients=["b@x"], now=NOW, ticket=t,
                           along=MessageRef(message_id="taken@x", ticket=t, direction="out", at=NOW))
    assert not Outbox.select().where(Outbox.message_id == "mt.2@x").exists()


def test_saving_an_expression_takes_peewees_own_path(db_url):
    db.connect(db_url)
    entry = Outbox.create(kind="x", message_id="m@x", mail_from="a@x", recipients=["b@x"], rcpt_key="b@x",
                          raw=b"r", created_at=NOW, next_attempt_at=NOW)
    entry.attempts = Outbox.attempts + 2
    entry.save()
    assert Outbox.get_by_id(entry.id).attempts == 2


def test_remembering_a_message_id_twice_keeps_the_first(db_url):
    db.connect(db_url)
    a, b = _ticket(), _ticket()
    tickets.remember_inbound(a, "same@x.example", NOW)
    tickets.remember_inbound(b, "same@x.example", NOW + timedelta(minutes=1))
    refs = list(MessageRef.select().where(MessageRef.message_id == "same@x.example"))
    assert [(r.ticket_id, r.at) for r in refs] == [(a.id, NOW)]


def test_rate_counts_stop_at_each_limit(db_url):
    db.connect(db_url)
    t = _ticket()
    for i in range(4):
        Outbox.create(ticket=t, kind="ack", message_id=f"{i}@x", mail_from="a@x", recipients=["b@x"],
                      rcpt_key="b@x", raw=b"r", created_at=NOW - timedelta(minutes=i), next_attempt_at=NOW)
    limits = RateLimits(per_ticket=3, per_sender_day=10, global_10min=100)
    verdict = outbox.check_rate("B@x", t.id, NOW, limits)
    assert not verdict.allowed and verdict.reason.startswith("3 automatic mails to b@x about ticket")
    assert outbox.check_rate("b@x", None, NOW, limits).allowed
    assert not outbox.check_rate("b@x", None, NOW, RateLimits(per_ticket=9, per_sender_day=4, global_10min=100)).allowed
    late = NOW + timedelta(days=2)  # nothing within the windows any more
    assert outbox.check_rate("b@x", t.id, late, RateLimits(per_ticket=1, per_sender_day=1, global_10min=1)).allowed


def test_lazy_commits_relax_only_the_block_and_always_restore(tmp_path):
    database = db.connect("sqlite:///" + str(tmp_path / "m.db"))
    level = lambda: database.execute_sql("PRAGMA synchronous").fetchone()[0]  # noqa: E731
    assert level() == 2  # FULL
    with db.lazy_commits():
        assert level() == 1  # NORMAL
    assert level() == 2
    with pytest.raises(RuntimeError):
        with db.lazy_commits():
            raise RuntimeError("send failed")
    assert level() == 2


def _automatic(i: int, at) -> None:
    Outbox.create(kind="ack", message_id=f"w{i}@x", mail_from="a@x", recipients=[f"r{i}@x"], rcpt_key=f"r{i}@x",
                  raw=b"r", created_at=at, next_attempt_at=at)


def test_the_global_count_is_taken_from_the_process_view_only_far_below_the_limit(db_url):
    """Another process's mails (rows added behind the view's back) are seen at the next count:
    after RECOUNT_EVERY, or at once when the view reaches half the limit; near the limit every
    check counts in the database, so the limit holds as before."""
    db.connect(db_url)
    limits = RateLimits(per_ticket=100, per_sender_day=100, global_10min=10)
    window = outbox.GlobalWindow()
    for i in range(3):
        _automatic(i, NOW)
    assert outbox.check_rate("a@x", None, NOW, limits, window).allowed
    assert (window.count, window.counted_at) == (3, NOW)
    for i in range(3, 9):  # another daemon queues six more
        _automatic(i, NOW)
    soon = NOW + timedelta(seconds=1)
    assert outbox.check_rate("a@x", None, soon, limits, window).allowed and window.counted_at == NOW, \
        "3 of 10: the view stands in, the database is not asked"
    window.queued()  # this process queues one: the view says 4 ...
    window.queued()  # ... then 5, half the limit: the next check counts
    verdict = outbox.check_rate("a@x", None, soon, limits, window)
    assert window.counted_at == soon and window.count == 9 and verdict.allowed
    _automatic(9, soon)
    verdict = outbox.check_rate("a@x", None, soon, limits, window)
    assert not verdict.allowed and verdict.reason.startswith("10 automatic mails in 10 minutes")


def test_the_process_view_is_counted_again_after_a_while_and_when_the_clock_goes_back(db_url):
    db.connect(db_url)
    limits = RateLimits(per_ticket=100, per_sender_day=100, global_10min=1000)
    window = outbox.GlobalWindow()
    outbox.check_rate("a@x", None, NOW, limits, window)
    assert window.count == 0
    _automatic(1, NOW)
    later = NOW + outbox.GlobalWindow.RECOUNT_EVERY
    outbox.check_rate("a@x", None, later, limits, window)
    assert (window.count, window.counted_at) == (1, later)
    _automatic(2, NOW)
    outbox.check_rate("a@x", None, NOW, limits, window)  # the clock stepped back: the view is not trusted
    assert (window.count, window.counted_at) == (2, NOW)


def test_a_mailer_counts_its_own_automatic_mails_into_its_view(tmp_path):
    from mailticket.config import load_config
    from mailticket.service.wiring import build_desk
    from mailticket.outbound.notify import Recipient
    from tests.harness import write_config
    cfg = load_config(write_config(tmp_path))
    db.connect(cfg.database.url)
    desk = build_desk(cfg)
    t = _ticket()
    ctx = {"agent_name": "A", "body": "b"}
    desk.mailer.send("note", to=[Recipient("l1@example.com")], now=NOW, ticket=t, context=ctx,
                     automatic=True, rate_limited=True)
    assert desk.mailer.window.count == 1 and desk.mailer.window.counted_at == NOW
    desk.mailer.send("note", to=[Recipient("l1@example.com")], now=NOW, ticket=t, context=ctx, automatic=False)
    assert desk.mailer.window.count == 1, "a mail that is not automatic is not in the global limit"


@pytest.mark.parametrize("model, sql, by_id", [
    (Ticket, 'SELECT * FROM "ticket" ORDER BY "id"', False),
    (Ticket, 'SELECT "t".* FROM "message_ref" AS "r" JOIN "ticket" AS "t" ON "t"."id" = "r"."ticket_id" '
             'WHERE "r"."message_id" IN (?, ?) ORDER BY "r"."at" DESC', False),
    (Ticket, 'SELECT "id", "subject", 1 AS "extra", NULL AS "closed_at" FROM "ticket" WHERE "id" = ?', True),
    (Event, 'SELECT * FROM "event" ORDER BY "id"', False),
    (Ticket, 'SELECT "id", "subject", "id" FROM "ticket" ORDER BY "id"', False),  # a duplicate: peewee's own way
])
def test_fetch_models_gives_what_peewees_raw_query_gives(db_url, model, sql, by_id):
    """The same instances, field for field (converted: aware datetimes, JSON, booleans, None), with
    nothing dirty, asked twice (the second time from the remembered plan)."""
    from peewee import ModelRaw
    db.connect(db_url)
    t = _ticket(subject="Skrivaren är trasig", security=True, first_response_due=NOW + timedelta(hours=1))
    other = _ticket(subject="", assignee="bob@desk.example")
    tickets.remember_inbound(t.id, "a@x.example", NOW, audience="requester")
    tickets.remember_inbound(other.id, "b@x.example", NOW + timedelta(minutes=1), audience="requester")
    Event.create(ticket=t, at=NOW, kind="note", data={"k": ["v", 1]}, text="å")
    params = (t.id,) if by_id else ("a@x.example", "b@x.example") if "IN (" in sql else ()

    def seen(instances):
        return [(type(i), dict(i.__data__), set(i._dirty)) for i in instances]
    theirs = seen(ModelRaw(model, db._dialect(db._real(None), sql), params))
    assert theirs and seen(db.fetch_models(model, sql, params)) == theirs
    assert seen(db.fetch_models(model, sql, params)) == theirs
