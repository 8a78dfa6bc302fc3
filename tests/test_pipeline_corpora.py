"""Every file of the shared corpora, and the hostile inputs of the issue, through the real
pipeline (store_raw + process_one, SQLite, in-process): nothing escapes, nothing is lost,
every mail ends processed, duplicate, dropped or quarantined with a reason."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from mailticket import db

from mailticket.desk import pipeline
from mailticket.desk.quarantinedigest import send_digest
from mailticket.clock import FakeClock
from mailticket.config import load_config
from mailticket.service.wiring import build_desk
from mailticket.models import Attachment, Event, InboundMail, Outbox, Ticket
from tests.harness import make_mail, write_config
from bench.corpora_path import find_corpora

FINAL_STATES = {"processed", "duplicate", "dropped", "quarantined", "spam"}
# a mail whose header block has a From line with an address: it has a sender and must become a ticket
FROM_WITH_ADDRESS = re.compile(rb"^from[ \t]*:[^\r\n]*@", re.I | re.M)
HEADER_START = re.compile(rb"(?:From |[\x21-\x39\x3b-\x7e]+[ \t]*:)")


def has_sender(raw: bytes) -> bool:
    head = re.split(rb"\r?\n\r?\n", raw[:65536], maxsplit=1)[0]
    return bool(HEADER_START.match(head) and FROM_WITH_ADDRESS.search(head))



CORPORA = find_corpora()
CORPUS_NAMES = sorted(p.name for p in CORPORA.iterdir() if p.is_dir()) if CORPORA.is_dir() else ["(missing)"]


@pytest.fixture
def desk(tmp_path):
    cfg = load_config(write_config(tmp_path, extra={
        "rate_limits": {"global_10min": 1_000_000, "per_sender_day": 1_000_000, "per_ticket": 1_000_000}}))
    db.connect(cfg.database.url)
    return build_desk(cfg, clock=FakeClock())


def run(desk, raw: bytes, uid: int) -> tuple[pipeline.Outcome, float]:
    """Store and process one mail; the seconds are CPU seconds of this process, so a second
    test worker on the same cores does not count against the mail."""
    row = pipeline.store_raw(raw, source="imap:INBOX", uidvalidity=1, uid=uid, now=desk.clock.now())
    started = time.process_time()
    outcome = pipeline.process_one(desk, row)
    return outcome, time.process_time() - started


# ---------------------------------------------------------------- the corpora

@pytest.mark.skipif(not CORPORA.is_dir(), reason=f"mail corpora not found at {CORPORA} (set MAILTICKET_CORPORA)")
@pytest.mark.parametrize("corpus", CORPUS_NAMES)
def test_every_corpus_file_goes_through_the_pipeline(desk, corpus, capsys, caplog):
    caplog.set_level(logging.CRITICAL, logger="mailticket")  # 2000 quarantine tracebacks help nobody here
    files = sorted(p for p in (CORPORA / corpus).rglob("*") if p.is_file())
    states, escaped, mail_quarantined = Counter(), [], []
    slowest = (0.0, "")
    for uid, path in enumerate(files, 1):
        raw = path.read_bytes()
        name = str(path.relative_to(CORPORA))
        try:
            outcome, seconds = run(desk, raw, uid)
        except Exception as exc:  # the point of the test: nothing may escape process_one
            escaped.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        states[outcome.state] += 1
        slowest = max(slowest, (seconds, name))
        assert outcome.state in FINAL_STATES, name
        if outcome.state == "quarantined":
            assert outcome.reason.strip(), f"{name}: quarantined without a reason"
            assert not outcome.reason.startswith("internal error"), f"{name}: {outcome.reason}"
            if has_sender(raw) and "max_" not in outcome.reason:
                mail_quarantined.append(f"{name}: {outcome.reason[:120]}")
    with capsys.disabled():
        print(f"\n{corpus}: {len(files)} files, " + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
              + f", slowest {slowest[0] * 1000:.0f} ms ({slowest[1]})")
        for line in mail_quarantined:
            print(f"  quarantined: {line}")
    assert escaped == []
    # nothing lost: every file is stored, with its bytes, in a final state
    assert InboundMail.select().count() == len(files)
    assert not InboundMail.select().where(InboundMail.state.not_in(FINAL_STATES)).exists()
    assert not InboundMail.select().where(InboundMail.state == "quarantined", InboundMail.reason.is_null()).exists()
    # a mail with a sender becomes a ticket: quarantine is for what is truly unusable (or over a limit)
    assert len(mail_quarantined) <= 2, mail_quarantined
    # every quarantined mail is reported to the admin: the day's first ones one by one, the rest in the digest
    alerts = Outbox.select().where(Outbox.kind == "quarantine_alert").count()
    assert alerts == min(states.get("quarantined", 0), desk.config.rate_limits.quarantine_alerts_day)
    assert send_digest(desk, desk.clock.now()) == states.get("quarantined", 0) - alerts
    assert not InboundMail.select().where(InboundMail.state == "quarantined",
                                          InboundMail.alert.not_in(["sent", "digested"])).exists()


# ---------------------------------------------------------------- hostile input

def _multipart(boundary: str, parts: list[str]) -> str:
    return "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--\r\n"


def _headers(subject="Hostile", extra="") -> str:
    return ("From: Mallory <mallory@customer.example>\r\nTo: support@example.com\r\n"
            f"Subject: {subject}\r\nDate: Mon, 02 Nov 2026 09:00:00 +0000\r\n"
            f"Message-ID: <{abs(hash(subject + extra)) % 10**12}@customer.example>\r\n{extra}MIME-Version: 1.0\r\n")


def one_mb_header_line() -> bytes:
    return (_headers(extra="X-Junk: " + "A" * (1024 * 1024) + "\r\n") + "Content-Type: text/plain\r\n\r\n"
            "The printer is broken.\r\n").encode()


def one_mb_subject_line() -> bytes:
    return (_headers(subject="Printer " + "x" * (1024 * 1024)) + "Content-Type: text/plain\r\n\r\nBody.\r\n").encode()


def one_mb_folded_header() -> bytes:
    folded = "\r\n ".join(["word"] * 200_000)
    return (_headers(extra=f"X-Folded: {folded}\r\n") + "Content-Type: text/plain\r\n\r\nBody.\r\n").encode()


def nested_parts(depth: int = 10_000) -> bytes:
    head, tail = [], []
    for i in range(depth):
        head.append(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n')
        tail.append(f"\r\n--b{i}--\r\n")
    body = "".join(head) + "Content-Type: text/plain\r\n\r\ndeep\r\n" + "".join(reversed(tail))
    return (_headers(subject="Nested") + body).encode()


def many_sibling_parts(count: int = 10_000) -> bytes:
    parts = [f"Content-Type: text/plain\r\n\r\npart {i}" for i in range(count)]
    return (_headers(subject="Siblings") + 'Content-Type: multipart/mixed; boundary="s"\r\n\r\n'
            + _multipart("s", parts)).encode()


def quoted_thread(size: int = 5 * 1024 * 1024) -> bytes:
    line = "> > > On Mon, 2 Nov 2026 at 10:00, Someone <someone@customer.example> wrote: the printer\r\n"
    body = "It is still broken, see below.\r\n\r\nOn Mon, 2 Nov 2026, Service Desk wrote:\r\n" + line * (size // len(line))
    return (_headers(subject="Re: long thread") + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()


def attachment_mail(disposition: str, subject: str) -> bytes:
    parts = ["Content-Type: text/plain\r\n\r\nSee the attached file.",
             f"Content-Type: application/octet-stream\r\n{disposition}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
             "c2VjcmV0IGJ5dGVz"]
    return (_headers(subject=subject) + 'Content-Type: multipart/mixed; boundary="a"\r\n\r\n'
            + _multipart("a", parts)).encode()


def nul_filename() -> bytes:
    return attachment_mail('Content-Disposition: attachment; filename="report\x00.exe.pdf"', "NUL name")


def nul_filename_rfc2231() -> bytes:
    return attachment_mail("Content-Disposition: attachment; filename*=utf-8''report%00%2F..%2Fx.pdf", "NUL 2231")


def dotdot_filename() -> bytes:
    return attachment_mail('Content-Disposition: attachment; filename="../../../../etc/cron.d/evil"', "Dotdot")


def dotdot_filename_rfc2231() -> bytes:
    return attachment_mail("Content-Disposition: attachment; filename*=utf-8''..%2F..%2F..%2Fevil.sh", "Dotdot 2231")


def backslash_filename() -> bytes:
    return attachment_mail('Content-Disposition: attachment; filename="..\\\\..\\\\windows\\\\evil.dll"', "Backslash")


HOSTILE = {
    "1 MB header line": one_mb_header_line,
    "1 MB subject line": one_mb_subject_line,
    "1 MB folded header": one_mb_folded_header,
    "10,000 nested parts": nested_parts,
    "10,000 sibling parts": many_sibling_parts,
    "5 MB quoted thread": quoted_thread,
    "NUL in a filename": nul_filename,
    "NUL in an RFC 2231 filename": nul_filename_rfc2231,
    "../ in a filename": dotdot_filename,
    "../ in an RFC 2231 filename": dotdot_filename_rfc2231,
    "..\\ in a filename": backslash_filename,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_is_handled_within_a_second_or_quarantined_with_a_reason(desk, name, tmp_path):
    run(desk, make_mail(date=desk.clock.now()), 1)  # a running desk: templates loaded, database warm
    raw = HOSTILE[name]()
    outcome, seconds = run(desk, raw, 2)
    row = InboundMail.get(InboundMail.uid == 2)
    assert bytes(row.raw) == raw and row.state == outcome.state  # nothing lost
    assert outcome.state in FINAL_STATES
    if outcome.state == "quarantined":
        assert outcome.reason and not outcome.reason.startswith("internal error"), outcome.reason
        assert row.reason == outcome.reason
    else:
        assert seconds < 1.0, f"{name}: {seconds:.2f} s"
    _assert_attachments_stay_inside(desk)
    # nothing was written outside the data directory by the mail
    assert not any(p.name in ("evil", "evil.sh", "evil.dll") for p in tmp_path.rglob("*"))


def _assert_attachments_stay_inside(desk) -> None:
    root = (Path(desk.data_dir) / "attachments").resolve()
    for att in Attachment.select():
        path = (Path(desk.data_dir) / att.path).resolve()
        assert path.is_relative_to(root) and path.is_file(), att.path
        assert re.fullmatch(r"attachments/\d{4}/\d{2}/[0-9a-f]{32}", att.path), att.path
        assert "\x00" not in att.filename and "/" not in att.filename and "\\" not in att.filename
        assert ".." not in att.filename


@pytest.mark.parametrize("name", ["NUL in a filename", "../ in a filename", "../ in an RFC 2231 filename",
                                  "..\\ in a filename"])
def test_hostile_filenames_become_a_ticket_with_the_attachment_under_a_generated_name(desk, name):
    outcome, _ = run(desk, HOSTILE[name](), 1)
    assert outcome.state == "processed" and outcome.ticket
    att = Attachment.get(Attachment.ticket == outcome.ticket)
    assert (Path(desk.data_dir) / att.path).read_bytes() == b"secret bytes"
    _assert_attachments_stay_inside(desk)


def test_a_from_the_parser_cannot_read_still_gives_the_requester(desk):
    raw = (b"From: Big Bug bb@bug.com\r\nTo: support@example.com\r\nSubject: undef method\r\n"
           b"Message-Id: 201002191008.30117.foo.bar@company.com\r\n\r\nfoo bar\r\n")
    outcome, _ = run(desk, raw, 1)
    assert outcome.state == "processed"
    assert Ticket.get_by_id(outcome.ticket).requester_address == "bb@bug.com"


def test_an_agent_address_the_parser_cannot_read_gets_no_agent_powers(desk):
    raw = (b"From: Alice alice@example.com\r\nTo: support@example.com\r\nSubject: #status closed\r\n"
           b"Message-ID: <x1@example.com>\r\n\r\n#priority P1\r\n")
    outcome, _ = run(desk, raw, 1)
    assert outcome.state == "processed"
    ticket = Ticket.get_by_id(outcome.ticket)
    assert ticket.requester_address == "alice@example.com" and ticket.priority != "P1"


def test_a_mail_without_any_sender_is_quarantined_with_the_reason(desk):
    raw = b"To: support@example.com\r\nSubject: who am I\r\nMessage-ID: <nobody@x.example>\r\n\r\nHello\r\n"
    outcome, _ = run(desk, raw, 1)
    assert (outcome.state, outcome.reason) == (
        "quarantined", "no usable sender address: no From header, and none in second From, Sender, Reply-To, Return-Path")
    assert Outbox.get(Outbox.kind == "quarantine_alert").recipients == ["admin@example.com"]


def test_a_mail_with_a_1_mb_header_line_still_becomes_a_ticket(desk):
    outcome, _ = run(desk, one_mb_header_line(), 1)
    assert outcome.state == "processed"
    assert "printer is broken" in Ticket.get_by_id(outcome.ticket).description


def test_a_5_mb_quoted_thread_keeps_only_the_new_text_for_a_follow_up(desk):
    first, _ = run(desk, make_mail(sender="Mallory <mallory@customer.example>", subject="Printer",
                                   message_id="<t1@customer.example>", date=desk.clock.now()), 1)
    raw = quoted_thread().replace(b"Subject: Re: long thread", f"Subject: Re: [SD#{first.ticket}] Printer".encode())
    outcome, seconds = run(desk, raw, 2)
    assert (outcome.state, outcome.ticket) == ("processed", first.ticket)
    text = Event.select().where(Event.ticket == first.ticket, Event.kind == "reply_in").get().text
    assert text.strip() == "It is still broken, see below."


@pytest.mark.parametrize("build", [nested_parts, many_sibling_parts])
def test_too_many_parts_are_quarantined_with_the_limit_named_and_the_admin_told(desk, build):
    outcome, _ = run(desk, build(), 1)
    assert outcome.state == "quarantined" and "max_parts" in outcome.reason, outcome.reason
    assert InboundMail.get().reason == outcome.reason
    alert = Outbox.get(Outbox.kind == "quarantine_alert")
    assert alert.recipients == ["admin@example.com"] and b"max_parts" in bytes(alert.raw)
    assert Ticket.select().count() == 0


# ---------------------------------------------------------------- the bench table

@pytest.mark.skipif(not CORPORA.is_dir(), reason=f"mail corpora not found at {CORPORA} (set MAILTICKET_CORPORA)")
def test_the_bench_table_combines_pipeline_counts_and_scores_with_their_thresholds():
    from bench.corpora import combine, table
    bounces = "flufl.bounce" if (CORPORA / "flufl.bounce").is_dir() else "perl-bounceparser"  # the bundled share
    rows = {r["corpus"]: r for r in combine(CORPORA, only=["roundup", bounces, "talon"])}
    assert set(rows) == {"roundup", bounces, "talon"}
    for name, row in rows.items():
        files = sum(1 for p in (CORPORA / name).rglob("*") if p.is_file())
        assert row["files"] == files and row["escaped"] == []
        assert row["quarantined"] + row["processed"] + row["duplicate"] + row["dropped"] + row["spam"] == files
        assert row["slowest_ms"] > 0 and row["slowest"]
    assert rows["roundup"]["quotes_pct"] >= 90.0 and rows["talon"]["quotes_pct"] >= 90.0   # as tests/test_quotes.py
    assert rows[bounces]["bounces_pct"] >= 98.0                                           # as tests/test_bounces.py
    if bounces == "flufl.bounce":
        assert rows[bounces]["dropped"] >= 100  # bounces of mail we never sent: dropped, never a ticket
        assert rows[bounces]["processed"] == 0
    else:  # perl-bounceparser's bounces are dropped too; only its few non-bounces may become tickets
        assert rows[bounces]["dropped"] >= 30 and rows[bounces]["processed"] <= 10
    text = table(list(rows.values()))
    assert text.splitlines()[0].startswith("corpus") and bounces in text and "ESCAPED" not in text


# ---------------------------------------------------------------- attachments, limits, automatic mail

TNEF_DIR = CORPORA / "mimekit" / "UnitTests" / "TestData" / "tnef"


def test_an_inline_cid_image_is_kept_with_its_content_id(desk):
    from email.message import EmailMessage
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Anna <anna@customer.example>", "support@example.com", "Screenshot"
    msg["Message-ID"] = "<cid1@customer.example>"
    msg.set_content("See the screenshot.")
    msg.add_alternative('<p>See the screenshot.</p><img src="cid:shot1@customer.example">', subtype="html")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    msg.get_payload()[1].add_related(png, maintype="image", subtype="png", cid="<shot1@customer.example>",
                                     filename="screen.png", disposition="inline")
    outcome, _ = run(desk, msg.as_bytes(), 1)
    assert outcome.state == "processed"
    att = Attachment.get(Attachment.ticket == outcome.ticket)
    assert att.content_id and "shot1@customer.example" in att.content_id and att.inline
    assert (Path(desk.data_dir) / att.path).read_bytes() == png
    _assert_attachments_stay_inside(desk)


@pytest.mark.skipif(not TNEF_DIR.is_dir(), reason=f"TNEF corpus not found at {TNEF_DIR}")
def test_a_winmail_dat_is_opened_and_its_files_stored(desk):
    from email.message import EmailMessage
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Anna <anna@customer.example>", "support@example.com", "Outlook files"
    msg.set_content("Files attached.")
    msg.add_attachment((TNEF_DIR / "attachments.tnef").read_bytes(), maintype="application", subtype="ms-tnef",
                       filename="winmail.dat")
    outcome, _ = run(desk, msg.as_bytes(), 1)
    assert outcome.state == "processed"
    names = sorted(a.filename for a in Attachment.select().where(Attachment.ticket == outcome.ticket))
    expected = sorted(n for n in (TNEF_DIR / "attachments.list").read_text().split() if not n.startswith("body."))
    assert names == expected
    _assert_attachments_stay_inside(desk)


def test_a_mail_over_the_size_limit_is_quarantined_naming_the_limit(desk):
    raw = make_mail(body="x" * (26 * 1024 * 1024), date=desk.clock.now())
    outcome, _ = run(desk, raw, 1)
    assert outcome.state == "quarantined" and "max_size" in outcome.reason
    assert len(bytes(InboundMail.get().raw)) == len(raw)  # kept, not lost


@pytest.mark.parametrize("header", [{"Auto-Submitted": "auto-generated"}, {"Precedence": "bulk"},
                                    {"X-Autoreply": "yes"}, {"Auto-Submitted": "auto-replied"}])
def test_automatic_mail_is_never_acknowledged(desk, header):
    raw = make_mail(sender="Robot <noreply@vendor.example>", subject="Your weekly report", headers=header,
                    date=desk.clock.now())
    outcome, _ = run(desk, raw, 1)
    assert outcome.state in ("processed", "dropped")
    assert not Outbox.select().where(Outbox.kind == "acknowledgement").exists()
    assert not Outbox.select().where(Outbox.recipients.contains("noreply@vendor.example")).exists()


def test_mime_nesting_deeper_than_max_depth_is_quarantined_and_shallower_is_read(desk):
    deep, _ = run(desk, nested_parts(30), 1)
    assert deep.state == "quarantined" and "max_depth" in deep.reason, deep.reason
    shallow, _ = run(desk, nested_parts(19).replace(b"Message-ID: <", b"Message-ID: <shallow", 1), 2)
    assert shallow.state == "processed"
    assert Ticket.get_by_id(shallow.ticket).description.strip() == "deep"
