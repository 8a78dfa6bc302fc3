"""The bench's lean SMTP sink reads DATA in one piece: it must take in exactly what aiosmtpd's own
line-by-line reading takes in (dot-stuffing, an empty body, a mail bigger than its buffer), and
still refuse, count and time what it is given."""

import smtplib
import time

import pytest
from aiosmtpd.controller import Controller
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.common import LeanSink
from tests.servers.system import free_port

MAILS = [
    b"Subject: plain\r\n\r\nHello\r\n",
    b"Subject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\nmiddle . dot\r\n...\r\nend\r\n",
    b".Starts with a dot: yes\r\n\r\nbody\r\n",
    b"Subject: no final newline\r\n\r\nlast line",
    b"Subject: bare LF\n\nline one\nline two\n.dot after LF\n",
    b"Subject: empty body\r\n\r\n",
    b"",
    b"Subject: big\r\n\r\n" + b"".join(b"%07d ." % i + b"x" * 70 + b"\r\n.\r\n" for i in range(16000)),
    b"Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa5\xc3\xa4\xc3\xb6\r\n",
]


class _Keep:
    def __init__(self):
        self.contents = []

    async def handle_DATA(self, server, session, envelope):
        self.contents.append(envelope.content)
        return "250 OK"


def _send_all(port: int, mails: list[bytes]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for i, raw in enumerate(mails):
            smtp.sendmail("from@example.com", [f"to{i}@example.com"], raw)


def test_the_lean_sink_takes_in_what_aiosmtpd_takes_in():
    keep = _Keep()
    stock = Controller(keep, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    stock.SMTP_kwargs["data_size_limit"] = None
    stock.start()
    lean = LeanSink(contents=[]).start()
    try:
        _send_all(stock.port, MAILS)
        _send_all(lean.port, MAILS)
    finally:
        stock.stop()
        lean.stop()
    assert len(keep.contents) == len(MAILS) == len(lean.contents)
    for i, (want, got) in enumerate(zip(keep.contents, lean.contents)):
        assert got == want, f"mail {i} ({MAILS[i][:20]!r}) differs"
    assert len(lean.contents[7]) > 1 << 20, "the big mail overran the reader's buffer and was still read"
    assert [a.rcpt_tos for a in lean.arrivals] == [[f"to{i}@example.com"] for i in range(len(MAILS))]


def test_the_lean_sink_notes_in_reply_to_and_refuses_every_nth_mail():
    sink = LeanSink(fail_every=2).start()
    try:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=30) as smtp:
            t0 = time.monotonic()
            smtp.sendmail("a@example.com", ["b@example.com"], b"In-Reply-To: <x.1@example.com>\r\n\r\nhi\r\n")
            with pytest.raises(smtplib.SMTPDataError) as refused:
                smtp.sendmail("a@example.com", ["c@example.com"], b"Subject: two\r\n\r\nhi\r\n")
            smtp.sendmail("a@example.com", ["d@example.com"], b"Subject: three\r\n\r\nhi\r\n")
    finally:
        sink.stop()
    assert refused.value.smtp_code == 451
    assert [(a.rcpt_tos, a.in_reply_to) for a in sink.arrivals] == [(["b@example.com"], "<x.1@example.com>"),
                                                                    (["d@example.com"], "")]
    assert all(a.at >= t0 for a in sink.arrivals)


def test_the_lean_sink_offers_pipelining_and_takes_pipelined_mail():
    from datetime import timedelta

    from mailticket.config import SmtpConfig
    from mailticket.service.transport import SmtpTransport
    sink = LeanSink(contents=[]).start()
    try:
        t = SmtpTransport(SmtpConfig(host="127.0.0.1", port=sink.port, security="none", timeout=timedelta(seconds=5)))
        for raw in MAILS[:3]:
            t.send("from@example.com", ["a@example.com", "b@example.com"], raw)
        assert t._smtp.has_extn("pipelining")
        t.close()
    finally:
        sink.stop()
    assert [a.rcpt_tos for a in sink.arrivals] == [["a@example.com", "b@example.com"]] * 3
    assert sink.contents == MAILS[:3]


_PATH_CHARS = "ab.@<>\"\\ \t-+=_[]:,;()!#~0\u00e5"


@settings(max_examples=600, deadline=None)
@given(st.one_of(
    st.text(alphabet=_PATH_CHARS, max_size=30),
    st.builds(lambda local, domain, rest: f"<{local}@{domain}>{rest}",
              st.from_regex(r"[a-z0-9.+=_-]{1,12}", fullmatch=True),
              st.from_regex(r"[a-z0-9.-]{1,12}", fullmatch=True),
              st.sampled_from(["", " SIZE=10", "  SIZE=10 BODY=8BITMIME", " ", "\tX", "x", " SIZE=1 ", "\n"]))))
def test_the_lean_sinks_reading_of_a_path_is_aiosmtpds(arg):
    """The sink reads the plain paths the desk sends by a regular expression of its own; for any
    argument it must give what aiosmtpd's parser gives (address and the parameters after it, or
    the same failure)."""
    from aiosmtpd.smtp import SMTP

    from bench.common import _whole_data_smtp
    lean_class = _whole_data_smtp()
    lean, stock = lean_class.__new__(lean_class), SMTP.__new__(SMTP)
    for limit in (0, 5):
        lean.local_part_limit = stock.local_part_limit = limit
        assert _outcome(lean._getaddr, arg) == _outcome(stock._getaddr, arg)


def _outcome(read, arg):
    try:
        return read(arg)
    except Exception as exc:  # aiosmtpd's parser fails on some arguments ('<'): the sink must fail alike
        return type(exc)
