import base64
import os
import random
import re
import stat
import time
from datetime import datetime, timedelta, timezone
from email.utils import parseaddr

import pytest

from mailticket.config import Secret
from mailticket.errors import ConfigError
from mailticket.desk.tokens import (
    MAC_BYTES,
    SECRET_FILE,
    TokenClaim,
    TokenSigner,
    configured_secret,
    load_or_create_secret,
    reply_address,
    token_from_addresses,
)

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(days=30)


@pytest.fixture
def signer():
    return TokenSigner(SECRET)


def test_a_token_verifies_to_its_claim(signer):
    token = signer.make(42, "reply", LATER)
    assert signer.verify(token, NOW) == TokenClaim(42, "reply", LATER)
    assert signer.make(7, "note", LATER) != signer.make(7, "reply", LATER)
    assert signer.verify(signer.make(7, "note", LATER), NOW).purpose == "note"


def test_token_shape_is_safe_in_a_local_part(signer):
    token = signer.make(123456, "reply", LATER)
    assert re.fullmatch(r"t123456-r-[a-z2-7]+-[a-z2-7]{16}", token)
    for bad in "+@=/ \"":
        assert bad not in token
    local = reply_address("support@example.com", token).split("@")[0]
    assert len(local) <= 64
    assert parseaddr(reply_address("support@example.com", token))[1] == f"support+{token}@example.com"


def test_mac_has_at_least_80_bits(signer):
    assert MAC_BYTES * 8 >= 80
    mac = signer.make(1, "reply", LATER).rsplit("-", 1)[1]
    assert len(mac) * 5 >= 80


def test_token_for_one_ticket_is_refused_for_another(signer):
    token = signer.make(5, "reply", LATER)
    assert signer.verify(token, NOW).ticket == 5
    assert signer.verify_for(token, 5, "reply", NOW)
    assert not signer.verify_for(token, 6, "reply", NOW)
    assert not signer.verify_for(token, 5, "note", NOW)


def test_rewriting_the_ticket_or_purpose_breaks_the_mac(signer):
    token = signer.make(5, "reply", LATER)
    assert signer.verify(token.replace("t5-", "t6-", 1), NOW) is None
    assert signer.verify(token.replace("-r-", "-n-", 1), NOW) is None
    assert signer.verify(token.replace("t5-", "t05-", 1), NOW) is None


def test_expired_token_is_refused(signer):
    token = signer.make(5, "reply", NOW + timedelta(hours=1))
    assert signer.verify(token, NOW + timedelta(minutes=59)) is not None
    assert signer.verify(token, NOW + timedelta(hours=1)) is None
    assert signer.verify(token, NOW + timedelta(days=1)) is None
    assert not signer.verify_for(token, 5, "reply", NOW + timedelta(days=1))


def test_extending_the_expiry_breaks_the_mac(signer):
    token = signer.make(5, "reply", NOW + timedelta(hours=1))
    t, p, expiry, mac = token.split("-")
    later = signer.make(5, "reply", NOW + timedelta(days=365)).split("-")[2]
    assert signer.verify(f"{t}-{p}-{later}-{mac}", NOW + timedelta(hours=2)) is None
    assert signer.verify(f"{t}-{p}-a{expiry}-{mac}", NOW) is None  # non-canonical expiry


def test_every_single_character_change_is_refused(signer):
    token = signer.make(42, "reply", LATER)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
    for i, old in enumerate(token):
        for new in alphabet:
            if new != old:
                assert signer.verify(token[:i] + new + token[i + 1:], NOW) is None, (i, new)


def test_another_secret_refuses_the_token(signer):
    token = signer.make(42, "reply", LATER)
    assert TokenSigner(b"another secret of enough length").verify(token, NOW) is None


def test_upper_case_token_still_verifies(signer):
    """Some mail systems fold the local part to upper or mixed case."""
    token = signer.make(42, "reply", LATER)
    assert signer.verify(token.upper(), NOW) == TokenClaim(42, "reply", LATER)


def test_100000_random_tokens_are_all_refused(signer):
    rng = random.Random(20261127)
    real = signer.make(42, "reply", LATER)
    expiry = real.split("-")[2]
    started = time.perf_counter()
    accepted = 0
    for i in range(100_000):
        mac = base64.b32encode(rng.randbytes(10)).decode().lower()
        if i % 2:
            token = f"t{rng.randrange(1, 10**6)}-{rng.choice('rn')}-{expiry}-{mac}"
        else:
            token = f"t42-r-{expiry}-{mac}"
        accepted += signer.verify(token, NOW) is not None
    assert accepted == 0
    assert time.perf_counter() - started < 10  # the per-task time limit of this case


@pytest.mark.parametrize(
    "garbage",
    ["", "t", "t42", "t42-r", "t42-r--", "t-1-r-b-" + "a" * 16, "t42-x-bcd-" + "a" * 16,
     "t42-r-bcd-" + "a" * 15, "t42-r-bcd-" + "a" * 17, "t42-r-bcd-" + "1" * 16,
     "x" * 10_000, "t42-r-bcd-" + "a" * 16 + "\n", "t٤٢-r-bcd-" + "a" * 16,
     None, 42, b"t42-r-bcd-aaaaaaaaaaaaaaaa", "t99999999999999999999-r-bcd-" + "a" * 16],
)
def test_malformed_tokens_are_refused_without_raising(signer, garbage):
    assert signer.verify(garbage, NOW) is None
    assert signer.verify_for(garbage, 42, "reply", NOW) is False


def test_verify_never_raises_on_a_bad_now(signer):
    token = signer.make(42, "reply", LATER)
    assert signer.verify(token, "yesterday") is None
    naive = NOW.replace(tzinfo=None)
    assert signer.verify(token, naive) == TokenClaim(42, "reply", LATER)


@pytest.mark.parametrize(
    "args",
    [(42, "public", LATER), (-1, "reply", LATER), ("42", "reply", LATER),
     (42, "reply", datetime(2027, 1, 1))],
)
def test_make_rejects_bad_arguments(signer, args):
    with pytest.raises(ValueError):
        signer.make(*args)


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError):
        TokenSigner(b"short")


def test_reply_address_and_finding_tokens_among_recipients(signer):
    token = signer.make(42, "reply", LATER)
    address = reply_address("support@example.com", token)
    assert address == f"support+{token}@example.com"
    found = token_from_addresses(
        "support@example.com",
        ["Alice <alice@example.com>", f"Service Desk <support+{token}@EXAMPLE.com>",
         "support+other@elsewhere.org", "support@example.com", "supportx+t1@example.com"],
    )
    assert found == [token]
    assert token_from_addresses("support@example.com", [f"a@b.c, support+{token}@example.com"]) == [token]
    assert token_from_addresses("support@example.com", ["support+@example.com", "not an address"]) == []


def test_reply_address_refuses_a_non_address():
    with pytest.raises(ValueError):
        reply_address("support", "t1-r-b-" + "a" * 16)


def test_secret_file_is_created_once_with_mode_0600(tmp_path):
    data_dir = tmp_path / "var"
    first = load_or_create_secret(data_dir, None)
    path = data_dir / SECRET_FILE
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(data_dir, None) == first
    assert [p.name for p in data_dir.iterdir()] == [SECRET_FILE]  # no temp file left behind


def test_configured_secret_wins(tmp_path):
    configured = Secret(value="  a long enough admin secret  ", key="service.secret")
    assert load_or_create_secret(tmp_path, configured) == b"a long enough admin secret"
    assert load_or_create_secret(tmp_path, Secret()) == load_or_create_secret(tmp_path, None)  # none given: the file
    assert (tmp_path / SECRET_FILE).exists()


def test_short_configured_secret_is_a_config_error_naming_its_key(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("short\n")
    source = Secret(file=str(path), key="service.secret_file", config_file="/etc/mailticket/mailticket.toml")
    with pytest.raises(ConfigError) as err:
        load_or_create_secret(tmp_path, source)
    assert (err.value.file, err.value.key) == ("/etc/mailticket/mailticket.toml", "service.secret_file")
    assert "too short (5 bytes)" in str(err.value)
    with pytest.raises(ConfigError, match="too short"):
        configured_secret(source)
    assert not (tmp_path / SECRET_FILE).exists()


def test_secret_file_readable_by_others_is_a_config_error(tmp_path):
    load_or_create_secret(tmp_path, None)
    os.chmod(tmp_path / SECRET_FILE, 0o644)
    with pytest.raises(ConfigError) as err:
        load_or_create_secret(tmp_path, None)
    assert SECRET_FILE in str(err.value) and "chmod 600" in str(err.value)


def test_truncated_secret_file_is_a_config_error(tmp_path):
    path = tmp_path / SECRET_FILE
    path.write_bytes(b"")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError) as err:
        load_or_create_secret(tmp_path, None)
    assert "holds 0 bytes" in str(err.value)
