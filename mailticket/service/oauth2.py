"""XOAUTH2 access tokens from an admin-given command (Microsoft 365, Google), cached until they expire."""

from __future__ import annotations

import json
import shlex
import subprocess
import time

from ..errors import MailboxError

DEFAULT_LIFETIME = 50 * 60  # a token without a stated lifetime is refreshed after 50 minutes


class TokenSource:
    """Runs ``oauth2_token_command`` for a fresh token; it prints the token, or JSON with
    ``access_token`` and ``expires_in``. The token is never logged."""

    def __init__(self, command: str, clock=time.monotonic):
        self.command, self.clock = command, clock
        self._token: str | None = None
        self._expires = 0.0

    def token(self) -> str:
        if self._token is None or self.clock() >= self._expires - 60:
            self._token, lifetime = self._fetch()
            self._expires = self.clock() + lifetime
        return self._token

    def invalidate(self) -> None:
        self._token = None

    def _fetch(self) -> tuple[str, float]:
        try:
            out = subprocess.run(shlex.split(self.command), capture_output=True, timeout=60, check=True, text=True)
        except FileNotFoundError:
            raise MailboxError(f"oauth2_token_command not found: {self.command.split()[0]}") from None
        except subprocess.CalledProcessError as exc:
            raise MailboxError(f"oauth2_token_command failed with exit code {exc.returncode}: "
                               f"{(exc.stderr or '').strip()[:200]}") from None
        except subprocess.TimeoutExpired:
            raise MailboxError("oauth2_token_command did not finish within 60 s") from None
        text = out.stdout.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
                return str(data["access_token"]), float(data.get("expires_in", DEFAULT_LIFETIME))
            except (ValueError, KeyError):
                raise MailboxError("oauth2_token_command printed JSON without access_token") from None
        if not text:
            raise MailboxError("oauth2_token_command printed nothing")
        return text.splitlines()[0], DEFAULT_LIFETIME
