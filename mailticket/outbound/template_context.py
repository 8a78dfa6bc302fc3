"""The context each mail template receives, written out as a sample.

``sample_context(name)`` is what ``Renderer.check()`` renders an admin's templates with,
and the reference for code that builds contexts. Every template gets ``service``,
``ticket`` (None for mail about no ticket), ``timezone`` and ``now``; the keys in
``EXTRA_KEYS`` come on top: exactly what the code that sends each mail passes (checked through
the real pipeline by tests/test_mail_kinds_e2e.py), so ``check-config`` can tell an admin when an
override uses a value that mail never gets. Shared pieces: ``ticket`` carries the due times,
``breach_report_deadline``, ``cc`` and ``attachments``; ``history`` is ``desk/history.py``'s list
(newest first, at most ten) with ``history_more`` the count left out; ``for_information`` marks a
copy that needs no action. Values may be ``i18n.Message``s: the renderer translates them into
the mail's language before the template sees them.
"""

from datetime import datetime, timedelta, timezone

from ..i18n import Message

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)

EXTRA_KEYS = {
    "acknowledgement": (),
    "new_ticket": ("decision_reasons", "body", "for_information", "left_out"),
    "agent_reply": ("agent_name", "body"),
    "note": ("agent_name", "body", "unverified"),
    "requester_update": ("author_name", "body", "left_out"),
    "warning": ("clock", "due", "time_used", "time_left"),
    "escalation": ("from_tier", "to_tier", "reason", "time_used", "history", "history_more"),
    "escalation_manager": ("from_tier", "to_tier", "reason", "time_used", "history", "history_more"),
    "escalated": ("from_tier", "to_tier"),
    "resolved": ("body", "auto_close_after", "feedback"),
    "closed": ("body", "auto_close_after"),
    "reopened": ("author_name", "body", "left_out"),
    "command_error": ("errors",),
    "call_invitation": ("agent_name", "start", "end", "duration", "mode", "link", "phone", "previous_start"),
    "call_cancelled": ("agent_name", "start", "end", "duration"),
    "call_answer": ("answer", "start", "proposed_start", "proposed_end", "comment", "author_name"),
    "call_reminder": ("start", "end", "duration", "mode", "link", "phone", "state"),
    "delivery_failure": ("recipient", "reason", "outbox_id", "bounced"),
    "delivery_digest": ("count", "failures", "more", "since", "alerts_day"),
    "quarantine_alert": ("reason", "message_id", "uid", "sender", "subject", "quarantine_id"),
    "quarantine_digest": ("count", "mails", "more", "since", "alerts_day"),
    "security_alert": ("decision_reasons", "body", "for_information"),  # the deadline is ticket.breach_report_deadline
    "breach_deadline_warning": ("breach_report_deadline", "time_left"),
    "query_answer": ("query", "tickets", "shown", "history", "history_more", "problem", "tier"),
    "requester_refused": ("line", "line_no", "problem", "address", "body", "original_subject"),
    "merged": ("merged_from",),
    "alarm": ("problem", "since", "detail", "lasted", "alarm_after", "host"),
    "alarm_cleared": ("problem", "since", "detail", "lasted", "alarm_after", "host"),
    "pending_reminder": ("pending_since", "waited", "resolve_at", "auto_close_after"),
    "pending_resolved": ("pending_since", "waited", "resolve_at", "auto_close_after"),
    "assigned": ("assigned_by", "assigned_by_name", "files", "attach_max"),
    "attachment_refused": ("refused",),
    "manager_report": ("report", "kind", "scale"),
    "feedback_expired": ("number", "feedback_kind"),
    "feedback_rating_invalid": ("given", "feedback"),
}
# Mails that list a requester's files (templates/<locale>/_attachments.*) have these keys too.
FILE_KEYS = ("files", "attach_max")
LISTS_FILES = ("new_ticket", "requester_update", "reopened", "escalation", "security_alert", "agent_reply")
# The acknowledgement asks again for files that arrived empty (templates/<locale>/_empty_files.*).
LISTS_EMPTY_FILES = ("acknowledgement",)
# An agent's files on a resolving or closing reply go with that mail: FILE_KEYS then, and only then.
MAY_LIST_FILES = ("resolved", "closed")


def documented_keys(name: str) -> tuple[set, set]:
    """The keys a mail of ``name`` always gets besides the common ones, and those it may get."""
    always = set(EXTRA_KEYS[name]) | (set(FILE_KEYS) if name in LISTS_FILES else set())
    maybe = (set(FILE_KEYS) if name in MAY_LIST_FILES else set()) | (
        {"empty_files"} if name in LISTS_EMPTY_FILES else set())
    return always, maybe


def sample_service() -> dict:
    return {"name": "Service Desk", "address": "support@example.com", "tag_prefix": "SD"}


def sample_ticket(now: datetime = NOW) -> dict:
    return {
        "number": 42,
        "tag": "[SD#42]",
        "subject": "Printer on floor 3 prints blank pages",
        "status": "open",
        "priority": "P3",
        "type": "incident",
        "category": "hardware",
        "impact": "medium",
        "urgency": "medium",
        "tier": 1,
        "tier_name": "Service desk",
        "requester_name": "Anna Svensson",
        "requester_address": "anna.svensson@example.com",
        "assignee": "alice@example.com",
        "created_at": now - timedelta(hours=1),
        "first_response_due": now + timedelta(hours=2),
        "resolution_due": now + timedelta(hours=23),
        "description": "Hi,\n\nthe printer on floor 3 only prints blank pages since this morning.\n\nAnna",
        "breach_report_deadline": None,
        "cc": [{"name": "Bo Ek", "address": "bo.ek@example.com"}],
        "attachments": [{"name": "display.jpg", "size": 184_320}],
        "phone": "+46 70 123 45 67",  # the requester's, in international form ('' when unknown)
        "language": "sv",
    }


def _sample_extras(now: datetime) -> dict:
    history = [  # as desk/history.py writes it: newest first
        {"at": now - timedelta(minutes=5), "who": None, "what": Message("Escalated to tier {to_tier}", to_tier=2),
         "text": None, "unverified": False, "important": True},
        {"at": now - timedelta(hours=2), "who": "alice@example.com", "what": Message("Reply to the requester"),
         "text": "Could you send a photo of the printer's display?", "unverified": False, "important": False},
        {"at": now - timedelta(hours=3), "who": "anna.svensson@example.com",
         "what": Message("Ticket logged from the requester's mail"), "text": None, "unverified": False,
         "important": False},
    ]
    return {
        "decision_reasons": [Message("rule “{rule}”: {why}", rule="printers",
                                     why=Message("the subject contains “{words}”", words="printer")),
                             Message("priority {priority} from the matrix (impact {impact}, urgency {urgency})",
                                     priority="P3", impact=Message("medium"), urgency=Message("medium"))],
        "for_information": False,
        "history_more": 0,
        "agent_name": "Alice Andersson",
        "author_name": "Anna Svensson",
        "body": "Thanks, I have restarted the print server.\nCould you try again?",
        "unverified": False,
        "left_out": None,  # or the people a mail named that the ticket did not take (tickets.add_participants)
        "clock": "resolution",
        "due": now + timedelta(hours=2),
        "time_used": timedelta(hours=6),
        "time_left": timedelta(hours=2),
        "from_tier": 1,
        "to_tier": 2,
        "reason": Message("{priority} {clock} target {target} breached at tier {tier} ({used} used)", priority="P3",
                          clock=Message("resolution"), target=timedelta(hours=8), tier=1, used=timedelta(hours=8)),
        "history": history,
        "auto_close_after": timedelta(days=3),
        "errors": [{"line": "#priority P7", "line_no": 1, "problem": Message("'{word}' is not a priority", word="P7"),
                    "valid": "#priority P1|P2|P3|P4"}],
        "start": now + timedelta(days=1, hours=2),
        "end": now + timedelta(days=1, hours=2, minutes=30),
        "duration": timedelta(minutes=30),
        "mode": "meeting",
        "link": "https://meet.example.com/alice",
        "phone": "+46 8 123 45 67",
        "previous_start": None,
        "answer": "declined",
        "proposed_start": now + timedelta(days=2, hours=2),
        "proposed_end": now + timedelta(days=2, hours=2, minutes=30),
        "comment": "Could we take it on Tuesday instead?",
        "state": "accepted",
        "recipient": "anna.svensson@example.com",
        "outbox_id": 17,
        "message_id": "<abc123@mail.example.com>",
        "uid": 4711,
        "sender": "someone@example.org",
        "subject": "Help with VPN",
        "quarantine_id": 9,
        "breach_report_deadline": now + timedelta(hours=70),
        "problem": "outgoing",
        "since": now - timedelta(minutes=16),
        "detail": "451 4.3.0 smtp.example.com: 4.3.0",
        "lasted": timedelta(minutes=16),
        "alarm_after": timedelta(minutes=15),
        "host": "smtp.example.com",
        "pending_since": now - timedelta(days=3),
        "waited": timedelta(days=3),
        "resolve_at": now + timedelta(days=4),
        "assigned_by": "bob@example.com",
        "assigned_by_name": "Bob Berg",
        "files": sample_files(),
        "attach_max": 10_000_000,
        "refused": [{"name": "scan.pdf", "size": 0, "why": "empty"},
                    {"name": "video.mp4", "size": 48_000_000, "why": "too_big", "limit": 25_000_000}],
        "report": sample_report(),
        "kind": "weekly",
        "scale": {"target": 86400.0, "resolution": 104400.0, "backlog": 2, "ratings": 1},
        "feedback": sample_feedback(),
        "number": 42,
        "feedback_kind": "rating",
        "given": "6",
        **_working_day_extras(now, history),
    }


def _working_day_extras(now: datetime, history: list) -> dict:
    """Asking by mail, tickets on someone's behalf, merged tickets (desk.queries, onbehalf, related)."""
    listed = {"number": 42, "tag": "[SD#42]", "subject": "Printer on floor 3 prints blank pages", "status": "open",
              "priority": "P3", "tier": 1, "assignee": None, "requester_name": "Anna Svensson",
              "requester_address": "anna.svensson@example.com", "first_response_due": None,
              "resolution_due": now + timedelta(hours=23), "resolved_at": None, "merged_into": None, "parent": None}
    resolved = listed | {"number": 40, "tag": "[SD#40]", "subject": "VPN drops every hour", "status": "resolved",
                         "resolution_due": None, "resolved_at": now - timedelta(days=1)}
    return {
        "query": {"name": "mytickets", "line": "#mytickets", "where": "subject"},
        "tickets": [listed, resolved],
        "shown": None,
        "tier": None,
        "line": "#requester anna.berg@example",
        "line_no": 1,
        "address": "",
        "original_subject": "Phone: Outlook crashes at start",
        "merged_from": {"number": 41, "tag": "[SD#41]", "subject": "Printer 3 again",
                        "requester_name": "Anna Svensson"},
    }


def sample_files() -> list[dict]:
    """A screenshot and a PDF attached, a file over attach_max and an empty one. (An inline image
    has a ``cid`` that the HTML shows it by; the sample has none, as a page in a browser cannot
    load one.)"""
    return [{"name": "screenshot.png", "size": 182_000, "content_type": "image/png", "state": "attached",
             "cid": None},
            {"name": "error.pdf", "size": 54_000, "content_type": "application/pdf", "state": "attached",
             "cid": None},
            {"name": "printer-log.zip", "size": 14_500_000, "content_type": "application/zip",
             "state": "over_limit", "cid": None},
            {"name": "empty.txt", "size": 0, "content_type": "text/plain", "state": "empty", "cid": None}]


def _sample_figures(tickets: int) -> dict:
    """The figures of one group of the manager's report (mailticket.desk.report.figures)."""
    clock = {"measured": tickets, "within_target": tickets - 1, "share_within_target": (tickets - 1) / tickets,
             "median": 5400.0, "mean": 6300.0, "p90": 10800.0}
    return {"tickets": tickets, "resolved": tickets - 1, "first_response": clock,
            "resolution": dict(clock, measured=tickets - 1, median=14400.0, mean=30600.0),
            "pending": {"tickets": 2, "total": 36000.0},
            "escalations": {"tier1": 2, "tier2": 1, "tier3": 0}, "escalated_tickets": 2,
            "first_contact_resolution": {"resolved": tickets - 1, "first_contact": tickets - 3,
                                         "share": (tickets - 3) / (tickets - 1)},
            "reopen": {"resolved": tickets - 1, "reopened": 1, "rate": 1 / (tickets - 1)},
            "satisfaction": {"asked": tickets - 1, "answered": 3, "share_answered": 3 / (tickets - 1), "mean": 4.0,
                             "ratings": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1}}}


def sample_report() -> dict:
    """A small report as ``mailticket.desk.report.summarize`` makes it."""
    weeks = [{"week_start": f"2026-11-{day:02d}", "week": 45 + i, "tickets": 4 + i, "first_response_within": 3 + i,
              "first_response_measured": 4 + i, "first_response_share": (3 + i) / (4 + i),
              "resolution_mean": 3600.0 * (20 + 3 * i), "satisfaction_mean": 4.0, "satisfaction_answered": 1}
             for i, day in enumerate((2, 9, 16, 23))]
    return {"period": {"since": "2026-11-20T00:00:00+01:00", "until": "2026-11-27T00:00:00+01:00",
                       "generated": "2026-11-27T12:00:00+00:00"},
            "empty": False, "spam": 2, "overall": dict(_sample_figures(12), breaches=1),
            "average_resolution": {"incidents": 10, "mean": 30600.0, "target": 86400.0, "met": True},
            "breaches": [{"number": 42, "priority": "P2", "tier": 2, "category": "network", "clock": "resolution",
                          "used": 32400.0, "target": 28800.0, "ongoing": False}],
            "backlog": {"open": 5, "by_age": {"0-1d": 2, "1-3d": 2, "3-7d": 1, "7-30d": 0, "30d+": 0}},
            "monitoring": {"tickets": 3, "resolved": 3, "resolution_mean": 900.0},
            "by": {"priority": {"P2": _sample_figures(4), "P3": _sample_figures(8)},
                   "tier": {"1": _sample_figures(12), "2": _sample_figures(3)}},
            "weekly": weeks}


def sample_feedback() -> dict:
    return {"solved": "support+t42-s-abc-aaaaaaaaaaaaaaaa@example.com",
            "unsolved": "support+t42-u-abc-aaaaaaaaaaaaaaaa@example.com",
            "rating": "support+t42-v-abc-aaaaaaaaaaaaaaaa@example.com"}


# how the sample differs for some mails, so that each reads like a real one
_TICKET_CHANGES = {
    "escalation": {"tier": 2, "tier_name": "Second line", "assignee": None},
    "escalation_manager": {"tier": 3, "tier_name": "Third line", "priority": "P2", "impact": "high"},
    "security_alert": {"tier": 3, "tier_name": "Third line", "priority": "P1", "category": "security",
                       "impact": "high", "urgency": "high", "assignee": None,
                       "subject": "I clicked a link and entered my password",
                       "description": "I think I gave my password to a fake login page.",
                       "breach_report_deadline": NOW + timedelta(hours=71)},
    "resolved": {"status": "resolved"},
    "closed": {"status": "closed"},
}
_EXTRA_CHANGES = {
    "delivery_failure": {"reason": "550 5.1.1 <anna.svensson@example.com>: user unknown", "bounced": False},
    "quarantine_alert": {"reason": Message("MIME nesting deeper than max_depth {limit}", limit=50)},
    "escalation_manager": {"from_tier": 3, "to_tier": 3, "reason": Message(
        "{priority} {clock} target {target} breached at tier {tier} ({used} used)", priority="P2",
        clock=Message("resolution"), target=timedelta(hours=8), tier=3, used=timedelta(hours=8))},
    "requester_update": {"body": "It still prints blank pages, also after a restart.",
                         "left_out": {"reason": "unverified", "count": 1, "addresses": ["mallory@example.net"],
                                      "more": 0, "added": 0, "limit": 20}},
    "reopened": {"body": "Sorry, it is back: blank pages again since lunch.",
                 "left_out": {"reason": "limit", "count": 12, "more": 2, "added": 4, "limit": 20,
                              "addresses": [f"user{i}@example.com" for i in range(21, 31)]}},
    "resolved": {"body": "We replaced the toner cartridge. Test prints look fine now."},
    "note": {"body": "Toner ordered, arrives tomorrow.", "unverified": True},
    "requester_refused": {"problem": "bad_address", "body": "Anna called: Outlook crashes at start since today."},
    "warning": {"time_used": timedelta(hours=18), "time_left": timedelta(hours=6), "due": NOW + timedelta(hours=6)},
}
_EXTRA_CHANGES["alarm_cleared"] = {"detail": None, "lasted": timedelta(minutes=42),
                                   "since": NOW - timedelta(minutes=42)}
_EXTRA_CHANGES["query_answer"] = {"problem": None}
_EXTRA_CHANGES["quarantine_digest"] = {
    "count": 57, "more": 55, "since": NOW - timedelta(minutes=50), "alerts_day": 10,
    "mails": [{"quarantine_id": 118, "reason": "no usable sender address: From 'Nobody Known' has no usable address",
               "sender": "Nobody Known", "subject": "Invoice 4711", "at": NOW - timedelta(minutes=50),
               "message_id": "inv4711@billing.example"},
              {"quarantine_id": 119, "reason": Message("MIME nesting deeper than max_depth {limit}", limit=50),
               "sender": "bjorn@customer.example", "subject": "VPN question", "at": NOW - timedelta(minutes=20),
               "message_id": "vpn@customer.example"}]}
_EXTRA_CHANGES["delivery_digest"] = {
    "count": 212, "more": 210, "since": NOW - timedelta(minutes=55), "alerts_day": 10,
    "failures": [{"outbox_id": 4711, "recipient": "kalle@forged.example", "ticket": "[SD#118]",
                  "reason": "550 5.1.1 <kalle@forged.example>: Recipient address rejected: User unknown",
                  "at": NOW - timedelta(minutes=55)},
                 {"outbox_id": 4712, "recipient": "anna.svensson@customer.example", "ticket": None,
                  "reason": "", "at": NOW - timedelta(minutes=20)}]}
_SECURITY = ("security_alert", "breach_deadline_warning")
# about the desk (alarms), or answers about several tickets or none
_NO_TICKET = ("alarm", "alarm_cleared", "query_answer", "requester_refused", "manager_report", "quarantine_digest",
              "delivery_digest")


def sample_context(name: str, now: datetime = NOW) -> dict:
    """A full context for template ``name``: the common keys and that template's own."""
    ticket = sample_ticket(now) | _TICKET_CHANGES.get(name, {})
    if name in _SECURITY:
        ticket |= _TICKET_CHANGES["security_alert"]
    extras = _sample_extras(now) | _EXTRA_CHANGES.get(name, {})
    if name == "breach_deadline_warning":
        extras |= {"breach_report_deadline": now + timedelta(hours=12), "time_left": timedelta(hours=12)}
    context = {"service": sample_service(), "ticket": None if name in _NO_TICKET else ticket,
               "timezone": "Europe/Stockholm", "now": now}
    context.update({key: extras[key] for key in EXTRA_KEYS[name]})
    if name in LISTS_FILES:
        context.update({key: extras[key] for key in FILE_KEYS})
    if name in LISTS_EMPTY_FILES:
        context["empty_files"] = ["scan.pdf"]
    return context
