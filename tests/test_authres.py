from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from mailticket.inbound.authres import (
    aligned,
    parse_authentication_results,
    strip_internal_headers,
    trusted_verdict,
)

TRUSTED = "mx.example.com"

GMAIL_STYLE = (
    "mx.example.com;\r\n"
    "       dkim=pass header.i=@example.com header.s=s1 header.b=AbCd;\r\n"
    "       spf=pass (mx.example.com: domain of alice@example.com designates 192.0.2.1 as\r\n"
    "        permitted sender) smtp.mailfrom=alice@example.com;\r\n"
    "       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com"
)


def mail(*auth_results: str, extra: str = "") -> EmailMessage:
    headers = "".join(f"Authentication-Results: {value}\r\n" for value in auth_results)
    raw = (
        f"{headers}{extra}From: Alice <alice@example.com>\r\nTo: support@example.com\r\n"
        "Subject: hi\r\n\r\nbody\r\n"
    ).encode()
    return message_from_bytes(raw, policy=policy.default)


def test_dmarc_pass_from_trusted_server_passes():
    verdict = trusted_verdict(mail(GMAIL_STYLE), TRUSTED, "example.com")
    assert verdict.passed
    assert "dmarc=pass" in verdict.reason


def test_authserv_id_compares_case_insensitively():
    assert trusted_verdict(mail("MX.Example.COM; dmarc=pass header.from=example.com"), TRUSTED, "example.com").passed


def test_forged_header_from_other_server_id_is_refused():
    verdict = trusted_verdict(mail("evil.example.net; dmarc=pass header.from=example.com"), TRUSTED, "example.com")
    assert not verdict.passed
    assert "evil.example.net" in verdict.reason


def test_trusted_header_below_a_forged_topmost_one_does_not_count():
    msg = mail("evil.example.net; dmarc=pass header.from=example.com",
               "mx.example.com; dmarc=pass header.from=example.com")
    assert not trusted_verdict(msg, TRUSTED, "example.com").passed


def test_forged_pass_below_a_failing_trusted_topmost_one_does_not_count():
    msg = mail("mx.example.com; dkim=fail header.d=example.com; dmarc=fail header.from=example.com",
               "mx.example.com; dmarc=pass header.from=example.com")
    verdict = trusted_verdict(msg, TRUSTED, "example.com")
    assert not verdict.passed
    assert "dkim=fail" in verdict.reason and "dmarc=fail" in verdict.reason


def test_dkim_pass_with_unaligned_domain_is_refused():
    msg = mail("mx.example.com; dkim=pass header.d=attacker.org; dmarc=none header.from=example.com")
    verdict = trusted_verdict(msg, TRUSTED, "example.com")
    assert not verdict.passed
    assert "attacker.org" in verdict.reason and "not aligned" in verdict.reason


@pytest.mark.parametrize("signer", ["header.d=example.com", "header.d=mail.example.com",
                                    "header.i=@example.com", "header.i=alice@eu.example.com",
                                    'header.d="Example.COM"'])
def test_dkim_pass_with_aligned_domain_passes(signer):
    msg = mail(f"mx.example.com; dkim=pass (2048-bit key) {signer} header.s=sel")
    assert trusted_verdict(msg, TRUSTED, "example.com").passed


def test_dkim_pass_lookalike_domain_is_refused():
    for d in ("notexample.com", "example.com.attacker.org", "com"):
        msg = mail(f"mx.example.com; dkim=pass header.d={d}")
        assert not trusted_verdict(msg, TRUSTED, "example.com").passed, d


def test_dmarc_pass_for_another_domain_is_refused():
    verdict = trusted_verdict(mail("mx.example.com; dmarc=pass header.from=attacker.org"), TRUSTED, "example.com")
    assert not verdict.passed
    assert "attacker.org" in verdict.reason


def test_pass_hidden_in_a_comment_or_quoted_reason_does_not_count():
    msg = mail('mx.example.com; dkim=fail (dmarc=pass; dkim=pass header.d=example.com) '
               'reason="dmarc=pass; dkim=pass" header.d=example.com')
    assert not trusted_verdict(msg, TRUSTED, "example.com").passed


def test_no_header_no_trusted_id_none_result_and_unparsable():
    assert "no Authentication-Results" in trusted_verdict(mail(), TRUSTED, "example.com").reason
    assert "no trusted" in trusted_verdict(mail(GMAIL_STYLE), None, "example.com").reason
    assert not trusted_verdict(mail("mx.example.com; none"), TRUSTED, "example.com").passed
    exchange = "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com; dmarc=pass action=none header.from=example.com"
    assert "cannot be parsed" in trusted_verdict(mail(exchange), TRUSTED, "example.com").reason
    assert not trusted_verdict(mail(GMAIL_STYLE), TRUSTED, "").passed


def test_parser_handles_version_comments_quotes_and_spaces():
    parsed = parse_authentication_results(
        'mx.example.com 1 (our (nested) server); dkim/1 = pass (ok) header.d = "ex;ample.com" ;'
        ' spf=softfail smtp.mailfrom=a@b.c;'
    )
    assert parsed.authserv_id == "mx.example.com"
    assert [(r.method, r.result) for r in parsed.results] == [("dkim", "pass"), ("spf", "softfail")]
    assert parsed.results[0].props["header.d"] == "ex;ample.com"
    assert parse_authentication_results("") is None
    assert parse_authentication_results("(only a comment") is None


def test_parser_survives_garbage():
    for value in ['"unterminated', "a; =; ==; b=", "x; (((", "x; dkim=pass header.d=", ";;;", "\\"]:
        parse_authentication_results(value)  # must not raise


def test_aligned():
    assert aligned("example.com", "EXAMPLE.com.")
    assert aligned("example.com", "sub.example.com")
    assert aligned("sub.example.com", "example.com")
    assert not aligned("com", "example.com")
    assert not aligned("badexample.com", "example.com")


def test_strip_internal_headers_removes_our_lookalikes_only():
    msg = mail(GMAIL_STYLE, extra="X-Mailticket-Ticket: 1\r\nx-mailticket-loop: yes\r\n"
                                  "X-MAILTICKET-TICKET: 2\r\nX-Mailer: mutt\r\nX-Mailtickets: keep\r\n")
    removed = strip_internal_headers(msg)
    assert removed == ["X-Mailticket-Ticket", "x-mailticket-loop"]
    assert not [k for k in msg.keys() if k.lower().startswith("x-mailticket-")]
    assert msg["X-Mailer"] == "mutt" and msg["X-Mailtickets"] == "keep"
    assert msg["Authentication-Results"] is not None
    assert strip_internal_headers(msg) == []
