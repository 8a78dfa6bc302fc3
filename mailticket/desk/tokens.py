"""Signed reply addresses: ``support+t42-r-<expiry>-<mac>@example.com``.

Every notification to agents carries a reply address whose token proves that the
mail answers a notification about that ticket, for that purpose, before it expires.
The token is ``t<ticket>-<purpose letter>-<expiry>-<mac>``: the ticket in decimal,
``r`` (reply) or ``n`` (note), the expiry in Unix seconds as lowercase base32 digits,
and the first 80 bits of HMAC-SHA256 over ticket, purpose and expiry, as 16 lowercase
base32 characters. Nothing in it needs quoting in an address local part.
"""

import base64
import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import getaddresses
from pathlib import Path

from ..config import Secret
from ..disk import flush
from ..errors import ConfigError

# reply/note tokens go only to internal addresses (tiers, agents) and authorise agent mail;
# requester tokens go to requesters and only thread their replies.
# solved/unsolved/rating tokens are the "Was it solved?" links of the resolved mail (desk/feedback.py).
PURPOSES = {"reply": "r", "note": "n", "requester": "q", "solved": "s", "unsolved": "u", "rating": "v"}
_PURPOSE_OF_LETTER = {letter: purpose for purpose, letter in PURPOSES.items()}
MAC_BYTES = 10  # 80 bits
MAC_CHARS = 16  # base32 characters of MAC_BYTES
SECRET_FILE = "secret.key"
SECRET_BYTES = 32
MIN_CONFIGURED_SECRET = 16
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_MAX_TOKEN_LENGTH = 64
_TOKEN = re.compile(
    r"t(0|[1-9][0-9]{0,11})-([a-z])-([b-z2-7][a-z2-7]{0,9})-([a-z2-7]{%d})" % MAC_CHARS
)


@dataclass(frozen=True)
class TokenClaim:
    """What a valid token vouches for."""

    ticket: int
    purpose: str
    expires_at: datetime


class TokenSigner:
    """Makes and checks reply tokens with one secret."""

    def __init__(self, secret: bytes):
        if not isinstance(secret, bytes) or len(secret) < MIN_CONFIGURED_SECRET:
            raise ValueError(f"the token secret must be at least {MIN_CONFIGURED_SECRET} bytes")
        self._secret = secret

    def make(self, ticket: int, purpose: str, expires_at: datetime) -> str:
        """The token for this ticket and purpose, valid until ``expires_at`` (aware)."""
        if purpose not in PURPOSES:
            raise ValueError(f"purpose {purpose!r} is not one of {', '.join(PURPOSES)}")
        if not isinstance(ticket, int) or ticket < 0 or ticket >= 10**12:
            raise ValueError(f"ticket {ticket!r} is not a ticket number")
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be an aware datetime")
        expiry = int(expires_at.timestamp())
        if expiry <= 0:
            raise ValueError("expires_at must be after 1970")
        letter = PURPOSES[purpose]
        return f"t{ticket}-{letter}-{_int_to_b32(expiry)}-{self._mac(ticket, letter, expiry)}"

    def verify(self, token: str, now: datetime) -> TokenClaim | None:
        """The claim of a genuine, unexpired token, else None. Never raises."""
        try:
            return self._verify(token, now)
        except Exception:  # a checker of hostile input must not crash the pipeline
            return None

    def genuine(self, token: str) -> TokenClaim | None:
        """The claim of a token we signed, expired or not (to answer an expired link politely);
        None for anything else. Never raises."""
        try:
            return self._verify(token, None)
        except Exception:
            return None

    def verify_for(self, token: str, ticket: int, purpose: str, now: datetime) -> bool:
        """True when ``token`` is genuine, unexpired, and for exactly this ticket and purpose."""
        claim = self.verify(token, now)
        return claim is not None and claim.ticket == ticket and claim.purpose == purpose

    def _verify(self, token: str, now: datetime | None) -> TokenClaim | None:
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
            return None
        match = _TOKEN.fullmatch(token.lower())
        if not match or match.group(2) not in _PURPOSE_OF_LETTER:
            return None
        ticket, letter, expiry = int(match.group(1)), match.group(2), _b32_to_int(match.group(3))
        if not hmac.compare_digest(match.group(4), self._mac(ticket, letter, expiry)):
            return None
        expires_at = datetime.fromtimestamp(expiry, timezone.utc)
        if now is not None and _as_aware(now) >= expires_at:
            return None
        return TokenClaim(ticket, _PURPOSE_OF_LETTER[letter], expires_at)

    def _mac(self, ticket: int, letter: str, expiry: int) -> str:
        message = f"mailticket-reply-token-v1|{ticket}|{letter}|{expiry}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()[:MAC_BYTES]
        return base64.b32encode(digest).decode().lower()


def _as_aware(now: datetime) -> datetime:
    """``now`` as an aware datetime; a naive one is taken as UTC."""
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


def _int_to_b32(number: int) -> str:
    digits = []
    while True:
        number, rest = divmod(number, 32)
        digits.append(_B32[rest])
        if number == 0:
            return "".join(reversed(digits))


def _b32_to_int(text: str) -> int:
    number = 0
    for char in text:
        number = number * 32 + _B32.index(char)
    return number


def reply_address(support_address: str, token: str) -> str:
    """``support+TOKEN@domain`` for the support address ``support@domain``."""
    local, at, domain = support_address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{support_address!r} is not an address")
    return f"{local}+{token}@{domain}"


def token_from_addresses(support_address: str, addresses: list[str]) -> list[str]:
    """The tokens of every ``support+TOKEN@domain`` among ``addresses``, in order.

    ``addresses`` may be bare addresses or header values (``Name <a@b>``, lists).
    Domain and local part compare case-insensitively.
    """
    local, _, domain = support_address.rpartition("@")
    prefix = f"{local}+".lower()
    tokens = []
    for _name, address in getaddresses([a for a in addresses if isinstance(a, str)]):
        found_local, at, found_domain = address.rpartition("@")
        if at and found_domain.lower() == domain.lower() and found_local.lower().startswith(prefix):
            token = found_local[len(prefix):]
            if token and token not in tokens:
                tokens.append(token)
    return tokens


def load_or_create_secret(data_dir: Path, source: Secret | None) -> bytes:
    """The token secret: the configured one if given (``service.secret`` and its siblings), else
    ``DATA_DIR/secret.key``.

    The file is created once with 32 random bytes, mode 0600, atomically (a second
    process racing to create it ends up reading the same secret).
    """
    configured = configured_secret(source)
    if configured is not None:
        return configured
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / SECRET_FILE
    if not path.exists():
        _create_secret_file(path)
    return _read_secret_file(path)


def configured_secret(source: Secret | None) -> bytes | None:
    """The configured secret, or None when none is: a ConfigError naming its key when it cannot be
    read or is too short (what check-config runs; it never creates the secret file)."""
    configured = source.get() if source is not None else None
    return None if configured is None else _configured_secret(configured, source)


def _configured_secret(configured: str, source: Secret) -> bytes:
    secret = configured.strip().encode("utf-8")
    if len(secret) < MIN_CONFIGURED_SECRET:
        raise source.error(
            f"the token secret is too short ({len(secret)} bytes); give at least "
            f"{MIN_CONFIGURED_SECRET} random characters, or leave it out to use {SECRET_FILE}")
    return secret


def _create_secret_file(path: Path) -> None:
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(SECRET_BYTES))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # never replaces a secret another process made first
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    flush(path.parent)


def _read_secret_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"is readable by others (mode {stat.S_IMODE(mode):04o}); run chmod 600 on it",
            file=str(path),
        )
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise ConfigError(
            f"holds {len(secret)} bytes, expected {SECRET_BYTES}; delete it to make a new one "
            "(links in mails already sent stop working)",
            file=str(path),
        )
    return secret
