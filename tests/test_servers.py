"""Proof that the real-server fixtures work: Dovecot, the SMTP sink and PostgreSQL."""

from __future__ import annotations

import smtplib
import socket
import ssl
import subprocess
from types import SimpleNamespace

import psycopg2
import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from playhouse.db_url import connect as db_connect

from tests import conftest
from tests.servers import certs, postgres, system
from tests.servers.dovecot import Dovecot, crlf
from tests.servers.smtpsink import SmtpSink

MAIL = (b"From: Alice <alice@example.org>\n"
        b"To: desk@example.org\n"
        b"Subject: printer on fire\n"
        b"Message-ID: <m1@example.org>\n"
        b"\n"
        b"It is really on fire.\n")


# -- Dovecot: login and TLS -----------------------------------------------------------------

def test_plain_login_works_and_wrong_password_fails(dovecot, mailbox_user):
    with dovecot.connect("plain") as imap:
        assert b"STARTTLS" in imap.capabilities()
        imap.login(mailbox_user.name, mailbox_user.password)
        assert imap.select_folder("INBOX")[b"EXISTS"] == 0
    with dovecot.connect("plain") as imap, pytest.raises(LoginError):
        imap.login(mailbox_user.name, mailbox_user.password + "x")


@pytest.mark.parametrize("tls", ["imaps", "starttls"])
def test_tls_login_verifies_against_the_ca_file(dovecot, mailbox_user, tls):
    with dovecot.connect(tls) as imap:
        imap.login(mailbox_user.name, mailbox_user.password)
        cert = imap._imap.sock.getpeercert()
        assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]


def test_a_client_without_the_ca_file_refuses_the_certificate(dovecot):
    with pytest.raises(ssl.SSLCertVerificationError, match="self.signed|unable to get"):
        IMAPClient(dovecot.host, dovecot.imaps_port, ssl=True,
                   ssl_context=ssl.create_default_context(), timeout=5)


def test_a_certificate_for_another_host_is_refused_by_name():
    if not conftest.ensure_dovecot_installed():
        conftest.unavailable("Dovecot is not installed")
    with Dovecot(cert_names=("DNS:wrong.example",)) as wrong:
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch|doesn't match"):
            wrong.connect("imaps", timeout=5)
        # Trust is fine: the same certificate passes when the name asked for matches.
        with socket.create_connection((wrong.host, wrong.imaps_port), timeout=5) as raw:
            with wrong.ssl_context().wrap_socket(raw, server_hostname="wrong.example") as tls:
                assert tls.getpeercert()["subjectAltName"] == (("DNS", "wrong.example"),)


# -- Dovecot: mail ----------------------------------------------------------------------------

def test_append_and_fetch_round_trip_in_crlf(dovecot, mailbox_user):
    uid = dovecot.append(mailbox_user.name, "INBOX", MAIL, flags=[rb"\Seen"])
    assert uid == 1
    assert dovecot.messages(mailbox_user.name, "INBOX") == [crlf(MAIL)]
    assert crlf(MAIL).count(b"\r\n") == MAIL.count(b"\n")
    with dovecot.client(mailbox_user.name) as imap:
        imap.select_folder("INBOX", readonly=True)
        assert rb"\Seen" in imap.get_flags([uid])[uid]


def test_append_creates_the_folder_and_counts_are_per_folder(dovecot, mailbox_user):
    assert dovecot.folder_count(mailbox_user.name, "Archive") == 0
    assert dovecot.messages(mailbox_user.name, "Archive") == []
    dovecot.append(mailbox_user.name, "Archive", MAIL)
    dovecot.append(mailbox_user.name, "Archive", MAIL.replace(b"m1@", b"m2@"))
    assert dovecot.folder_count(mailbox_user.name, "Archive") == 2
    assert dovecot.folder_count(mailbox_user.name, "INBOX") == 0


def test_users_do_not_see_each_others_mail(dovecot, mailbox_user):
    other = conftest.new_mailbox_user(dovecot)
    dovecot.append(mailbox_user.name, "INBOX", MAIL)
    assert dovecot.folder_count(other.name) == 0


def test_lmtp_delivers_into_the_inbox(dovecot, mailbox_user):
    with smtplib.LMTP(dovecot.host, dovecot.lmtp_port, timeout=10) as lmtp:
        refused = lmtp.sendmail("alice@example.org", [mailbox_user.name], crlf(MAIL))
    assert refused == {}
    [delivered] = dovecot.messages(mailbox_user.name)
    assert delivered.endswith(crlf(MAIL))
    assert f"Delivered-To: {mailbox_user.name}".encode() in delivered


def test_restart_keeps_the_mail(dovecot, mailbox_user):
    dovecot.append(mailbox_user.name, "INBOX", MAIL)
    old_pid = dovecot.pid()
    dovecot.restart()
    assert dovecot.pid() != old_pid
    assert not system.is_alive(old_pid)
    assert dovecot.messages(mailbox_user.name) == [crlf(MAIL)]


def test_add_user_refuses_duplicates_and_unusable_names(dovecot, mailbox_user):
    with pytest.raises(ValueError, match="exists already"):
        dovecot.add_user(mailbox_user.name, "again")
    with pytest.raises(ValueError, match="unusable"):
        dovecot.add_user("bad name", "pw")
    with pytest.raises(ValueError, match="unusable"):
        dovecot.add_user("fine", "pass:word")


def test_connect_rejects_an_unknown_tls_mode(dovecot):
    with pytest.raises(ValueError, match="tls must be"):
        dovecot.connect("ssl3")


def test_a_stopped_instance_refuses_connections_and_a_zombie_counts_as_dead():
    if not conftest.ensure_dovecot_installed():
        conftest.unavailable("Dovecot is not installed")
    server = Dovecot().start()
    pid = server.pid()
    assert system.is_alive(pid)
    server.close()
    assert not system.is_alive(pid)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.imap_port), timeout=2)
    child = subprocess.Popen(["true"])  # not waited for: it stays a zombie
    assert system.wait_dead(child.pid, 5.0)
    child.wait()


def _blocked(port):
    blocker = socket.socket()
    blocker.bind((system.LOOPBACK, port))
    blocker.listen()
    return blocker


def test_a_port_taken_before_the_first_start_is_replaced():
    if not conftest.ensure_dovecot_installed():
        conftest.unavailable("Dovecot is not installed")
    server = Dovecot()
    taken = server.imap_port
    with _blocked(taken):
        try:
            server.start()
            assert server.imap_port != taken
            server.add_user("porter", "pw")
            assert server.folder_count("porter") == 0
        finally:
            server.close()


def test_a_port_taken_before_a_restart_is_an_error_naming_the_cause():
    # An instance of its own: Dovecot's children outlive a stopped master and keep its listening
    # sockets while sessions of earlier tests are open, so the shared one may still hold the port.
    if not conftest.ensure_dovecot_installed():
        conftest.unavailable("Dovecot is not installed")
    server = Dovecot().start()
    try:
        server.stop()
        with _blocked(server.lmtp_port), pytest.raises(RuntimeError, match="in use"):
            server.start()
        server.start()
        assert server.running()
    finally:
        server.close()


# -- Dovecot: XOAUTH2 / OAUTHBEARER ------------------------------------------------------------

def test_xoauth2_and_oauthbearer_accept_an_issued_token(dovecot_oauth2):
    user = conftest.new_mailbox_user(dovecot_oauth2)
    token = dovecot_oauth2.token_authority.issue(user.name)
    with dovecot_oauth2.connect("starttls") as imap:
        assert b"AUTH=XOAUTH2" in imap.capabilities()
        imap.oauth2_login(user.name, token)
        assert imap.select_folder("INBOX")[b"EXISTS"] == 0
    with dovecot_oauth2.connect("imaps") as imap:
        imap.oauthbearer_login(user.name, token)
    assert token in dovecot_oauth2.token_authority.requests


def test_xoauth2_refuses_revoked_unknown_and_other_users_tokens(dovecot_oauth2):
    user = conftest.new_mailbox_user(dovecot_oauth2)
    other = conftest.new_mailbox_user(dovecot_oauth2)
    authority = dovecot_oauth2.token_authority
    revoked = authority.issue(user.name)
    authority.revoke(revoked)
    for login, token in [(user.name, revoked), (user.name, "made-up"),
                         (user.name, authority.issue(other.name))]:
        with dovecot_oauth2.connect("starttls") as imap, pytest.raises(LoginError):
            imap.oauth2_login(login, token)
    with dovecot_oauth2.connect("starttls") as imap:  # passwords still work beside tokens
        imap.login(user.name, user.password)


# -- SMTP sink ----------------------------------------------------------------------------------

def _send(sink, timeout=5.0, message=crlf(MAIL)):
    with smtplib.SMTP(sink.host, sink.port, timeout=timeout) as client:
        return client.sendmail("alice@example.org", ["desk@example.org"], message)


def test_sink_records_the_envelope_and_the_parsed_message(smtp_sink):
    assert _send(smtp_sink) == {}
    [got] = smtp_sink.wait_for(1, timeout=5)
    assert got.mail_from == "alice@example.org"
    assert got.rcpt_tos == ["desk@example.org"]
    assert got.data == crlf(MAIL)
    assert got.message["Subject"] == "printer on fire"
    assert (got.tls, got.login) == (False, None)


def test_wait_for_times_out_when_too_few_mails_arrive(smtp_sink):
    _send(smtp_sink)
    with pytest.raises(TimeoutError, match="1 of 2"):
        smtp_sink.wait_for(2, timeout=0.2)


@pytest.mark.parametrize("mode, code", [("tempfail", 451), ("reject", 550)])
def test_sink_fault_modes_answer_data_with_an_error(smtp_sink, mode, code):
    smtp_sink.mode = mode
    with pytest.raises(smtplib.SMTPDataError) as error:
        _send(smtp_sink)
    assert error.value.smtp_code == code
    assert smtp_sink.received == []
    smtp_sink.mode = "ok"
    _send(smtp_sink)
    assert len(smtp_sink.wait_for(1, timeout=5)) == 1


def test_sink_drop_mode_closes_the_connection(smtp_sink):
    smtp_sink.mode = "drop"
    with pytest.raises(smtplib.SMTPServerDisconnected):
        _send(smtp_sink)
    assert smtp_sink.received == []


def test_sink_stall_mode_makes_a_short_timeout_client_give_up(smtp_sink):
    smtp_sink.mode, smtp_sink.stall_seconds = "stall", 3.0
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        _send(smtp_sink, timeout=0.5)


def test_sink_replaces_a_port_taken_before_it_starts():
    sink = SmtpSink()
    taken = sink.port
    with _blocked(taken), sink:
        assert sink.port != taken
        _send(sink)
        assert len(sink.wait_for(1, timeout=5)) == 1


def test_sink_refuses_an_unknown_mode(smtp_sink):
    with pytest.raises(ValueError, match="mode must be one of"):
        smtp_sink.mode = "explode"


def test_sink_starttls_then_auth_then_send(smtp_sink_tls):
    context = ssl.create_default_context(cafile=smtp_sink_tls.ca_file)
    with smtplib.SMTP(smtp_sink_tls.host, smtp_sink_tls.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        client.starttls(context=context)
        client.ehlo()
        client.login("sink", "sink-password")
        client.sendmail("alice@example.org", ["desk@example.org"], crlf(MAIL))
    [got] = smtp_sink_tls.wait_for(1, timeout=5)
    assert (got.tls, got.login) == (True, "sink")


def test_sink_refuses_a_wrong_password_and_unauthenticated_mail(smtp_sink_tls):
    context = ssl.create_default_context(cafile=smtp_sink_tls.ca_file)
    with smtplib.SMTP(smtp_sink_tls.host, smtp_sink_tls.port, timeout=5) as client:
        client.starttls(context=context)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("sink", "wrong")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("alice@example.org", ["desk@example.org"], crlf(MAIL))
    assert refused.value.smtp_code == 530
    assert set(smtp_sink_tls.auth_attempts) == {("sink", "wrong")}  # smtplib tries PLAIN, LOGIN
    assert smtp_sink_tls.received == []


def test_sink_can_strip_starttls_while_offering_auth(server_cert):
    sink = SmtpSink(tls_cert=server_cert.cert_file, tls_key=server_cert.key_file,
                    require_auth=True, strip_starttls=True)
    with sink, smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("auth") and not client.has_extn("starttls")
        with pytest.raises(smtplib.SMTPNotSupportedError):
            client.starttls()
    assert sink.auth_attempts == []


# -- PostgreSQL and the storage matrix ------------------------------------------------------------

def test_postgres_database_is_fresh_and_writable(pg_url):
    conn = psycopg2.connect(pg_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert cur.fetchone() == (0,)
            cur.execute("CREATE TABLE ticket (id serial PRIMARY KEY, subject text)")
            cur.execute("INSERT INTO ticket (subject) VALUES (%s) RETURNING id", ("fire",))
            assert cur.fetchone() == (1,)
    finally:
        conn.close()


def test_postgres_databases_are_unique_and_dropped(_postgres_server):
    first, second = _postgres_server.create_database(), _postgres_server.create_database()
    assert first != second
    _postgres_server.drop_database(first)
    _postgres_server.drop_database(second)
    with pytest.raises(psycopg2.OperationalError, match="does not exist"):
        psycopg2.connect(first, connect_timeout=5)


def test_postgres_reports_a_server_that_does_not_answer(monkeypatch):
    monkeypatch.setenv("TEST_PG_ADMIN_URL", f"postgresql://postgres@127.0.0.1:{system.free_port()}/x")
    with pytest.raises(postgres.PostgresUnavailable, match="does not answer"):
        postgres.PostgresServer()


def test_db_url_gives_a_working_peewee_database(db_url):
    db = db_connect(db_url)
    try:
        db.execute_sql("CREATE TABLE probe (id INTEGER PRIMARY KEY, note TEXT)")
        db.execute_sql("INSERT INTO probe (id, note) VALUES (1, 'x')")
        assert db.execute_sql("SELECT note FROM probe").fetchall() == [("x",)]
    finally:
        db.close()


# -- certificates and command-line switches ---------------------------------------------------------

def test_openssl_failure_names_the_command(tmp_path):
    with pytest.raises(RuntimeError, match="openssl x509 failed"):
        certs.make_server_cert(tmp_path, (tmp_path / "no-ca.pem", tmp_path / "no-ca.key"))


def _fake_item(*markers):
    item = SimpleNamespace(keywords=set(markers), added=[])
    item.add_marker = item.added.append
    return item


@pytest.mark.parametrize("flags, skipped", [
    ({}, {"soak", "longfuzz"}),
    ({"--soak": True}, {"longfuzz"}),
    ({"--soak": True, "--long-fuzz": True}, set()),
])
def test_long_runs_are_skipped_unless_their_flag_is_given(flags, skipped):
    config = SimpleNamespace(getoption=lambda flag: flags.get(flag, False))
    items = {"soak": _fake_item("soak"), "longfuzz": _fake_item("longfuzz"),
             "plain": _fake_item()}
    conftest.pytest_collection_modifyitems(config, list(items.values()))
    assert {name for name, item in items.items() if item.added} == skipped
    for name in skipped:
        assert "--" in items[name].added[0].kwargs["reason"]


def test_unavailable_fails_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        conftest.unavailable("no server")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="no server"):
        conftest.unavailable("no server")
