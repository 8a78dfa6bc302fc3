"""Delivery failure reports (bounces): recognise them and read what failed.

Two sources are read: RFC 3464 delivery-status fields (in a message/delivery-status
part, or pasted into the text by MTAs that do not use MIME), and the free text that
qmail, Exim, Postfix, Sendmail, Exchange, Yahoo, GroupWise, Lotus and friends write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property

from . import mailview as mv

ADDRESS = r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
_ADDRESS_RE = re.compile(ADDRESS)
_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_MSGID_RE = re.compile(r"^\s*(?:message-id|in-reply-to)\s*:\s*(<[^<>\s]+>)", re.I | re.M)

_DAEMON_LOCALPARTS = frozenset({
    "mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "maildaemon", "postmaster",
    "post_master", "mdaemon", "mail.delivery.system", "mail-delivery-system", "bounce", "bounces",
    "bouncer", "mail-bounces", "mail-bounce", "mmdf", "majordomo-owner",
})
_NEVER_FAILED_LOCALPARTS = frozenset({"mailer-daemon", "mailer_daemon", "mailerdaemon",
                                      "mail-daemon", "maildaemon", "postmaster", "post_master"})
_DAEMON_NAME = re.compile(
    r"mail ?delivery|mailer.?daemon|postmaster|delivery (status|subsystem|system)|"
    r"mail system|internet mail delivery", re.I)

# SUBJECT_PATTERNS, BODY_PATTERNS and STRONG_SIGNATURES are written in lower case and searched in
# lower-cased text: with re.I, Python's re cannot skip ahead on literal prefixes, and the body
# search took 0.7 ms a mail (bench corpus), 8 times longer than on lower-cased text.
SUBJECT_PATTERNS = re.compile(
    r"undeliver|undelivered|returned mail|return(ed)? to sender|delivery (status|fail|notif|"
    r"report|problem|error|delayed|warning)|failure notice|fail(ed|ure) delivery|delivery has "
    r"failed|mail delivery|could not (be )?(delivered|send)|not (be )?delivered|non[- ]?deliver|"
    r"nondeliverable|unable to deliver|user unknown|unknown user|mail system error|"
    r"message (status|not delivered|rejected|could not)|rejected|bounce|warning: (could not|"
    r"message)|delayed mail|mail could not|permanent error|ndn|delivery notification|"
    r"unzustellbar|nicht zugestellt|unbestellbar|non recapitabile|no entregado|"
    r"non remis|impossible de remettre|olevererbar|onbestelbaar|fehlgeschlagen|"
    r"mail failure|\berror\b|エラー|不達|配信",
    )

# A subject that *starts* like an MTA notice (a person's subject merely mentioning it does not).
NOTICE_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?(?:undeliver|undelivered|returned mail|mail delivery|delivery "
    r"(?:status|fail|notif|report|problem|error|warning|delayed)|failure notice|non[- ]?deliver|"
    r"nondeliverable|mail could not|message (?:not delivered|could not)|could not deliver|"
    r"delivery has failed|warning: could not|mail system error|メールエラー|エラー通知|不達)"
    r"|\(delivery failed\)", re.I)
BODY_PATTERNS = re.compile(
    r"could not be delivered|couldn't be delivered|wasn't delivered|was not delivered|"
    r"undeliverable|undelivered|delivery (to the following|has failed|failed|"
    r"status notification|problem|error|attempts? (failed|will continue))|permanent(ly)? "
    r"(error|fatal|failure)|fatal errors?|user unknown|unknown user|no such (user|address|"
    r"mailbox|recipient|domain)|mailbox (unavailable|is full|full|not found|does not exist|"
    r"disabled|inactive)|recipient (address )?rejected|address rejected|unable to deliver|"
    r"returned mail|i'm sorry to have to inform you|i'm afraid i wasn't able|this is the "
    r"qmail-send program|created automatically by mail delivery software|mail delivery "
    r"(failed|subsystem|system)|host unknown|over quota|quota exceeded|"
    r"did not reach the following recipient|failed to deliver|"
    r"message could not be sent|not be delivered|could not deliver|delivery failure|"
    r"not (a )?valid (recipient|user|mailbox)|account (is )?(disabled|suspended|inactive|"
    r"expired)|does not exist|not delivered|retry time|deferred|will be retried|"
    r"message (was|has been) (rejected|blocked|bounced)|returned to sender|"
    r"user not found|invalid (mailbox|recipient|address)|not accepted|postponed|full mailbox|"
    r"continue to try to deliver|not a valid user|"
    r"nicht zugestellt|unzustellbar|non recapitabile|no pudo ser entregado|n'a pas pu",
    )
# An enhanced status code (RFC 3463: "5.1.1", often after "550 " or "#"), the other body clue. Kept
# out of BODY_PATTERNS: an alternative without a literal start made Python's re try the whole
# alternation at every character, 5.7 times slower over the bench corpus (275 against 48 µs a mail).
STATUS_CODE = re.compile(r"[45]\.\d{1,3}\.\d{1,3}\b")

STRONG_SIGNATURES = re.compile(
    r"this is the qmail-send program|created automatically by mail delivery software|"
    r"the following addresses had permanent fatal errors|this is the mail system at host|"
    r"delivery to the following recipients? (failed|has been delayed)|"
    r"your message did not reach some or all of the intended recipients|"
    r"i'm sorry to have to inform you that (your|the) message|"
    r"message could not be delivered to the following recipients|"
    r"delivery has failed to these recipients|this message was undeliverable due to|"
    r"sorry, we were unable to deliver your message|unable to deliver message to the "
    r"following|failed to deliver to the following recipients?|"
    r"the following recipients? (could not|did not|has not|have not) (be )?(received?|"
    r"delivered)|a message that you sent (could not be delivered|was rejected|contained)",
    )

_DELAY_PHRASES = re.compile(
    r"this is a warning|warning message only|will (be retried|keep trying|try again|"
    r"continue trying|retry)|still (being retried|trying|in the queue)|not yet been "
    r"delivered|delivery (has been |is )?delayed|delayed mail|has been delayed|"
    r"delivery attempts will continue|no action is required on your part|"
    r"could not be delivered for [\d.]+ (hours|days)",
    re.I)
_PERMANENT_PHRASES = re.compile(
    r"permanent|fatal|gave up|giving up|given up|has been returned|could not be delivered to "
    r"the following|failed permanently|undeliverable|no such user|unknown user|user unknown",
    re.I)

_ORIGINAL_MARKERS = re.compile(
    r"^[ \t]*(?:-{2,}|={2,}|\*{2,})?[ \t]*(?:"
    r"below this line is a copy of the message|this is a copy of (?:the|your) message|"
    r"(?:the )?original message (?:follows|headers? follows?|was)?\s*[-=*.:]*\s*$|"
    r"(?:returned|unsent|undelivered|original) (?:message|mail)(?: headers)?\s*(?:follows|"
    r"below)?\s*[-=*:.]*\s*$|(?:start of )?(?:returned|unsent|undelivered|original) "
    r"(?:message|mail)s?(?: headers)? (?:follows|below)|start of (?:returned|original) message|"
    r"(?:message|original) headers? follows?|copy of (?:the )?(?:original )?message|"
    r"the text you sent follows|your message reads|headers of your message follow|"
    r"the header and (?:top|first) .{0,40}follows?|"
    r"the original (?:message|headers) (?:is|are|was|were) (?:attached|below|included)"
    r"|original message headers?)",
    re.I | re.M)
_ORIGINAL_HEADER_BLOCK = re.compile(
    r"^(?:Received: from |Return-Path: <|Content-Type:\s*(?:message/rfc822|text/rfc822-headers))",
    re.M | re.I)
_ORIGINAL_PATTERNS = ((_ORIGINAL_MARKERS, ("message", "mail", "header", "original", "text you sent")),
                      (_ORIGINAL_HEADER_BLOCK, ("received: from ", "return-path: <", "content-type:")))
_QUOTED_HEADER_LINE = re.compile(
    r"^\s*(?:>\s*)?(?:from|to|cc|bcc|reply-to|sender|return-path|received|delivered-to|"
    r"x-[\w-]+|message-id|in-reply-to|references|envelope-to|resent-[\w-]+|dkim-signature|"
    r"list-[\w-]+|authentication-results|arc-[\w-]+|errors-to)\s*:", re.I)
_DSN_FIELD = re.compile(r"^([A-Za-z][\w-]*)\s*:\s*(.*)$")
_ACTION_FAILURE = {"failed", "delayed"}
_ACTION_SUCCESS = {"delivered", "relayed", "expanded", "deliverable"}
_REPORT_PART_TYPES = {"message/delivery-status", "message/global-delivery-status",
                      "text/delivery-status"}


@dataclass(frozen=True)
class Bounce:
    """What a delivery failure report says about the mail that failed."""

    recipients: list[str] = field(default_factory=list)
    temporary: bool = False
    status: str | None = None
    diagnostic: str | None = None
    original_message_id: str | None = None
    return_path_token: str | None = None


@dataclass(frozen=True)
class _Recipient:
    address: str
    action: str
    status: str | None
    diagnostic: str | None


# --- delivery-status fields ---------------------------------------------------------------

@mv.remembered
def _report_parts(msg: Message, *, nested: bool = False) -> list[Message]:
    return [p for p in mv.walk(msg, into_messages=nested) if mv.content_type(p) in _REPORT_PART_TYPES]


def _report_text(part: Message) -> str:
    """The fields of a delivery-status part as text, blocks separated by blank lines."""
    blocks = mv.subparts(part)
    if blocks:
        text = "\n\n".join(mv.headers_as_text(b) for b in blocks)
        if re.search(r"^(final|original)-recipient\s*:", text, re.I | re.M):
            return text
    return mv.part_text(part)


def _field_blocks(text: str) -> list[dict[str, str]]:
    """Split 'Name: value' text into blocks at blank lines, unfolding continuation lines."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, None
            continue
        if line[:1] in " \t" and last:
            current[last] += " " + line.strip()
            continue
        match = _DSN_FIELD.match(line)
        if match:
            last = match.group(1).lower()
            current.setdefault(last, match.group(2).strip())
    if current:
        blocks.append(current)
    return blocks


def _typed_value(value: str) -> str:
    """'rfc822; a@b' -> 'a@b'; 'smtp; 550 ...' -> '550 ...'."""
    return value.split(";", 1)[1].strip() if ";" in value else value.strip()


def _address_in(value: str) -> str | None:
    found = _ADDRESS_RE.search(_typed_value(value))
    return found.group(0).lower().strip(".") if found else None


def _recipients_from_fields(text: str) -> list[_Recipient]:
    recipients = []
    for block in _field_blocks(text):
        address = _address_in(block.get("original-recipient", "")) or _address_in(
            block.get("final-recipient", ""))
        if not address:
            continue
        status = _STATUS_RE.search(block.get("status", ""))
        recipients.append(_Recipient(
            address=address,
            action=block.get("action", "").split()[0].lower() if block.get("action") else "",
            status=".".join(status.groups()) if status else None,
            diagnostic=_typed_value(block["diagnostic-code"]) if block.get("diagnostic-code") else None,
        ))
    return recipients


@mv.remembered
def report_recipients(msg: Message, *, nested: bool = False) -> list[_Recipient]:
    """Per-recipient fields of every delivery-status part; `nested` also looks in attached mails."""
    found: list[_Recipient] = []
    for part in _report_parts(msg, nested=nested):
        found.extend(_recipients_from_fields(_report_text(part)))
    return found


def has_delivery_report(msg: Message) -> bool:
    """True for multipart/report; report-type=delivery-status, or a delivery-status part."""
    if mv.content_type(msg) == "multipart/report" and (
            mv.content_param(msg, "report-type") or "").endswith("delivery-status"):
        return True
    return bool(_report_parts(msg))


def is_success_report(msg: Message) -> bool:
    """A delivery report whose every recipient was delivered, relayed or expanded."""
    recipients = report_recipients(msg)
    return bool(recipients) and all(r.action in _ACTION_SUCCESS for r in recipients)


# --- free text ----------------------------------------------------------------------------

_NOT_NOTICE = ("text/rfc822-headers", "text/delivery-status")


@mv.remembered
def notice_text(msg: Message) -> str:
    """The human-readable text of the report, without the returned original message."""
    texts = []
    for part in mv.walk(msg, into_messages=False):
        ctype = mv.content_type(part)
        broken_multipart = ctype.startswith("multipart/") and not mv.subparts(part)
        if broken_multipart or (ctype.startswith("text/") and ctype not in _NOT_NOTICE):
            text = mv.part_text(part)
            if ctype == "text/html":
                text = re.sub(r"<[^>]+>", " ", text)
            texts.append(text)
    return _cut_original(("\n".join(texts))[:50_000])


def _cut_original(text: str) -> str:
    """Drop the copy of the original message that many MTAs paste below the notice.

    Every alternative of each pattern holds one of its words below. On an ASCII text (nearly
    every mail's) the patterns ignore case exactly as ``str.lower`` does, so a text whose lower
    case holds none of a pattern's words is not searched with it (34 µs a mail of the daemon's,
    most mails being no bounce). Any other text is searched as it is."""
    lowered = text.lower() if text.isascii() else None
    for pattern, words in _ORIGINAL_PATTERNS:
        if lowered is not None and not any(word in lowered for word in words):
            continue
        marker = pattern.search(text)
        if marker:
            text = text[:marker.start()]
            lowered = None if lowered is None else lowered[:marker.start()]
    return text


def sender_is_daemon(msg: Message) -> bool:
    """From or Sender is a mailer-daemon/postmaster style address or name."""
    for name in ("from", "sender"):
        for address in mv.addresses(msg, name):
            if address.split("@")[0] in _DAEMON_LOCALPARTS:
                return True
        if any(_DAEMON_NAME.search(n) for n in mv.display_names(msg, name)):
            return True
    return False


class _Clues:
    """What the bounce signals look at, each worked out once per mail and only when a signal asks:
    the signals test their cheap conditions first (a sender, a field, a subject), so most mails
    never run the long body alternation (47 µs) or the personal-client check (18 µs)."""

    def __init__(self, msg: Message, notice: str):
        self.msg, self.notice = msg, notice

    @cached_property
    def lowered(self) -> str:  # notice.lower(), for the patterns written in lower case
        return self.notice.lower()

    @cached_property
    def subject_hit(self) -> bool:
        return bool(SUBJECT_PATTERNS.search((mv.header(self.msg, "subject") or "").lower()))

    @cached_property
    def body_hit(self) -> bool:
        return bool(BODY_PATTERNS.search(self.lowered) or STATUS_CODE.search(self.lowered))

    @cached_property
    def from_person(self) -> bool:
        return written_by_person(self.msg)


# Ordered (reason, signal) table for mails without an RFC 3464 part; the first that fires wins.
# Within a signal the cheap conditions come first (each is a pure test, so the order changes no answer).
_TEXT_SIGNALS = (
    ("delivery-status fields in the text",
     lambda c: bool(_recipients_from_fields(c.notice)) and c.body_hit and not c.from_person),
    ("sent by MAILER-DAEMON", lambda c: sender_is_mailer_daemon(c.msg)),
    ("Amazon SES bounce notification", lambda c: amazon_ses_bounce(c.notice)),
    ("MTA failure notice text", lambda c: bool(STRONG_SIGNATURES.search(c.lowered)) and not c.from_person),
    ("sent by a postmaster/delivery system with a failure notice",
     lambda c: sender_is_daemon(c.msg) and (c.subject_hit or c.body_hit)),
    ("empty return path and a failure notice text", lambda c: null_sender(c.msg) and c.body_hit),
    ("failure notice subject and text",
     lambda c: bool(NOTICE_SUBJECT.search(mv.header(c.msg, "subject") or "")) and c.body_hit and not c.from_person),
)

_FORWARD_PREFIX = re.compile(r"^\s*(?:fwd?|wg|vb|tr|rv|enc|doorst|i|vs|fs)\s*:", re.I)
_PERSONAL_CLIENT = re.compile(
    r"thunderbird|outlook|apple mail|iphone mail|ipad mail|mutt|evolution|kmail|roundcube|"
    r"alpine|aerc|s-nail|claws|sylpheed|seamonkey|gmail|mailmate|airmail|spark|k-9|fairemail", re.I)


def written_by_person(msg: Message) -> bool:
    """A forward, or a mail from a personal mail client: a person writing about a bounce."""
    if _FORWARD_PREFIX.match(mv.header(msg, "subject") or ""):
        return True
    agents = mv.header_values(msg, "user-agent") + mv.header_values(msg, "x-mailer")
    return any(_PERSONAL_CLIENT.search(agent) for agent in agents)


def bounce_evidence(msg: Message) -> str | None:
    """Why this mail is a failure report, or None when it does not look like one."""
    if has_delivery_report(msg):
        return None if is_success_report(msg) else "multipart/report delivery-status (RFC 3464)"
    clues = _Clues(msg, notice_text(msg))
    return next((reason for reason, signal in _TEXT_SIGNALS if signal(clues)), None)


def sender_is_postmaster(msg: Message) -> bool:
    """From is MAILER-DAEMON@ or postmaster@ (any spelling of either)."""
    return any(a.split("@")[0] in _NEVER_FAILED_LOCALPARTS for a in mv.addresses(msg, "from"))


def sender_is_mailer_daemon(msg: Message) -> bool:
    """From is MAILER-DAEMON@ itself (not merely a postmaster-like name)."""
    return any(a.split("@")[0] in ("mailer-daemon", "mailer_daemon", "mailerdaemon")
               for a in mv.addresses(msg, "from"))


def null_sender(msg: Message) -> bool:
    """Return-Path <> or an empty From, as RFC 5321 asks of delivery reports."""
    paths = mv.header_values(msg, "return-path")
    if paths and all(p.strip() in ("<>", "") for p in paths):
        return True
    froms = mv.header_values(msg, "from")
    return bool(froms) and all(f.strip() in ("<>", "") for f in froms)


_SES_BOUNCE = re.compile(r"\\?\"notificationType\\?\"\s*:\s*\\?\"Bounce\\?\"")


def amazon_ses_bounce(text: str) -> bool:
    """An Amazon SES/SNS JSON notification of type Bounce."""
    return bool(_SES_BOUNCE.search(text))


# --- addresses, status, temporary ----------------------------------------------------------

_LABELLED = (r"(?:(?:intended|failed|final|original|bad|unknown|invalid) recipients?(?: address)?"
             r"|(?:unknown|invalid) (?:user|address|mailbox))")
_LINE_PATTERNS = [
    re.compile(_LABELLED + r"\s*:\s*[<\"']?(" + ADDRESS + r")", re.I),      # 'Failed Recipient: a@b'
    re.compile(r"addressed to [<\"']?(" + ADDRESS + r")", re.I),
    re.compile(r"delivery failed \d+ attempts:\s*(" + ADDRESS + r")", re.I),  # SMTP32
    re.compile(r"^\s*<(" + ADDRESS + r")>\s*(?::|\(expanded)", re.M),       # qmail, postfix
    re.compile(r"^\s*(" + ADDRESS + r")\s*:\s", re.M),                     # postfix without <>
    re.compile(r"^\s*[<\"']?(" + ADDRESS + r")[>\"']?\s*$", re.M),           # exim, sendmail lists
    re.compile(r"^\s*(" + ADDRESS + r") on \w{3}, ", re.M),                 # Exchange 5.5
    re.compile(r"(" + ADDRESS + r")>?\.\.\.\s", re.M),                     # sendmail 'a@b... User'
    re.compile(r"rcpt to:\s*<(" + ADDRESS + r")>", re.I),
    re.compile(r"(?:recipient|address|user|mailbox|to)\s*(?:address)?\s*[:=]?\s*[<\"'\[(]("
               + ADDRESS + r")", re.I),
]


_AOL_SCREEN_NAMES = re.compile(
    r"following recipients could not be delivered[^\n]*:[ \t]*\n((?:[ \t]+[\w.-]+[ \t]*\n?)+)", re.I)


def aol_recipients(msg: Message, notice: str) -> list[str]:
    """AOL lists bare screen names under 'the following recipients could not be delivered'."""
    if not any(a.endswith("aol.com") for a in mv.addresses(msg, "from")):
        return []
    found = _AOL_SCREEN_NAMES.search(notice)
    return [f"{name.lower()}@aol.com" for name in found.group(1).split()] if found else []


def _own_addresses(msg: Message) -> set[str]:
    own = set()
    for name in ("from", "to", "cc", "sender", "reply-to", "return-path", "delivered-to",
                 "x-original-to", "envelope-to", "errors-to"):
        own.update(mv.addresses(msg, name))
    return own


def _plausible(address: str, excluded: set[str]) -> bool:
    local = address.split("@")[0]
    return address not in excluded and local not in _NEVER_FAILED_LOCALPARTS


_ORIGINAL_ADDRESS_LINE = re.compile(
    r"^\s*(?:>\s*)?(?:from|to|cc|reply-to|sender|errors-to|return-path)\s*:(.*)$", re.I | re.M)


def _original_header_addresses(msg: Message) -> set[str]:
    """Addresses in the header lines of the returned original (list and sender addresses)."""
    found = set()
    for line in _ORIGINAL_ADDRESS_LINE.findall(_all_text(msg)):
        found.update(a.lower() for a in _ADDRESS_RE.findall(line))
    for part in mv.walk(msg):
        if part is not msg and mv.content_type(part) in ("message/rfc822", "message/global"):
            for child in mv.subparts(part):
                for name in ("from", "cc", "reply-to", "sender", "errors-to", "return-path"):
                    found.update(mv.addresses(child, name))
    return found


def _clean(address: str) -> str:
    address = address.lower().strip(".")
    return re.sub(r"^(?:smtp|rfc822)[=:]", "", address)


def _notice_lines_without_headers(notice: str) -> str:
    return "\n".join(line for line in notice.splitlines() if not _QUOTED_HEADER_LINE.match(line))


def text_recipients(msg: Message, notice: str) -> list[str]:
    """Failed addresses read from the notice text, best patterns first."""
    screen_names = aol_recipients(msg, notice)
    if screen_names:
        return screen_names
    excluded = _own_addresses(msg)
    quoted = _original_header_addresses(msg)
    text = _notice_lines_without_headers(notice)
    for pattern in _LINE_PATTERNS:
        found = [a for a in _unique(_clean(x) for x in pattern.findall(text)) if _plausible(a, excluded)]
        if found:
            return _prefer_unquoted(found, quoted)
    found = [a for a in _unique(_clean(x) for x in _ADDRESS_RE.findall(text)) if _plausible(a, excluded)]
    return _prefer_unquoted(found, quoted)


def _prefer_unquoted(found: list[str], quoted: set[str]) -> list[str]:
    """Drop addresses that only echo the original's From/Cc/list headers, unless none is left."""
    kept = [a for a in found if a not in quoted]
    return kept or found


def _unique(items) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _text_is_temporary(subject: str, notice: str) -> bool:
    if not (_DELAY_PHRASES.search(notice) or re.search(r"warning|delay", subject, re.I)):
        return False
    return not _PERMANENT_PHRASES.search(notice)


def _first_status(text: str) -> str | None:
    found = _STATUS_RE.search(text)
    return ".".join(found.groups()) if found else None


def _diagnostic_line(notice: str) -> str | None:
    """The first line of the notice that names an SMTP reply code or status."""
    for line in notice.splitlines():
        if re.search(r"\b[45]\d\d\b|[45]\.\d{1,3}\.\d{1,3}", line) and len(line.strip()) > 3:
            return line.strip()[:500]
    return None


# --- the original message and the return path ----------------------------------------------

def original_message_id(msg: Message) -> str | None:
    """Message-ID of the mail that failed: attached copy, quoted headers, then In-Reply-To."""
    for part in mv.walk(msg):
        if part is msg:
            continue
        ctype = mv.content_type(part)
        if ctype in ("message/rfc822", "message/global"):
            for child in mv.subparts(part):
                found = mv.header(child, "message-id")
                if found:
                    return found.strip()
        if ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            found = _MSGID_RE.search(mv.part_text(part))
            if found:
                return found.group(1)
    found = _MSGID_RE.search(_all_text(msg))
    if found:
        return found.group(1)
    reply_to = mv.header(msg, "in-reply-to")
    match = re.search(r"<[^<>\s]+>", reply_to or "")
    return match.group(0) if match else None


def _all_text(msg: Message) -> str:
    return "\n".join(mv.part_text(p) for p in mv.walk(msg) if not mv.subparts(p)
                     and mv.content_type(p).startswith(("text/", "message/")))[:500_000]


def return_path_token(msg: Message) -> str | None:
    """The '+TOKEN' of a VERP/signed return address the bounce was sent to."""
    for name in ("to", "delivered-to", "x-original-to", "envelope-to"):
        for address in mv.addresses(msg, name):
            local = address.split("@")[0]
            if "+" in local:
                return _original_case_token(msg, name, address) or local.split("+", 1)[1]
    return None


def _original_case_token(msg: Message, name: str, address: str) -> str | None:
    for value in mv.header_values(msg, name):
        found = re.search(re.escape(address), value, re.I)
        if found:
            return found.group(0).split("@")[0].split("+", 1)[1]
    return None


# --- the public entry ---------------------------------------------------------------------

def parse_bounce(msg: Message) -> Bounce | None:
    """Read a failure report; None when the mail is not one."""
    try:
        if not bounce_evidence(msg):
            return None
        return _read_bounce(msg)
    except Exception:  # noqa: BLE001 - a malformed report still must not stop the mail
        return None


def _read_bounce(msg: Message) -> Bounce:
    subject = mv.header(msg, "subject") or ""
    notice = notice_text(msg)
    reported = (report_recipients(msg) or _recipients_from_fields(notice)
                or report_recipients(msg, nested=True))
    failed = [r for r in reported if r.action not in _ACTION_SUCCESS]
    if failed:
        recipients = _unique(r.address for r in failed)
        temporary = all(r.action == "delayed" for r in failed) if any(r.action for r in failed) \
            else _text_is_temporary(subject, notice)
        status = next((r.status for r in failed if r.status), None) or _first_status(notice)
        diagnostic = next((r.diagnostic for r in failed if r.diagnostic), None)
    else:
        recipients = text_recipients(msg, notice)
        temporary = _text_is_temporary(subject, notice)
        status = _first_status(notice)
        diagnostic = _diagnostic_line(notice)
    return Bounce(
        recipients=recipients,
        temporary=temporary,
        status=status,
        diagnostic=diagnostic or _diagnostic_line(notice),
        original_message_id=original_message_id(msg),
        return_path_token=return_path_token(msg),
    )
