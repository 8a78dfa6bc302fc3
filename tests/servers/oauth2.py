"""A stand-in OAuth2 token authority: answers RFC 7662 token introspection on loopback.

Dovecot's oauth2 passdb asks it whether a bearer token is active and whose it is.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.servers import system


class TokenAuthority:
    """issue(user) -> token; revoke(token); `url` is the introspection endpoint."""

    def __init__(self):
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = system.free_port()
        self.url = f"http://{system.LOOPBACK}:{self.port}/introspect"

    def issue(self, user: str) -> str:
        """Create an active token for `user`."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = user
        return token

    def revoke(self, token: str) -> None:
        """Make `token` inactive."""
        with self._lock:
            self._tokens.pop(token, None)

    def introspect(self, token: str) -> dict:
        """The introspection answer for `token` (RFC 7662 fields)."""
        with self._lock:
            self.requests.append(token)
            user = self._tokens.get(token)
        if user is None:
            return {"active": False}
        return {"active": True, "username": user}

    def start(self) -> None:
        """Serve on 127.0.0.1:port in a daemon thread (no-op when already serving)."""
        if self._server is not None:
            return
        self._server = ThreadingHTTPServer((system.LOOPBACK, self.port), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _token_from(handler: BaseHTTPRequestHandler) -> str:
    """The token of an introspection request: form body, query string or bearer header."""
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length).decode("ascii", "replace") if length else ""
    query = urllib.parse.urlsplit(handler.path).query
    for source in (body, query):
        values = urllib.parse.parse_qs(source).get("token")
        if values:
            return values[0]
    auth = handler.headers.get("Authorization", "")
    return auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else ""


def _handler_for(authority: TokenAuthority):
    class IntrospectionHandler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            payload = json.dumps(authority.introspect(_token_from(self))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    return IntrospectionHandler
