"""Trust in a sender from the receiving server's ``Authentication-Results`` (RFC 8601).

Only the topmost ``Authentication-Results`` header counts (the one our own receiving
server added last), and only when its authserv-id is the one the admin trusts: any
header below it, or from another server id, may have been written by the sender.
It passes on ``dmarc=pass``, or on ``dkim=pass`` whose signing domain is aligned with
the From domain (the same domain, or one a subdomain of the other).
"""

import re
from dataclasses import dataclass, field
from email.message import Message

INTERNAL_HEADER_PREFIX = "x-mailticket-"


@dataclass(frozen=True)
class AuthVerdict:
    """Whether the mail proved its From domain, and why (for the log)."""

    passed: bool
    reason: str


@dataclass
class ResInfo:
    """One ``method=result prop=value ...`` clause of an Authentication-Results header."""

    method: str
    result: str
    props: dict[str, str] = field(default_factory=dict)


@dataclass
class AuthResults:
    """A parsed Authentication-Results header."""

    authserv_id: str
    results: list[ResInfo]


def trusted_verdict(msg: Message, trusted_authserv_id: str | None, from_domain: str) -> AuthVerdict:
    """Does the topmost, trusted Authentication-Results header vouch for ``from_domain``?"""
    if not trusted_authserv_id:
        return AuthVerdict(False, "no trusted authserv-id is configured")
    headers = msg.get_all("Authentication-Results") or []
    if not headers:
        return AuthVerdict(False, "no Authentication-Results header")
    parsed = parse_authentication_results(str(headers[0]))
    if parsed is None:
        return AuthVerdict(False, "the topmost Authentication-Results header cannot be parsed")
    if parsed.authserv_id.lower() != trusted_authserv_id.strip().lower():
        return AuthVerdict(
            False,
            f"the topmost Authentication-Results header is from {parsed.authserv_id!r}, "
            f"not the trusted {trusted_authserv_id!r}",
        )
    return _judge(parsed.results, _normal_domain(from_domain))


def _judge(results: list[ResInfo], from_domain: str) -> AuthVerdict:
    if not from_domain:
        return AuthVerdict(False, "the mail has no From domain")
    notes = []
    for res in sorted(results, key=lambda r: r.method != "dmarc"):  # DMARC first
        if res.method == "dmarc" and res.result == "pass":
            header_from = _normal_domain(res.props.get("header.from", ""))
            if not header_from or header_from == from_domain:
                return AuthVerdict(True, f"dmarc=pass for {from_domain}")
            notes.append(f"dmarc=pass is for {header_from}, not {from_domain}")
        elif res.method == "dkim" and res.result == "pass":
            signer = _dkim_domain(res.props)
            if signer and aligned(signer, from_domain):
                return AuthVerdict(True, f"dkim=pass by {signer}, aligned with {from_domain}")
            notes.append(f"dkim=pass by {signer or 'an unnamed domain'} is not aligned with {from_domain}")
    found = ", ".join(f"{r.method}={r.result}" for r in results) or "no results"
    detail = "; ".join(notes) if notes else found
    return AuthVerdict(False, f"no passing DMARC or aligned DKIM result ({detail})")


def _dkim_domain(props: dict[str, str]) -> str:
    if props.get("header.d"):
        return _normal_domain(props["header.d"])
    identity = props.get("header.i", "")
    return _normal_domain(identity.rpartition("@")[2])


def _normal_domain(domain: str) -> str:
    return domain.strip().strip(".").lower()


def aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed alignment without a public-suffix list: the same domain, or one is a
    subdomain of the other; a single-label domain (a TLD) never aligns."""
    signing_domain, from_domain = _normal_domain(signing_domain), _normal_domain(from_domain)
    if "." not in signing_domain or "." not in from_domain:
        return False
    return (
        signing_domain == from_domain
        or from_domain.endswith("." + signing_domain)
        or signing_domain.endswith("." + from_domain)
    )


# --- RFC 8601 parsing ---------------------------------------------------------------

_ATOM = re.compile(r'[^\s;=()"]+')


def parse_authentication_results(value: str) -> AuthResults | None:
    """Parse one header value; None when it does not start with an authserv-id."""
    clauses = _split_clauses(_tokens(value))
    if not clauses[0] or "=" in clauses[0]:
        return None  # no authserv-id (Exchange Online writes none)
    authserv_id = clauses[0][0]
    results = [res for clause in clauses[1:] if (res := _resinfo(clause))]
    return AuthResults(authserv_id, results)


def _tokens(value: str) -> list[str]:
    """Atoms, quoted-string contents, ``=`` and ``;``; comments are dropped."""
    tokens, i, n = [], 0, len(value)
    while i < n:
        char = value[i]
        if char.isspace():
            i += 1
        elif char == "(":
            i = _skip_comment(value, i)
        elif char == '"':
            text, i = _quoted(value, i)
            tokens.append(text)
        elif char in ";=":
            tokens.append(char)
            i += 1
        else:
            match = _ATOM.match(value, i)
            tokens.append(match.group())
            i = match.end()
    return tokens


def _skip_comment(value: str, i: int) -> int:
    depth = 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            i += 2
            continue
        depth += (char == "(") - (char == ")")
        i += 1
        if depth == 0:
            break
    return i


def _quoted(value: str, i: int) -> tuple[str, int]:
    out, i = [], i + 1
    while i < len(value) and value[i] != '"':
        if value[i] == "\\" and i + 1 < len(value):
            i += 1
        out.append(value[i])
        i += 1
    return "".join(out), i + 1


def _split_clauses(tokens: list[str]) -> list[list[str]]:
    clauses = [[]]
    for token in tokens:
        if token == ";":
            clauses.append([])
        else:
            clauses[-1].append(token)
    return clauses


def _resinfo(clause: list[str]) -> ResInfo | None:
    """``method[/version] = result [reason=..] [ptype.prop=value ...]``."""
    pairs = _pairs(clause)
    if not pairs or pairs[0][1] is None:
        return None
    method, result = pairs[0]
    props = {key.lower(): val for key, val in pairs[1:] if val is not None}
    return ResInfo(method.split("/")[0].lower(), result.lower(), props)


def _pairs(clause: list[str]) -> list[tuple[str, str | None]]:
    pairs, i = [], 0
    while i < len(clause):
        if i + 2 < len(clause) and clause[i + 1] == "=" and clause[i] != "=":
            pairs.append((clause[i], clause[i + 2]))
            i += 3
        else:
            if clause[i] != "=":
                pairs.append((clause[i], None))
            i += 1
    return pairs


def strip_internal_headers(msg: Message) -> list[str]:
    """Remove inbound headers that look like ours (``X-Mailticket-*``, any case).

    Returns the names removed, each once, as first written.
    """
    names = []
    for name in msg.keys():
        lowered = name.lower()
        if lowered.startswith(INTERNAL_HEADER_PREFIX) and lowered not in map(str.lower, names):
            names.append(name)
    for name in names:
        del msg[name]
    return names
