"""importer.settle_clocks works through the due tickets in chunks (flat memory on a large import)
and still settles every one of them."""

from datetime import datetime, timedelta, timezone

from mailticket import db

from mailticket.service import importer
from mailticket.config import load_config
from mailticket.service.wiring import build_desk
from mailticket.desk.escalation import due_tickets
from mailticket.models import SlaMark, Ticket
from tests.harness import make_mail, write_config


def test_every_due_ticket_is_settled_across_chunks(tmp_path):
    cfg = load_config(write_config(tmp_path))
    db.connect(cfg.database.url)
    desk = build_desk(cfg)
    now = datetime.now(timezone.utc)
    old = now - timedelta(days=14)
    box = tmp_path / "old.mbox"
    with open(box, "wb") as f:
        for i in range(7):
            raw = make_mail(sender=f"U{i} <u{i}@customer.example>", subject=f"Old problem {i}",
                            message_id=f"<old{i}@customer.example>", date=old + timedelta(minutes=i))
            f.write(b"From x@y Fri Nov 13 08:00:00 2026\n" + raw.replace(b"\r\n", b"\n") + b"\n")
    importer.import_path(desk, box)
    assert Ticket.select().count() == 7
    # make them all due again, then settle two at a time
    Ticket.update(next_check_at=old).execute()
    SlaMark.delete().execute()
    assert len(list(due_tickets(now, limit=100))) == 7
    importer.settle_clocks(desk, now, chunk=2)
    assert list(due_tickets(now, limit=100)) == []
    assert {m.ticket_id for m in SlaMark.select()} == {t.id for t in Ticket.select()}
