"""One mail, one transaction: orchestration only.

The raw mail is already committed (``store_raw``). ``process_one`` parses, classifies,
correlates and applies it, queueing every mail it causes, in one transaction; any error
rolls that back and quarantines the one mail with its reason, and the loop goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

import peewee as pw

from . import files as ticket_files
from . import deliveryalerts, echo, quarantinedigest, tickets
from ..inbound.attachments import flushed_before_commit
from ..inbound.authres import strip_internal_headers
from ..inbound.bounces import parse_bounce
from ..inbound.classify import classify
from .correlate import Match, find_ticket, reopen_decision, ticket_by_id
from ..db import is_postgres, run, write_transaction
from ..errors import QuarantineError
from ..i18n import Message
from ..models import InboundMail, Outbox, Ticket
from ..outbound.notify import LOOP_HEADER
from ..inbound.parse import parse_mail
from ..inbound.quotes import split_reply
from ..inbound.senders import recover_sender
from ..inbound.spam import spam_verdict
from .thanks import only_thanks

log = logging.getLogger("mailticket.pipeline")


@dataclass(frozen=True)
class Outcome:
    state: str                  # processed | duplicate | dropped | quarantined | spam
    ticket: int | None = None
    reason: str = ""


def store_raw(raw: bytes, *, source: str, now: datetime, uidvalidity: int | None = None,
              uid: int | None = None) -> InboundMail:
    """Commit the raw mail before anything else. The same (source, UIDVALIDITY, UID) is stored once."""
    db = InboundMail._meta.database
    with db.atomic():
        if uid is not None:
            row = InboundMail.get_or_none(InboundMail.source == source, InboundMail.uidvalidity == uidvalidity,
                                          InboundMail.uid == uid)
            if row is not None:
                return row
        return InboundMail.create(source=source, uidvalidity=uidvalidity, uid=uid, raw=raw, size=len(raw),
                                  received_at=now)


def process_one(desk, row: InboundMail) -> Outcome:
    """Process one stored mail; never raises for a problem of the mail itself."""
    outcome = _attempt(desk, row)
    _log_outcome(row, outcome)
    return outcome


def process_batch(desk, rows: list[InboundMail], *, stop=None) -> list[tuple[InboundMail, Outcome]]:
    """Process several stored mails with one commit (group commit: one fsync for the batch).

    Each mail runs in a savepoint of its own (the transactions of ``_apply`` and ``quarantine``
    nest), so a mail that fails is rolled back and quarantined alone and the others go on. A
    database failure rolls the whole batch back: the mails stay stored and are processed again
    later, and nothing was moved or sent for them (the IMAP move and the outbox drain come after
    this commit). Outcomes are logged once they are committed. Stops early when ``stop`` is set;
    the rows not reached are not in the result. The batch's attachment files are flushed to disk
    while it is processed, and all of them before the commit (``attachments.StorageError`` if one
    cannot be: then nothing is committed either).
    """
    done = []
    with write_transaction(InboundMail._meta.database), flushed_before_commit():
        for row in rows:
            if stop is not None and stop.is_set():
                break
            done.append((row, _attempt(desk, row)))
    for row, outcome in done:
        _log_outcome(row, outcome)
    return done


def _attempt(desk, row: InboundMail) -> Outcome:
    now = desk.clock.now()
    try:
        outcome = _apply(desk, row, now)
        if outcome.reason == HANDLED_ELSEWHERE:
            return outcome
    except (pw.OperationalError, pw.InterfaceError):
        raise  # the database itself failed: the daemon retries the mail later
    except QuarantineError as exc:
        outcome = quarantine(desk, row, exc.args[0] if exc.args and isinstance(exc.args[0], Message) else str(exc), now)
    except Exception as exc:  # a bug or an input nobody foresaw: keep the mail, tell the admin, go on
        log.exception("mail %s (UID %s) failed", row.message_id or f"#{row.id}", row.uid)
        outcome = quarantine(desk, row, Message("internal error: {error}", error=f"{type(exc).__name__}: {exc}"), now)
    return outcome


HANDLED_ELSEWHERE = "already handled by another daemon"


def _apply(desk, row, now) -> Outcome:
    """Process and record the mail in one transaction that holds its row. Two daemons never both
    process one mail: the second waits for the row, then finds it no longer "received". A unique
    key taken meanwhile by another daemon (two copies of one mail at once) is tried once more."""
    for attempt in (1, 2):
        try:
            with write_transaction(InboundMail._meta.database):
                state, ticket_id = _lock_stored(row)
                if state != "received":
                    return Outcome(state, ticket_id, HANDLED_ELSEWHERE)
                outcome = _process(desk, row, now)
                _finish(row, outcome, now)
                return outcome
        except pw.IntegrityError:
            if attempt == 2:
                raise
            log.info("stored mail %s: a concurrent change took one of its keys; trying it again", row.id)


def _lock_stored(row) -> tuple[str, int | None]:
    """The stored mail's state and ticket now, its row held until the commit (PostgreSQL)."""
    found = run(_LOCK_PG if is_postgres() else _LOCK, (row.id,)).fetchone()
    if found is None:
        raise InboundMail.DoesNotExist(f"stored mail {row.id} is gone")
    return found


_LOCK = 'SELECT "state", "ticket_id" FROM "inbound_mail" WHERE "id" = ?'
_LOCK_PG = _LOCK + " FOR UPDATE"


def _log_outcome(row, outcome):
    if outcome.reason == HANDLED_ELSEWHERE:
        log.info("stored mail %s (UID %s): %s", row.id, row.uid, HANDLED_ELSEWHERE)
        return
    what = f"mail <{row.message_id}>" if row.message_id else f"stored mail {row.id}"
    uid = f" (UID {row.uid})" if row.uid is not None else ""
    ticket = f" ticket {outcome.ticket}" if outcome.ticket else ""
    log.info("%s%s: %s%s%s", what, uid, outcome.state, ticket, f": {outcome.reason}" if outcome.reason else "")


def _finish(row, outcome, now):
    run(_FINISH, (outcome.state, outcome.reason or None, outcome.ticket, InboundMail.processed_at.db_value(now),
                  row.message_id, row.id))


_FINISH = ('UPDATE "inbound_mail" SET "state" = ?, "reason" = ?, "ticket_id" = ?, "processed_at" = ?,'
           ' "message_id" = ?, "claimed_by" = NULL WHERE "id" = ?')


def quarantine(desk, row: InboundMail, reason: str, now: datetime) -> Outcome:
    """Mark the mail quarantined and tell the admin, in a transaction of its own."""
    with write_transaction(InboundMail._meta.database):
        if not InboundMail.update(state="quarantined", reason=reason[:4000],
                                  reason_msg=quarantinedigest.translatable(reason), processed_at=now,
                                  claimed_by=None, message_id=row.message_id).where(
                InboundMail.id == row.id, InboundMail.state == "received").execute():
            current = InboundMail.get_by_id(row.id)
            return Outcome(current.state, current.ticket_id, HANDLED_ELSEWHERE)
        sender, subject = quarantinedigest.headers(row, "From", "Subject")
        # one by one, or in the hourly digest past the day's cap
        quarantinedigest.alert(desk, row, reason, sender, subject, now)
    log.error("mail %s (UID %s) quarantined: %s", row.message_id or f"#{row.id}", row.uid, reason)
    return Outcome("quarantined", None, reason)


# ---------------------------------------------------------------- the decisions

def _process(desk, row, now) -> Outcome:
    cfg = desk.config
    parsed = parse_mail(bytes(row.raw))
    row.message_id = parsed.message_id[:250]
    # Our loop marker is read before the X-Mailticket-* headers are stripped, and only when it
    # names our own address: it catches our mail coming back under a new Message-ID and From
    # (a list re-sending it), while another desk's marker or any other header of ours written
    # by someone else has no effect. A human who copies our exact marker only drops their own mail.
    looped = _carries_our_loop_marker(parsed.message, cfg.service.address)
    stripped = strip_internal_headers(parsed.message)
    if stripped:
        log.warning("mail <%s>: removed inbound headers that look like ours: %s", parsed.message_id,
                    ", ".join(stripped))
    _one_at_a_time(row.message_id)
    ref = run(_REF, (row.message_id,)).fetchone()
    if ref is not None:
        direction, ticket_id = ref
        if direction == "out":
            return Outcome("dropped", ticket_id, "our own outgoing mail came back")
        return Outcome("duplicate", ticket_id, f"already processed (ticket {ticket_id})")
    if looped:
        return Outcome("dropped", None, f"loop: carries our loop marker {LOOP_HEADER}: {cfg.service.address}")
    spam = _spam_verdict(desk, parsed, now)
    if spam:
        return Outcome("spam", None, spam)
    verdict = classify(parsed.message, loop_marker=LOOP_HEADER, own_addresses=frozenset({cfg.service.address}))
    if verdict.kind == "loop":
        return Outcome("dropped", None, f"loop: {verdict.reason}")
    if verdict.kind == "bounce":
        return _bounce(desk, row, parsed, verdict, now)
    answered = _calendar_answer(desk, row, parsed, now)
    if answered is not None:  # a calendar's answer to our #call: neither a follow-up nor an auto-reply
        return answered
    if verdict.kind == "human":
        from . import feedback
        answer = feedback.find_claim(desk, parsed, now)
        if answer is not None:  # a "Was it solved?" link: acts by itself, never threads as a reply
            ticket_id, what = feedback.handle(desk, row, parsed, answer, now)
            return Outcome("processed", ticket_id, what)
    claims = _token_claims(desk, parsed, now)
    match = _with_ticket_locked(find_ticket(parsed, prefix=cfg.service.tag_prefix, token_claims=claims))
    if verdict.kind == "auto_reply":
        if match.ticket is None:  # RFC 3834 responders answer our return path, often without tag or headers
            entry = _outbox_by_return_path(desk, parsed)
            if entry is not None and entry.ticket_id:
                match = Match(entry.ticket, "return-path")
        if match.ticket is None:
            return Outcome("dropped", None, f"auto-reply not about any ticket: {verdict.reason}")
        tickets.record_auto_reply(match.ticket, parsed, verdict, now, row)
        return Outcome("processed", match.ticket.id, f"auto-reply recorded: {verdict.reason}")
    sender, recovered = parsed.sender, None
    if not sender.address:
        recovered = recover_sender(parsed.message, bytes(row.raw))
        if recovered.sender is None:
            raise QuarantineError(recovered.reason)
        log.warning("mail <%s>: %s (%s)", parsed.message_id, recovered.reason, recovered.sender.address)
        sender = recovered.sender
        parsed = replace(parsed, sender=sender)
    outcome = _route(desk, row, parsed, verdict, match, now)
    if recovered is not None and outcome.ticket:
        tickets.event(ticket_by_id(outcome.ticket), now, "sender_recovered", recovered.reason,
                      inbound=row, source=recovered.source, address=sender.address)
    return outcome


def _route(desk, row, parsed, verdict, match, now) -> Outcome:
    """A human mail (or an auto-generated one that is no reply) to its ticket: an agent's, a
    follow-up or a new ticket."""
    cfg, sender = desk.config, parsed.sender
    agent_tier = None if sender.defective else cfg.agent_tier(sender.address)
    security_contact = not sender.defective and sender.address == cfg.service.security_address
    if agent_tier is None and not sender.defective and _desk_address(cfg, sender.address) and not (
            security_contact and match.ticket is not None):
        return _from_desk_address(desk, row, parsed, match, now)
    if match.ticket is not None and (agent_tier is not None or security_contact):
        from .agentmail import handle_agent_mail
        ticket = handle_agent_mail(desk, match, parsed, now, row)
        return Outcome("processed", ticket.id)
    if match.ticket is not None:
        return _followup(desk, row, parsed, verdict, match, now)
    return _query_or_new(desk, row, parsed, verdict, agent_tier, now)


def _desk_address(cfg, address: str) -> bool:
    """One of the desk's own addresses that no person writes from as a requester: the support
    address and its +variants, a tier's address, the admin, the manager, the security contact."""
    a = address.lower()
    return cfg.is_own_address(a) or a in {x.lower() for x in (cfg.service.admin_address, cfg.service.manager_address,
                                                                cfg.service.security_address) if x}


def _from_desk_address(desk, row, parsed, match, now) -> Outcome:
    """Mail from one of our own addresses (``_desk_address``) that is no verified agent action: most
    often a responder on a tier's or the admin's mailbox answering our notification. It never
    opens a ticket, never makes that address a participant and causes no mail at all (no update,
    no acknowledgement, nothing back to it): on a ticket it is kept in the history, otherwise
    dropped with the reason (``mailticket`` logs it; the mail stays in the database). The security
    contact acts on a ticket as an agent does (``agentmail``); only its mail without a ticket comes here."""
    address = parsed.sender.address
    if match.ticket is None:
        return Outcome("dropped", None, f"mail from our own address {address}: opens no ticket, nothing sent")
    ticket = match.ticket
    tickets.remember_inbound(ticket, parsed.message_id, now)
    text = split_reply(parsed.text).new or parsed.text
    tickets.event(ticket, now, "auto_reply", text, actor=address, inbound=row, message_id=parsed.message_id,
                  why=f"mail from our own address {address}: recorded, nothing sent")
    return Outcome("processed", ticket.id, f"mail from our own address {address}: recorded, nothing sent")


def _query_or_new(desk, row, parsed, verdict, agent_tier, now) -> Outcome:
    """A new mail: a query is answered (no ticket), an agent's #requester opens a ticket for that user."""
    from .queries import answer, find_query
    query = find_query(parsed.subject, parsed.text)
    if query is not None:
        if not verdict.may_acknowledge:
            return Outcome("dropped", None, f"query {query.line!r} not answered: {verdict.reason or 'automatic mail'}")
        if InboundMail.select().where(InboundMail.message_id == row.message_id, InboundMail.id != row.id,
                                      InboundMail.state == "processed").exists():
            return Outcome("duplicate", None, "query already answered")
        return Outcome("processed", None, answer(desk, parsed, query, now))
    if agent_tier is not None:
        from .onbehalf import behalf_of
        behalf = behalf_of(desk, parsed, now)
        if behalf is not None and behalf.requester is None:
            return Outcome("processed", None, behalf.refused)
        if behalf is not None:
            return _new(desk, row, parsed, verdict, None, now, behalf=behalf)
    return _new(desk, row, parsed, verdict, agent_tier, now)


def _calendar_answer(desk, row, parsed, now) -> Outcome | None:
    """An iMIP REPLY or COUNTER to the current call of a ticket, from its attendee: recorded, the
    agent told (desk/calls.py). Anything else with a calendar in it is read as ordinary text."""
    from ..inbound.imip import find_answer
    answer = find_answer(parsed.message, desk.config.service.timezone)
    if answer is None:
        return None
    from .calls import handle_answer
    handled = handle_answer(desk, row, parsed, answer, now)
    return None if handled is None else Outcome("processed", handled[0], handled[1])


def _spam_verdict(desk, parsed, now) -> str | None:
    """The upstream filter's spam verdict (``[spam] trust_headers``), unless the mail proves it is an
    agent's: a reply to a ticket's signed address or with the trusted server's DKIM/DMARC pass is
    the agent's by proof, which outweighs a content filter's guess (an agent quoting a phishing
    mail or a log full of URLs trips filters), so its text and commands still count; the verdict
    is logged. An agent address without that proof is what a spammer forges: spam like any other."""
    if not desk.config.spam.trust_headers:
        return None
    reason = spam_verdict(parsed.message)
    if reason is None:
        return None
    sender = parsed.sender
    if sender.address and not sender.defective and desk.config.agent_tier(sender.address) is not None:
        from .agentmail import verify_agent
        match = find_ticket(parsed, prefix=desk.config.service.tag_prefix, token_claims=_token_claims(desk, parsed, now))
        proven, how = verify_agent(desk, match, parsed)
        if proven:
            log.warning("mail <%s> from agent %s carries a spam verdict (%s) but is proven (%s): processed",
                        parsed.message_id, sender.address, reason, how)
            return None
    return f"spam verdict of the upstream filter: {reason}"


def _one_at_a_time(message_id: str) -> None:
    """On PostgreSQL, two copies of one mail in two daemons wait for each other here, so the second
    sees the first's MessageRef and is a duplicate (SQLite's write lock already does this)."""
    if is_postgres():
        InboundMail._meta.database.execute_sql("SELECT pg_advisory_xact_lock(1, hashtext(%s))", (message_id,))


def _with_ticket_locked(match):
    """On PostgreSQL, hold the matched ticket's row and read it afresh, so that two daemons changing
    one ticket at once (a reply here, the SLA scan there) do not overwrite each other's change."""
    if match.ticket is None or not is_postgres():
        return match
    ticket = ticket_by_id(match.ticket.id, for_update=True)
    if ticket is None:
        raise Ticket.DoesNotExist(f"ticket {match.ticket.id} is gone")
    return replace(match, ticket=ticket)


_REF = 'SELECT "direction", "ticket_id" FROM "message_ref" WHERE "message_id" = ?'


def _carries_our_loop_marker(msg, own_address: str) -> bool:
    values = msg.get_all(LOOP_HEADER) or []
    return any(str(v).strip().lower() == own_address.lower() for v in values)


def _token_claims(desk, parsed, now) -> list:
    from .tokens import token_from_addresses
    addresses = [a.address for a in (*parsed.to, *parsed.cc)] + list(parsed.delivered_to)
    claims = []
    for token in token_from_addresses(desk.config.service.address, addresses):
        claim = desk.signer.verify(token, now)
        if claim is not None:
            claims.append(claim)
    return claims


def _followup(desk, row, parsed, verdict, match, now) -> Outcome:
    cfg, ticket = desk.config, match.ticket
    addr = parsed.sender.address
    known = addr == ticket.requester_address or ticket.participants.where(
        tickets.Participant.address == addr).exists()
    new_text = split_reply(parsed.text).new
    if match.tag_only and not known:
        # a tag alone does not let a stranger into a ticket: a new ticket, linked to the old one
        return _new(desk, row, parsed, verdict, None, now, linked_to=ticket)
    decision = reopen_decision(ticket, now, cfg.service.reopen_window)
    if decision == "new-linked":
        return _new(desk, row, parsed, verdict, None, now, linked_to=ticket,
                    note=f"closed more than {cfg.service.reopen_window} ago")
    if verdict.kind != "human":
        tickets.record_auto_reply(ticket, parsed, verdict, now, row)
        return Outcome("processed", ticket.id, f"auto-generated follow-up recorded: {verdict.reason}")
    previous = echo.repeats(ticket, addr, new_text or parsed.text, now) if known else None
    if previous is not None:  # a responder's same text again: kept, nothing sent, not reopened (desk/echo.py)
        echo.record(ticket, parsed, new_text or parsed.text, previous, now, row)
        return Outcome("processed", ticket.id, "repeats the sender's previous mail: recorded, nothing sent")
    proven, why = _proves_participant(desk, match, parsed, known)
    # a broken From never joins the ticket's recipients; an unproven one neither (its text still counts)
    joining = [] if known or parsed.sender.defective else [(addr, parsed.sender.name)]
    if not parsed.sender.defective and (known or proven):  # a stranger's language is nobody's concern
        from .language import on_followup
        on_followup(desk, ticket, addr, parsed, new_text, now)
    if decision == "reopen" and only_thanks(new_text):
        tickets.add_participants(desk, ticket, joining, now, proven=proven, why=why, actor=addr, inbound=row)
        tickets.record_thanks(ticket, parsed, new_text, now, row)
        ticket_files.store(desk, row, ticket, parsed.attachments, actor=addr, now=now)
        return Outcome("processed", ticket.id, f"a thank-you on a {ticket.status} ticket: kept, not reopened")
    tickets.requester_followup(desk, ticket, parsed=parsed, new_text=new_text or parsed.text,
                               author=(parsed.sender.name, addr), now=now, inbound=row, proven=proven, why=why,
                               joining=joining)
    return Outcome("processed", ticket.id, f"threaded by {match.how}")


PARTICIPANT_PURPOSES = ("requester", "reply", "note")


def _proves_participant(desk, match, parsed, known: bool) -> tuple[bool, str]:
    """May this follow-up add people to its ticket? Only when it proves its sender is one of the
    ticket's people: it was sent to the ticket's signed reply address (which only the requester,
    the participants and the desk's own people received), or its sender is already on the ticket
    and the trusted server saw a passing DKIM/DMARC verdict for their domain. A subject tag or a
    known Message-ID (In-Reply-To/References) is public knowledge and a From is easily forged:
    such a mail adds its text, never people. Returns (proven, why not)."""
    if match.how == "token" and match.token_purpose in PARTICIPANT_PURPOSES:
        return True, ""
    how = {"references": "threaded by In-Reply-To/References only",
           "tag": "threaded by the subject tag only"}.get(match.how, f"threaded by {match.how}")
    if not known:
        return False, f"{how}, from an address not on the ticket"
    from ..inbound.authres import trusted_verdict
    verdict = trusted_verdict(parsed.message, desk.config.service.trusted_authserv_id,
                              parsed.sender.address.rpartition("@")[2])
    if verdict.passed:
        return True, ""
    return False, f"{how}, not sent to the ticket's signed reply address, and {verdict.reason}"


def _new(desk, row, parsed, verdict, agent_tier, now, linked_to=None, note="", behalf=None) -> Outcome:
    cfg = desk.config
    from .monitoring import match_source, parse_alert
    source = match_source(cfg.monitoring, parsed.sender.address, parsed.subject)
    alert = parse_alert(parsed.subject, parsed.text) if source is not None else None
    if alert is not None:
        from .alerts import handle_alert
        ticket, reason = handle_alert(desk, alert, source, parsed, now, row)
        return Outcome("processed", ticket.id if ticket else None, reason)
    requester = (parsed.sender.name, parsed.sender.address)
    body = parsed.text
    if behalf is not None:  # an agent logs it for a user (onbehalf)
        requester, body = behalf.requester, behalf.body or parsed.subject
    if agent_tier is not None:
        from ..inbound.forwarded import is_forward, original_sender
        original = original_sender(parsed.message, parsed.text) if is_forward(parsed.subject) or _has_attached_mail(
            parsed.message) else None
        if original is not None and original[1]:
            requester = original
            note = f"forwarded by agent {parsed.sender.address}"
    ack, why = _may_acknowledge(cfg, parsed, verdict, now, requester[1])
    from .language import for_new_ticket
    language = for_new_ticket(desk, requester[1], parsed, split_reply(body).new, now)
    # the rules read what the ticket keeps: a 5 MB body would cost seconds of regex searches per word
    decision = cfg.rules_decide(requester[1], parsed.subject, body[:tickets.DESCRIPTION_LIMIT])
    ticket = tickets.open_ticket(desk, parsed=parsed, decision=decision, requester=requester, now=now,
                                 inbound=row, acknowledge=ack, ack_skip_reason=why, linked_to=linked_to, body=body,
                                 notify_tier=not _is_old(cfg, parsed, now), language=language)
    if note:
        tickets.event(ticket, now, "note", note)
    if behalf is not None:
        tickets.event(ticket, now, "on_behalf", f"logged by agent {parsed.sender.address} for {requester[1]}",
                      actor=parsed.sender.address)
    return Outcome("processed", ticket.id, "new ticket" + (f" linked to {linked_to.id}" if linked_to else "")
                   + (f" for {requester[1]}, logged by {parsed.sender.address}" if behalf else ""))


def _has_attached_mail(msg) -> bool:
    try:
        return any(part.get_content_type() == "message/rfc822" for part in msg.walk())
    except Exception:
        return False


def _is_old(cfg, parsed, now) -> bool:
    """Mail older than ack_max_age (a mailbox full of old mail) is logged without an acknowledgement, and
    without a tier notice unless it is a P1 or a security ticket (``tickets._announce_new``)."""
    return parsed.date is not None and now - parsed.date > cfg.service.ack_max_age


def _may_acknowledge(cfg, parsed, verdict, now, address) -> tuple[bool, str]:
    if not verdict.may_acknowledge:
        return False, f"no acknowledgement: {verdict.reason or 'the sender asked for no automatic answers'}"
    if _is_old(cfg, parsed, now):
        return False, f"no acknowledgement: the mail is older than ack_max_age ({cfg.service.ack_max_age})"
    if cfg.is_own_address(address):
        return False, "no acknowledgement: the requester is one of our own addresses"
    if cfg.agent_tier(address) is not None:  # an unverified mail from an agent address causes no mail back to it
        return False, "no acknowledgement: the requester is one of our agents"
    return True, ""


def _bounce(desk, row, parsed, verdict, now) -> Outcome:
    """A bounce of our own mail is recorded on its ticket as a delivery failure; the admin is told once."""
    bounce = parse_bounce(parsed.message)
    entry = None
    if bounce is not None and bounce.return_path_token:
        entry = _outbox_for_token(desk, bounce.return_path_token)
    if entry is None and bounce is not None and bounce.original_message_id:
        entry = Outbox.get_or_none(Outbox.message_id == bounce.original_message_id.strip("<>"))
    if entry is None:
        entry = _outbox_by_return_path(desk, parsed)
    if entry is None:
        return Outcome("dropped", None, f"bounce not matching any mail we sent: {verdict.reason}")
    recipients = ", ".join(bounce.recipients) if bounce and bounce.recipients else ", ".join(entry.recipients)
    detail = (bounce.diagnostic or bounce.status or "") if bounce else ""
    if entry.ticket_id:
        # remembered like any mail on the ticket, so the same report delivered twice is a duplicate
        tickets.remember_inbound(entry.ticket_id, row.message_id, now, audience="internal")
        tickets.event(entry.ticket, now, "delivery_failure",
                      f"{entry.kind} to {recipients} bounced: {detail}".strip(), actor="mailer-daemon",
                      inbound=row, outbox=entry.id)
    deliveryalerts.alert(desk, entry, recipients, detail or verdict.reason, now, bounced=True)
    return Outcome("processed", entry.ticket_id, f"bounce of outbox {entry.id} ({entry.kind}) recorded")


def _outbox_by_return_path(desk, parsed) -> Outbox | None:
    """The outbox entry whose signed return path (support+b.<id>.<mac>@) this mail was sent to."""
    for a in parsed.delivered_to + tuple(x.address for x in parsed.to):
        local = a.partition("@")[0]
        entry = _outbox_for_token(desk, local.split("+", 1)[1]) if "+" in local else None
        if entry:
            return entry
    return None


def _outbox_for_token(desk, token: str) -> Outbox | None:
    """The outbox entry a signed return-path token names, or None when it is not ours."""
    mid = desk.mailer.bounces.message_id_for(token)
    return Outbox.get_or_none(Outbox.message_id == mid) if mid else None

