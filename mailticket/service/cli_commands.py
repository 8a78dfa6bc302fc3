"""What each CLI command does. Each is a thin wrapper over the library."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .exitcodes import EXIT_CONFIG, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE
from ..config import load_config


def _setup(args, migrate: bool = True):
    from .. import db
    config = load_config(args.config)
    db.connect(config.database.url, migrate=migrate)
    return config


def _desk(args, clock=None):
    from .wiring import build_desk
    config = _setup(args)
    return build_desk(config, clock=clock)


def _fmt(dt) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M") if dt else "-"


# ---------------------------------------------------------------- run / poll

def run(args) -> int:
    from .daemon import Daemon
    desk = _desk(args)
    problems = desk.renderer.check()
    if problems:  # a mail with a hole in it is worse than no daemon: refuse, and say where
        for problem in problems:
            print(f"mailticket: template problem: {' '.join(problem.split())}", file=sys.stderr)
        print("mailticket: not started; fix the templates (mailticket check-config lists the same)", file=sys.stderr)
        return EXIT_CONFIG
    if args.config is None:
        print("mailticket: no --config given: running on the embedded default (SQLite under ./var, "
              "inbox = SMTP listener on 127.0.0.1:2525, outgoing mail to ./var/outgoing/new)", file=sys.stderr)
    daemon = Daemon(desk, config_loader=(lambda: load_config(args.config)) if args.config else None)
    daemon.install_signals()
    from .desklock import DeskBusy
    try:
        return daemon.run()
    except DeskBusy as exc:  # before the sender, the listener or the mailbox started
        print(f"mailticket: not started: {exc}", file=sys.stderr)
        return EXIT_PROBLEM


def poll(args) -> int:
    from .daemon import Daemon
    from .desklock import DeskBusy
    desk = _desk(args)
    daemon = Daemon(desk)
    try:
        daemon.hold_desk()  # on SQLite not beside a running daemon: both would send the same queue
    except DeskBusy as exc:
        print(f"mailticket: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    try:
        daemon.cycle()
    finally:
        daemon.shutdown()
    return EXIT_OK


# ---------------------------------------------------------------- check-config / migrate / health

def check_config(args) -> int:
    from ..outbound.render import Renderer
    config = load_config(args.config)
    problems = [f"{config.service.templates_dir}: {p}" if config.service.templates_dir and not p.startswith("/") else p
                for p in Renderer(config.service.templates_dir).check()]
    problems += _secret_checks(config, connect=args.connect)
    if args.connect:
        problems += _connect_checks(config)
    for p in problems:
        print(" ".join(p.split()))  # one line per problem, even when a driver's message has several
    if problems:
        return EXIT_PROBLEM
    print(f"{config.file}: OK")
    return EXIT_OK


def _secret_checks(config, *, connect: bool) -> list[str]:
    """The signing secret and the server passwords, read as the daemon reads them. One kept in a
    variable or a systemd credential is read only where that is set (under the unit): an admin's
    shell does not have them. With --connect the logins read the passwords themselves."""
    from ..config import Secret
    from ..errors import ConfigError
    from ..desk.tokens import configured_secret
    checks = [(config.service.secret, configured_secret)]
    if not connect:
        checks += [(server.credentials.password, Secret.get) for server in (config.imap, config.smtp)
                   if server is not None and server.credentials.auth == "password"]
    problems = []
    for secret, check in checks:
        if not (connect or secret.readable_here()):
            continue
        try:
            check(secret)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _connect_checks(config) -> list[str]:
    from .. import db
    from ..errors import ConfigError, DeliveryError, MailboxError
    from .mailbox import ImapSource
    problems = []
    try:
        db.connect(config.database.url, migrate=False)
    except Exception as exc:
        problems.append(f"database.url: {exc}")
    if config.imap:
        source = ImapSource(config.imap)
        try:
            source.connect()
        except (MailboxError, ConfigError) as exc:
            problems.append(f"imap: {exc}")
        finally:
            source.close()
    if config.smtp:
        from .transport import SmtpTransport
        t = SmtpTransport(config.smtp)
        try:
            with t._connect() as smtp:
                t._login(smtp)
        except (DeliveryError, OSError, ConfigError) as exc:
            problems.append(f"smtp: {exc}")
    return problems


def migrate(args) -> int:
    from .. import db
    config = load_config(args.config)
    database = db.connect(config.database.url, migrate=False)
    pending = db.pending_migrations(database)
    applied = db.apply_migrations(database)
    print(f"applied: {', '.join(applied)}" if applied else "the schema is up to date")
    return EXIT_OK if set(applied) == set(pending) else EXIT_PROBLEM


def health(args) -> int:
    from .health import check_health
    max_fetch, max_queue = args.max_fetch_age, args.max_queue_age  # timedeltas, bounded by cli_args
    config = load_config(args.config)
    now = datetime.now(timezone.utc)
    problems = check_health(config, now, max_fetch_age=max_fetch, max_queue_age=max_queue)
    if args.format == "prometheus":
        return _prometheus(problems, now)
    for p in problems:
        print(p)
    if not problems:
        print("OK")
    if not any(p.startswith("database unreachable") for p in problems):
        print(*_spam_figures(config), sep="\n", end="")
    return EXIT_PROBLEM if problems else EXIT_OK


def _spam_figures(config) -> list[str]:
    """An information line, not a problem: what the upstream filter's verdicts set aside."""
    from ..desk.reporting import spam_count
    day, total = spam_count(datetime.now(timezone.utc) - timedelta(days=1)), spam_count()
    if not total:
        return []
    where = f" (folder {config.imap.spam_folder})" if config.imap is not None else ""
    return [f"spam set aside{where}: {day} in the last 24 h, {total} in all\n"]


def _prometheus(problems: list[str], now: datetime) -> int:
    """The figures for node_exporter's textfile collector; problems are a figure too, so the
    exit status says only whether the database answered."""
    from .exitcodes import EXIT_DATABASE
    from . import metrics
    if problems and problems[0].startswith("database unreachable"):
        sys.stdout.buffer.write(metrics.database_down())
        print(f"mailticket health: {problems[0]}", file=sys.stderr)
        return EXIT_DATABASE
    sys.stdout.buffer.write(metrics.exposition(now, len(problems)))
    return EXIT_OK


# ---------------------------------------------------------------- tickets / show

PRIORITY_ORDER = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}


def list_tickets(args) -> int:
    from ..models import Ticket
    _setup(args)
    q = Ticket.select()
    if args.status:
        wanted = set()
        for s in args.status:
            wanted |= {"new", "open", "pending"} if s == "active" else {s}
        q = q.where(Ticket.status.in_(sorted(wanted)))
    if args.tier:
        q = q.where(Ticket.tier == args.tier)
    if args.priority:
        q = q.where(Ticket.priority == args.priority)
    if args.requester:
        q = q.where(Ticket.requester_address.contains(args.requester.lower()))
    if args.category:
        q = q.where(Ticket.category == args.category)
    if args.type:
        q = q.where(Ticket.type == args.type)
    if args.assignee:
        q = q.where(Ticket.assignee.is_null() if args.assignee == "none"
                    else Ticket.assignee.contains(args.assignee.lower()))
    if args.breached:
        q = q.where(_breached(datetime.now(timezone.utc)))
    order = {"number": Ticket.id, "-number": Ticket.id.desc(), "priority": Ticket.priority,
             "due": Ticket.resolution_due, "updated": Ticket.updated_at, "-updated": Ticket.updated_at.desc()}
    total = q.count()
    rows = list(q.order_by(order[args.sort], Ticket.id.desc()).paginate(args.page, args.limit))  # both >= 1
    if args.format == "json":
        print(json.dumps([_ticket_dict(t) for t in rows], default=str, indent=1))
        return EXIT_OK
    print(f"{'#':>6}  {'status':8} {'pri':3} {'tier':4} {'category':12} {'requester':28} {'due':16}  subject")
    for t in rows:
        due = t.first_response_due if t.first_response_at is None and t.status in ("new", "open") else t.resolution_due
        print(f"{t.id:>6}  {t.status:8} {t.priority:3} {t.tier:^4} {t.category[:12]:12} {t.requester_address[:28]:28} "
              f"{_fmt(due) if t.status not in ('resolved', 'closed') else '-':16}  {t.subject[:60]}")
    pages = (total + args.limit - 1) // args.limit
    print(f"-- {len(rows)} of {total} ticket(s), page {args.page} of {max(pages, 1)}")
    return EXIT_OK


def _breached(now: datetime):
    """Tickets that breached a target: the SLA scan recorded a breach, or a clock is past due now."""
    from ..models import SlaMark, Ticket
    marked = SlaMark.select(SlaMark.ticket).where(SlaMark.key.startswith("breach:"))
    active = Ticket.status.in_(["new", "open", "pending"])
    overdue = (active & (((Ticket.first_response_at.is_null()) & (Ticket.first_response_due < now))
                         | ((Ticket.status != "pending") & (Ticket.resolution_due < now))))
    return Ticket.id.in_(marked) | overdue


def _ticket_dict(t) -> dict:
    return {"number": t.id, "status": t.status, "type": t.type, "priority": t.priority, "impact": t.impact,
            "urgency": t.urgency, "tier": t.tier, "category": t.category, "subject": t.subject,
            "requester": {"name": t.requester_name, "address": t.requester_address}, "assignee": t.assignee,
            "created_at": t.created_at, "first_response_at": t.first_response_at,
            "first_response_due": t.first_response_due, "resolution_due": t.resolution_due,
            "resolved_at": t.resolved_at, "closed_at": t.closed_at, "linked_to": t.linked_to,
            "decided_by": t.decided_by}


LANGUAGE_NAMES = {"en": "English", "sv": "Swedish"}
LANGUAGE_HOW = {"header": "from its Content-Language", "text": "told from the text", "short": "too short to tell",
                "unsure": "not told for sure", "switch": "switched to in a later mail", "agent": "set by #language"}


def _language_line(t) -> str:
    """The requester's language as `show` prints it: `sv (Swedish; told from the text)`."""
    from ..models import RequesterLanguage
    if not t.language:
        return "- (the desk's language: the ticket is older than languages per requester)"
    row = RequesterLanguage.get_or_none(RequesterLanguage.address == t.requester_address)
    how = LANGUAGE_HOW.get(row.how, row.how) if row is not None and row.language == t.language else ""
    return f"{t.language} ({'; '.join(x for x in (LANGUAGE_NAMES.get(t.language, ''), how) if x)})"


def show(args) -> int:
    from ..models import Attachment, Participant, Ticket
    _setup(args)
    t = Ticket.get_or_none(Ticket.id == args.number)
    if t is None:
        print(f"mailticket: there is no ticket {args.number}", file=sys.stderr)
        return EXIT_PROBLEM
    print(f"Ticket {t.id}: {t.subject}")
    rows = [("Status", t.status), ("Type", t.type), ("Priority", f"{t.priority} (impact {t.impact}, urgency {t.urgency})"),
            ("Tier", t.tier), ("Category", t.category), ("Requester", f"{t.requester_name} <{t.requester_address}>"),
            ("Writes in", _language_line(t)),
            ("Participants", ", ".join(p.address for p in t.participants.where(Participant.role == "cc")) or "-"),
            ("Assignee", t.assignee or "-"), ("Decided by", t.decided_by or "defaults"),
            ("Created", _fmt(t.created_at)), ("First response", _fmt(t.first_response_at)),
            ("First response due", _fmt(t.first_response_due)), ("Resolution due", _fmt(t.resolution_due)),
            ("Resolved", _fmt(t.resolved_at)), ("Closed", _fmt(t.closed_at))]
    if t.linked_to:
        rows.append(("Linked to", t.linked_to))
    if t.breach_report_deadline:
        rows.append(("Breach report due", _fmt(t.breach_report_deadline)))
    for k, v in rows:
        print(f"  {k + ':':20} {v}")
    print("\nDescription:\n" + _indent(t.description))
    atts = list(Attachment.select().where(Attachment.ticket == t))
    if atts:
        print("\nAttachments:")
        for a in atts:
            print(f"  {a.filename} ({a.content_type}, {a.size} bytes) -> {a.path}")
    print("\nHistory:")
    for at, _, line, detail in _history(t, args.raw):
        print(f"  {_fmt(at)}  {line}")
        if detail.strip():
            print(_indent(detail, 6))
    return EXIT_OK


def _history(t, raw: bool):
    """Events and outgoing mail of a ticket, in time order: (at, order, line, detail)."""
    from ..models import Event, Outbox
    rows = []
    for e in t.events.order_by(Event.at, Event.id):
        flag = " [UNVERIFIED]" if (e.data or {}).get("unverified") else ""
        first, _, rest = e.text.strip().partition("\n")
        if raw and e.inbound_id:
            rest += "\n" + bytes(e.inbound.raw).decode("utf-8", "replace")
        rows.append((e.at, (0, e.id), f"{e.kind:16} {e.actor}{flag}: {first}", rest))
    for o in Outbox.select().where(Outbox.ticket == t).order_by(Outbox.id):
        state = o.status + (f" ({o.last_error[:80]})" if o.status == "failed" and o.last_error else "")
        rows.append((o.created_at, (1, o.id), f"{'mail out':16} {o.kind} to {', '.join(o.recipients)}: {state}",
                     ""))
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _indent(text: str, n: int = 2) -> str:
    pad = " " * n
    return "\n".join(pad + line for line in (text or "").rstrip().splitlines()) or pad + "-"


# ---------------------------------------------------------------- report

def report(args) -> int:
    """The manager's figures for a period (``--since``/``--until``, local dates), printed or mailed."""
    from ..desk import reporting
    config = load_config(args.config)
    now = datetime.now(timezone.utc)
    try:
        since, until = _report_period(args.since, args.until, config.service.timezone, now,
                                      default_days=7 if args.mail else None)
    except ValueError as exc:
        print(f"mailticket report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _setup(args)
    period = reporting.Period(since, until, now)
    summary = reporting.build_summary(config, period, by=tuple(dict.fromkeys(args.by or reporting.report.GROUPS)))
    if args.mail:
        from .. import db
        desk = _desk(args)
        with db.write_transaction():
            entry = reporting.mail_report(desk, summary, now)
        print(f"report queued to {config.service.manager_address} (outbox {entry.id}); "
              "the daemon sends it within its next cycle")
        return EXIT_OK
    print(reporting.format_report(summary, args.format, config), end="")
    return EXIT_OK


def _report_period(since: str | None, until: str | None, tz_name: str, now: datetime,
                   default_days: int | None) -> tuple[datetime | None, datetime]:
    """``--since``/``--until`` as local midnights (``--until`` not included); ValueError naming the
    option when a date is not ISO (YYYY-MM-DD) or the period is empty."""
    end = _local_midnight(until, tz_name, "--until") if until else now
    start = _local_midnight(since, tz_name, "--since") if since else None
    if start is None and default_days:
        start = end - timedelta(days=default_days)
    if start is not None and start >= end:
        raise ValueError(f"--since {since or start.date()} is not before --until {until or 'now'}: "
                         "the period is empty")
    return start, end


def _local_midnight(day: str, tz_name: str, option: str = "--since") -> datetime:
    """``--since 2026-11-02`` is the start of that day where the desk is, not in UTC."""
    import re
    from zoneinfo import ZoneInfo
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day or ""):
        raise ValueError(f"{option} {day!r} is not an ISO date like 2026-11-01 (YYYY-MM-DD)")
    try:
        return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=ZoneInfo(tz_name))
    except ValueError:
        raise ValueError(f"{option} {day!r} is not a date in the calendar") from None


# ---------------------------------------------------------------- outbox / quarantine

def outbox_cmd(args) -> int:
    from ..outbound import outbox
    from ..models import Outbox
    _setup(args)
    now = datetime.now(timezone.utc)
    if args.retry:
        try:
            n = outbox.retry(str(args.retry), now)
        except (ValueError, LookupError) as exc:
            print(f"mailticket outbox: {exc}", file=sys.stderr)
            return EXIT_PROBLEM
        print(f"{n} mail(s) queued to be sent again; the daemon sends them within its next cycle")
        return EXIT_OK
    q = Outbox.select().order_by(Outbox.id)
    if not args.all:
        q = q.where(Outbox.status.in_(["queued", "failed"]))
    rows = list(q)
    print(f"{'id':>6}  {'status':9} {'tries':5} {'created':16} {'next try':16} {'kind':18} {'ticket':>6}  to / last error")
    for o in rows:
        print(f"{o.id:>6}  {o.status:9} {o.attempts:^5} {_fmt(o.created_at):16} "
              f"{_fmt(o.next_attempt_at) if o.status == 'queued' else '-':16} {o.kind:18} {o.ticket_id or '-':>6}  "
              f"{', '.join(o.recipients)[:50]}" + (f"  | {o.last_error[:120]}" if o.last_error else ""))
    print(f"-- {len(rows)} mail(s)")
    return EXIT_OK


def quarantine_cmd(args) -> int:
    from ..models import InboundMail
    if args.reprocess:
        return _reprocess(args)
    _setup(args)
    if args.action == "show":
        if args.id is None:
            print("mailticket quarantine show: give the ID", file=sys.stderr)
            return EXIT_USAGE
        row = InboundMail.get_or_none(InboundMail.id == args.id)
        if row is None:
            print(f"mailticket: there is no stored mail {args.id}", file=sys.stderr)
            return EXIT_PROBLEM
        print(f"Stored mail {row.id}: state {row.state}, from {row.source} UID {row.uid}, "
              f"Message-ID <{row.message_id}>\nReason: {row.reason}\n")
        sys.stdout.write(bytes(row.raw).decode("utf-8", "replace"))
        return EXIT_OK
    rows = list(InboundMail.select().where(InboundMail.state == "quarantined").order_by(InboundMail.id))
    for r in rows:
        print(f"{r.id:>6}  {_fmt(r.received_at)}  {r.size:>8} B  <{r.message_id or '?'}>  {r.reason}")
    print(f"-- {len(rows)} mail(s) in quarantine" + ("; `mailticket quarantine --reprocess ID` tries again" if rows else ""))
    return EXIT_OK


def _reprocess(args) -> int:
    from . import intake
    from ..models import InboundMail
    desk = _desk(args)
    q = InboundMail.update(state="received", reason=None, claimed_by=None, claimed_until=None).where(
        InboundMail.state == "quarantined")
    if args.reprocess != "all":  # an int, checked by cli_args
        q = q.where(InboundMail.id == args.reprocess)
    if not q.execute():
        print(f"mailticket quarantine: no quarantined mail {args.reprocess}", file=sys.stderr)
        return EXIT_PROBLEM
    results = intake.process_pending(desk, "cli-reprocess")
    bad = 0
    for row, outcome in results:
        print(f"{row.id}: {outcome.state}" + (f" ticket {outcome.ticket}" if outcome.ticket else "")
              + (f": {outcome.reason}" if outcome.reason else ""))
        bad += outcome.state == "quarantined"
    return EXIT_PROBLEM if bad else EXIT_OK


# ---------------------------------------------------------------- import

def import_cmd(args) -> int:
    from .importer import MAX_MAIL, NotASource, import_path
    from ..sizes import format_size
    path = Path(args.path)  # an mbox, a maildir or a mail file: checked by cli_args before the config is read
    desk = _desk(args)
    try:
        result = import_path(desk, path, progress=not args.no_progress and sys.stderr.isatty())
    except NotASource as exc:  # changed since the arguments were read
        print(f"mailticket import: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for where in result.too_large:
        print(f"mailticket import: {path}: {where}, over the {format_size(MAX_MAIL)} a mail may have: not imported",
              file=sys.stderr)
    large = f", {len(result.too_large)} too large" if result.too_large else ""
    print(f"{path}: {result.seen} mail(s): {result.new_tickets} new ticket(s), {result.threaded} threaded, "
          f"{result.skipped} already known, {result.quarantined} quarantined{large}; no mail was sent")
    return EXIT_PROBLEM if result.quarantined or result.too_large else EXIT_OK


# ---------------------------------------------------------------- retention / erasure

def purge_cmd(args) -> int:
    from ..desk import retention
    from ..durations import format_duration
    config = _setup(args)
    policy, now = config.retention, datetime.now(timezone.utc)
    if not (policy.raw_mail or policy.closed_tickets):
        print("mailticket purge: [retention] keeps everything (raw_mail and closed_tickets are 0 or not set); "
              "nothing to do")
        return EXIT_OK
    done = retention.plan(policy, now) if args.dry_run else retention.purge(
        policy, config.service.data_dir, now, config.service.locale)
    verb = "would remove" if args.dry_run else "removed"
    if policy.raw_mail:
        print(f"raw_mail = {format_duration(policy.raw_mail)}: {verb} {done.raw_mails} raw mail(s), "
              f"{done.raw_sent} sent mail(s) and {done.attachments} attachment(s)"
              + (f" of closed ticket(s) {_numbers(done.raw_tickets)}" if done.raw_tickets else ""))
    if policy.closed_tickets:
        print(f"closed_tickets = {format_duration(policy.closed_tickets)}: {verb} {len(done.tickets)} closed "
              f"ticket(s) {_numbers(done.tickets)} and {done.untied_mails} finished mail(s) of no ticket".replace(
                  " ticket(s)  and", " ticket(s) and"))
    if done.kept_open:
        print(f"{done.kept_open} ticket(s) not yet closed are older than the retention: open, pending and resolved "
              "tickets are never purged; they are kept, and their time counts from when they are closed")
    if done.empty:
        print("nothing is old enough to go")
    return EXIT_OK


def _numbers(ids: list[int], most: int = 20) -> str:
    shown = ", ".join(str(i) for i in ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def erase_cmd(args) -> int:
    from ..desk import erasure
    config = _setup(args)
    try:
        done = erasure.erase(config, args.address, datetime.now(timezone.utc), actor=args.actor,
                             dry_run=args.dry_run)
    except erasure.NothingStored as exc:
        print(f"mailticket erase: {exc.args[0]}", file=sys.stderr)
        return EXIT_PROBLEM
    except ValueError as exc:  # malformed, or the desk's own address
        print(f"mailticket erase: {exc}", file=sys.stderr)
        return EXIT_USAGE
    what = (f"{len(done.tickets)} ticket(s) {_numbers(done.tickets)}, {done.mails} raw mail(s), "
            f"{done.attachments} attachment(s), {done.outgoing} outgoing mail(s), {done.events} history entr(ies)")
    if args.dry_run:
        print(f"would anonymise {args.address}: {what}; nothing was changed")
        return EXIT_OK
    print(f"anonymised: {what}" + (f"; {done.cancelled} queued mail(s) to them not sent" if done.cancelled else "")
          + (f"; {done.files} file(s) deleted from the outbox folder" if done.files else "")
          + ". Recorded: that an erasure happened, not what or whose. The report's figures are unchanged.")
    return EXIT_OK


# ---------------------------------------------------------------- backup / restore

def backup_cmd(args) -> int:
    from .backup import BackupError, backup
    config = _setup(args)
    try:
        done = backup(config, Path(args.dir))
    except BackupError as exc:
        print(f"mailticket backup: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except OSError as exc:  # the folder could not be made or written (root passes cli_args' access check)
        print(f"mailticket backup: {exc.filename or args.dir}: {exc.strerror}", file=sys.stderr)
        return EXIT_PROBLEM
    counts = done.counts
    print(f"backed up to {done.folder}: {counts.get('tickets', 0)} ticket(s), {counts.get('mails', 0)} mail(s), "
          f"{counts.get('outbox', 0)} outgoing mail(s), {counts.get('attachments', 0)} attachment(s), the signing "
          f"secret; {done.files} file(s), each with its checksum in manifest.json")
    for note in done.notes:
        print(f"note: {note}")
    if done.missing:
        print(f"mailticket backup: {len(done.missing)} attachment file(s) the database names are missing on disk "
              f"(first: {done.missing[0]}); the backup has the rest", file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_OK


def restore_cmd(args) -> int:
    from .backup import BackupError, restore
    config = load_config(args.config)
    try:
        done = restore(config, Path(args.dir), overwrite=args.overwrite)
    except BackupError as exc:
        print(f"mailticket restore: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    counts = done.counts
    print(f"restored from {done.folder}: {counts.get('tickets', 0)} ticket(s), {counts.get('mails', 0)} mail(s), "
          f"{counts.get('attachments', 0)} attachment(s) and the signing secret; start the daemon again")
    for note in done.notes:
        print(f"note: {note}")
    return EXIT_OK
