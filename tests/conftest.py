"""Shared fixtures: real Dovecot, an SMTP sink, PostgreSQL, and the storage URL matrix.

A server that is missing skips its tests with the reason shown, except when the CI
environment variable is set: then the test fails, so CI cannot pass by skipping.
Session fixtures are per process, so each pytest-xdist worker has its own servers.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from itertools import count

import pytest

from tests.servers import certs, postgres, system
from tests.servers.dovecot import Dovecot, ensure_dovecot_installed
from tests.servers.smtpsink import SmtpSink

# -- command-line switches for long runs -------------------------------------------------

LONG_RUNS = {"soak": "--soak", "longfuzz": "--long-fuzz"}


def pytest_addoption(parser):
    parser.addoption("--soak", action="store_true", default=False,
                     help="run the hour-long soak tests (marked soak)")
    parser.addoption("--long-fuzz", action="store_true", default=False,
                     help="run the long fuzz tests (marked longfuzz)")


def pytest_collection_modifyitems(config, items):
    for marker, flag in LONG_RUNS.items():
        if config.getoption(flag):
            continue
        skip = pytest.mark.skip(reason=f"{marker} test: run with {flag}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


def unavailable(reason: str):
    """Skip with `reason`, or fail when running in CI (CI must not pass by skipping)."""
    if system.in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


# -- certificates -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def server_cert(tmp_path_factory) -> certs.ServerCert:
    """A CA-signed certificate for localhost/127.0.0.1 (ca_file, cert_file, key_file)."""
    return certs.make_certs(tmp_path_factory.mktemp("certs"))


# -- Dovecot --------------------------------------------------------------------------------

def _started_dovecot(**options) -> Dovecot:
    if not ensure_dovecot_installed():
        unavailable("Dovecot is not installed (apt-get install dovecot-imapd dovecot-lmtpd dovecot-submissiond)")
    server = Dovecot(**options)
    try:
        return server.start()
    except BaseException:
        server.close()  # the error message already holds the log tail
        raise


@pytest.fixture(scope="session")
def dovecot():
    """One Dovecot per test process; use `mailbox_user` for a mailbox of your own."""
    server = _started_dovecot()
    yield server
    server.close()


@pytest.fixture(scope="session")
def dovecot_oauth2():
    """A Dovecot accepting XOAUTH2/OAUTHBEARER; tokens from .token_authority.issue(user)."""
    server = _started_dovecot(oauth2=True)
    yield server
    server.close()


@dataclass(frozen=True)
class MailboxUser:
    """A fresh Dovecot user: its name, password and the server it lives on."""

    name: str
    password: str
    server: Dovecot


_user_numbers = count(1)


def new_mailbox_user(server: Dovecot) -> MailboxUser:
    """Add a uniquely named user with a random password to `server`."""
    name = f"user{next(_user_numbers)}-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    server.add_user(name, password)
    return MailboxUser(name=name, password=password, server=server)


@pytest.fixture
def mailbox_user(dovecot) -> MailboxUser:
    """A fresh, empty mailbox on the session's Dovecot (tests do not share mail)."""
    if not dovecot.running():  # an earlier test stopped it and failed before restarting
        dovecot.start()
    return new_mailbox_user(dovecot)


# -- SMTP sink ------------------------------------------------------------------------------

@pytest.fixture
def smtp_sink():
    """A plain SMTP sink on 127.0.0.1 in mode "ok"; switch `.mode` to misbehave."""
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_sink_tls(server_cert):
    """An SMTP sink offering STARTTLS and requiring AUTH (user "sink"/"sink-password")."""
    sink = SmtpSink(tls_cert=server_cert.cert_file, tls_key=server_cert.key_file,
                    require_auth=True)
    sink.ca_file = str(server_cert.ca_file)
    sink.start()
    yield sink
    sink.stop()


# -- PostgreSQL and the storage matrix -------------------------------------------------------

@pytest.fixture(scope="session")
def _postgres_server():
    try:
        server = postgres.postgres_server()
    except postgres.PostgresUnavailable as error:
        unavailable(f"PostgreSQL is not available: {error}")
    yield server
    postgres.close_server()


@pytest.fixture
def pg_url(_postgres_server) -> str:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    url = _postgres_server.create_database()
    yield url
    _postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """Each storage backend in turn: a SQLite file URL, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "mailticket.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MB tmpfs: a database or data folder on it fills after a few mails (disk-full tests)."""
    if os.geteuid() != 0:
        unavailable("mounting a small tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)]).returncode != 0:
        unavailable("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])
