"""The hand-written statements on the hot path (models.BaseModel.save, db.run) do what peewee's
own would, on SQLite and PostgreSQL; "sent" marks skip the per-commit flush and only them."""

from datetime import datetime, timedelta, timezone

import pytest

from mailticket import db, outbox, tickets
from mailticket.config import RateLimits
from mailticket.models import Event, MessageRef, Outbox, Ticket

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
