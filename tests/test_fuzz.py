"""Fuzzing the whole pipeline (parse → classify → thread → apply → render and queue the mails).

Inputs: real corpus mails (bench.corpora_path.find_corpora, and the bench corpus) mutated byte- and
structure-wise, and generated MIME trees (nesting, multipart kinds, charsets, transfer encodings,
encoded words, odd headers). Every mail must end processed, duplicate, dropped, or quarantined on
purpose (a QuarantineError with its reason) — never "internal error" — and no case may take more
than 2 s of CPU (CPU, not wall time: the test machines are shared).

A short run is part of the suite; `pytest --long-fuzz` runs the long one (marker longfuzz).
"""

from __future__ import annotations

import base64
import quopri
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.corpora_path import find_corpora
from tests.harness import make_mail, write_config

CORPORA = find_corpora()  # the full corpora beside the checkout, else the share in tests/data/corpora
CASE_LIMIT_CPU_S = 2.0
ENDINGS = {"processed", "duplicate", "dropped", "quarantined", "spam"}

SHORT = settings(max_examples=40, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LONG = settings(max_examples=3000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- the pipeline under test

class Pipeline:
    """One desk on a SQLite file; ``run(raw)`` stores and processes one mail, timed in CPU seconds."""

    def __init__(self, folder: Path):
        from mailticket import db
        from mailticket.config import load_config
        from mailticket.service.wiring import build_desk
        cfg = load_config(write_config(folder, extra={"rate_limits": {"global_10min": 1_000_000}}))
        db.connect(cfg.database.url)
        self.desk = build_desk(cfg)
        self.count = 0
        # a few tickets to thread into: replies with their Message-IDs or tags hit them
        for i in range(3):
            self.run(make_mail(subject=f"Seed ticket {i}", message_id=f"<seed{i}@customer.example>"))

    def run(self, raw: bytes):
        from mailticket.desk import pipeline
        self.count += 1
        row = pipeline.store_raw(raw, source="fuzz", now=datetime.now(timezone.utc), uidvalidity=1, uid=self.count)
        t0 = time.process_time()
        outcome = pipeline.process_one(self.desk, row)
        return outcome, time.process_time() - t0


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return Pipeline(tmp_path_factory.mktemp("fuzz"))


def check(pipe: Pipeline, raw: bytes) -> None:
    outcome, cpu = pipe.run(raw)
    assert outcome.state in ENDINGS
    assert not outcome.reason.startswith("internal error"), f"{outcome.reason}\n--- mail:\n{raw[:3000]!r}"
    assert cpu < CASE_LIMIT_CPU_S, f"{cpu:.2f} s of CPU for one mail of {len(raw)} bytes: {raw[:300]!r}"


# ---------------------------------------------------------------- seeds: real mails

def _corpus_files() -> list[Path]:
    picks = []
    for folder in ("cpython-test_email", "ruby-mail", "flanker", "sisimai-set-of-emails/maildir/bsd", "talon",
                   "perl-bounceparser", "mimekit", "django-helpdesk", "realclients", "roundup"):
        base = CORPORA / folder
        if base.is_dir():
            files = sorted(p for p in base.rglob("*") if p.is_file() and p.stat().st_size < 300_000
                           and p.suffix.lower() in ("", ".eml", ".msg", ".txt", ".mail"))
            picks += files[:: max(1, len(files) // 25)]  # a spread of each corpus
    return picks


SEEDS = _corpus_files()


def _bench_seeds() -> list[bytes]:
    from bench.corpus_gen import generate
    return [m.raw for m in generate(40, seed=11)]


BENCH_SEEDS = _bench_seeds()


def _seed_bytes(i: int) -> bytes:
    if SEEDS and i % 2 == 0:
        return SEEDS[(i // 2) % len(SEEDS)].read_bytes()
    return BENCH_SEEDS[i % len(BENCH_SEEDS)]


# ---------------------------------------------------------------- mutations

def _flip(raw, pos, value):
    pos %= max(1, len(raw))
    return raw[:pos] + bytes([value]) + raw[pos + 1:]


def _truncate(raw, pos, _):
    return raw[:pos % max(1, len(raw))]


def _insert(raw, pos, value):
    pos %= max(1, len(raw))
    junk = [b"\r\n", b"\n--", b"=?utf-8?b?", b"\x00", b"\xff\xfe", b"Content-Type: multipart/mixed; boundary=x\r\n",
            b"=\r\n", b"\r\n\r\n", b"\xc3", b"?=", b"<", b">", b"\"", b";", b"\t", b"=?iso-2022-jp?b?GyRC?="]
    return raw[:pos] + junk[value % len(junk)] + raw[pos:]


def _duplicate_headers(raw, pos, value):
    head, sep, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
    lines = head.splitlines(keepends=True)
    if not lines:
        return raw
    line = lines[pos % len(lines)]
    return b"".join(lines + [line] * (1 + value % 3)) + sep + body


def _swap_charset(raw, pos, value):
    charsets = [b"utf-8", b"iso-8859-1", b"windows-1252", b"x-unknown", b"utf-16", b"iso-2022-jp", b"", b"\xff"]
    return raw.replace(b"utf-8", charsets[value % len(charsets)]).replace(b"us-ascii", charsets[pos % len(charsets)])


def _break_boundary(raw, pos, value):
    i = raw.find(b"boundary=")
    if i < 0:
        return _insert(raw, pos, value)
    return raw[:i + 9] + (b'"' if value % 2 else b"") + raw[i + 9 + value % 4:]


def _crlf_mix(raw, pos, value):
    return raw.replace(b"\r\n", [b"\n", b"\r", b"\r\r\n", b"\n\r"][value % 4])


def _reply_to_seed(raw, pos, value):
    """Thread it: a reply to one of the seed tickets, by References or by subject tag."""
    ref = f"<seed{value % 3}@customer.example>".encode()
    extra = b"In-Reply-To: " + ref + b"\r\nReferences: " + ref + b"\r\n" if value % 2 else b""
    tag = b"Subject: Re: [SD#" + str(1 + pos % 4).encode() + b"] hello\r\n" if pos % 2 else b""
    return extra + tag + raw


MUTATIONS = [_flip, _truncate, _insert, _duplicate_headers, _swap_charset, _break_boundary, _crlf_mix, _reply_to_seed]

mutated = st.builds(
    lambda i, steps: _apply(_seed_bytes(i), steps),
    st.integers(0, 10_000),
    st.lists(st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 2**20), st.integers(0, 255)), min_size=1, max_size=5))


def _apply(raw: bytes, steps) -> bytes:
    for fn, pos, value in steps:
        raw = fn(raw, pos, value)
    return raw


# ---------------------------------------------------------------- generated MIME trees

CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "koi8-r", "shift_jis", "gb2312", "x-bogus", "utf-7", ""]
TEXTS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)


@st.composite
def leaf(draw):
    kind = draw(st.sampled_from(["text/plain", "text/html", "application/octet-stream", "image/png",
                                 "application/ms-tnef", "text/calendar", "message/delivery-status", "text/x-weird"]))
    charset = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "binary", ""]))
    text = draw(TEXTS)
    if kind == "text/html":
        text = f"<html><body><p>{text}</p><blockquote>{draw(TEXTS)}</blockquote></body></html>"
    try:
        data = text.encode(charset or "utf-8", "replace")
    except LookupError:
        data = text.encode("utf-8", "surrogateescape")
    if cte == "base64":
        body = base64.encodebytes(data)
        if draw(st.booleans()):
            body = body[: len(body) // 2] + b"!!"  # broken base64
    elif cte == "quoted-printable":
        body = quopri.encodestring(data)
    else:
        body = data
    head = f"Content-Type: {kind}" + (f'; charset="{charset}"' if charset else "")
    name = draw(st.one_of(st.none(), TEXTS.map(lambda t: t[:60]), st.just("=?utf-8?b?w6XDpMO2LnBkZg==?=")))
    if name is not None:
        head += f'; name="{name}"'
        head += f'\r\nContent-Disposition: {draw(st.sampled_from(["attachment", "inline", "bogus"]))}; filename="{name}"'
    if cte:
        head += f"\r\nContent-Transfer-Encoding: {cte}"
    return head.encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body


def tree(depth=0):
    """A leaf, a multipart or an attached mail, at most four levels deep."""
    return st.deferred(lambda: st.one_of(leaf(), multipart(depth + 1), attached(depth + 1)) if depth < 4 else leaf())


@st.composite
def multipart(draw, depth):
    sub = draw(st.sampled_from(["mixed", "alternative", "related", "report", "signed", "digest"]))
    boundary = draw(st.sampled_from(["b1", "=_x", "----=_Part_0", "a" * 70, "", "b1"]))
    parts = draw(st.lists(tree(depth), max_size=4))
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    if draw(st.booleans()):
        body += b"--" + boundary.encode() + b"--\r\n"
    extra = "; report-type=delivery-status" if sub == "report" else ""
    return f'Content-Type: multipart/{sub}; boundary="{boundary}"{extra}\r\n\r\n'.encode() + b"preamble\r\n" + body


@st.composite
def attached(draw, depth):
    inner = draw(headers()) + draw(tree(depth))
    return b"Content-Type: message/rfc822\r\n\r\n" + inner


ADDRESSES = st.sampled_from([
    "Anna <anna@customer.example>", "bob@customer.example", '"Eve, the" <eve@x.example>', "<>", "", "no-at-sign",
    "=?utf-8?q?=C3=85sa?= <asa@customer.example>", "alice@example.com", "MAILER-DAEMON@mx.example",
    "support@example.com", "a@b@c", "Team: a@x.example, b@y.example;", "x" * 300 + "@long.example"])


@st.composite
def headers(draw):
    lines = [f"From: {draw(ADDRESSES)}", f"To: {draw(ADDRESSES)}", f"Subject: {draw(TEXTS)[:200]}",
             f"Message-ID: <fuzz{draw(st.integers(0, 50))}@fuzz.example>"]
    if draw(st.booleans()):
        lines.append(f"Date: {draw(st.sampled_from(['Fri, 27 Nov 2026 08:00:00 +0100', 'yesterday', '', 'Mon, 31 Feb 1999 25:61:61 -9999']))}")
    if draw(st.booleans()):
        lines.append(f"References: {draw(st.sampled_from(['<seed0@customer.example>', '<x>' * 200, '<<>>', '']))}")
    if draw(st.booleans()):
        lines.append(f"Auto-Submitted: {draw(st.sampled_from(['auto-replied', 'no', 'auto-generated; x', '']))}")
    if draw(st.booleans()):
        lines.append(f"Cc: {draw(ADDRESSES)}")
    text = "\r\n".join(lines) + "\r\nMIME-Version: 1.0\r\n"
    return text.encode("utf-8", "surrogateescape")


mime_mails = st.builds(lambda h, t: h + t, headers(), tree())


# ---------------------------------------------------------------- the tests

def test_the_seeds_themselves_go_through(pipe):
    for path in SEEDS[:40]:
        check(pipe, path.read_bytes())


@SHORT
@given(raw=mutated)
def test_mutated_corpus_mails(pipe, raw):
    check(pipe, raw)


@SHORT
@given(raw=mime_mails)
def test_generated_mime_trees(pipe, raw):
    check(pipe, raw)


@pytest.mark.longfuzz
@LONG
@given(raw=mutated)
def test_mutated_corpus_mails_long(pipe, raw):
    check(pipe, raw)


@pytest.mark.longfuzz
@LONG
@given(raw=mime_mails)
def test_generated_mime_trees_long(pipe, raw):
    check(pipe, raw)


@pytest.mark.parametrize("header", [b"Message-ID: <a\x80b@customer.example>",
                                    b"References: <seed0@customer.example> <x\xff\xfe@y.example>",
                                    b"In-Reply-To: <\xc3(@customer.example>"])
def test_ids_with_bytes_that_are_not_utf8_are_processed(pipe, header):
    """Found by the long fuzz run: a byte 0x80 in the Message-ID reached SQLite as a lone surrogate
    ("surrogates not allowed") and the mail was quarantined as an internal error."""
    raw = make_mail(message_id="<clean@customer.example>").replace(b"Message-ID: <clean@customer.example>", header)
    check(pipe, raw)
    from mailticket.models import InboundMail
    assert InboundMail.select().order_by(InboundMail.id.desc()).get().state in ("processed", "duplicate")


def test_a_bug_in_processing_would_be_caught(pipe, monkeypatch):
    """The check is not blind: an exception inside the pipeline shows as an internal-error quarantine."""
    from mailticket.desk import pipeline

    def broken(*a, **k):
        raise KeyError("boom")
    monkeypatch.setattr(pipeline, "classify", broken)
    with pytest.raises(AssertionError, match="internal error"):
        check(pipe, make_mail(message_id="<broken@customer.example>"))
