"""Fresh, uniquely named PostgreSQL databases for tests.

The server is the one on 127.0.0.1:5432 (trust auth) when it answers; otherwise, as root
with the PostgreSQL binaries installed, a throwaway cluster run by the `postgres` user.
Set TEST_PG_ADMIN_URL to use another server (a URL of a database the user may connect to
and that user's right to CREATE DATABASE).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql

from tests.servers import system

DEFAULT_ADMIN_URLS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://postgres@127.0.0.1:5432/postgres",
    f"postgresql://{os.environ.get('USER', 'root')}@127.0.0.1:5432/test",
)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be reached or started."""


def _can_connect(url: str) -> bool:
    try:
        psycopg2.connect(url, connect_timeout=3).close()
        return True
    except psycopg2.Error:
        return False


def _with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class ThrowawayCluster:
    """initdb + pg_ctl as the `postgres` user in /tmp/pg.XXXX on a free loopback port."""

    def __init__(self):
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries or not system.is_root():
            raise PostgresUnavailable("no PostgreSQL binaries, or not root to run a cluster")
        self.bin = Path(binaries[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="pg.", dir="/tmp"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.port = system.free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{args[0]} failed in {self.dir}: {done.stderr.strip()}")

    def start(self) -> "ThrowawayCluster":
        """Create and start the cluster (about 1 s)."""
        data = self.dir / "data"
        self._as_postgres(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres",
                          "-A", "trust", "-E", "UTF8", "--no-locale")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(data), "-l",
                          str(self.dir / "log"), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        """Stop the cluster and delete its folder."""
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D",
                        str(self.dir / "data"), "-m", "immediate", "-w", "stop"],
                       stdin=subprocess.DEVNULL, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """Finds (or starts) a server; create_database()/drop_database() per test."""

    def __init__(self):
        self.cluster: ThrowawayCluster | None = None
        self.admin_url = self._find_admin_url()

    def _find_admin_url(self) -> str:
        wanted = os.environ.get("TEST_PG_ADMIN_URL")
        candidates = (wanted,) if wanted else DEFAULT_ADMIN_URLS
        for url in candidates:
            if _can_connect(url):
                return url
        if wanted:
            raise PostgresUnavailable(f"TEST_PG_ADMIN_URL={wanted} does not answer")
        self.cluster = ThrowawayCluster().start()
        return self.cluster.url

    def create_database(self) -> str:
        """Create a uniquely named empty database; return its URL."""
        name = f"mt_test_{uuid.uuid4().hex[:12]}"
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return _with_database(self.admin_url, name)

    def drop_database(self, url: str) -> None:
        """Drop the database of `url`, ending any connection still open to it."""
        name = urlsplit(url).path.lstrip("/")
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                    .format(sql.Identifier(name)))

    def _admin(self, statement) -> None:
        conn = psycopg2.connect(self.admin_url, connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the throwaway cluster, if one was started."""
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


_server: PostgresServer | None = None


def postgres_server() -> PostgresServer:
    """The process-wide server (found or started once)."""
    global _server
    if _server is None:
        _server = PostgresServer()
    return _server


def postgres_url() -> str:
    """A URL of a fresh, uniquely named database; drop it with drop_database(url)."""
    return postgres_server().create_database()


def drop_database(url: str) -> None:
    """Drop a database made by postgres_url()."""
    postgres_server().drop_database(url)


def close_server() -> None:
    """Stop a throwaway cluster started by this process (no-op otherwise)."""
    global _server
    if _server is not None:
        _server.close()
        _server = None
