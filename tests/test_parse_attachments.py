"""Attachments stored under generated names inside the data directory, read back safely."""

import re
from datetime import datetime, timezone

import pytest

from mailticket.attachments import open_attachment, store_attachment
from mailticket.parse import Attachment, parse_mail

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
