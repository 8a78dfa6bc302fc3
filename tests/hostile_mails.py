"""Mails built to make a parser slow: megabyte header lines, ten thousand MIME parts, deep
nesting over a big body, megabytes of quoting or HTML. tests/test_parse.py checks what
parse_mail makes of each; bench/hostile_parse.py times each against a plain mail of the same
size (wall time is the bench's business, not a test's)."""

from __future__ import annotations


def mail(headers: str, body: bytes | str = b"Hello\n") -> bytes:
    """A raw mail from a header block (LF line ends) and a body."""
    base = "From: Anna <anna@example.se>\nTo: support@example.com\n"
    if isinstance(body, str):
        body = body.encode("ascii")
    return (base + headers.strip("\n") + "\n\n").encode("utf-8") + body


def nested_multiparts(depth: int) -> bytes:
    """depth multiparts, each inside the one before."""
    head = "".join(f'--b{i}\nContent-Type: multipart/mixed; boundary="b{i + 1}"\n\n'
                   for i in range(depth))
    tail = "".join(f"--b{i}--\n" for i in reversed(range(depth + 1)))
    return mail('Content-Type: multipart/mixed; boundary="b0"',
                head + f"--b{depth}\nContent-Type: text/plain\n\ndeep\n" + tail)


def megabyte_header_line() -> bytes:
    return mail("Subject: " + "A" * (1024 * 1024) + "\nX-Other: kept", "body\n")


def megabyte_address_header() -> bytes:
    to = ",\n ".join(f"=?utf-8?Q?N=C3=A4mn{i}?= <u{i}@example.com>" for i in range(25000))
    return mail(f"Cc: {to}")


def megabyte_header_in_a_nested_part() -> bytes:
    return mail('Content-Type: multipart/mixed; boundary="m"',
                '--m\nContent-Type: application/pdf; name="' + "a" * 1_000_000 + '.pdf"\n'
                "Content-Disposition: attachment\n\n%PDF\n--m--\n")


def ten_thousand_nested_parts() -> bytes:
    return nested_multiparts(10_000)


def deep_nesting_over_a_big_body() -> bytes:
    return nested_multiparts(450).replace(b"deep\n", b"a line of text\n" * 100_000)


def ten_thousand_sibling_parts() -> bytes:
    parts = "".join(f"--m\nContent-Type: text/plain\n\npart {i}\n" for i in range(10_000))
    return mail('Content-Type: multipart/mixed; boundary="m"', parts + "--m--\n")


QUOTED_LINE = "> > > > On Mon, Anna wrote: the printer on floor 3 is still jammed, please help\n"


def five_megabyte_quoted_thread() -> bytes:
    return mail("Subject: Re: printer", "My answer on top.\n\n" + QUOTED_LINE * (5 * 1024 * 1024 // len(QUOTED_LINE)))


def huge_html_only() -> bytes:
    return mail("Content-Type: text/html", "<html><body>" + "<div><p>row <b>bold</b> &amp; more</p></div>" * 60_000)


HOSTILE_HTML = {
    "unclosed scripts": "<script>x " * 200_000,
    "unclosed tags": '<div class="' * 200_000,
    "unclosed comments": "<!-- a " * 300_000,
    "nesting lxml refuses": "<div>" * 50_000 + "deep text",
}


def hostile_html(name: str) -> bytes:
    return mail("Content-Type: text/html", HOSTILE_HTML[name])


# name -> the mail, for the bench
ALL = {
    "1 MB header line": megabyte_header_line,
    "1 MB address header": megabyte_address_header,
    "1 MB header in a nested part": megabyte_header_in_a_nested_part,
    "10,000 nested parts": ten_thousand_nested_parts,
    "450 levels over 1.5 MB": deep_nesting_over_a_big_body,
    "10,000 sibling parts": ten_thousand_sibling_parts,
    "5 MB quoted thread": five_megabyte_quoted_thread,
    "2.7 MB HTML only": huge_html_only,
    **{f"HTML: {name}": (lambda name=name: hostile_html(name)) for name in HOSTILE_HTML},
}
