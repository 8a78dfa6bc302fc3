"""Attachments travel: a requester's files reach the people working the ticket, an agent's reach
the requester, and what is too large is listed and fetched with ``mailticket attachment``.

Conversations through Dovecot and the SMTP sink, on SQLite in English and on PostgreSQL in
Swedish; the bad input (an empty file, a file over the mail server's limit) the same way.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone

import pytest

from mailticket.desk import files
from mailticket.models import Attachment, Event, InboundMail, Ticket
from mailticket.sizes import format_size, parse_size
from tests.harness import run_cli, wait_until
from tests.test_conversations_agents import LiveDesk, crlf, plain_text, thunderbird_reply

ANNA = "Anna Svensson <anna@customer.example>"
CASES = [("sqlite", "en"), ("postgresql", "sv")]
# The requester writes in the desk's language (else they are answered in their own: issue 26).
SCREEN = {"en": "The screen shows an error, see the files.", "sv": "Skärmen visar ett fel, se filerna."}
WORDS = {"en": {"files": "Files:", "over": "not attached, over the", "empty": "empty, nothing to attach",
                "refused": "Some files were not sent to the requester", "too_big": "Too large",
                "is_empty": "The file is empty", "ack_empty": "arrived empty (0 bytes)"},
         "sv": {"files": "Filer:", "over": "inte bifogad, större än de", "empty": "tom, inget att bifoga",
                "refused": "Några filer skickades inte till anmälaren", "too_big": "För stor",
                "is_empty": "Filen är tom", "ack_empty": "kom fram tom (0 byte)"}}


def png(width: int = 4, height: int = 3) -> bytes:
    """A real PNG (grey pixels), as a screenshot would be."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def pdf(size: int = 20_000) -> bytes:
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n"
    return head + os.urandom(max(0, size - len(head) - 6)) + b"\n%%EOF"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def attached(msg: EmailMessage) -> dict[str, bytes]:
    """The files a received mail carries, by file name."""
    return {part.get_filename(): part.get_payload(decode=True) for part in msg.walk()
            if part.get_filename() and not part.is_multipart()}


def requester_mail(*, message_id: str, parts: list[tuple[str, str, bytes]], inline_png: bytes | None = None,
                   subject: str = "Error on the screen", body: str = "The screen shows an error, see the files.",
                   sender: str = ANNA, in_reply_to: str | None = None) -> bytes:
    """A requester's mail from a client that puts a pasted screenshot inline (HTML with cid:) and
    the other files after it."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@example.com", subject
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
    msg.set_content(body)
    if inline_png is not None:
        msg.add_alternative(f"<p>{body}</p><p><img src=\"cid:shot1@anna.example\"></p>", subtype="html")
        msg.get_payload()[1].add_related(inline_png, maintype="image", subtype="png", cid="<shot1@anna.example>",
                                         disposition="inline", filename="screenshot.png")
    for name, ctype, data in parts:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return crlf(msg)


@pytest.fixture(params=CASES, ids=[f"{d}-{loc}" for d, loc in CASES])
def case(request, tmp_path):
    storage, locale = request.param
    url = f"sqlite:///{tmp_path / 'mailticket.db'}" if storage == "sqlite" else request.getfixturevalue("pg_url")
    return url, locale


def live_desk(case, tmp_path, mailbox_user, smtp_sink, **extra):
    url, locale = case
    service = {"locale": locale, **extra.pop("service", {})}
    return LiveDesk(tmp_path, mailbox_user, smtp_sink, extra={"database": {"url": url}, "service": service,
                                                              **extra})


def open_with_files(live, root: str, **kw) -> tuple[Ticket, EmailMessage]:
    live.deliver(requester_mail(message_id=root, **kw))
    note = live.wait_mail("l1@example.com")[-1]
    return Ticket.get(Ticket.thread_root == root.strip("<>")), note


# ---------------------------------------------------------------- a requester's files reach the tier

def test_png_and_pdf_reach_the_tier_with_the_same_bytes_and_are_listed(case, tmp_path, mailbox_user, smtp_sink):
    locale = case[1]
    shot, report = png(), pdf(30_000)
    with live_desk(case, tmp_path, mailbox_user, smtp_sink) as live:
        ticket, note = open_with_files(live, "<files-1@customer.example>", inline_png=shot,
                                       parts=[("error report.pdf", "application/pdf", report)])
        carried = attached(note)
        assert set(carried) == {"screenshot.png", "error report.pdf"}
        assert sha(carried["screenshot.png"]) == sha(shot) and sha(carried["error report.pdf"]) == sha(report)
        text = plain_text(note)
        assert WORDS[locale]["files"] in text
        assert f"error report.pdf ({format_size(len(report), locale)})" in text
        assert f"screenshot.png ({format_size(len(shot), locale)})" in text
        # the inline screenshot is shown in the HTML part, beside it in multipart/related
        html_part = note.get_body(("html",))
        (image,) = [p for p in note.walk() if p.get_content_type() == "image/png"]
        cid = image["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html_part.get_content()
        related = [p for p in note.walk() if p.get_content_type() == "multipart/related"]
        assert related and image in list(related[0].iter_parts())
        # stored on the ticket, the files on disk the same bytes
        rows = files.of_ticket(ticket)
        assert sorted(r.filename for r in rows) == ["error report.pdf", "screenshot.png"]
        data_dir = live.daemon.config.service.data_dir
        assert {r.filename: sha(files.read(data_dir, r)) for r in rows} == {
            "screenshot.png": sha(shot), "error report.pdf": sha(report)}
        (logged,) = Event.select().where(Event.ticket == ticket, Event.kind == "files")
        assert logged.actor == "anna@customer.example"
        assert sorted(logged.data["files"]) == ["error report.pdf", "screenshot.png"]
        # the requester's next mail with a file: the update to the tier carries that file
        log = b"2026-12-06 08:00 spooler crashed\n" * 50
        live.deliver(requester_mail(message_id="<files-2@customer.example>", subject=f"Re: [SD#{ticket.id}] x",
                                    body="Here is the log too.", parts=[("spooler.log", "text/plain", log)],
                                    in_reply_to="<files-1@customer.example>"))
        update = live.wait_mail("l1@example.com", count=2)[-1]
        assert "Here is the log too." in plain_text(update)
        assert attached(update) == {"spooler.log": log}


def test_files_over_attach_max_are_listed_and_fetched_with_the_cli(case, tmp_path, mailbox_user, smtp_sink):
    locale = case[1]
    small, large, empty = pdf(30_000), pdf(60_000), b""
    with live_desk(case, tmp_path, mailbox_user, smtp_sink, service={"attach_max": "50KB"}) as live:
        ticket, note = open_with_files(live, "<big-1@customer.example>", parts=[
            ("small.pdf", "application/pdf", small), ("large.pdf", "application/pdf", large),
            ("blank.txt", "text/plain", empty)], body=SCREEN[locale])  # the desk's language: the ack is read
        assert attached(note) == {"small.pdf": small}  # 30 KB fits in 50 KB; 30 + 60 does not
        text = plain_text(note)
        assert f"large.pdf ({format_size(len(large), locale)}): {WORDS[locale]['over']} 50 KB" in text
        assert f"blank.txt (0 B): {WORDS[locale]['empty']}" in text
        assert f'mailticket attachment {ticket.id} "' in text
        ack = live.wait_mail("anna@customer.example")[-1]  # the requester is asked for the empty file again
        assert "blank.txt" in plain_text(ack) and WORDS[locale]["ack_empty"] in plain_text(ack)
        # escalated: the next tier's mail carries and lists the same files
        agent_reply = thunderbird_reply(note, "#escalate the vendor must look at the large PDF",
                                        sender="Alice <alice@example.com>")
        live.deliver(agent_reply)
        escalation = live.wait_mail("l2@example.com")[-1]
        assert attached(escalation) == {"small.pdf": small}
        assert "large.pdf" in plain_text(escalation)
        config = live.config_path
    out = tmp_path / "fetched"
    out.mkdir()
    fetched = run_cli("attachment", ticket.id, "large.pdf", "-o", out, config=config)
    assert fetched.returncode == 0, fetched.stderr
    assert sha((out / "large.pdf").read_bytes()) == sha(large)
    again = run_cli("attachment", ticket.id, "large.pdf", "-o", out, config=config)
    assert again.returncode == 1 and "exists; give --force" in again.stderr
    listing = run_cli("attachment", ticket.id, config=config)
    assert listing.returncode == 0 and [line.split("\t")[0] for line in listing.stdout.splitlines()] == [
        "small.pdf", "large.pdf", "blank.txt"]
    unknown_name = run_cli("attachment", ticket.id, "nope.pdf", config=config)
    assert unknown_name.returncode == 1
    assert f"ticket {ticket.id} has no file named 'nope.pdf'; it has: small.pdf, large.pdf, blank.txt" in \
        unknown_name.stderr
    unknown_ticket = run_cli("attachment", 9999, "large.pdf", config=config)
    assert unknown_ticket.returncode == 1 and "there is no ticket 9999" in unknown_ticket.stderr


# ---------------------------------------------------------------- an agent's files reach the requester

def agent_reply_with_files(notification: EmailMessage, text: str, parts, sender="Alice <alice@example.com>"):
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, notification["Reply-To"].addresses[0].addr_spec
    msg["Subject"] = f"Re: {notification['Subject']}"
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg["In-Reply-To"] = msg["References"] = notification["Message-ID"]
    msg.set_content(text + "\n\n> " + "\n> ".join(plain_text(notification).splitlines()) + "\n")
    for name, ctype, data in parts:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return crlf(msg)


def test_an_agents_pdf_reaches_the_requester_and_is_stored_on_the_ticket(case, tmp_path, mailbox_user, smtp_sink):
    guide = pdf(40_000)
    with live_desk(case, tmp_path, mailbox_user, smtp_sink) as live:
        ticket, note = live.open_ticket("<agent-pdf@customer.example>")
        live.deliver(agent_reply_with_files(note, "Hi Anna,\n\nthe attached guide shows how to reset it.",
                                            [("reset guide.pdf", "application/pdf", guide)]))
        reply = live.wait_mail("anna@customer.example", contains="attached guide")[-1]
        assert attached(reply) == {"reset guide.pdf": guide}
        assert "reset guide.pdf" in plain_text(reply) and "mailticket attachment" not in plain_text(reply)
        assert reply["In-Reply-To"] == "<agent-pdf@customer.example>"
        (row,) = files.of_ticket(ticket)
        assert row.filename == "reset guide.pdf" and row.size == len(guide)
        assert InboundMail.get_by_id(row.inbound_id).ticket_id == ticket.id
        assert sha(files.read(live.daemon.config.service.data_dir, row)) == sha(guide)
        stored = Event.select().where(Event.ticket == ticket, Event.kind == "files").get()
        assert stored.actor == "alice@example.com" and stored.data["files"] == ["reset guide.pdf"]
        out = Event.select().where(Event.ticket == ticket, Event.kind == "reply_out").get()
        assert out.actor == "alice@example.com" and out.data["files"] == ["reset guide.pdf"]
        assert not live.mails("alice@example.com")  # nothing was refused


def test_an_empty_or_too_large_agent_file_is_refused_with_a_reply_and_the_text_still_goes(case, tmp_path,
                                                                                         mailbox_user, smtp_sink):
    locale = case[1]
    fine, huge = pdf(20_000), pdf(400_000)
    with live_desk(case, tmp_path, mailbox_user, smtp_sink, outbox={"max_size": "300KB"}) as live:
        ticket, note = live.open_ticket("<agent-bad@customer.example>")
        live.deliver(agent_reply_with_files(note, "#priority P2\n\nHi Anna,\n\nhere are the drivers.", [
            ("empty.txt", "text/plain", b""), ("driver.pdf", "application/pdf", fine),
            ("video.pdf", "application/pdf", huge)]))
        reply = live.wait_mail("anna@customer.example", contains="here are the drivers")[-1]
        assert attached(reply) == {"driver.pdf": fine}
        refused = live.wait_mail("alice@example.com")[-1]
        text = plain_text(refused)
        assert WORDS[locale]["refused"] in refused["Subject"] and f"[SD#{ticket.id}]" in refused["Subject"]
        assert "empty.txt (0 B)" in text and WORDS[locale]["is_empty"] in text
        assert f"video.pdf ({format_size(len(huge), locale)})" in text and WORDS[locale]["too_big"] in text
        assert "300 KB" in text
        t = Ticket.get_by_id(ticket.id)
        assert t.priority == "P2"  # the command applied
        assert sorted(r.filename for r in files.of_ticket(t)) == ["driver.pdf", "empty.txt", "video.pdf"]
        assert Event.select().where(Event.ticket == t, Event.kind == "files_not_sent").count() == 1


# ---------------------------------------------------------------- pure parts

def test_sizes_are_read_and_written_as_admins_and_people_expect():
    assert parse_size("10MB") == 10_000_000 and parse_size("1.5MiB") == 1_572_864 and parse_size(2048) == 2048
    assert parse_size(" 500 kb ") == 500_000
    for bad in ("ten", "10 parsecs", "-1MB", True, 1.5):
        with pytest.raises(ValueError, match="not a size|negative"):
            parse_size(bad)
    assert (format_size(999), format_size(1234), format_size(12_345_678)) == ("999 B", "1.2 KB", "12 MB")
    assert format_size(1_500_000, "sv") == "1,5 MB"


def test_repeated_names_on_a_ticket_are_told_apart_in_order():
    rows = [Attachment(id=i, filename=n) for i, n in enumerate(
        ["photo.png", "Photo.png", "photo.png", "README", "README", "photo (2).png"], start=1)]
    assert files.unique_names(rows) == {1: "photo.png", 2: "Photo (2).png", 3: "photo (3).png", 4: "README",
                                        5: "README (2)", 6: "photo (2) (2).png"}


def test_attach_max_and_the_server_limit_are_checked_by_config(tmp_path):
    from mailticket.config import build_config
    from mailticket.errors import ConfigError
    good = build_config({"service": {"attach_max": "2MB"}, "outbox": {"max_size": "20MB"}}, "f.toml", tmp_path)
    assert (good.service.attach_max, good.outbox.max_size) == (2_000_000, 20_000_000)
    for data, key in (({"service": {"attach_max": "lots"}}, "service.attach_max"),
                      ({"outbox": {"max_size": "10KB"}}, "outbox.max_size")):
        with pytest.raises(ConfigError) as err:
            build_config(data, "f.toml", tmp_path)
        assert key in str(err.value)


def test_a_file_removed_before_the_sender_writes_the_mail_is_listed_as_gone(tmp_path):
    """The daemon queues a draft naming the stored file; if retention (or an admin) removes the file
    before the sender writes the mail, the mail goes without it and says so, rather than failing."""
    import email
    import email.policy
    from mailticket.models import Outbox
    from tests.test_conversations_agents import Bench
    bench = Bench(tmp_path)
    bench.desk.mailer.defer = True
    report = pdf(10_000)
    outcome = bench.process(requester_mail(message_id="<gone@customer.example>",
                                           parts=[("report.pdf", "application/pdf", report)]))
    entry = Outbox.get((Outbox.ticket == outcome.ticket) & (Outbox.kind == "new_ticket"))
    assert entry.draft and not bytes(entry.raw)  # the file travels by reference, not in the outbox row
    written = email.message_from_bytes(bench.desk.mailer.mail_bytes(entry), policy=email.policy.default)
    assert attached(written) == {"report.pdf": report}
    (row,) = files.of_ticket(outcome.ticket)
    (bench.config.service.data_dir / row.path).unlink()
    written = email.message_from_bytes(bench.desk.mailer.mail_bytes(entry), policy=email.policy.default)
    assert attached(written) == {}
    assert "report.pdf (10 KB): no longer stored" in plain_text(written)
