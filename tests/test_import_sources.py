"""`mailticket import PATH` takes an mbox, a maildir or one mail file and refuses anything else
(exit 2, one line saying what the path is instead); it reads a mail at a time, so a file of
hundreds of megabytes without a newline takes no more memory than a small one, and a mail over
the 50 MiB limit is named and skipped while the others are imported (issue 25, point 7)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mailticket import db
from mailticket.config import load_config
from mailticket.models import InboundMail, Ticket
from mailticket.service import importer
from tests.harness import REPO, make_mail, run_cli, write_config

PASSWD = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


def _mbox(*mails: bytes) -> bytes:
    return b"".join(b"From someone@example.com Mon Mar  2 09:00:00 2026\n" + m.replace(b"\r\n", b"\n") + b"\n"
                    for m in mails)


# name: (how to make the path in tmp_path, what the line says)
REFUSED = {
    "/dev/null": (lambda tmp: "/dev/null", "/dev/null is not a file but a device, pipe or socket"),
    "a passwd file": (lambda tmp: _file(tmp / "passwd", PASSWD), "is neither an mbox (its first line does not "
                                                                 "start with 'From ') nor a mail"),
    "an empty file": (lambda tmp: _file(tmp / "empty.mbox", b""), "is empty: neither an mbox nor a mail"),
    "a binary file": (lambda tmp: _file(tmp / "a.out", b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 40),
                      "is neither an mbox"),
    "header lines without a From:": (lambda tmp: _file(tmp / "x.eml", b"Subject: hi\nTo: a@b\n\nbody\n"),
                                     "is neither an mbox"),
    "200 KB without a newline": (lambda tmp: _file(tmp / "line", b"x" * 200_000), "is neither an mbox"),
    "a folder that is no maildir": (lambda tmp: _folder(tmp / "folder"), "is a folder but not a maildir"),
    "a path that is not there": (lambda tmp: str(tmp / "nowhere.mbox"), "nowhere.mbox does not exist"),
}


def _file(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _folder(path) -> str:
    path.mkdir()
    (path / "mail.txt").write_bytes(make_mail())
    return str(path)


@pytest.mark.parametrize("case", REFUSED)
def test_what_is_no_mail_source_is_refused_with_exit_2(tmp_path, case):
    make, words = REFUSED[case]
    path = make(tmp_path)
    config = write_config(tmp_path)
    done = run_cli("import", path, config=config)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"mailticket import: argument PATH: {path}") and words in line, line
    assert not (tmp_path / "mailticket.db").exists()  # refused before anything was opened


def test_the_real_passwd_file_is_refused(tmp_path):
    done = run_cli("import", "/etc/passwd", config=write_config(tmp_path))
    assert done.returncode == 2 and "/etc/passwd is neither an mbox" in done.stderr


def test_one_mail_file_is_imported_as_one_mail(tmp_path):
    """A mail saved from a mail program (.eml, CRLF as sent) is one mail: the choice made here,
    rather than refusing it, because it is what an admin has of a mail that went astray."""
    config = write_config(tmp_path)
    eml = tmp_path / "lost.eml"
    eml.write_bytes(make_mail(subject="Lost in the spam folder", message_id="<lost@customer.example>"))
    first = run_cli("import", eml, config=config)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (f"{eml}: 1 mail(s): 1 new ticket(s), 0 threaded, 0 already known, "
                                    "0 quarantined; no mail was sent")
    again = run_cli("import", eml, config=config)
    assert "1 mail(s): 0 new ticket(s), 0 threaded, 1 already known" in again.stdout
    db.connect(load_config(config).database.url)
    assert [t.subject for t in Ticket.select()] == ["Lost in the spam folder"]


def test_a_mail_over_the_limit_is_named_and_skipped_and_the_others_imported(tmp_path, monkeypatch):
    config = load_config(write_config(tmp_path))
    db.connect(config.database.url)
    from mailticket.service.wiring import build_desk
    box = tmp_path / "mixed.mbox"
    big = make_mail(subject="Huge", message_id="<huge@customer.example>", body="x" * 5000)
    box.write_bytes(_mbox(make_mail(subject="First", message_id="<a@customer.example>"), big,
                          make_mail(subject="Third", message_id="<c@customer.example>")))
    monkeypatch.setattr(importer, "MAX_MAIL", 4000)
    result = importer.import_path(build_desk(config), box)
    assert (result.seen, result.new_tickets, result.quarantined) == (3, 2, 0)
    [where] = result.too_large
    offset = box.read_bytes().index(b"From someone", 10)
    assert where.startswith(f"byte {offset} <huge@customer.example>: ")
    assert sorted(t.subject for t in Ticket.select()) == ["First", "Third"]
    assert InboundMail.select().count() == 2  # the large one not stored either


def test_the_mbox_reader_finds_what_pythons_mailbox_finds(tmp_path):
    """The streaming reader splits an mbox where the mailbox module does (the import's behaviour
    before it read in bounded memory), for the shapes that matter: blank lines, CRLF, lines
    longer than its read size, a From_ line without an end."""
    import mailbox
    shapes = {
        "plain": b"From a\nSubject: x\n\nbody\n\nFrom b\nSubject: y\n\nbody2\n",
        "no blank line before From": b"From a\nSubject: x\n\nbody\nFrom b\nSubject: y\n\nbody2",
        "crlf": b"From a\r\nSubject: x\r\n\r\nbody\r\n\r\nFrom b\r\nSubject: y\r\n\r\nbody2\r\n",
        "quoted From in a body": b"From a\nSubject: x\n\n>From here\n From there\n\nFrom b\n\n",
        "empty mails": b"From a\n\n\n\nFrom b\n",
        "a 3 MB line": b"From a\nX: " + b"y" * 3_000_000 + b"From c\n\nFrom b\nS: 1\n\nbody\n",
        "a 2.5 MB From_ line": b"From " + b"z" * 2_500_000 + b"\nS: 1\n\nb\n",
    }
    for name, data in shapes.items():
        path = tmp_path / "box"
        path.write_bytes(data)
        expected = [mailbox.mbox(str(path)).get_bytes(k) for k in mailbox.mbox(str(path)).keys()]
        with open(path, "rb") as fh:
            found = [importer._read(e, fh) for e in importer._mbox_entries(path)]
        assert found == expected, name


# ---------------------------------------------------------------- memory

PEAK = """import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(f"{done.returncode}\\n{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n{done.stdout}")
sys.stderr.write(done.stderr)
"""


def _import_peak(path, config) -> tuple[int, int, str, str]:
    """Exit code, peak RSS in KiB, stdout and stderr of `mailticket import PATH` in a child of its own
    (RUSAGE_CHILDREN of a fresh parent: the import's peak alone, not this test process's)."""
    done = subprocess.run([sys.executable, "-c", PEAK, sys.executable, "-m", "mailticket.service.cli",
                           "--config", str(config), "import", str(path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    code, peak, out = done.stdout.split("\n", 2)
    return int(code), int(peak), out, done.stderr


def test_a_200_mb_mail_without_newlines_takes_no_more_memory_than_a_small_import(tmp_path):
    """The import read the whole file (Python's mailbox reads a line whole, and the mail again):
    a 2 GB line took 4.3 GB. Now: a 200 MB mail without a newline between two ordinary ones is
    named and skipped, the two imported, and the peak stays within a few MB of importing the two
    alone (measured here: memory, not time, so the bound holds however loaded the machine is)."""
    config = write_config(tmp_path)
    small = tmp_path / "small.mbox"
    first = make_mail(subject="Before", message_id="<before@customer.example>")
    last = make_mail(subject="After", message_id="<after@customer.example>")
    small.write_bytes(_mbox(first, last))
    code, baseline, out, err = _import_peak(small, config)
    assert code == 0 and "2 mail(s): 2 new ticket(s)" in out, out + err

    size = 200 * 1024 * 1024
    huge = tmp_path / "huge.mbox"
    with open(huge, "wb") as fh:
        fh.write(_mbox(make_mail(subject="Before 2", message_id="<before2@customer.example>")))
        fh.write(b"From someone@example.com Mon Mar  2 10:00:00 2026\nSubject: big\n\n")
        block = b"x" * (1024 * 1024)
        for _ in range(size // len(block)):
            fh.write(block)
        fh.write(b"\n\n" + _mbox(make_mail(subject="After 2", message_id="<after2@customer.example>")))
    code, peak, out, err = _import_peak(huge, config)
    assert code == 1, out + err
    assert "3 mail(s): 2 new ticket(s), 0 threaded, 0 already known, 0 quarantined, 1 too large" in out, out
    assert "over the 52 MB a mail may have: not imported" in err and "byte " in err, err
    print(f"peak RSS: small import {baseline / 1024:.0f} MB, 200 MB mail {peak / 1024:.0f} MB")
    assert peak < baseline + 32 * 1024, (baseline, peak)   # KiB: a few 1 MiB lines, not the file
    assert peak * 1024 < size / 2
