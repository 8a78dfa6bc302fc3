"""Attachments stored under generated names inside the data directory, read back safely."""

import errno
import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mailticket.inbound.attachments import flushed_before_commit, open_attachment, store_attachment
from mailticket.errors import StorageError
from mailticket.inbound.parse import Attachment, parse_mail

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)


def attachment(name: str = "../../evil.sh", data: bytes = b"#!/bin/sh\nrm -rf /\n") -> Attachment:
    return Attachment(name, "application/x-sh", data, None, False)


def test_store_writes_under_a_generated_name_by_year_and_month(tmp_path):
    rel = store_attachment(tmp_path, attachment(), now=NOW)
    assert re.fullmatch(r"attachments/2026/11/[0-9a-f]{32}", rel)
    assert (tmp_path / rel).read_bytes() == b"#!/bin/sh\nrm -rf /\n"
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))
    assert not (tmp_path.parent / "evil.sh").exists()


def test_two_stores_of_the_same_name_never_collide(tmp_path):
    first = store_attachment(tmp_path, attachment(data=b"one"), now=NOW)
    second = store_attachment(tmp_path, attachment(data=b"two"), now=NOW)
    assert first != second
    assert open_attachment(tmp_path, first) == b"one"
    assert open_attachment(tmp_path, second) == b"two"


def test_stored_attachments_of_a_parsed_mail_round_trip(tmp_path):
    raw = (b'From: a@example.com\nContent-Type: multipart/mixed; boundary="m"\n\n'
           b"--m\nContent-Type: text/plain\n\nx\n"
           b'--m\nContent-Type: application/octet-stream; name="/etc/passwd"\n\n\x00\x01bin\n'
           b"--m--\n")
    [att] = parse_mail(raw).attachments
    rel = store_attachment(tmp_path, att)
    assert open_attachment(tmp_path, rel) == b"\x00\x01bin"
    assert att.filename == "passwd" and "passwd" not in rel


@pytest.mark.parametrize("rel", ["../outside", "attachments/../../outside", "/etc/passwd",
                                 "attachments", "config.toml"])
def test_open_refuses_paths_outside_the_attachment_directory(tmp_path, rel):
    (tmp_path.parent / "outside").write_bytes(b"secret")
    (tmp_path / "config.toml").write_bytes(b"secret")
    with pytest.raises(ValueError, match="outside"):
        open_attachment(tmp_path, rel)


def test_open_refuses_a_symlink_that_leaves_the_data_dir(tmp_path):
    secret = tmp_path.parent / "secret.txt"
    secret.write_bytes(b"secret")
    folder = tmp_path / "attachments" / "2026" / "11"
    folder.mkdir(parents=True)
    (folder / "link").symlink_to(secret)
    with pytest.raises(ValueError, match="outside"):
        open_attachment(tmp_path, "attachments/2026/11/link")


def test_open_of_a_missing_attachment_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_attachment(tmp_path, "attachments/2026/11/" + "0" * 32)


# ---------------------------------------------------------------- on disk before the commit that names them

def _record_fsyncs(monkeypatch, *, fail=None, hold: threading.Event | None = None) -> list[Path]:
    """Every path fsynced, in order. ``fail(path)`` makes that fsync fail with EIO; ``hold``
    keeps each file's fsync (not a folder's) waiting until it is set."""
    done, real = [], os.fsync

    def fsync(fd):
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if hold is not None and path.is_file():
            assert hold.wait(10), "the test never let the fsync go"
        if fail is not None and fail(path):
            raise OSError(errno.EIO, "Input/output error")
        real(fd)
        done.append(path)
    monkeypatch.setattr(os, "fsync", fsync)
    return done


def test_a_file_stored_alone_and_its_folder_are_on_disk_when_the_store_returns(tmp_path, monkeypatch):
    done = _record_fsyncs(monkeypatch)
    target = tmp_path / store_attachment(tmp_path, attachment(), now=NOW)
    assert done == [target, target.parent]


def test_in_a_batch_the_files_are_flushed_while_it_goes_on_and_all_by_its_end(tmp_path, monkeypatch):
    hold = threading.Event()
    done = _record_fsyncs(monkeypatch, hold=hold)
    ended = threading.Event()
    stored = []

    def batch():
        with flushed_before_commit():
            stored.extend(tmp_path / store_attachment(tmp_path, attachment(data=d), now=NOW) for d in (b"1", b"2"))
        ended.set()
    worker = threading.Thread(target=batch)
    worker.start()
    try:
        assert not ended.wait(0.3), "the block ended before its files were on disk"
        assert len(stored) == 2 and done == [], "the stores returned without waiting for the disk"
    finally:
        hold.set()
        worker.join(10)
    assert ended.is_set()
    assert sorted(done[:2]) == sorted(stored) and done[2:] == [stored[0].parent]  # the folder once, last


def test_a_file_that_cannot_be_flushed_fails_the_block_and_names_the_file(tmp_path, monkeypatch):
    _record_fsyncs(monkeypatch, fail=lambda path: path.is_file())
    with pytest.raises(StorageError) as failed:
        with flushed_before_commit():
            rel = store_attachment(tmp_path, attachment(), now=NOW)
    assert str(failed.value) == f"attachment {tmp_path / rel} could not be flushed to disk: Input/output error"


def test_a_file_that_cannot_be_written_fails_the_block_and_names_the_file(tmp_path, monkeypatch):
    """The worker writes the file as well: a full disk fails the block (the batch is retried), as a
    failed flush does, instead of failing the one mail; a store outside a block raises at once."""
    from mailticket import disk

    def full(path, mode):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(disk, "open", full, raising=False)
    with pytest.raises(StorageError) as failed:
        with flushed_before_commit():
            rel = store_attachment(tmp_path, attachment(), now=NOW)
    assert str(failed.value) == f"attachment {tmp_path / rel} could not be flushed to disk: No space left on device"
    with pytest.raises(OSError, match="No space left"):
        store_attachment(tmp_path, attachment(), now=NOW)


def test_a_folder_that_cannot_be_flushed_fails_the_block_and_names_the_folder(tmp_path, monkeypatch):
    _record_fsyncs(monkeypatch, fail=lambda path: path.is_dir())
    with pytest.raises(StorageError, match=r"attachment .*/attachments/2026/11 could not be flushed"):
        with flushed_before_commit():
            store_attachment(tmp_path, attachment(), now=NOW)


def test_the_blocks_own_error_goes_before_a_flush_that_failed(tmp_path, monkeypatch):
    _record_fsyncs(monkeypatch, fail=lambda path: True)
    with pytest.raises(ZeroDivisionError):
        with flushed_before_commit():
            store_attachment(tmp_path, attachment(), now=NOW)
            1 / 0
