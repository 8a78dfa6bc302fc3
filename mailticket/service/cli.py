"""The command line: thin commands over the library.

Exit codes: 0 success; 1 a check found problems (health, check-config) or the command failed;
2 wrong usage; 3 configuration error; 4 database unreachable; 5 mail server unreachable.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..errors import ConfigError, MailboxError, StorageError

from . import cli_args as a
from .exitcodes import EPILOG, EXIT_CONFIG, EXIT_DATABASE, EXIT_MAILSERVER, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args) or EXIT_OK
    except ConfigError as exc:
        for each in getattr(exc, "errors", [exc]):  # several, one line each
            print(f"mailticket: configuration error: {each}", file=sys.stderr)
        return EXIT_CONFIG
    except MailboxError as exc:
        print(f"mailticket: mail server: {exc}", file=sys.stderr)
        return EXIT_MAILSERVER
    except StorageError as exc:  # nothing of the batch was committed: the mails wait, stored, for the daemon
        print(f"mailticket: {exc}; nothing of that batch was committed", file=sys.stderr)
        return EXIT_PROBLEM
    except _database_errors() as exc:
        from ..db import describe_error
        print(f"mailticket: database: {describe_error(exc)}", file=sys.stderr)
        return EXIT_DATABASE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


def _database_errors():
    import peewee as pw
    from ..db import DatabaseError
    return (DatabaseError, pw.OperationalError, pw.InterfaceError)


def setup_logging(verbose: bool = False) -> None:
    from .logsetup import configure
    configure(logging.DEBUG if verbose else logging.INFO)


EXAMPLES = {
    "run": "  mailticket --config /etc/mailticket/mailticket.toml run     (systemd does this)",
    "check-config": "  mailticket -c /etc/mailticket/mailticket.toml check-config\n"
                    "  mailticket -c /etc/mailticket/mailticket.toml check-config --connect",
    "poll": "  mailticket -c FILE poll --once",
    "tickets": "  mailticket tickets --status active --sort due\n"
               "  mailticket tickets --priority P1 --tier 3 --format json\n"
               "  mailticket tickets --requester @customer.example --limit 20 --page 2\n"
               "  mailticket tickets --category network --type incident --assignee alice@example.com\n"
               "  mailticket tickets --status active --breached",
    "show": "  mailticket show 123\n  mailticket show 123 --raw | less",
    "report": "  mailticket report --since 2026-10-01 --until 2026-11-01\n"
              "  mailticket report --by tier,agent --format csv > sla.csv\n"
              "  mailticket report --format html > report.html\n"
              "  mailticket report --mail",
    "outbox": "  mailticket outbox\n  mailticket outbox --retry 42\n  mailticket outbox --retry all",
    "quarantine": "  mailticket quarantine\n  mailticket quarantine show 17\n  mailticket quarantine --reprocess 17",
    "import": "  mailticket import ~/old-support.mbox\n  mailticket import /var/mail/support-archive/",
    "migrate": "  mailticket migrate",
    "backup": "  mailticket backup /var/backups/mailticket/$(date +%F)     (as the service's user, while it runs)",
    "restore": "  mailticket restore /var/backups/mailticket/2026-12-01     (after systemctl stop mailticket)\n"
               "  mailticket restore /var/backups/mailticket/2026-12-01 --overwrite",
    "purge": "  mailticket purge --dry-run\n  mailticket purge",
    "erase": "  mailticket erase anna@customer.example --dry-run\n  mailticket erase anna@customer.example",
    "attachment": "  mailticket attachment 123\n  mailticket attachment 123 \"logs.zip\" -o /tmp/\n"
                  "  mailticket attachment 123 screenshot.png -o - | display",
    "health": "  mailticket health || echo 'mailticket needs attention'\n"
              "  mailticket health --max-fetch-age 30m --max-queue-age 1h\n"
              "  mailticket health --format prometheus > /var/lib/node_exporter/mailticket.prom.$$ && \\\n"
              "    mv /var/lib/node_exporter/mailticket.prom.$$ /var/lib/node_exporter/mailticket.prom",
}


def build_parser() -> argparse.ArgumentParser:
    p = a.Parser(prog="mailticket", description="An email-driven IT incident desk.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", metavar="FILE", default=os.environ.get("MAILTICKET_CONFIG"),
                   help="the TOML config file (default: $MAILTICKET_CONFIG, else the embedded default: "
                        "SQLite under ./var, listener on 127.0.0.1:2525, outgoing mail to ./var/outgoing)")
    p.add_argument("--verbose", "-v", action="store_true", help="log debug detail")
    sub = p.add_subparsers(metavar="COMMAND")

    def cmd(name, func, help_, **kw):
        examples = EXAMPLES.get(name, "")
        sp = sub.add_parser(name, help=help_, description=help_,
                            epilog=(f"examples:\n{examples}\n\n" if examples else "") + EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter, **kw)
        sp.set_defaults(func=func)
        return sp

    from . import cli_commands as c
    cmd("run", c.run, "run the daemon in the foreground (logs to stderr)")
    sp = cmd("check-config", c.check_config, "validate the config file and templates; each problem named with its file and key")
    sp.add_argument("--connect", action="store_true", help="also log in to the IMAP and SMTP servers and the database")
    sp = cmd("poll", c.poll, "process the inbox now and exit")
    sp.add_argument("--once", action="store_true", required=True, help="one pass, then exit")
    sp = cmd("tickets", c.list_tickets, "list tickets")
    sp.add_argument("--status", action="append", choices=a.STATUSES, metavar="STATUS",
                    help="new, open, pending, resolved, closed, or 'active' (repeatable)")
    sp.add_argument("--tier", type=int, choices=(1, 2, 3), help="only tickets at this tier")
    sp.add_argument("--priority", choices=("P1", "P2", "P3", "P4"), help="only tickets of this priority")
    sp.add_argument("--requester", type=a.text(254, "an address or part of it"),
                    help="requester address (or part of it)")
    sp.add_argument("--category", type=a.text(100, "a category"), help="only tickets of this category")
    sp.add_argument("--type", choices=("incident", "request"), help="only incidents or only service requests")
    sp.add_argument("--assignee", type=a.text(254, "an address, part of it, or 'none'"), help="assignee address (or part of it); 'none' for unassigned tickets")
    sp.add_argument("--breached", action="store_true",
                    help="only tickets that breached a target (escalated by the SLA scan, or past due now)")
    sp.add_argument("--sort", default="-number", choices=("number", "-number", "priority", "due", "updated", "-updated"),
                    help="order (default -number: newest first; due: the next deadline first)")
    sp.add_argument("--limit", type=a.number(1, 100_000, "rows per page"), default=50,
                    help="rows per page, 1 to 100 000 (default 50)")
    sp.add_argument("--page", type=a.number(1, 1_000_000, "a page number"), default=1,
                    help="which page of --limit rows, from 1 (default 1)")
    sp.add_argument("--format", choices=("text", "json"), default="text", help="a table (default) or JSON")
    sp = cmd("show", c.show, "show one ticket with its whole history")
    sp.add_argument("number", metavar="NUMBER", type=a.ticket_number, help="the ticket number, as in [SD#123]")
    sp.add_argument("--raw", action="store_true", help="also print the raw mails")
    sp = cmd("report", c.report, "the manager's figures: response and resolution times against the targets, "
             "breaches, escalations, first-contact resolution, reopens, satisfaction, backlog")
    sp.add_argument("--since", type=a.day, help="first day, YYYY-MM-DD, local time (default: all; with --mail: 7 days "
                                    "before --until)")
    sp.add_argument("--until", type=a.day, help="day after the last, YYYY-MM-DD, local midnight, not included (default: now)")
    sp.add_argument("--by", type=_report_groups, action="extend",
                    help="group by priority, tier, category, type, agent, language (comma-separated or "
                         "repeated; default: all six)")
    sp.add_argument("--format", choices=("text", "json", "csv", "html"), default="text",
                    help="text (default; the report mail's text part), JSON, CSV for a spreadsheet, or HTML "
                         "(the report mail's HTML part)")
    sp.add_argument("--mail", action="store_true",
                    help="mail the report to [service] manager_address now instead of printing it")
    sp = cmd("outbox", c.outbox_cmd, "queued and failed outgoing mail; --retry to send again")
    sp.add_argument("--retry", metavar="ID|all", type=a.id_or_all("an outbox ID"), help="queue a failed (or waiting) mail to be sent at once")
    sp.add_argument("--all", action="store_true", help="also list sent mail")
    sp = cmd("quarantine", c.quarantine_cmd, "mail that could not be processed")
    sp.add_argument("action", nargs="?", default="list", choices=("list", "show"),
                    help="list (default) the quarantined mails, or show one with its raw text")
    sp.add_argument("id", nargs="?", metavar="ID", type=a.row_id("a stored mail's ID"),
                    help="the stored mail's ID (from the list), for show")
    sp.add_argument("--reprocess", metavar="ID", type=a.id_or_all("a stored mail's ID"), help="process a quarantined mail again (ID or 'all')")
    sp = cmd("import", c.import_cmd, "import past mail from an mbox, a maildir or one mail file (no mail is sent)")
    sp.add_argument("path", metavar="PATH", type=a.import_source,
                    help="an mbox file (its first line starts with 'From '), a maildir folder (with cur/ or new/), "
                         "or one mail saved as a file (.eml); anything else is refused (exit 2)")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar (it is shown only on a terminal)")
    cmd("migrate", c.migrate, "bring the database schema up to date")
    sp = cmd("purge", c.purge_cmd, "apply [retention]: remove old raw mails, attachments and closed tickets")
    sp.add_argument("--dry-run", action="store_true", help="only say what would go")
    sp = cmd("erase", c.erase_cmd, "anonymise everything stored about one person (GDPR erasure request)")
    sp.add_argument("address", metavar="ADDRESS", type=a.text(254, "a mail address"), help="the person's mail address")
    sp.add_argument("--dry-run", action="store_true", help="only say how much would be anonymised")
    sp.add_argument("--actor", default="admin", type=a.text(200, "a name or address"), help="who asked, for the record (default: admin)")
    sp = cmd("backup", c.backup_cmd, "copy everything the desk needs into a new folder, while the daemon runs")
    sp.add_argument("dir", metavar="DIR", type=a.new_folder, help="a new or empty folder")
    sp = cmd("restore", c.restore_cmd, "put a backup back (the daemon must be stopped)")
    sp.add_argument("dir", metavar="DIR", help="a folder written by `mailticket backup`")
    sp.add_argument("--overwrite", action="store_true", help="replace a desk that already has tickets or mail")
    sp = cmd("health", c.health, "exit 0 when all is well; otherwise one line per problem")
    sp.add_argument("--max-fetch-age", default="10m", type=a.duration("1s", "365d"),
                    help="longest acceptable time since the last fetch, 1s to 365d (default 10m)")
    sp.add_argument("--max-queue-age", default="30m", type=a.duration("1s", "365d"),
                    help="oldest acceptable queued outgoing mail, 1s to 365d (default 30m)")
    sp.add_argument("--format", choices=("text", "prometheus"), default="text",
                    help="text (default): one line per problem; prometheus: the desk's figures in the Prometheus "
                         "text format, for node_exporter's textfile collector (exit 0 whenever the database answered)")
    from .cli_files import attachment
    sp = cmd("attachment", attachment, "list a ticket's files, or write one out (those too large to go by mail)")
    sp.add_argument("ticket", metavar="TICKET", type=a.ticket_number, help="the ticket number, as in [SD#123]")
    sp.add_argument("name", nargs="?", metavar="NAME", type=a.text(255, "a file name"), help="the file's name as the mail lists it (without it: list the files)")
    sp.add_argument("--output", "-o", metavar="PATH", help="where to write it: a file, a folder, or - for stdout "
                                                           "(default: NAME in the current folder)")
    sp.add_argument("--force", action="store_true", help="overwrite an existing file")
    return p


def _report_groups(value: str) -> list[str]:
    """``--by tier,agent`` -> ["tier", "agent"]; an unknown group is a usage error (exit 2)."""
    valid = ("priority", "tier", "category", "type", "agent", "language")
    groups = [v.strip().lower() for v in value.split(",") if v.strip()]
    unknown = [g for g in groups if g not in valid]
    if unknown or not groups:
        raise argparse.ArgumentTypeError(f"{(unknown or [value])[0]!r} is not a group; valid: {', '.join(valid)}")
    return groups


if __name__ == "__main__":
    sys.exit(main())
