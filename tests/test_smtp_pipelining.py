"""Sending to a server that offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write, and
every refusal is read in step, so the session goes on with the next mail. A server that offers
CHUNKING (RFC 3030) as well gets MAIL, RCPT, BDAT and the mail in one write. A server that offers
neither gets one command at a time, as before.

The server here is scripted: in a pipelined turn it reads MAIL, the RCPTs and DATA (or BDAT and
its chunk) before it answers any, so a client that waited for the MAIL reply would hang (and fail
on its 5 s timeout); in a lock-step turn it fails the test if a command comes before the answer to
the last one."""

from __future__ import annotations

import re
import select
import smtplib
import socket
import threading
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailticket.config import Secret, ServerAuth, SmtpConfig
from mailticket.errors import PermanentDeliveryError, TemporaryDeliveryError
from mailticket.service.transport import SmtpTransport, _dot_stuffed, envelope_address
from mailticket.outbound.wire import is_simple_address
from tests.servers.smtpsink import SmtpSink
from tests.servers.system import LOOPBACK

RAW = b"Subject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\nlast line"


class ScriptedSmtp:
    """One connection; ``turns`` lists, for each mail, the replies to MAIL, each RCPT and DATA, then
    the reply to the data (None when no data is expected). ``pipelining`` and ``chunking`` say
    whether EHLO offers them; with ``chunking`` a turn's ``end`` answers BDAT and ``data`` is not
    used. A pipelined turn's ``answered`` sends only that many of its replies; its ``close`` then
    closes the connection. Records each command line and each mail's data (dots as sent)."""

    def __init__(self, turns: list[dict], *, pipelining: bool = True, chunking: bool = False):
        self.turns, self.pipelining, self.chunking = turns, pipelining, chunking
        self.commands: list[str] = []
        self.data: list[bytes] = []
        self.problems: list[str] = []
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        conn.settimeout(10)
        self._file = conn.makefile("rb")
        self._conn = conn
        try:
            self._say("220 scripted ESMTP")
            self._line()  # EHLO
            self._say("250-scripted\r\n" + ("250-PIPELINING\r\n" if self.pipelining else "")
                      + ("250-CHUNKING\r\n" if self.chunking else "") + "250 SIZE 1000000")
            for turn in self.turns:
                self._turn(turn)
            while (line := self._line()) is not None:
                self._say("221 bye" if line.upper().startswith("QUIT") else "250 OK")
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
            self._listener.close()

    def _turn(self, turn: dict) -> None:
        replies = [turn["mail"], *turn["rcpt"], turn["data"]]
        if turn.get("rset_first"):
            self._expect("RSET")
            self._say("250 OK")
        if self.chunking:
            for want in ("MAIL", *["RCPT"] * len(turn["rcpt"])):
                self._expect(want)
            line = self._line()
            bdat = re.fullmatch(r"BDAT (\d+) LAST", line or "")
            if bdat is None:
                raise AssertionError(f"expected BDAT <size> LAST, got {line!r}")
            self.data.append(self._file.read(int(bdat[1])))
            self._say("\r\n".join([turn["mail"], *turn["rcpt"], turn["end"]][:turn.get("answered")]))
        elif self.pipelining:
            for want in ("MAIL", *["RCPT"] * len(turn["rcpt"]), "DATA"):
                self._expect(want)
            self._say("\r\n".join(replies[:turn.get("answered")]))
        else:
            for want, reply in zip(("MAIL", *["RCPT"] * len(turn["rcpt"]), "DATA"), replies):
                self._expect(want, rset_again=want == "MAIL")
                if self._more_waiting():
                    self.problems.append(f"a command came before the reply to {want}")
                self._say(reply)
                if not reply.startswith("2"):
                    break
        if turn["data"].startswith("354") and not self.chunking and not turn.get("close"):
            self.data.append(self._read_data())
            self._say(turn["end"])
        if turn.get("close"):  # the file made from the socket holds it open until it is closed too
            self._file.close()
            self._conn.close()
            raise ConnectionAbortedError("closed as scripted")

    def _read_data(self) -> bytes:
        lines = []
        while (line := self._file.readline()) != b".\r\n":
            lines.append(line)
        return b"".join(lines)

    def _expect(self, verb: str, rset_again: bool = False) -> None:
        """The next command is ``verb``; with ``rset_again``, RSETs before it are answered (smtplib's
        sendmail sends its own RSET after a refusal, before the transport's)."""
        line = self._line()
        while rset_again and line is not None and line.upper().startswith("RSET"):
            self._say("250 OK")
            line = self._line()
        if line is None or not line.upper().startswith(verb):
            raise AssertionError(f"expected {verb}, got {line!r}")

    def _line(self) -> str | None:
        raw = self._file.readline()
        if not raw:
            return None
        line = raw.decode("ascii").rstrip("\r\n")
        self.commands.append(line)
        return line

    def _more_waiting(self) -> bool:
        return bool(self._file.peek(1)[:1]) if select.select([self._conn], [], [], 0.2)[0] else False

    def _say(self, text: str) -> None:
        self._conn.sendall(text.encode("ascii") + b"\r\n")

    def join(self) -> None:
        self._thread.join(10)


def transport(port: int) -> SmtpTransport:
    return SmtpTransport(SmtpConfig(host=LOOPBACK, port=port, security="none", timeout=timedelta(seconds=5)))


def ok_turn(n_rcpt: int = 1, **extra) -> dict:
    return dict(mail="250 OK", rcpt=["250 OK"] * n_rcpt, data="354 go on", end="250 queued", **extra)


def _finish(server: ScriptedSmtp, t: SmtpTransport) -> None:
    t.close()
    server.join()
    assert server.problems == []


def test_commands_go_in_one_write_and_the_data_is_dot_stuffed():
    server = ScriptedSmtp([ok_turn(2)])
    t = transport(server.port)
    t.send("support@example.com", ["a@x.example", "b@x.example"], RAW)
    _finish(server, t)
    assert server.commands[1:5] == [f"MAIL FROM:<support@example.com> SIZE={len(RAW)}",
                                    "RCPT TO:<a@x.example>", "RCPT TO:<b@x.example>", "DATA"]
    assert server.data == [b"Subject: dots\r\n\r\n..\r\n...\r\n..leading dot\r\nlast line\r\n"]


def test_one_recipient_refused_of_two_still_sends_to_the_other():
    server = ScriptedSmtp([dict(ok_turn(), rcpt=["550 5.1.1 no such user", "250 OK"])])
    t = transport(server.port)
    t.send("support@example.com", ["gone@x.example", "b@x.example"], RAW)
    _finish(server, t)
    assert len(server.data) == 1


@pytest.mark.parametrize("data_reply", ["554 5.5.1 no valid recipients", "354 go on"])
def test_all_recipients_refused_fails_for_good_and_the_session_goes_on(data_reply):
    """Whether the server refuses DATA (as Postfix does) or takes it, the refusal is read in step:
    a taken DATA is ended with a lone dot, and the next mail, after RSET, goes through."""
    refused = dict(mail="250 OK", rcpt=["550 5.1.1 no such user"], data=data_reply, end="554 no recipients")
    server = ScriptedSmtp([refused, ok_turn(rset_first=True)])
    t = transport(server.port)
    with pytest.raises(PermanentDeliveryError, match="all recipients refused: gone@x.example: 550"):
        t.send("support@example.com", ["gone@x.example"], RAW)
    t.send("support@example.com", ["b@x.example"], RAW)
    _finish(server, t)
    assert server.data[-1].startswith(b"Subject: dots") and len(server.data) == (2 if data_reply.startswith("354") else 1)
    if data_reply.startswith("354"):
        assert server.data[0] == b"", "the taken DATA was ended at once, with no mail in it"


def test_a_refused_sender_is_temporary_and_the_next_mail_goes_through():
    server = ScriptedSmtp([dict(mail="451 4.3.0 try later", rcpt=["503 5.5.1 need MAIL"], data="503 5.5.1 need RCPT",
                                end=None), ok_turn(rset_first=True)])
    t = transport(server.port)
    with pytest.raises(TemporaryDeliveryError, match="451 4.3.0 try later") as exc:
        t.send("support@example.com", ["a@x.example"], RAW)
    assert not exc.value.server_down
    t.send("support@example.com", ["a@x.example"], RAW)
    _finish(server, t)
    assert len(server.data) == 1


@pytest.mark.parametrize("end, error", [("452 4.3.1 disk full", TemporaryDeliveryError),
                                        ("552 5.3.4 too big", PermanentDeliveryError)])
def test_a_refusal_after_the_data_is_classified_by_its_code(end, error):
    server = ScriptedSmtp([dict(ok_turn(), end=end), ok_turn(rset_first=True)])
    t = transport(server.port)
    with pytest.raises(error, match=end):
        t.send("support@example.com", ["a@x.example"], RAW)
    t.send("support@example.com", ["a@x.example"], RAW)
    _finish(server, t)
    assert len(server.data) == 2


@pytest.mark.parametrize("chunking", [False, True])
def test_a_server_that_closes_mid_turn_is_down(chunking):
    """It reads the pipelined commands, answers MAIL with 421 and closes before the rest: the relay
    is down, whichever way the mail went (and the client does not wait for its timeout)."""
    server = ScriptedSmtp([dict(ok_turn(), mail="421 4.3.2 shutting down", answered=1, close=True)],
                          chunking=chunking)
    t = transport(server.port)
    with pytest.raises(TemporaryDeliveryError, match="Connection unexpectedly closed") as exc:
        t.send("support@example.com", ["a@x.example"], RAW)
    assert exc.value.server_down
    t.close()
    server.join()
    assert server.problems == ["ConnectionAbortedError: closed as scripted"]
    assert server.commands[-1] == ("BDAT 49 LAST" if chunking else "DATA")


def test_a_server_without_pipelining_gets_one_command_at_a_time():
    server = ScriptedSmtp([ok_turn(2), dict(mail="250 OK", rcpt=["550 no such user"], data="", end=None),
                           ok_turn(rset_first=True)], pipelining=False)
    t = transport(server.port)
    t.send("support@example.com", ["a@x.example", "b@x.example"], RAW)
    with pytest.raises(PermanentDeliveryError):
        t.send("support@example.com", ["gone@x.example"], RAW)
    t.send("support@example.com", ["c@x.example"], RAW)
    _finish(server, t)
    assert len(server.data) == 2


def _count_writes(monkeypatch) -> list[bytes]:
    """Every write the client makes (``smtplib.SMTP.send``), recorded as it goes through."""
    writes = []
    original = smtplib.SMTP.send

    def send(self, s):
        writes.append(s)
        return original(self, s)
    monkeypatch.setattr(smtplib.SMTP, "send", send)
    return writes


def test_chunking_sends_the_envelope_and_the_mail_in_one_write_as_they_are(monkeypatch):
    """No dot-stuffing (the server counts the bytes) and a last CRLF added, so what arrives is what
    DATA would have delivered."""
    writes = _count_writes(monkeypatch)
    server = ScriptedSmtp([ok_turn(2), ok_turn()], chunking=True)
    t = transport(server.port)
    t.send("support@example.com", ["a@x.example", "b@x.example"], RAW)
    assert len(writes) == 2 and writes[0].lower().startswith("ehlo"), \
        "after EHLO, MAIL, both RCPTs, BDAT and the mail went in one write"
    t.send("support@example.com", ["c@x.example"], RAW + b"\r\n")
    _finish(server, t)
    size = len(RAW) + 2
    assert server.commands[1:5] == [f"MAIL FROM:<support@example.com> SIZE={size}",
                                    "RCPT TO:<a@x.example>", "RCPT TO:<b@x.example>", f"BDAT {size} LAST"]
    assert server.commands[7] == f"BDAT {size} LAST", "a mail that ends in CRLF is sent as it is"
    assert server.data == [RAW + b"\r\n", RAW + b"\r\n"]


@pytest.mark.parametrize("turn, error, match", [
    (dict(mail="451 4.3.0 try later", rcpt=["503 5.5.1 need MAIL"], end="503 5.5.1 need RCPT"),
     TemporaryDeliveryError, "451 4.3.0 try later"),
    (dict(mail="250 OK", rcpt=["550 5.1.1 no such user"], end="554 5.5.1 no valid recipients"),
     PermanentDeliveryError, "all recipients refused: a@x.example: 550"),
    (dict(mail="250 OK", rcpt=["450 4.2.0 greylisted"], end="554 5.5.1 no valid recipients"),
     TemporaryDeliveryError, "recipients refused: a@x.example: 450"),
    (dict(mail="250 OK", rcpt=["250 OK"], end="452 4.3.1 disk full"), TemporaryDeliveryError, "452 4.3.1 disk full"),
    (dict(mail="250 OK", rcpt=["250 OK"], end="552 5.3.4 too big"), PermanentDeliveryError, "552 5.3.4 too big"),
])
def test_chunking_a_refusal_is_read_in_step_and_the_next_mail_goes_through(turn, error, match):
    """Whatever is refused, every reply (BDAT's too) is read before the error is raised: after
    RSET the next mail is read by the server as a new turn, not as the rest of this one."""
    server = ScriptedSmtp([dict(turn, data=""), ok_turn(rset_first=True)], chunking=True)
    t = transport(server.port)
    with pytest.raises(error, match=match) as exc:
        t.send("support@example.com", ["a@x.example"], RAW)
    assert not getattr(exc.value, "server_down", False), "the server is up: the queue goes on"
    t.send("support@example.com", ["b@x.example"], RAW)
    _finish(server, t)
    assert server.commands[-3:-1] == ["RCPT TO:<b@x.example>", f"BDAT {len(RAW) + 2} LAST"]


def test_chunking_one_recipient_refused_of_two_still_sends_to_the_other():
    server = ScriptedSmtp([dict(ok_turn(), rcpt=["550 5.1.1 no such user", "250 OK"])], chunking=True)
    t = transport(server.port)
    t.send("support@example.com", ["gone@x.example", "b@x.example"], RAW)
    _finish(server, t)
    assert server.data == [RAW + b"\r\n"]


def _mails_a_refusal_and_one_more(t: SmtpTransport, sink: SmtpSink, n: int, refusal: str,
                                  offers=None) -> list:
    """``n`` mails to two recipients each, one the sink refuses (``refusal``, the reply the client
    must report), one more after it; what arrived."""
    for i in range(n):
        t.send("support@example.com", [f"r{i}@x.example", "cc@x.example"], RAW + b"\r\n" + str(i).encode())
    if offers is not None:  # (PIPELINING, CHUNKING): which way the mails went
        assert (t._smtp.has_extn("pipelining"), t._smtp.has_extn("chunking")) == offers
    sink.mode = "reject"
    with pytest.raises(PermanentDeliveryError, match=refusal):
        t.send("support@example.com", ["no@x.example"], RAW)
    sink.mode = "ok"
    t.send("support@example.com", ["after@x.example"], RAW)
    t.close()
    return sink.wait_for(n + 1, timeout=20)


@pytest.mark.parametrize("pipelining, chunking", [(True, True), (True, False), (False, False)])
def test_aiosmtpd_takes_the_same_mails_every_way(pipelining, chunking):
    """The test sink (aiosmtpd, with BDAT of our own) offers PIPELINING and CHUNKING unless told not
    to; what arrives is the same whether the mails went by BDAT, pipelined DATA or one command at
    a time."""
    with SmtpSink(pipelining=pipelining, chunking=chunking) as sink:
        t = transport(sink.port)
        got = _mails_a_refusal_and_one_more(t, sink, 3, "550 5.7.1", offers=(pipelining, chunking))
    assert [r.rcpt_tos for r in got] == [["r0@x.example", "cc@x.example"], ["r1@x.example", "cc@x.example"],
                                         ["r2@x.example", "cc@x.example"], ["after@x.example"]]
    assert got[0].data == b"Subject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\nlast line\r\n0\r\n"


@given(st.binary(max_size=60) | st.lists(st.sampled_from([b".", b"a", b"\r", b"\n", b"\r\n", b".."]),
                                         max_size=20).map(b"".join))
def test_the_data_is_dot_stuffed_as_smtplib_does_it(raw):
    quoted = re.sub(rb"(?m)^\.", b"..", raw)  # smtplib's own rule (SMTP.data)
    assert _dot_stuffed(raw) == quoted + (b"" if quoted.endswith(b"\r\n") else b"\r\n") + b".\r\n"


_ATEXT = "abcxyzABCXYZ0189!#$%&'*+/=?^_`{|}~-"
_plain_addresses = st.builds(
    lambda local, host: f"{local}@{host}",
    st.lists(st.text(_ATEXT, min_size=1, max_size=6), min_size=1, max_size=3).map(".".join),
    st.lists(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,4}[a-z0-9])?", fullmatch=True), min_size=1, max_size=3).map(".".join))


@given(_plain_addresses | st.text(max_size=30) | st.sampled_from([
    "<a@b.example>", "Name <a@b.example>", '"odd local"@b.example', "a@[192.0.2.1]", "a..b@c.example",
    "a@b.example (comment)", "", "a@-b.example", "a@b-.example", ".a@b.example", "a.@b.example"]))
def test_the_envelope_address_is_what_smtplib_would_send(address):
    assert envelope_address(address) == smtplib.quoteaddr(address)


@given(_plain_addresses)
def test_plain_addresses_take_the_short_way(address):
    assert is_simple_address(address)


def test_pipelining_and_chunking_through_dovecots_submission_server():
    """Another server's PIPELINING and CHUNKING (Dovecot's submission service, written in C, which
    offers both, so the mails go by BDAT) over STARTTLS with a login: mails with two recipients, a
    refusal it relays from the next hop, and the mail after it all go as they should, dots and all."""
    from tests.conftest import _started_dovecot
    with SmtpSink(pipelining=False, offer_auth=False) as relay:
        server = _started_dovecot(submission_relay=(LOOPBACK, relay.port))
        try:
            server.add_user("desk", "desk-password")
            t = SmtpTransport(SmtpConfig(host=LOOPBACK, port=server.submission_port, security="starttls",
                                         ca_file=server.ca_file, timeout=timedelta(seconds=10),
                                         credentials=ServerAuth(username="desk", password=Secret(value="desk-password"))))
            got = _mails_a_refusal_and_one_more(t, relay, 5, "550 5.0.0 5.7.1 Test sink: rejected",
                                            offers=(True, True))  # the relay's refusal, passed on
        finally:
            server.close()
    assert [r.rcpt_tos for r in got] == [[f"r{i}@x.example", "cc@x.example"] for i in range(5)] + [["after@x.example"]]
    assert got[0].data.endswith(b"\r\n\r\n.\r\n..\r\n.leading dot\r\nlast line\r\n0\r\n")


class _Session:
    """A raw SMTP client for the sink's own BDAT: writes what it is given, reads reply lines."""

    def __init__(self, port: int):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=5)
        self.file = self.sock.makefile("rb")
        self.reply()  # the greeting

    def say(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> str:
        while (line := self.file.readline().decode()) and line[3:4] == "-":
            pass
        return line.rstrip("\r\n")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_the_sink_reads_each_chunk_by_its_size_whatever_it_answers():
    """The test and bench sinks' BDAT: a chunk before MAIL is read and refused (the commands inside
    it are not run), chunks are joined, the last one hands the mail on; a BDAT without a size
    cannot be skipped, so it ends the session."""
    with SmtpSink() as sink:
        s = _Session(sink.port)
        s.say(b"EHLO client.example\r\n")
        assert s.reply().startswith("250")
        inside = b"RSET\r\nQUIT\r\n"
        s.say(b"BDAT %d LAST\r\n" % len(inside) + inside)
        assert s.reply() == "503 5.5.1 Error: need MAIL command"
        s.say(b"MAIL FROM:<a@x.example>\r\nBDAT 3 LAST\r\nabc")
        assert s.reply().startswith("250") and s.reply() == "503 5.5.1 Error: need RCPT command"
        s.say(b"RCPT TO:<b@x.example>\r\nBDAT 6\r\nHello,BDAT 11 LAST\r\n world.\r\n\r\n")
        assert s.reply().startswith("250") and s.reply() == "250 2.0.0 6 octets received"
        assert s.reply() == "250 2.0.0 OK: queued by test sink"
        got = sink.wait_for(1)
        assert (got[0].mail_from, got[0].rcpt_tos, got[0].data) == ("a@x.example", ["b@x.example"],
                                                                    b"Hello, world.\r\n\r\n")
        sink.mode = "reject"
        s.say(b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nBDAT 2 LAST\r\nhi")
        assert [s.reply(), s.reply(), s.reply()][2] == "550 5.7.1 Test sink: rejected"
        s.say(b"BDAT many LAST\r\n")
        assert s.reply() == "501 5.5.4 Syntax: BDAT <size> [LAST]"
        assert s.file.readline() == b"", "the session was closed"
        s.close()
    assert len(sink.received) == 1
