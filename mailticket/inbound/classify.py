"""Is an incoming mail from a human, an auto-reply, a bulk/notification mail, a bounce or our own loop?

The decision is an ordered table of small named rules; the first that fires wins and its
reason is kept in the verdict, so the log can say why a mail was not acknowledged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from typing import Callable

from . import bounces
from . import mailview as mv
from .mailview import normalise_line_ends

__all__ = ["Verdict", "Rule", "RULES", "classify", "normalise_line_ends"]

KINDS = ("human", "auto_reply", "auto_generated", "bounce", "loop")


@dataclass(frozen=True)
class Verdict:
    """The class of a mail, the rule that decided it and why."""

    kind: str
    reason: str
    rule: str
    suppress_autoreply: bool

    @property
    def may_acknowledge(self) -> bool:
        """Only a human mail whose sender did not ask for silence gets an acknowledgement."""
        return self.kind == "human" and not self.suppress_autoreply


@dataclass(frozen=True)
class Context:
    """What a rule may look at besides the message."""

    loop_marker: str
    own_addresses: frozenset[str]


Check = Callable[[Message, Context], "str | None"]


@dataclass(frozen=True)
class Rule:
    """A named check: returns the reason when it fires, None otherwise."""

    name: str
    kind: str
    check: Check


# --- small helpers -------------------------------------------------------------------------

def _strip_comments(value: str) -> str:
    """Header value without (comments), lowercased, spaces squeezed."""
    previous = None
    while previous != value:
        previous, value = value, re.sub(r"\([^()]*\)", " ", value)
    return " ".join(value.split()).lower()


def _keyword(msg: Message, name: str) -> str | None:
    """The first token of a header value ('auto-replied', 'bulk'), or None when missing."""
    value = mv.header(msg, name)
    if value is None:
        return None
    cleaned = _strip_comments(value)
    return re.split(r"[\s;,]", cleaned, maxsplit=1)[0] if cleaned else ""


# --- the checks ----------------------------------------------------------------------------

def loop_marker(msg: Message, ctx: Context) -> str | None:
    if ctx.loop_marker and mv.has_header(msg, ctx.loop_marker):
        return f"carries our loop marker header {ctx.loop_marker}"
    return None


def own_address_sender(msg: Message, ctx: Context) -> str | None:
    own = {a.lower() for a in ctx.own_addresses}
    for address in mv.addresses(msg, "from"):
        if address in own:
            return f"From is our own address {address}"
    return None


_CHALLENGE_HEADERS = ("x-boxbe-notice", "x-bluebottle-request", "x-challenge-response",
                      "x-spamarrest-challenge", "x-cr-challenge")
_CHALLENGE_TEXT = re.compile(
    r"sender not pre-?approved|requires confirmation|(allowed|approved|safe) (senders? )?list"
    r".{0,80}(click|link|confirm|verif)|click .{0,60}(verify|confirm) (that )?you|"
    r"verify (that )?you are (a )?(real|human)|challenge[- ]response|x-boxbe-notice",
    re.I | re.S)


def challenge_response(msg: Message, ctx: Context) -> str | None:
    for name in _CHALLENGE_HEADERS:
        if mv.has_header(msg, name):
            return f"challenge-response header {name}"
    if not _looks_machine_sent(msg):
        return None
    text = bounces.notice_text(msg) + "\n" + _report_text(msg)
    found = _CHALLENGE_TEXT.search(text)
    return f"challenge-response request ('{found.group(0)[:40]}')" if found else None


def _looks_machine_sent(msg: Message) -> bool:
    """A delivery report, or a null/daemon sender: only then is challenge wording trusted."""
    return bounces.has_delivery_report(msg) or bounces.null_sender(msg) or bounces.sender_is_daemon(msg)


def _report_text(msg: Message) -> str:
    return "\n".join(r.diagnostic or "" for r in bounces.report_recipients(msg))


def delivery_success(msg: Message, ctx: Context) -> str | None:
    if bounces.has_delivery_report(msg) and bounces.is_success_report(msg):
        return "delivery-status report of a successful delivery (Action: delivered/relayed)"
    return None


def bounce(msg: Message, ctx: Context) -> str | None:
    return bounces.bounce_evidence(msg)


_OTHER_REPORTS = {"feedback-report": "abuse feedback report (ARF)",
                  "disposition-notification": "read receipt (MDN, RFC 8098)"}


def other_report(msg: Message, ctx: Context) -> str | None:
    if mv.content_type(msg) == "multipart/report":
        kind = mv.content_param(msg, "report-type") or ""
        return f"multipart/report: {_OTHER_REPORTS.get(kind, kind or 'unknown report')}"
    for part in mv.walk(msg, into_messages=False):
        if mv.content_type(part) == "message/feedback-report":
            return "abuse feedback report (ARF)"
    if _COMPLAINT_SUBJECT.match(mv.header(msg, "subject") or ""):
        return "abuse complaint (Hotmail JMRP style subject)"
    return None


_COMPLAINT_SUBJECT = re.compile(r"\s*complaint about message from \S+\s*$", re.I)


def auto_submitted_replied(msg: Message, ctx: Context) -> str | None:
    value = _keyword(msg, "auto-submitted")
    if value == "auto-replied":
        return "Auto-Submitted: auto-replied (RFC 3834)"
    return None


def auto_submitted_other(msg: Message, ctx: Context) -> str | None:
    value = _keyword(msg, "auto-submitted")
    if value and value != "no":
        return f"Auto-Submitted: {value} (RFC 3834)"
    return None


_AUTOREPLY_HEADERS = {
    "x-autoreply": None, "x-autorespond": None, "x-autoresponder": None, "x-auto-reply": None,
    "x-autoreply-from": None, "x-mail-autoreply": None, "x-vacation": None,
    "x-autogenerated": "reply",
    "x-fc-machinegenerated": None, "x-cr-autoreply": None,
}


def autoreply_header(msg: Message, ctx: Context) -> str | None:
    for name, wanted in _AUTOREPLY_HEADERS.items():
        value = mv.header(msg, name)
        if value is None:
            continue
        if wanted is None or wanted in value.lower():
            if _strip_comments(value) in ("no", "false", "0"):
                continue
            return f"out-of-office header {name}"
    return None


def precedence_auto_reply(msg: Message, ctx: Context) -> str | None:
    return "Precedence: auto_reply" if _keyword(msg, "precedence") == "auto_reply" else None


def precedence_bulk(msg: Message, ctx: Context) -> str | None:
    value = _keyword(msg, "precedence")
    return f"Precedence: {value}" if value in ("bulk", "junk", "list") else None


_OOF_SUBJECT = re.compile(
    r"^\s*[\[(]?\s*(?:automatic reply|auto(?:matic)?[ -]?(?:reply|response)|autoreply|auto|"
    r"autosvar|automatiskt? svar|automatische antwort|abwesenheitsnotiz|abwesend|"
    r"out of (?:the )?office(?: auto ?reply)?|frånvaro(?:meddelande)?|risposta automatica|"
    r"r[ée]ponse automatique|respuesta autom[áa]tica|automatyczna odpowied\w*|"
    r"automatisch antwoord|fuera de la oficina|on vacation|vacation(?: reply)?|"
    r"poza biurem)\s*[:\])]", re.I)
_OOF_SUBJECT_ANYWHERE = re.compile(
    r"\((?:automatic|auto) (?:response|reply)\)|\bis out of (?:the )?office\b|"
    r"out of (?:the )?office auto ?reply|\bautomatic reply:|\bautosvar:|abwesenheitsnotiz:",
    re.I)


def out_of_office_subject(msg: Message, ctx: Context) -> str | None:
    subject = mv.header(msg, "subject") or ""
    bare = re.sub(r"^\s*((re|aw|sv|fw|fwd|vs|antw)\s*:\s*)+", "", subject, flags=re.I)
    if _OOF_SUBJECT.search(bare) or _OOF_SUBJECT_ANYWHERE.search(subject):
        return f"out-of-office subject '{subject[:60]}'"
    return None


_LIST_HEADERS = ("list-id", "list-unsubscribe", "list-post", "x-mailing-list", "mailing-list",
                 "x-campaign", "feedback-id", "x-mailgun-sid", "x-sfmc-stack")


def list_headers(msg: Message, ctx: Context) -> str | None:
    for name in _LIST_HEADERS:
        if mv.has_header(msg, name):
            return f"mailing-list/bulk header {name}"
    return None


def empty_return_path(msg: Message, ctx: Context) -> str | None:
    values = mv.header_values(msg, "return-path")
    if values and all(v.strip() in ("<>", "", "< >") for v in values):
        return "empty return path <> (sent by an automatic system)"
    return None


def mailer_daemon_sender(msg: Message, ctx: Context) -> str | None:
    if bounces.sender_is_postmaster(msg):
        return f"sent by a mailer-daemon/postmaster ({', '.join(mv.addresses(msg, 'from'))[:80]})"
    return None


RULES: tuple[Rule, ...] = (
    Rule("loop_marker", "loop", loop_marker),
    Rule("own_address", "loop", own_address_sender),
    Rule("challenge_response", "auto_generated", challenge_response),
    Rule("delivery_success", "auto_generated", delivery_success),
    Rule("bounce", "bounce", bounce),
    Rule("other_report", "auto_generated", other_report),
    Rule("auto_submitted_replied", "auto_reply", auto_submitted_replied),
    Rule("autoreply_header", "auto_reply", autoreply_header),
    Rule("precedence_auto_reply", "auto_reply", precedence_auto_reply),
    Rule("out_of_office_subject", "auto_reply", out_of_office_subject),
    Rule("auto_submitted", "auto_generated", auto_submitted_other),
    Rule("precedence_bulk", "auto_generated", precedence_bulk),
    Rule("list_headers", "auto_generated", list_headers),
    Rule("empty_return_path", "auto_generated", empty_return_path),
    Rule("mailer_daemon", "auto_generated", mailer_daemon_sender),
)


# Loop and auto-submission headers that mail filters and other ticket systems write on what they
# send: (header, values that mean "no", who writes it). A mail carrying one is kept and threaded as
# usual (a person may have written it: an RT correspondence, a Zendesk agent's comment) but never
# gets an automatic answer, which is how those systems avoid answering each other in a loop.
FOREIGN_LOOP_HEADERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("x-loop", (), "procmail/formail (`formail -A \"X-Loop: ADDR\"`), SmartList, Majordomo; OTRS/Znuny "
                   "auto-responses"),
    ("x-no-loop", (), "OTRS/Znuny PostMaster (read as a loop marker there)"),
    ("x-otrs-loop", ("no", "false"), "OTRS/Znuny: every mail the system sends (yes or its address)"),
    ("rt-loop-prevention", (), "Request Tracker (RT) 5: the sending RT's rtname"),
    ("x-rt-loop-prevention", (), "Request Tracker (RT) 3-4: the sending RT's rtname"),
    ("x-zendesk-from-account-id", (), "Zendesk: every mail a Zendesk account sends"),
    ("x-jira-fingerprint", (), "Atlassian Jira / Jira Service Management notifications"),
    ("x-beenthere", (), "GNU Mailman 2: the list a mail already went through"),
)
# X-AutoReply-From, X-Autorespond and the like are out-of-office headers: the autoreply_header rule.


def foreign_loop_header(msg: Message) -> str | None:
    """The first loop or auto-submission header of another system that the mail carries."""
    for name, means_no, source in FOREIGN_LOOP_HEADERS:
        value = mv.header(msg, name)
        if value is None or _strip_comments(value) in means_no:
            continue
        return f"{name} ({source.split(':')[0].split(' (')[0]})"
    return None


def _asks_for_no_autoreply(msg: Message) -> str | None:
    """X-Auto-Response-Suppress (Exchange) naming All, AutoReply or OOF."""
    for value in mv.header_values(msg, "x-auto-response-suppress"):
        words = {w.lower() for w in re.split(r"[\s,;]+", value) if w}
        if words & {"all", "autoreply", "oof"}:
            return f"X-Auto-Response-Suppress: {value.strip()}"
    return None


def classify(msg: Message, *, loop_marker: str = "X-Mailticket-Loop",
             own_addresses: frozenset[str] = frozenset(), rules: tuple[Rule, ...] = RULES) -> Verdict:
    """Run the rules in order; the first that fires decides. Never raises."""
    with mv.memoised():
        return _classify(msg, Context(loop_marker=loop_marker, own_addresses=frozenset(own_addresses)), rules)


def _classify(msg: Message, ctx: Context, rules: tuple[Rule, ...]) -> Verdict:
    for rule in rules:
        try:
            reason = rule.check(msg, ctx)
        except Exception:  # noqa: BLE001 - one broken rule must not stop the mail
            reason = None
        if reason:
            return Verdict(kind=rule.kind, reason=reason, rule=rule.name, suppress_autoreply=True)
    suppress = _asks_for_no_autoreply(msg)
    if suppress:
        return Verdict("human", f"human mail; sender asked for no automatic answer ({suppress})",
                       "auto_response_suppress", True)
    looped = foreign_loop_header(msg)
    if looped:
        return Verdict("human", f"sent through another system that must not be answered automatically: {looped}",
                       "foreign_loop_header", True)
    return Verdict("human", "no automatic-mail rule fired", "human", False)
