"""An SMTP sink on 127.0.0.1 (aiosmtpd) that records mail and can misbehave on purpose.
It offers PIPELINING and CHUNKING, as Postfix does, unless made with ``pipelining=False`` or
``chunking=False``.

`mode` can be switched at any time:
  "ok"       accept (250) and record
  "tempfail" answer DATA with 451 (nothing recorded)
  "reject"   answer DATA with 550 (nothing recorded)
  "drop"     close the connection after the data arrived, without an answer
  "stall"    sleep `stall_seconds` before answering DATA (then accept and record)
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import ssl
import threading
import time
import warnings
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

from tests.servers import system

MODES = ("ok", "tempfail", "reject", "drop", "stall")
PORT_RETRIES = 3


@dataclass
class Received:
    """One accepted envelope."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    login: str | None
    message: email.message.EmailMessage = field(repr=False)


def ehlo_responses(session, hostname: str, responses: list[str], *, pipelining: bool = True,
                   chunking: bool = True, auth: bool = True) -> list[str]:
    """An aiosmtpd ``handle_EHLO`` hook's answer: what aiosmtpd offers, plus PIPELINING and
    CHUNKING, as Postfix offers them (aiosmtpd reads pipelined commands in order, but does not say
    so; BDAT is ``ChunkingSMTP``'s). ``auth=False`` leaves AUTH out: aiosmtpd offers it but refuses
    the AUTH= parameter of MAIL FROM (RFC 4954) that a relaying client such as Dovecot's submission
    server then sends."""
    session.host_name = hostname
    if pipelining:
        responses.insert(-1, "250-PIPELINING")
    if chunking:
        responses.insert(-1, "250-CHUNKING")
    return responses if auth else [r for r in responses if not r.startswith("250-AUTH")]


_BDAT_ARG = re.compile(r"(\d{1,12})(?: +(LAST))?\Z", re.I)


class ChunkingSMTP(SMTP):
    """aiosmtpd's SMTP with BDAT (RFC 3030 CHUNKING), which aiosmtpd lacks: each chunk is read whole
    by its size, whatever the state, so a refused BDAT leaves the session in step; the chunks of a
    mail are joined, and the last one hands the mail to the handler's ``handle_DATA``, as DATA does."""

    async def smtp_BDAT(self, arg: str | None) -> None:
        m = _BDAT_ARG.match(arg or "")
        if m is None:  # no size to skip by: the session cannot be kept in step
            await self.push("501 5.5.4 Syntax: BDAT <size> [LAST]")
            self.transport.close()
            return
        size, last = int(m[1]), bool(m[2])
        chunk = await self._reader.readexactly(size)
        if await self.check_helo_needed() or await self.check_auth_needed("BDAT"):
            return
        envelope = self.envelope
        if envelope.mail_from is None:
            await self.push("503 5.5.1 Error: need MAIL command")
            return
        if not envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        chunks = envelope.bdat_chunks = [*getattr(envelope, "bdat_chunks", ()), chunk]
        if self.data_size_limit and sum(map(len, chunks)) > self.data_size_limit:
            self._set_post_data_state()
            await self.push("552 5.3.4 Error: too much mail data")
            return
        if not last:
            await self.push(f"250 2.0.0 {size} octets received")
            return
        envelope.content = envelope.original_content = b"".join(chunks)
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


class _Recorder:
    """The aiosmtpd handler: answers according to the sink's mode and records envelopes."""

    def __init__(self, sink: "SmtpSink"):
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:
        """``pipelining=False`` makes a server that does not offer PIPELINING; ``chunking=False``, CHUNKING."""
        return ehlo_responses(session, hostname, responses, pipelining=self.sink.pipelining,
                              chunking=self.sink.chunking, auth=self.sink.offer_auth)

    async def handle_DATA(self, server, session, envelope) -> str:
        mode = self.sink.mode
        if mode == "tempfail":
            return "451 4.3.0 Test sink: try again later"
        if mode == "reject":
            return "550 5.7.1 Test sink: rejected"
        if mode == "drop":
            server.transport.abort()
            return "421 4.3.0 dropped"  # never reaches the client: the transport is gone
        if mode == "stall":
            await asyncio.sleep(self.sink.stall_seconds)
        self.sink._record(session, envelope)
        return "250 2.0.0 OK: queued by test sink"


class _SinkController(Controller):
    """A Controller that builds each connection's SMTP with the sink's current TLS/AUTH."""

    def __init__(self, sink: "SmtpSink"):
        self.sink = sink
        super().__init__(_Recorder(sink), hostname=system.LOOPBACK, port=sink.port,
                         ready_timeout=5.0)

    def factory(self):
        sink = self.sink
        offer_tls = sink.tls_context is not None and not sink.strip_starttls
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "AUTH without TLS" warnings are the point here
            return ChunkingSMTP(self.handler, hostname="sink.localhost",
                        tls_context=sink.tls_context if offer_tls else None,
                        authenticator=sink._authenticate if sink.require_auth else None,
                        auth_required=sink.require_auth,
                        auth_require_tls=sink.require_auth and offer_tls)


class SmtpSink:
    """SMTP sink: start(), stop(), `received`, wait_for(n), `mode`, optional STARTTLS/AUTH."""

    def __init__(self, tls_cert=None, tls_key=None, require_auth: bool = False,
                 users: dict[str, str] | None = None, strip_starttls: bool = False, pipelining: bool = True,
                 offer_auth: bool = True, chunking: bool = True):
        self.host = system.LOOPBACK
        self.pipelining, self.chunking = pipelining, chunking
        self.offer_auth = offer_auth
        self.port = system.free_port()
        self.mode = "ok"
        self.stall_seconds = 5.0
        self.require_auth = require_auth
        self.users = dict(users or {"sink": "sink-password"})
        self.strip_starttls = strip_starttls
        self.tls_context = _server_context(tls_cert, tls_key) if tls_cert else None
        self.ca_file: str | None = None  # set by whoever made the certificate
        self.received: list[Received] = []
        self.auth_attempts: list[tuple[str, str]] = []
        self._arrived = threading.Condition()
        self._controller: _SinkController | None = None

    def __setattr__(self, name, value):
        if name == "mode" and value not in MODES:
            raise ValueError(f"SmtpSink.mode must be one of {MODES}, not {value!r}")
        super().__setattr__(name, value)

    def start(self) -> "SmtpSink":
        """Serve in a background thread until stop()."""
        for attempt in range(PORT_RETRIES):
            if not system.port_is_free(self.port):  # aiosmtpd would wait ready_timeout
                self.port = system.free_port()
            controller = _SinkController(self)
            try:
                controller.start()
            except OSError:  # the port was taken after we picked it: pick another
                if attempt == PORT_RETRIES - 1:
                    raise
                self.port = system.free_port()
                continue
            self._controller = controller
            return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop serving (stalled sessions are cancelled)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least `count` mails arrived; return them (TimeoutError if not)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"SMTP sink on port {self.port}: {len(self.received)} "
                                       f"of {count} mails after {timeout}s")
                self._arrived.wait(left)
            return list(self.received)

    def _record(self, session, envelope) -> None:
        data = envelope.content if isinstance(envelope.content, bytes) else \
            envelope.content.encode("utf-8", "surrogateescape")
        login = session.auth_data if session.authenticated else None
        entry = Received(mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
                         data=data, tls=session.ssl is not None, login=login,
                         message=email.message_from_bytes(data, policy=email.policy.default))
        with self._arrived:
            self.received.append(entry)
            self._arrived.notify_all()

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.auth_attempts.append((login, password))
        ok = self.users.get(login) == password
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


def _server_context(cert_file, key_file) -> ssl.SSLContext:
    """A server-side TLS context from a certificate and key file."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert_file), str(key_file))
    return context
