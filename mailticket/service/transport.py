"""Hand a finished mail to the world: an SMTP server (TLS verified, no plaintext fall-back) or a maildir."""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import time
from pathlib import Path

from ..config import SmtpConfig
from ..errors import DeliveryAborted, PermanentDeliveryError, TemporaryDeliveryError
from .oauth2 import TokenSource
from ..outbound.wire import is_simple_address


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Certificates and host names are always verified; ``ca_file`` adds a private CA."""
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class SmtpTransport:
    """Delivers over SMTP, one session for a whole drain; raises Temporary/PermanentDeliveryError
    so the outbox knows to retry or to stop."""

    def __init__(self, cfg: SmtpConfig):
        self.cfg = cfg
        self.tokens = TokenSource(cfg.credentials.oauth2_token_command) if cfg.credentials.auth == "oauth2" else None
        self._smtp: smtplib.SMTP | None = None
        self._live: smtplib.SMTP | None = None  # the session, from its connect on (abort cuts it)
        self._aborted = False

    def abort(self) -> None:
        """Cut the session from another thread: a send blocked on a server that never answers
        returns at once with DeliveryAborted, and so does every later one (we are stopping).
        shutdown(2) on the descriptor wakes a blocked read; the reading thread closes the socket."""
        self._aborted = True
        sock = getattr(self._live, "sock", None)
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: under TLS as well
            except OSError:
                pass

    def send(self, mail_from: str, recipients: list[str], raw: bytes) -> None:
        where = f"{self.cfg.host}:{self.cfg.port}"
        if self._aborted:
            raise DeliveryAborted(f"{where}: not sent, stopping")
        try:
            if self._smtp is None:
                self._smtp = self._open()
            self._smtp.ehlo_or_helo_if_needed()
            if self._smtp.has_extn("pipelining"):
                send = chunked_sendmail if self._smtp.has_extn("chunking") else pipelined_sendmail
                send(self._smtp, mail_from, recipients, raw)
            else:
                self._smtp.sendmail(mail_from, recipients, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            if self._aborted:
                self.close()
                raise DeliveryAborted(f"{where}: session cut while stopping") from None
            self._reset()
            codes = [code for code, _ in exc.recipients.values()]
            text = "; ".join(f"{r}: {c} {m.decode(errors='replace')}" for r, (c, m) in exc.recipients.items())
            if all(500 <= c < 600 for c in codes):
                raise PermanentDeliveryError(f"all recipients refused: {text}") from None
            raise TemporaryDeliveryError(f"recipients refused: {text}") from None
        except smtplib.SMTPResponseException as exc:
            if self._aborted:  # e.g. the 421 smtplib makes of a cut session
                self.close()
                raise DeliveryAborted(f"{where}: session cut while stopping ({exc.smtp_code})") from None
            self._reset()
            raise _classify(exc.smtp_code, exc.smtp_error) from None
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise TemporaryDeliveryError(f"{where}: TLS certificate not trusted: {exc.verify_message}",
                                         server_down=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            if self._aborted:
                raise DeliveryAborted(f"{where}: session cut while stopping ({exc or type(exc).__name__})") from None
            raise TemporaryDeliveryError(f"{where}: {exc or type(exc).__name__}", server_down=True) from None
        except TemporaryDeliveryError:
            self.close()
            raise

    def _reset(self) -> None:
        """After a refused mail the session goes on; if RSET fails, the next mail reconnects."""
        try:
            self._smtp.rset()
        except Exception:
            self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except Exception:
                try:
                    self._smtp.close()
                except Exception:
                    pass
        self._smtp = self._live = None

    def _open(self) -> smtplib.SMTP:
        smtp = self._connect()
        try:
            self._login(smtp)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _connect(self) -> smtplib.SMTP:
        """Made without a host, then connected: ``abort`` can reach the socket while the greeting
        is awaited (a relay that accepts and never answers hangs right there)."""
        cfg, timeout = self.cfg, self.cfg.timeout.total_seconds()
        if cfg.security == "ssl":
            smtp = self._live = smtplib.SMTP_SSL(timeout=timeout, context=tls_context(cfg.ca_file))
        else:
            smtp = self._live = smtplib.SMTP(timeout=timeout, local_hostname=_hostname())
        smtp._host = cfg.host  # what the constructor sets from its host: the TLS server name (SSL and STARTTLS)
        try:
            code, message = smtp.connect(cfg.host, cfg.port)
            if code != 220:  # what the constructor given a host checks
                raise smtplib.SMTPConnectError(code, message)
        except BaseException:
            smtp.close()
            raise
        if cfg.security == "ssl":
            return smtp
        if cfg.security == "starttls":
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                smtp.close()
                raise TemporaryDeliveryError(
                    f"{cfg.host}:{cfg.port} does not offer STARTTLS; refusing to go on in clear text "
                    "(security = \"starttls\")", server_down=True)
            smtp.starttls(context=tls_context(cfg.ca_file))
            smtp.ehlo()
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        creds = self.cfg.credentials
        if not creds.username:
            return
        if self.tokens is not None:
            token = self.tokens.token()
            smtp.ehlo_or_helo_if_needed()
            code, resp = smtp.docmd("AUTH", "XOAUTH2 " + xoauth2_string(creds.username, token, b64=True))
            if code != 235:
                self.tokens.invalidate()
                raise TemporaryDeliveryError(f"XOAUTH2 login as {creds.username} refused: {code} "
                                             f"{resp.decode(errors='replace')}", server_down=True)
            return
        password = creds.password.get()
        try:
            smtp.login(creds.username, password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise TemporaryDeliveryError(
                f"login as {creds.username} refused by {self.cfg.host}: {exc.smtp_code} "
                f"{exc.smtp_error.decode(errors='replace')}", server_down=True) from None


def pipelined_sendmail(smtp: smtplib.SMTP, mail_from: str, recipients: list[str], raw: bytes) -> dict:
    """``smtp.sendmail`` for a server that offers PIPELINING (RFC 2920): MAIL, the RCPTs and DATA go
    in one write and their replies are read in order, then the data. Two round trips a mail instead
    of four or more, which is what sending costs against a relay that is far away (and a fifth to
    a quarter of the CPU each end spends on a mail, measured against aiosmtpd on 127.0.0.1).

    Raises what ``sendmail`` raises (SMTPSenderRefused, SMTPRecipientsRefused, SMTPDataError),
    only once every reply is read, so that the session stays in step for RSET and the next mail;
    returns the recipients refused when others were taken, as ``sendmail`` does."""
    commands = _envelope(smtp, mail_from, recipients, len(raw)) + ["DATA"]
    smtp.send("".join(f"{c}\r\n" for c in commands))
    mail_reply, *rcpt_replies, (data_code, data_text) = [smtp.getreply() for _ in commands]
    refused = _refused(recipients, rcpt_replies)
    if data_code == 354:
        if mail_reply[0] == 250 and len(refused) < len(recipients):
            smtp.send(_dot_stuffed(raw))
            code, text = smtp.getreply()
            if code != 250:
                raise smtplib.SMTPDataError(code, text)
            return refused
        smtp.send(b".\r\n")  # DATA was taken for a mail that cannot go: end it empty (RFC 2920 3.1)
        smtp.getreply()
    _raise_refusal(mail_from, mail_reply, recipients, refused)
    raise smtplib.SMTPDataError(data_code, data_text)


def chunked_sendmail(smtp: smtplib.SMTP, mail_from: str, recipients: list[str], raw: bytes) -> dict:
    """``pipelined_sendmail`` for a server that offers CHUNKING too (RFC 3030, as Postfix, Exim and
    Exchange do): MAIL, the RCPTs and ``BDAT <size> LAST`` with the mail behind it go in one write,
    and the replies are read in order. One round trip a mail, and no dot-stuffing: the server
    knows the size. A server refusing the sender or every recipient still reads the chunk by its
    size and answers BDAT with an error (RFC 3030 2), so the session stays in step. Raises and
    returns as ``pipelined_sendmail`` does."""
    data = raw if raw.endswith(b"\r\n") else raw + b"\r\n"  # the mail as DATA would deliver it
    commands = _envelope(smtp, mail_from, recipients, len(data))
    head = "".join(f"{c}\r\n" for c in commands) + f"BDAT {len(data)} LAST\r\n"
    smtp.send(head.encode(smtp.command_encoding) + data)  # one write: a second one would wait on Nagle
    mail_reply, *rcpt_replies, (bdat_code, bdat_text) = [smtp.getreply() for _ in range(len(commands) + 1)]
    refused = _refused(recipients, rcpt_replies)
    _raise_refusal(mail_from, mail_reply, recipients, refused)
    if bdat_code != 250:
        raise smtplib.SMTPDataError(bdat_code, bdat_text)
    return refused


def _envelope(smtp: smtplib.SMTP, mail_from: str, recipients: list[str], size: int) -> list[str]:
    options = " SIZE=%d" % size if smtp.has_extn("size") else ""
    return [f"MAIL FROM:{envelope_address(mail_from)}{options}"] + [f"RCPT TO:{envelope_address(r)}" for r in recipients]


def _refused(recipients: list[str], rcpt_replies: list[tuple[int, bytes]]) -> dict:
    return {r: reply for r, reply in zip(recipients, rcpt_replies) if reply[0] not in (250, 251)}


def _raise_refusal(mail_from: str, mail_reply: tuple[int, bytes], recipients: list[str], refused: dict) -> None:
    """The sender refused, or every recipient: what ``sendmail`` raises for it; else nothing."""
    if mail_reply[0] != 250:
        raise smtplib.SMTPSenderRefused(mail_reply[0], mail_reply[1], mail_from)
    if len(refused) == len(recipients):
        raise smtplib.SMTPRecipientsRefused(refused)


def envelope_address(address: str) -> str:
    """``smtplib.quoteaddr``: the address in angle brackets for MAIL and RCPT. A plain
    ``local@domain`` (all the desk's own and nearly every requester's) is written as it is;
    quoteaddr runs the email package's address parser on each, 4 % of the sender's CPU."""
    return f"<{address}>" if is_simple_address(address) else smtplib.quoteaddr(address)


def _dot_stuffed(raw: bytes) -> bytes:
    """The mail as DATA sends it: a dot that starts a line doubled (after CRLF or a bare LF, as
    smtplib does), a last line end, the lone dot. bytes.replace, not a regex: 3 % of the sender's
    CPU went to ``re.sub`` over the 8 KB mails of the bench."""
    data = (b"." + raw if raw.startswith(b".") else raw).replace(b"\n.", b"\n..")
    return data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


def xoauth2_string(user: str, token: str, b64: bool = False) -> str:
    import base64
    s = f"user={user}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(s.encode()).decode() if b64 else s


def _classify(code: int, message: bytes | str):
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    if 500 <= code < 600:
        return PermanentDeliveryError(f"{code} {text}")
    return TemporaryDeliveryError(f"{code} {text}")


def _hostname() -> str:
    return socket.getfqdn() or "localhost"


class MaildirTransport:
    """Writes each mail into a maildir (the embedded default's 'outgoing' folder)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        """A file write is not cut: it ends by itself."""

    def send(self, mail_from: str, recipients: list[str], raw: bytes) -> None:
        try:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            name = f"{time.time():.6f}.{os.getpid()}.{os.urandom(6).hex()}.mailticket"
            tmp = self.path / "tmp" / name
            header = f"Return-Path: <{mail_from}>\r\nX-Envelope-To: {', '.join(recipients)}\r\n".encode()
            with open(tmp, "wb") as fh:
                fh.write((header + raw).replace(b"\r\n", b"\n"))  # maildir files use local line ends
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(tmp, self.path / "new" / name)
        except OSError as exc:
            raise TemporaryDeliveryError(f"cannot write to maildir {self.path}: {exc.strerror}",
                                         server_down=True) from None


def make_transport(config):
    """The SMTP server of ``[smtp]``, or else the maildir of ``[outbox]``."""
    if config.smtp is not None:
        return SmtpTransport(config.smtp)
    return MaildirTransport(config.outbox.maildir)
