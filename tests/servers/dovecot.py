"""A throwaway Dovecot (IMAP, IMAPS, LMTP) on 127.0.0.1 for tests.

Each instance lives in its own short temp dir (`/tmp/dc.XXXX`, unix socket paths must
stay short) with its own config, passwd-file users with {PLAIN} passwords, a CA-signed
certificate and free high ports. Readiness is proven by a real LOGIN.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient

from tests.servers import certs, system
from tests.servers.oauth2 import TokenAuthority

DOVECOT = "/usr/sbin/dovecot"
IMAP_BINARY = "/usr/lib/dovecot/imap"
LMTP_BINARY = "/usr/lib/dovecot/lmtp"
SUBMISSION_BINARY = "/usr/lib/dovecot/submission"
PACKAGES = ("dovecot-imapd", "dovecot-lmtpd", "dovecot-submissiond")
PROBE_USER = "probe"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
PORT_RETRIES = 3


def dovecot_installed() -> bool:
    """True when the Dovecot master, imap, lmtp and submission binaries are present."""
    return all(os.path.exists(p) for p in (DOVECOT, IMAP_BINARY, LMTP_BINARY, SUBMISSION_BINARY))


def ensure_dovecot_installed() -> bool:
    """Install Dovecot with apt when missing and root; return whether it is installed."""
    if dovecot_installed():
        return True
    return system.apt_install(*PACKAGES) and dovecot_installed()


def dovecot_version() -> tuple[int, ...]:
    """The installed Dovecot version, e.g. (2, 3, 19)."""
    out = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, check=True).stdout
    return tuple(int(part) for part in re.findall(r"\d+", out.split()[0])[:3])


def crlf(raw: bytes) -> bytes:
    """Return `raw` with every line ending as CRLF."""
    return re.sub(rb"\r?\n", b"\r\n", raw)


class Dovecot:
    """One Dovecot instance: start(), stop(), restart(), users, and mailbox helpers."""

    host = system.LOOPBACK

    def __init__(self, cert_names=certs.LOCAL_NAMES, oauth2: bool = False,
                 submission_relay: tuple[str, int] | None = None):
        """``submission_relay`` (host, port) also runs Dovecot's SMTP submission server on
        ``submission_port`` (STARTTLS, login required), handing what it takes to that relay."""
        self.submission_relay = submission_relay
        self.dir = Path(tempfile.mkdtemp(prefix="dc.", dir="/tmp"))
        self.dir.chmod(0o755)
        self._started_once = False
        self._pick_ports()
        self._cert = certs.make_certs(self.dir, tuple(cert_names))
        self.ca_file = str(self._cert.ca_file)
        self.token_authority = TokenAuthority() if oauth2 else None
        self._passwords: dict[str, str] = {}
        self._uid, self._gid = self._mail_owner()
        self.config_file = self.dir / "dovecot.conf"
        self.log_file = self.dir / "dovecot.log"
        (self.dir / "home").mkdir(mode=0o755)
        (self.dir / "users").mkdir(mode=0o755)
        self.add_user(PROBE_USER, "probe-password")

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> "Dovecot":
        """Write the config, start the master and wait until a LOGIN succeeds.

        On the first start a port taken meanwhile (another test process) is replaced by a
        fresh one; a restart keeps its ports, so clients can reconnect.
        """
        if self.token_authority is not None:
            self.token_authority.start()
        for _ in range(PORT_RETRIES):
            self.config_file.write_text(self._config())
            if self._run_master():
                self._started_once = True
                self._wait_ready()
                return self
            if self._started_once or "Address already in use" not in self._diagnostics():
                break
            self._pick_ports()
        raise RuntimeError(f"dovecot -c {self.config_file} failed: {self._diagnostics()}")

    def running(self) -> bool:
        """True while the master process is alive."""
        pid = self.pid()
        return pid is not None and system.is_alive(pid)

    def _run_master(self) -> bool:
        """Start the master (it daemonises); True if it accepted the config and ports."""
        with open(self.dir / "start.out", "wb") as out:
            done = subprocess.run([DOVECOT, "-c", str(self.config_file)],
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        return done.returncode == 0

    def _pick_ports(self) -> None:
        self.imap_port = system.free_port()
        self.imaps_port = system.free_port()
        self.lmtp_port = system.free_port()
        self.submission_port = system.free_port()

    def stop(self) -> None:
        """SIGTERM the master and wait until it is gone (a zombie counts as gone)."""
        pid = self.pid()
        if self.running():
            os.kill(pid, signal.SIGTERM)
            if not system.wait_dead(pid, STOP_TIMEOUT):
                os.kill(pid, signal.SIGKILL)
                system.wait_dead(pid, 2.0)
        with contextlib.suppress(FileNotFoundError):
            (self.dir / "run" / "master.pid").unlink()

    def restart(self) -> None:
        """Stop and start again on the same ports and mail folders."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and its token authority, and delete the instance folder."""
        self.stop()
        if self.token_authority is not None:
            self.token_authority.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Dovecot":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    def pid(self) -> int | None:
        """The master's pid from base_dir/master.pid, or None."""
        try:
            return int((self.dir / "run" / "master.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the Dovecot log (for failure messages)."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    # -- users -------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Add a passwd-file user with a {PLAIN} password and an empty home folder."""
        if not re.fullmatch(r"[A-Za-z0-9._@+-]+", name) or ":" in password or "\n" in password:
            raise ValueError(f"unusable test user or password: {name!r}")
        if name in self._passwords:
            raise ValueError(f"test user {name!r} exists already in {self.dir}")
        home = self.dir / "home" / name
        home.mkdir(mode=0o755, exist_ok=True)
        os.chown(home, self._uid, self._gid)
        # One passwd-file per user: Dovecot re-reads a changed file at most once a second.
        line = f"{name}:{{PLAIN}}{password}:{self._uid}:{self._gid}::{home}::\n"
        (self.dir / "users" / name).write_text(line, encoding="utf-8")
        self._passwords[name] = password

    def password(self, user: str) -> str:
        """The password given to `user` by add_user()."""
        return self._passwords[user]

    # -- clients and mailbox helpers ----------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this instance's CA."""
        return ssl.create_default_context(cafile=self.ca_file)

    def connect(self, tls: str = "plain", timeout: float = 10.0) -> IMAPClient:
        """An unauthenticated IMAPClient: tls is "plain", "starttls" or "imaps"."""
        if tls == "imaps":
            return IMAPClient(self.host, self.imaps_port, ssl=True,
                              ssl_context=self.ssl_context(), timeout=timeout)
        client = IMAPClient(self.host, self.imap_port, ssl=False, timeout=timeout)
        if tls == "starttls":
            client.starttls(self.ssl_context())
        elif tls != "plain":
            raise ValueError(f"tls must be plain, starttls or imaps, not {tls!r}")
        return client

    @contextlib.contextmanager
    def client(self, user: str, tls: str = "plain"):
        """A logged-in IMAPClient for `user`, logged out at the end."""
        imap = self.connect(tls)
        try:
            imap.login(user, self._passwords[user])
            yield imap
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def append(self, user: str, folder: str, raw: bytes, flags=()) -> int | None:
        """Append `raw` (line ends made CRLF) to `folder`, creating it; return its UID."""
        with self.client(user) as imap:
            if folder.upper() != "INBOX" and not imap.folder_exists(folder):
                imap.create_folder(folder)
            answer = imap.append(folder, crlf(raw), flags=tuple(flags))
        match = re.search(rb"APPENDUID \d+ (\d+)", answer or b"")
        return int(match.group(1)) if match else None

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The raw bytes of every message in `folder`, in UID order (flags untouched)."""
        with self.client(user) as imap:
            if not imap.folder_exists(folder):
                return []
            imap.select_folder(folder, readonly=True)
            uids = sorted(imap.search("ALL"))
            if not uids:
                return []
            fetched = imap.fetch(uids, ["BODY.PEEK[]"])
            return [fetched[uid][b"BODY[]"] for uid in uids]

    def folder_count(self, user: str, folder: str = "INBOX") -> int:
        """How many messages `folder` holds (0 when it does not exist)."""
        with self.client(user) as imap:
            if not imap.folder_exists(folder):
                return 0
            return imap.folder_status(folder, ["MESSAGES"])[b"MESSAGES"]

    # -- internals ----------------------------------------------------------------------

    @staticmethod
    def _mail_owner() -> tuple[int, int]:
        """uid/gid that owns mail: nobody's when root (root may not own mail), else ours."""
        if system.is_root():
            nobody = pwd.getpwnam("nobody")
            return nobody.pw_uid, nobody.pw_gid
        return os.getuid(), os.getgid()

    def _wait_ready(self) -> None:
        """Poll with a real LOGIN until it works (a port check lies when mail is broken)."""
        deadline = time.monotonic() + START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with self.client(PROBE_USER) as imap:
                    imap.select_folder("INBOX")
                return
            except Exception as error:  # noqa: BLE001 - any failure means "not yet"
                last_error = error
                time.sleep(0.05)
        raise RuntimeError(f"Dovecot in {self.dir} not ready after {START_TIMEOUT}s "
                           f"({last_error!r}): {self._diagnostics()}")

    def _diagnostics(self) -> str:
        start_out = (self.dir / "start.out")
        head = start_out.read_text(errors="replace") if start_out.exists() else ""
        return f"{head}\n--- {self.log_file} ---\n{self.log_tail()}"

    def _config(self) -> str:
        """The complete dovecot.conf of this instance."""
        d = self.dir
        parts = [f"""
protocols = imap lmtp
listen = {self.host}
base_dir = {d}/run
state_dir = {d}/state
log_path = {self.log_file}
info_log_path = {self.log_file}
ssl = yes
ssl_cert = <{self._cert.cert_file}
ssl_key = <{self._cert.key_file}
ssl_min_protocol = TLSv1.2
{self._cleartext_setting()}
auth_mechanisms = {"plain login xoauth2 oauthbearer" if self.token_authority else "plain login"}
auth_failure_delay = 0
mail_location = maildir:~/Maildir
first_valid_uid = 1
postmaster_address = postmaster@localhost
lda_mailbox_autocreate = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.imaps_port}
    ssl = yes
  }}
{self._chroot_off()}}}
service lmtp {{
  inet_listener lmtp {{
    address = {self.host}
    port = {self.lmtp_port}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
{self._chroot_off()}}}
"""]
        if not system.is_root():
            me = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
            parts.append(f"default_internal_user = {me}\ndefault_login_user = {me}\n"
                         f"default_internal_group = {group}\n")
        if self.token_authority is not None:
            parts.append(self._oauth2_passdb())
        if self.submission_relay is not None:
            parts[0] = parts[0].replace("protocols = imap lmtp", "protocols = imap lmtp submission")
            parts.append(self._submission())
        return "".join(parts)

    def _submission(self) -> str:
        host, port = self.submission_relay
        return f"""
hostname = submission.localhost
submission_relay_host = {host}
submission_relay_port = {port}
service submission-login {{
  inet_listener submission {{
    address = {self.host}
    port = {self.submission_port}
  }}
{self._chroot_off()}}}
"""

    @staticmethod
    def _cleartext_setting() -> str:
        """Allow LOGIN without TLS (the setting was renamed in Dovecot 2.4)."""
        if dovecot_version() >= (2, 4):
            return "auth_allow_cleartext = yes"
        return "disable_plaintext_auth = no"

    @staticmethod
    def _chroot_off() -> str:
        return "" if system.is_root() else "  chroot =\n"

    def _oauth2_passdb(self) -> str:
        """A passdb that checks XOAUTH2/OAUTHBEARER tokens at the token authority."""
        conf = self.dir / "oauth2.conf"
        conf.write_text(f"""
introspection_mode = post
introspection_url = {self.token_authority.url}
username_attribute = username
active_attribute = active
active_value = true
""")
        return f"""
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {conf}
}}
"""
