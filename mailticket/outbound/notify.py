"""Queue the mails mailticket sends, and write them: a template rendered, with the right headers.

``Mailer.send`` decides a mail's headers (``heading``) in the caller's transaction and queues
either the finished mail or, in the daemon, a draft that the sender process writes with
``mail_bytes`` when it sends it (``drafts``); ``assemble`` writes both, the same way.

Headers every mail carries: a fresh Message-ID on the service's domain (stored, so replies
thread), In-Reply-To/References that keep the recipient's thread, the ticket tag in the
subject, Auto-Submitted, X-Auto-Response-Suppress, our loop marker, the signed reply address
as Reply-To, and a signed return path that matches a bounce to its outbox entry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from . import drafts

from . import outbox

from . import wire
from ..db import run
from ..inbound.phones import international
from ..models import Attachment, Event, MessageRef, Outbox, Participant, RequesterLanguage, Ticket

log = logging.getLogger("mailticket.notify")

LOOP_HEADER = "X-Mailticket-Loop"
TICKET_HEADER = "X-Mailticket-Ticket"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def clean_header(value: str | None, limit: int = 900) -> str:
    """No CR, LF, NUL or other control character from a mail can add or break a header."""
    return _CONTROL.sub(" ", value or "").strip()[:limit]


_SPECIALS = re.compile(r'[<>()\[\]:;@\\,"]+')


def display_name(name: str | None) -> str:
    """A display name that can never inject a header or smuggle in an address.

    RFC 5322 specials are taken out: the standard library's header folding can drop the quotes
    around a long name, and then ``<x>`` in it would become the address."""
    cleaned = clean_header(name, 200)
    if not cleaned.isprintable():  # C1 controls, format characters, unassigned code points: the
        cleaned = "".join(c if c.isprintable() else " " for c in cleaned)  # stdlib's folder lost addresses
    return " ".join(_SPECIALS.sub(" ", cleaned).split())


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str = ""


class BounceSigner:
    """Signed return paths ``support+b.<id>.<mac>@domain`` whose id names an outbox Message-ID."""

    def __init__(self, secret: bytes, service_address: str):
        self.key = hashlib.sha256(b"bounce:" + secret).digest()
        self.local, _, self.domain = service_address.partition("@")

    def _mac(self, ident: str) -> str:
        digest = hmac.new(self.key, ident.encode(), hashlib.sha256).digest()[:10]  # 80 bits
        return base64.b32encode(digest).decode().lower().rstrip("=")

    def return_path(self, ident: str) -> str:
        return f"{self.local}+b.{ident}.{self._mac(ident)}@{self.domain}"

    def message_id_for(self, token: str) -> str | None:
        """The Message-ID a bounce token stands for, or None when it is not ours."""
        m = re.fullmatch(r"b\.([0-9a-f]{20})\.([a-z2-7]{16})", token or "")
        if not m or not hmac.compare_digest(self._mac(m.group(1)), m.group(2)):
            return None
        return f"mt.{m.group(1)}@{self.domain}"


def _within_limit(kind: str, to: list, cc, limit: int) -> list:
    """No mail goes to more people than ``max_participants`` besides its To (the requester): the
    ticket's Cc is capped where people join (``tickets.add_participants``) and where a reply's
    recipients are read (``tickets.requester_recipients``); this is the last guard."""
    cc = list(cc)
    room = max(limit + 1 - len(to), 0)
    if len(cc) > room:
        log.warning("%s: %d in Cc, only the first %d kept (max_participants %d)", kind, len(cc), room, limit)
        cc = cc[:room]
    return cc


class Mailer:
    """Composes and queues every mail mailticket sends. Call inside the ticket's transaction."""

    def __init__(self, config, renderer, signer, bounce_signer: BounceSigner):
        self.config, self.renderer, self.signer, self.bounces = config, renderer, signer, bounce_signer
        self.silent = False  # `mailticket import`: record everything, mail nobody
        self.defer = False   # queue drafts for the sender process to render (the daemon sets it)
        self.window = outbox.GlobalWindow()  # this process's view of the global rate limit's count

    # -------------------------------------------------------------- public

    def send(self, kind: str, *, to: list[Recipient], now: datetime, ticket: Ticket | None = None,
             context: dict | None = None, locale: str | None = None, reply_purpose: str | None = "reply",
             in_reply_to: str | None = None, auto_submitted: str = "auto-generated", from_name: str | None = None,
             automatic: bool = False, rate_limited: bool = False, cc: list[Recipient] = (),
             attachments: list[tuple[str, str, bytes]] = (), alternatives: list[tuple[str, bytes]] = (),
             files: list[drafts.MailFile] = (), global_cap=True) -> Outbox | None:
        """Queue mail ``kind``: as a draft for the sender to render (``drafts``) when ``defer`` is
        set and it can be one, otherwise rendered now. ``files`` are stored files to attach (read
        when the mail is written); ``attachments`` files given as bytes. Returns None when a
        rate limit held it back (logged, and recorded on the ticket).

        Every mail about a ticket passes the per-thread caps (``outbox.check_thread``), whatever its
        kind, except mail to the admin (their alerts have their own aggregation, desk/quarantinedigest.py
        and desk/deliveryalerts.py, and are never silenced by user traffic). ``rate_limited`` mails
        (automatic answers to outside addresses) also pass the per-address and global counts (``outbox.check_rate``);
        ``global_cap=False`` exempts one from the global fuse (a new sender's first acknowledgement)."""
        to = [r for r in to if r.address]
        if not to or self.silent:
            return None
        cc = _within_limit(kind, to, cc, self.config.service.max_participants)
        if locale is None:  # mail to requesters and participants: each in their own language
            groups = self.languages(to, cc, ticket)
            locale = groups[0][0]
            for other, recipients in groups[1:]:  # a participant who writes another language: a copy of their own
                self.send(kind, to=recipients, now=now, ticket=ticket, context=context, locale=other,
                          reply_purpose=reply_purpose, in_reply_to=in_reply_to, auto_submitted=auto_submitted,
                          from_name=from_name, automatic=automatic, rate_limited=rate_limited,
                          attachments=attachments, alternatives=alternatives, files=files, global_cap=global_cap)
            if len(groups) > 1:
                own = {r.address for r in groups[0][1]}
                to, cc = [r for r in to if r.address in own], [r for r in cc if r.address in own]
        first = to[0].address
        verdict = None
        # a ticket opened by this very mail has had nothing sent about it yet: no count needed
        if (ticket is not None and ticket.created_at != now
                and first.lower() != self.config.service.admin_address.lower()):
            verdict = outbox.check_thread(first, ticket.id, kind, now, self.config.rate_limits,
                                          internal=self.config.is_internal_address(first))
        if (verdict is None or verdict.allowed) and rate_limited:
            verdict = outbox.check_rate(first, ticket.id if ticket else None, now, self.config.rate_limits,
                                        self.window, global_cap=global_cap)
        if verdict is not None and not verdict.allowed:
            log.warning("%s to %s not sent: rate limit: %s", kind, first, verdict.reason)
            if ticket is not None:
                Event.create(ticket=ticket, at=now, kind="suppressed",
                             text=f"{kind} to {first} not sent: {verdict.reason}")
            return None
        if reply_purpose in ("reply", "note") and not all(self.config.is_internal_address(r.address) for r in (*to, *cc)):
            reply_purpose = "requester"  # a token that authorises agent mail never leaves the desk
        ctx = self.base_context(ticket, now)
        ctx.update(context or {})
        audience = "internal" if reply_purpose in ("reply", "note") else "requester"
        heading = self.heading(to=to, cc=cc, ticket=ticket, now=now, reply_purpose=reply_purpose, audience=audience,
                               in_reply_to=in_reply_to, auto_submitted=auto_submitted, from_name=from_name)
        draft = drafts.Draft(kind, locale or self.config.service.locale, ctx, heading, tuple(files))
        raw, draft_json = b"", None
        if self.defer and not attachments and not alternatives:
            try:
                draft_json = drafts.dumps(draft)
            except drafts.NotPlain as exc:
                log.debug("%s written at once: its values hold %s", kind, exc)
        if draft_json is None:
            raw = self.write(draft, attachments=attachments, alternatives=alternatives)
        ident = heading.message_id.split("@")[0].removeprefix("mt.")
        ref = None if ticket is None else MessageRef(message_id=heading.message_id, ticket=ticket, direction="out",
                                                     audience=audience, at=now)
        entry = outbox.enqueue(raw, heading.message_id, kind=kind, mail_from=self.bounces.return_path(ident),
                               recipients=[r.address for r in (*to, *cc)], now=now, ticket=ticket,
                               automatic=automatic, draft=draft_json, along=ref)
        if automatic:
            self.window.queued()
        return entry

    def languages(self, to: list[Recipient], cc, ticket: Ticket | None) -> list[tuple[str, list[Recipient]]]:
        """The languages a mail goes out in, the main recipient's first, each with its recipients.

        Mail to agents, tiers, the admin, the manager or the security contact is in the desk's language
        (an agent copied on a requester's mail reads it in the requester's).
        A requester or participant reads the language remembered for their address (desk/language.py),
        the ticket's requester the ticket's; one whose language is not known reads the main
        recipient's (the requester's on a ticket). Only a participant whose own language is known
        and differs gets a copy of their own."""
        svc = self.config.service
        remembered = _remembered([r.address for r in (*to, *cc) if not self.config.is_internal_address(r.address)])

        def own(address: str) -> str | None:
            if self.config.is_internal_address(address):
                return None  # an agent copied on a requester's mail reads what the requester reads
            if ticket is not None and ticket.language and address == ticket.requester_address:
                return ticket.language if ticket.language in svc.languages else None
            found = remembered.get(address)
            return found if found in svc.languages else None

        first = to[0].address
        if self.config.is_internal_address(first):
            main = svc.locale
        else:
            main = own(first) or (ticket.language if ticket is not None and ticket.language in svc.languages
                                  else None) or svc.locale
        groups: dict[str, list[Recipient]] = {main: []}
        for r in (*to, *cc):
            groups.setdefault(own(r.address) or main, []).append(r)
        return [(language, recipients) for language, recipients in groups.items() if recipients]

    def base_context(self, ticket: Ticket | None, now: datetime) -> dict:
        svc = self.config.service
        ctx = {"service": {"name": svc.name, "address": svc.address, "tag_prefix": svc.tag_prefix},
               "timezone": svc.timezone, "now": now, "ticket": None}
        if ticket is not None:
            ctx["ticket"] = ticket_context(ticket, self.config)
        return ctx

    # -------------------------------------------------------------- composing

    def heading(self, *, to, cc=(), ticket, now, reply_purpose, in_reply_to, auto_submitted,
                audience="requester", from_name=None) -> drafts.Heading:
        """Everything the headers say besides the subject, decided now: a fresh Message-ID, the
        thread so far, the signed reply address."""
        svc = self.config.service
        reply_to = None
        if ticket is not None and reply_purpose:
            reply_to = _plus(svc.address, self.signer.make(ticket.id, reply_purpose, now + svc.token_lifetime))
        return drafts.Heading(
            message_id=f"mt.{secrets.token_hex(10)}@{svc.domain}", date=now,
            to=tuple((r.name, r.address) for r in to), cc=tuple((r.name, r.address) for r in cc),
            in_reply_to=in_reply_to, references=tuple(self.references(ticket, in_reply_to, audience)),
            reply_to=reply_to, auto_submitted=auto_submitted, from_name=from_name,
            ticket_id=ticket.id if ticket is not None else None)

    def write(self, draft: drafts.Draft, *, attachments=(), alternatives=()) -> bytes:
        """The draft rendered and assembled, its stored files read now. A file no longer on disk
        (removed by retention meanwhile) is left out, and the mail's list of files says so."""
        context, loaded = draft.context, []
        for f in draft.files:
            data = f.data if f.data is not None else self._stored(f)
            if data is None:
                context = _file_missing(context, f.name)
            else:
                loaded.append((f, data))
        related = [(f.name, f.content_type, data, f.content_id) for f, data in loaded if f.content_id]
        files = [(f.name, f.content_type, data) for f, data in loaded if not f.content_id]
        return self.assemble(self.renderer.render(draft.kind, draft.locale, context), draft.heading,
                             attachments=[*files, *attachments], alternatives=alternatives, related=related)

    def _stored(self, f: drafts.MailFile) -> bytes | None:
        from ..inbound.attachments import open_attachment
        try:
            return open_attachment(self.config.service.data_dir, f.path)
        except (OSError, ValueError) as exc:
            log.warning("file %r (%s) cannot be attached: %s", f.name, f.path, exc)
            return None

    def assemble(self, rendered, h: drafts.Heading, *, attachments=(), alternatives=(), related=()) -> bytes:
        """The mail as CRLF bytes ready for SMTP."""
        svc = self.config.service
        display = f"{h.from_name} via {svc.name}" if h.from_name else svc.name
        lines = [wire.address_header("From", [(display_name(display), svc.address)]),
                 wire.address_header("To", [(display_name(n), clean_header(a, 300)) for n, a in h.to])]
        if h.cc:
            lines.append(wire.address_header("Cc", [(display_name(n), clean_header(a, 300)) for n, a in h.cc]))
        lines += [wire.header("Subject", clean_header(rendered.subject, 500) or "(no subject)"),
                  wire.header("Date", format_datetime(h.date)),
                  wire.header("Message-ID", f"<{h.message_id}>")]
        if h.in_reply_to:
            lines.append(wire.header("In-Reply-To", f"<{h.in_reply_to}>"))
        if h.references:
            lines.append(wire.header("References", " ".join(f"<{r}>" for r in h.references)))
        if h.reply_to:
            lines.append(wire.address_header("Reply-To", [(display_name(svc.name), h.reply_to)]))
        lines += [wire.header("Auto-Submitted", h.auto_submitted), wire.header("X-Auto-Response-Suppress", "All")]
        if h.auto_submitted != "no":
            lines.append(wire.header("Precedence", "bulk"))
        lines.append(wire.header(LOOP_HEADER, svc.address))
        if h.ticket_id is not None:
            lines.append(wire.header(TICKET_HEADER, str(h.ticket_id)))
        return wire.mail(lines, rendered.text, rendered.html, alternatives=alternatives, attachments=attachments,
                         related=related)

    def mail_bytes(self, entry: Outbox) -> bytes:
        """The bytes to send for an outbox entry: its draft rendered now, or the mail as queued."""
        if entry.draft is None:
            return bytes(entry.raw)
        return self.write(drafts.loads(entry.draft))

    def references(self, ticket: Ticket | None, in_reply_to: str | None, audience: str = "requester") -> list[str]:
        """The thread so far: the requester's first mail, then the latest ids, then the parent.
        Requesters see only their side of the thread; agents see all of it."""
        if ticket is None:
            return [in_reply_to] if in_reply_to else []
        sql = _RECENT_FOR_REQUESTER if audience == "requester" else _RECENT
        recent = [row[0] for row in run(sql, (ticket.id,)).fetchall()]
        chain = ([ticket.thread_root] if ticket.thread_root else []) + list(reversed(recent))
        if in_reply_to:
            chain.append(in_reply_to)
        seen, out = set(), []
        for ident in chain:
            if ident and ident not in seen:
                seen.add(ident)
                out.append(ident)
        return out[-20:]


_RECENT = ('SELECT "message_id" FROM "message_ref" WHERE "ticket_id" = ? '
           'ORDER BY "at" DESC, "id" DESC LIMIT 10')
_RECENT_FOR_REQUESTER = ('SELECT "message_id" FROM "message_ref" WHERE "ticket_id" = ? AND "audience" = \'requester\' '
                         'ORDER BY "at" DESC, "id" DESC LIMIT 10')


def _remembered(addresses: list[str]) -> dict[str, str]:
    """The language remembered for each of these addresses that has one."""
    if not addresses:
        return {}
    return {row.address: row.language for row in
            RequesterLanguage.select(RequesterLanguage.address, RequesterLanguage.language)
            .where(RequesterLanguage.address.in_(addresses))}


def _file_missing(context: dict, name: str) -> dict:
    """The context with file ``name`` listed as no longer available rather than attached."""
    files = [dict(f, state="missing") if f.get("name") == name and f.get("state") == "attached" else f
             for f in context.get("files") or ()]
    return {**context, "files": files}


def _plus(address: str, token: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local}+{token}@{domain}"


def ticket_context(ticket: Ticket, config) -> dict:
    tier = config.tiers.get(ticket.tier)
    return {
        "number": ticket.id, "tag": f"[{config.service.tag_prefix}#{ticket.id}]", "subject": ticket.subject,
        "status": ticket.status, "priority": ticket.priority, "type": ticket.type, "category": ticket.category,
        "impact": ticket.impact, "urgency": ticket.urgency, "tier": ticket.tier,
        "tier_name": tier.name if tier else f"Tier {ticket.tier}", "requester_name": ticket.requester_name,
        "requester_address": ticket.requester_address, "assignee": ticket.assignee,
        "created_at": ticket.created_at, "first_response_due": ticket.first_response_due,
        "resolution_due": ticket.resolution_due, "description": ticket.description,
        "breach_report_deadline": ticket.breach_report_deadline, "language": ticket.language,
        "cc": [{"name": p.name, "address": p.address} for p in ticket.participants.where(Participant.role == "cc")],
        "attachments": [{"name": a.filename, "size": a.size} for a in ticket.attachments.where(~Attachment.inline)],
        "phone": international(getattr(ticket, "requester_phone", None)),  # the requester's, for agents
    }
