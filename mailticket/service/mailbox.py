"""Where mail comes from: an IMAP folder (UIDVALIDITY + UID, BODY.PEEK[], IDLE) and the built-in
SMTP/LMTP listener on loopback. Both only hand over raw bytes; the pipeline does the rest."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from dataclasses import dataclass

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from ..config import ImapConfig, ListenerConfig
from ..errors import MailboxError
from ..sizes import MAX_MAIL
from .oauth2 import TokenSource
from .transport import tls_context

log = logging.getLogger("mailticket.mailbox")

RECHECK_AFTER = 0.5  # seconds of the first IDLE before a NOOP looks for mail that arrived as it began


@dataclass(frozen=True)
class FetchedMail:
    uidvalidity: int
    uid: int
    raw: bytes


class ImapSource:
    """One IMAP folder. Every server error surfaces as MailboxError (the daemon reconnects with back-off)."""

    def __init__(self, cfg: ImapConfig):
        self.cfg = cfg
        self.client: imapclient.IMAPClient | None = None
        self.uidvalidity: int | None = None
        self.can_move = False
        self.can_idle = False
        self.tokens = TokenSource(cfg.credentials.oauth2_token_command) if cfg.credentials.auth == "oauth2" else None

    @property
    def source(self) -> str:
        return f"imap:{self.cfg.folder}"

    # ------------------------------------------------------------ connection

    def connect(self) -> None:
        cfg = self.cfg
        where = f"IMAP {cfg.host}:{cfg.port}"
        try:
            client = imapclient.IMAPClient(cfg.host, port=cfg.port, ssl=cfg.security == "ssl",
                                           ssl_context=tls_context(cfg.ca_file),
                                           timeout=cfg.timeout.total_seconds(), use_uid=True)
        except ssl.SSLCertVerificationError as exc:
            raise MailboxError(f"{where}: TLS certificate not trusted: {exc.verify_message}") from None
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(f"{where}: cannot connect: {exc}") from None
        try:
            if cfg.security == "starttls":
                if b"STARTTLS" not in client.capabilities():
                    raise MailboxError(f"{where} does not offer STARTTLS; refusing to log in in clear text")
                client.starttls(tls_context(cfg.ca_file))
            self._login(client, where)
            caps = client.capabilities()
            self.can_move, self.can_idle = b"MOVE" in caps, b"IDLE" in caps and cfg.idle
            for folder in (cfg.processed_folder, cfg.quarantine_folder, cfg.spam_folder):
                if not client.folder_exists(folder):
                    client.create_folder(folder)
            info = client.select_folder(cfg.folder)
            self.uidvalidity = int(info[b"UIDVALIDITY"])
        except ssl.SSLCertVerificationError as exc:
            _close(client)
            raise MailboxError(f"{where}: TLS certificate not trusted: {exc.verify_message}") from None
        except MailboxError:
            _close(client)
            raise
        except (OSError, IMAPClientError, ssl.SSLError) as exc:
            _close(client)
            raise MailboxError(f"{where}: {exc}") from None
        self.client = client
        log.info("connected to %s as %s, folder %s (UIDVALIDITY %s, MOVE %s, IDLE %s)", where,
                 cfg.credentials.username, cfg.folder, self.uidvalidity, self.can_move, self.can_idle)

    def _login(self, client, where) -> None:
        creds = self.cfg.credentials
        try:
            if self.tokens is not None:
                client.oauth2_login(creds.username, self.tokens.token())
            else:
                client.login(creds.username or "", creds.password.get() or "")
        except LoginError as exc:
            if self.tokens is not None:
                self.tokens.invalidate()
            raise MailboxError(f"{where}: login as {creds.username} refused: {_text(exc)}") from None

    def close(self) -> None:
        if self.client is not None:
            _close(self.client)
        self.client = None

    # ------------------------------------------------------------ reading and moving

    def list_uids(self) -> list[int]:
        self.noop()  # lets the server announce mail that arrived since the last command
        criteria = ["UNDELETED"] if self.can_move else ["UNSEEN", "UNDELETED"]
        return sorted(self._call(self.client.search, criteria))

    def fetch(self, uids: list[int]) -> list[FetchedMail]:
        if not uids:
            return []
        data = self._call(self.client.fetch, uids, ["BODY.PEEK[]"])
        out = []
        for uid in uids:
            item = data.get(uid)
            if item and b"BODY[]" in item:
                out.append(FetchedMail(self.uidvalidity, uid, item[b"BODY[]"]))
        return out

    def move(self, uids: list[int], folder: str) -> None:
        """Move processed mail out of the inbox; mark it \\Seen where the server lacks MOVE."""
        if not uids:
            return
        self._call(self._move_unless_gone, uids, folder)

    def _move_unless_gone(self, uids: list[int], folder: str) -> None:
        """Another daemon may have moved these UIDs already (two holders of a lapsed lease): the
        server then answers NO [EXPUNGEISSUED]; the mail is where it should be, so that is done."""
        try:
            if self.can_move:
                self.client.move(uids, folder)
            else:
                self.client.copy(uids, folder)
                self.client.add_flags(uids, [imapclient.SEEN])
        except IMAPClientError as exc:
            if "EXPUNGEISSUED" not in str(exc) and "no longer exist" not in str(exc):
                raise
            log.info("UID(s) %s already gone from %s (moved by another daemon?): %s", _uid_list(uids),
                     self.cfg.folder, _text(exc))
            self.client.noop()  # take in the server's EXPUNGE news

    def wait(self, seconds: float, stop: threading.Event, wake: threading.Event) -> bool:
        """Wait up to ``seconds`` for new mail (IDLE where offered). True when the server said so."""
        if not self.can_idle:
            waited = 0.0
            while waited < seconds and not stop.is_set() and not wake.is_set():
                stop.wait(min(0.25, seconds - waited))
                waited += 0.25
            # the NOOP after the wait, not before it: the server shows a session mail that arrived
            # meanwhile only at such a point, and the SEARCH that follows must see it
            return _announces_new_mail(self._call(self.client.noop)[1])
        # A mail that arrives while IDLE starts can go unannounced until the server's next periodic
        # check (Dovecot: up to 30 s and more), so the first IDLE is cut short and a NOOP looks again.
        first = min(seconds, RECHECK_AFTER)
        if self._idle(first, stop, wake):
            return True
        if seconds <= first or stop.is_set() or wake.is_set():
            return False
        if _announces_new_mail(self._call(self.client.noop)[1]):
            return True
        return self._idle(seconds - first, stop, wake)

    def _idle(self, seconds: float, stop: threading.Event, wake: threading.Event) -> bool:
        """IDLE up to ``seconds``; True when the server announced mail (also in its answer to DONE)."""
        self._call(self.client.idle)
        announced = False
        try:
            waited = 0.0
            while waited < seconds and not stop.is_set() and not wake.is_set():
                responses = self._call(self.client.idle_check, timeout=min(0.25, seconds))
                waited += 0.25
                if _announces_new_mail(responses):
                    announced = True
                    break
        finally:
            done = self._call(self.client.idle_done)
        return announced or _announces_new_mail(done[1] if isinstance(done, tuple) else ())

    def noop(self) -> None:
        self._call(self.client.noop)

    def _call(self, fn, *args, **kwargs):
        if self.client is None:
            raise MailboxError("not connected")
        try:
            return fn(*args, **kwargs)
        except (OSError, IMAPClientError, ssl.SSLError, socket.timeout) as exc:
            self.close()
            raise MailboxError(f"IMAP {self.cfg.host}:{self.cfg.port}: {type(exc).__name__}: {exc}") from None


def _announces_new_mail(responses) -> bool:
    return any(isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)


def _close(client) -> None:
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception:
            pass


def _uid_list(uids: list[int]) -> str:
    return ",".join(map(str, uids[:10])) + (f",... ({len(uids)})" if len(uids) > 10 else "")


def _text(exc) -> str:
    s = str(exc)
    return s.strip("b'\"") if s else type(exc).__name__


# ---------------------------------------------------------------- the built-in listener

class _Handler:
    """Commits each mail (through ``store``) before answering 250; a failed commit answers 451."""

    def __init__(self, store, wake: threading.Event, lmtp: bool):
        self.store, self.wake, self.lmtp = store, wake, lmtp

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        trace = "".join(f"Delivered-To: {r}\r\n" for r in envelope.rcpt_tos[:20]).encode()
        try:
            self.store(trace + raw)
        except Exception as exc:  # database full/locked/unreachable: the sending MTA keeps the mail and retries
            log.error("listener could not store a mail from %s: %s", envelope.mail_from, exc)
            return "451 4.3.0 cannot store the message now, try again later"
        self.wake.set()
        ok = "250 2.0.0 stored"
        return "\r\n".join([ok] * len(envelope.rcpt_tos)) if self.lmtp else ok


class Listener:
    """aiosmtpd on loopback, speaking SMTP or LMTP, feeding the same pipeline as IMAP."""

    def __init__(self, cfg: ListenerConfig, store, wake: threading.Event):
        from aiosmtpd.controller import Controller
        from aiosmtpd.lmtp import LMTP

        handler = _Handler(store, wake, cfg.protocol == "lmtp")
        if cfg.protocol == "lmtp":
            class _LmtpController(Controller):
                def factory(self):
                    return LMTP(self.handler, **self.SMTP_kwargs)
            self.controller = _LmtpController(handler, hostname=cfg.host, port=cfg.port,
                                              data_size_limit=MAX_MAIL)
        else:
            self.controller = Controller(handler, hostname=cfg.host, port=cfg.port, data_size_limit=MAX_MAIL)
        self.cfg = cfg

    def start(self) -> None:
        try:
            self.controller.start()
        except Exception as exc:
            raise MailboxError(f"listener cannot bind {self.cfg.host}:{self.cfg.port}: {exc}") from None
        log.info("listening for mail (%s) on %s:%s", self.cfg.protocol.upper(), self.cfg.host, self.cfg.port)

    def stop(self) -> None:
        try:
            self.controller.stop()
        except Exception:
            pass
