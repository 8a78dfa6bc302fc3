"""Mail-server authentication: TLS always verified (ca_file for a private CA), a STARTTLS that
is missing stops before any password is sent, passwords from a file, the environment or the
systemd credential directory, and XOAUTH2 with a token command (IMAP against Dovecot's oauth2
passdb, SMTP against a loopback stand-in that checks the exact SASL string)."""

from __future__ import annotations

import base64
import json
import socketserver
import ssl
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

from mailticket.config import ImapConfig, Secret, ServerAuth, SmtpConfig
from mailticket.errors import ConfigError, MailboxError, TemporaryDeliveryError
from mailticket.service.mailbox import ImapSource
from mailticket.service.oauth2 import TokenSource
from mailticket.service.transport import SmtpTransport, xoauth2_string
from tests.harness import make_mail
from tests.servers import certs
from tests.servers.smtpsink import SmtpSink
from tests.servers.system import LOOPBACK, free_port

MAIL = make_mail(message_id="<tls@customer.example>")


def imap_cfg(port: int, *, security="ssl", username=None, password: Secret | None = None, ca_file=None,
             auth="password", token_command=None) -> ImapConfig:
    return ImapConfig(host=LOOPBACK, port=port, security=security, ca_file=ca_file,
                      timeout=timedelta(seconds=5),
                      credentials=ServerAuth(username=username, password=password or Secret(), auth=auth,
                                             oauth2_token_command=token_command))


def smtp_cfg(port: int, *, security="starttls", username="sink", password: Secret | None = None, ca_file=None,
             auth="password", token_command=None) -> SmtpConfig:
    return SmtpConfig(host=LOOPBACK, port=port, security=security, ca_file=ca_file, timeout=timedelta(seconds=5),
                      credentials=ServerAuth(username=username, password=password or Secret(), auth=auth,
                                             oauth2_token_command=token_command))


def connect(cfg: ImapConfig) -> ImapSource:
    source = ImapSource(cfg)
    source.connect()
    return source


@pytest.fixture(scope="module")
def other_name_cert(tmp_path_factory):
    """A certificate from its own CA for mail.other.example, not for 127.0.0.1."""
    d = tmp_path_factory.mktemp("othercert")
    return certs.make_certs(d, names=("DNS:mail.other.example",))


# ---------------------------------------------------------------- a fake IMAP server

class FakeImap:
    """Answers CAPABILITY (without STARTTLS) and LOGOUT, refuses the rest; records every line.
    With `cert` it speaks implicit TLS."""

    def __init__(self, cert: certs.ServerCert | None = None):
        self.lines: list[bytes] = []
        context = None
        if cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def setup(self):
                if context is not None:
                    try:
                        self.request = context.wrap_socket(self.request, server_side=True)
                    except (ssl.SSLError, OSError):
                        self.request = None
                        return
                super().setup()

            def handle(self):
                if self.request is None:
                    return
                self.wfile.write(b"* OK fake IMAP ready\r\n")
                for line in self.rfile:
                    fake.lines.append(line)
                    tag, _, rest = line.strip().partition(b" ")
                    command = rest.split(b" ")[0].upper()
                    if command == b"CAPABILITY":
                        self.wfile.write(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
                    elif command == b"LOGOUT":
                        self.wfile.write(b"* BYE\r\n" + tag + b" OK bye\r\n")
                        return
                    else:
                        self.wfile.write(tag + b" NO not here\r\n")

            def finish(self):
                if self.request is not None:
                    super().finish()

        self.server = socketserver.ThreadingTCPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def commands(self) -> list[bytes]:
        return [ln.strip().partition(b" ")[2].split(b" ")[0].upper() for ln in self.lines]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_imap():
    made = []

    def make(cert=None):
        made.append(FakeImap(cert))
        return made[-1]
    yield make
    for f in made:
        f.close()


# ---------------------------------------------------------------- IMAP and TLS

def test_imaps_with_the_private_ca_file_logs_in(mailbox_user):
    dovecot = mailbox_user.server
    source = connect(imap_cfg(dovecot.imaps_port, username=mailbox_user.name,
                              password=Secret(value=mailbox_user.password), ca_file=dovecot.ca_file))
    try:
        assert source.uidvalidity and source.client.socket().version().startswith("TLS")
    finally:
        source.close()


def test_imap_starttls_with_the_private_ca_file_logs_in(mailbox_user):
    dovecot = mailbox_user.server
    source = connect(imap_cfg(dovecot.imap_port, security="starttls", username=mailbox_user.name,
                              password=Secret(value=mailbox_user.password), ca_file=dovecot.ca_file))
    try:
        assert isinstance(source.client.socket(), ssl.SSLSocket)
    finally:
        source.close()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_default_trust_store_refuses_the_test_ca(mailbox_user, security):
    dovecot = mailbox_user.server
    port = dovecot.imaps_port if security == "ssl" else dovecot.imap_port
    with pytest.raises(MailboxError, match="TLS certificate not trusted: .*self.signed|unable to get local issuer"):
        connect(imap_cfg(port, security=security, username=mailbox_user.name,
                         password=Secret(value=mailbox_user.password)))


def test_imap_certificate_for_another_host_name_is_refused(fake_imap, other_name_cert):
    server = fake_imap(other_name_cert)
    with pytest.raises(MailboxError, match="TLS certificate not trusted: (Hostname|IP address) mismatch"):
        connect(imap_cfg(server.port, username="support", password=Secret(value="Never-Sent-1"),
                         ca_file=str(other_name_cert.ca_file)))
    assert server.lines == []


def test_imap_without_starttls_stops_before_the_password(fake_imap):
    server = fake_imap()
    with pytest.raises(MailboxError, match="does not offer STARTTLS; refusing to log in in clear text"):
        connect(imap_cfg(server.port, security="starttls", username="support",
                         password=Secret(value="Never-Sent-2")))
    assert b"CAPABILITY" in server.commands()
    assert not {b"LOGIN", b"AUTHENTICATE"} & set(server.commands())
    assert all(b"Never-Sent-2" not in ln for ln in server.lines)


def test_wrong_password_is_refused_without_showing_it(mailbox_user):
    dovecot = mailbox_user.server
    with pytest.raises(MailboxError, match=f"login as {mailbox_user.name} refused") as err:
        connect(imap_cfg(dovecot.imaps_port, username=mailbox_user.name, password=Secret(value="Wrong-Pw-77"),
                         ca_file=dovecot.ca_file))
    assert "Wrong-Pw-77" not in str(err.value)


# ---------------------------------------------------------------- SMTP and TLS

def send(cfg: SmtpConfig) -> None:
    SmtpTransport(cfg).send("support@example.com", ["anna@customer.example"], MAIL)


def test_smtp_starttls_with_the_private_ca_file_sends(smtp_sink_tls):
    send(smtp_cfg(smtp_sink_tls.port, password=Secret(value="sink-password"), ca_file=smtp_sink_tls.ca_file))
    [got] = smtp_sink_tls.wait_for(1)
    assert got.tls and got.login == "sink"


def test_smtp_default_trust_store_refuses_the_test_ca(smtp_sink_tls):
    with pytest.raises(TemporaryDeliveryError, match="not trusted"):
        send(smtp_cfg(smtp_sink_tls.port, password=Secret(value="sink-password")))
    assert smtp_sink_tls.auth_attempts == [] and smtp_sink_tls.received == []


def test_smtp_certificate_for_another_host_name_is_refused(other_name_cert):
    sink = SmtpSink(tls_cert=other_name_cert.cert_file, tls_key=other_name_cert.key_file, require_auth=True).start()
    try:
        with pytest.raises(TemporaryDeliveryError, match="not trusted: (Hostname|IP address) mismatch"):
            send(smtp_cfg(sink.port, password=Secret(value="sink-password"), ca_file=str(other_name_cert.ca_file)))
        assert sink.auth_attempts == [] and sink.received == []
    finally:
        sink.stop()


def test_smtp_with_starttls_stripped_stops_before_auth(server_cert):
    sink = SmtpSink(tls_cert=server_cert.cert_file, tls_key=server_cert.key_file, require_auth=True,
                    strip_starttls=True).start()
    try:
        with pytest.raises(TemporaryDeliveryError, match="does not offer STARTTLS; refusing"):
            send(smtp_cfg(sink.port, password=Secret(value="sink-password"), ca_file=str(server_cert.ca_file)))
        assert sink.auth_attempts == [] and sink.received == []
    finally:
        sink.stop()


def test_smtp_wrong_password_is_a_temporary_failure_without_the_password(smtp_sink_tls):
    with pytest.raises(TemporaryDeliveryError, match="login as sink refused") as err:
        send(smtp_cfg(smtp_sink_tls.port, password=Secret(value="Wrong-Smtp-9"), ca_file=smtp_sink_tls.ca_file))
    assert "Wrong-Smtp-9" not in str(err.value)
    assert smtp_sink_tls.auth_attempts and set(smtp_sink_tls.auth_attempts) == {("sink", "Wrong-Smtp-9")}
    assert smtp_sink_tls.received == []


# ---------------------------------------------------------------- where passwords come from

@pytest.fixture
def secret_sources(tmp_path, monkeypatch):
    """Return a function: source name -> Secret holding `password` that way."""
    def make(kind: str, password: str) -> Secret:
        if kind == "file":
            path = tmp_path / "pw.txt"
            path.write_text(password + "\n")
            return Secret(file=str(path))
        if kind == "env":
            monkeypatch.setenv("MT_TEST_PW", password)
            return Secret(env="MT_TEST_PW")
        if kind == "credential":
            creds = tmp_path / "credentials"
            creds.mkdir(exist_ok=True)
            (creds / "imap").write_text(password)
            monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
            return Secret(credential="imap")
        raise ValueError(kind)
    return make


@pytest.mark.parametrize("kind", ["file", "env", "credential"])
def test_imap_password_from_each_source(mailbox_user, secret_sources, kind):
    dovecot = mailbox_user.server
    secret = secret_sources(kind, mailbox_user.password)
    assert secret.get() == mailbox_user.password and mailbox_user.password not in repr(secret)
    source = connect(imap_cfg(dovecot.imaps_port, username=mailbox_user.name, password=secret,
                              ca_file=dovecot.ca_file))
    source.close()


@pytest.mark.parametrize("kind", ["file", "env", "credential"])
def test_smtp_password_from_each_source(smtp_sink_tls, secret_sources, kind):
    send(smtp_cfg(smtp_sink_tls.port, password=secret_sources(kind, "sink-password"), ca_file=smtp_sink_tls.ca_file))
    assert smtp_sink_tls.wait_for(1)[0].login == "sink"


def test_missing_password_sources_say_which(tmp_path, monkeypatch):
    monkeypatch.delenv("MT_NOT_SET", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match=f"cannot read {tmp_path}/none.txt"):
        Secret(file=str(tmp_path / "none.txt")).get()
    with pytest.raises(ConfigError, match="environment variable MT_NOT_SET is not set"):
        Secret(env="MT_NOT_SET").get()
    with pytest.raises(ConfigError, match="credential 'imap' asked for, but CREDENTIALS_DIRECTORY is not set"):
        Secret(credential="imap").get()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigError, match=f"cannot read {tmp_path}/smtp"):
        Secret(credential="smtp").get()


def test_a_missing_password_file_stops_the_imap_login(mailbox_user, tmp_path):
    dovecot = mailbox_user.server
    with pytest.raises(ConfigError, match="cannot read "):
        connect(imap_cfg(dovecot.imaps_port, username=mailbox_user.name, password=Secret(file=str(tmp_path / "x")),
                         ca_file=dovecot.ca_file))


# ---------------------------------------------------------------- XOAUTH2

def token_command(tmp_path: Path, tokens: list[str], expires_in: int | None = None) -> str:
    """A command that prints the next token of `tokens` each time it runs (JSON when expires_in)."""
    state = tmp_path / "tokens.json"
    state.write_text(json.dumps({"tokens": tokens, "runs": 0}))
    script = tmp_path / "get-token.py"
    script.write_text(
        "import json, sys\n"
        f"p = {str(state)!r}\n"
        "s = json.load(open(p))\n"
        "t = s['tokens'][min(s['runs'], len(s['tokens']) - 1)]\n"
        "s['runs'] += 1\n"
        "json.dump(s, open(p, 'w'))\n"
        + (f"print(json.dumps({{'access_token': t, 'expires_in': {expires_in}}}))\n" if expires_in else "print(t)\n"))
    return f"{sys.executable} {script}"


def runs(tmp_path: Path) -> int:
    return json.loads((tmp_path / "tokens.json").read_text())["runs"]


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def oauth_user(dovecot_oauth2):
    from tests.conftest import new_mailbox_user
    return new_mailbox_user(dovecot_oauth2)


def test_imap_xoauth2_with_a_token_command(oauth_user, tmp_path):
    server = oauth_user.server
    token = server.token_authority.issue(oauth_user.name)
    cfg = imap_cfg(server.imaps_port, username=oauth_user.name, ca_file=server.ca_file, auth="oauth2",
                   token_command=token_command(tmp_path, [token]))
    source = connect(cfg)
    source.close()
    assert token in server.token_authority.requests


def test_imap_xoauth2_token_is_refreshed_when_it_expires(oauth_user, tmp_path):
    server = oauth_user.server
    authority = server.token_authority
    first, second = authority.issue(oauth_user.name), authority.issue(oauth_user.name)
    cfg = imap_cfg(server.imaps_port, username=oauth_user.name, ca_file=server.ca_file, auth="oauth2",
                   token_command=token_command(tmp_path, [first, second], expires_in=3600))
    source = ImapSource(cfg)
    clock = source.tokens.clock = FakeClock()
    source.connect()
    source.close()
    source.connect()  # still valid: no new token
    source.close()
    assert runs(tmp_path) == 1
    authority.revoke(first)
    clock.t += 3600
    source.connect()
    source.close()
    assert runs(tmp_path) == 2 and authority.requests[-1] == second


def test_imap_xoauth2_refused_token_is_fetched_again_next_time(oauth_user, tmp_path):
    server = oauth_user.server
    authority = server.token_authority
    good = authority.issue(oauth_user.name)
    cfg = imap_cfg(server.imaps_port, username=oauth_user.name, ca_file=server.ca_file, auth="oauth2",
                   token_command=token_command(tmp_path, ["revoked-or-unknown", good], expires_in=3600))
    source = ImapSource(cfg)
    with pytest.raises(MailboxError, match=f"login as {oauth_user.name} refused") as err:
        source.connect()
    assert "revoked-or-unknown" not in str(err.value)
    source.connect()
    source.close()
    assert runs(tmp_path) == 2


def test_token_command_failures_are_reported():
    with pytest.raises(MailboxError, match="exit code 3: no refresh token"):
        TokenSource(f"{sys.executable} -c \"import sys; print('no refresh token', file=sys.stderr); sys.exit(3)\"").token()
    with pytest.raises(MailboxError, match="printed nothing"):
        TokenSource(f"{sys.executable} -c pass").token()
    with pytest.raises(MailboxError, match="without access_token"):
        TokenSource(f"{sys.executable} -c \"print('{{\\\"token\\\": 1}}')\"").token()
    with pytest.raises(MailboxError, match="not found: /nonexistent/get-token"):
        TokenSource("/nonexistent/get-token --user x").token()


class XOAuth2Sink:
    """An SMTP stand-in on loopback with STARTTLS that accepts AUTH XOAUTH2 only with the exact
    SASL string for `user` and one of `tokens`; it records every AUTH argument it got."""

    def __init__(self, cert: certs.ServerCert, user: str, tokens: set[str]):
        self.expected = {base64.b64encode(f"user={user}\x01auth=Bearer {t}\x01\x01".encode()).decode() for t in tokens}
        self.auth_args: list[list[str]] = []
        self.received: list[bytes] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
        sink = self

        class Handler:
            async def auth_XOAUTH2(self, server, args):
                sink.auth_args.append(list(args))
                ok = len(args) == 2 and args[1] in sink.expected
                return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

            async def handle_DATA(self, server, session, envelope):
                sink.received.append(envelope.content)
                return "250 OK"

        class Ctl(Controller):
            def factory(self):
                return SMTP(self.handler, tls_context=context, require_starttls=True, auth_required=True,
                            auth_require_tls=True)

        self.port = free_port()
        self.ctl = Ctl(Handler(), hostname=LOOPBACK, port=self.port)
        self.ctl.start()

    def stop(self):
        self.ctl.stop()


def test_smtp_xoauth2_sends_the_exact_sasl_string(server_cert, tmp_path):
    sink = XOAuth2Sink(server_cert, "support@example.com", {"tok-123"})
    try:
        send(smtp_cfg(sink.port, username="support@example.com", ca_file=str(server_cert.ca_file), auth="oauth2",
                      token_command=token_command(tmp_path, ["tok-123"])))
        assert sink.auth_args == [["XOAUTH2", base64.b64encode(
            b"user=support@example.com\x01auth=Bearer tok-123\x01\x01").decode()]]
        assert len(sink.received) == 1
    finally:
        sink.stop()


def test_smtp_xoauth2_refused_token_is_retried_with_a_fresh_one(server_cert, tmp_path):
    sink = XOAuth2Sink(server_cert, "support@example.com", {"fresh"})
    try:
        cfg = smtp_cfg(sink.port, username="support@example.com", ca_file=str(server_cert.ca_file), auth="oauth2",
                       token_command=token_command(tmp_path, ["stale", "fresh"], expires_in=3600))
        transport = SmtpTransport(cfg)
        with pytest.raises(TemporaryDeliveryError, match="XOAUTH2 login as support@example.com refused") as err:
            transport.send("support@example.com", ["anna@customer.example"], MAIL)
        assert "stale" not in str(err.value)
        transport.send("support@example.com", ["anna@customer.example"], MAIL)
        assert runs(tmp_path) == 2 and len(sink.received) == 1
    finally:
        sink.stop()


def test_xoauth2_string():
    assert xoauth2_string("u@x", "T") == "user=u@x\x01auth=Bearer T\x01\x01"
    assert base64.b64decode(xoauth2_string("u@x", "T", b64=True)) == b"user=u@x\x01auth=Bearer T\x01\x01"
