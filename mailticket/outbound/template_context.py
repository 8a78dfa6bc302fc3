"""The context each mail template receives, written out as a sample.

``sample_context(name)`` is what ``Renderer.check()`` renders an admin's templates with,
and the reference for code that builds contexts. Every template gets ``service``,
``ticket`` (None for mail about no ticket), ``timezone`` and ``now``; the keys in
``EXTRA_KEYS`` come on top.
"""

from datetime import datetime, timedelta, timezone

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)

EXTRA_KEYS = {
    "acknowledgement": (),
    "new_ticket": ("decision_reasons",),
    "agent_reply": ("agent_name", "body"),
    "note": ("agent_name", "body", "unverified"),
    "requester_update": ("author_name", "body"),
    "warning": ("clock", "due", "time_used", "time_left"),
    "escalation": ("from_tier", "to_tier", "reason", "time_used", "history"),
    "escalation_manager": ("from_tier", "to_tier", "reason", "time_used", "history"),
    "escalated": (),
    "resolved": ("body", "auto_close_after", "feedback"),
    "closed": (),
    "reopened": ("author_name", "body"),
    "command_error": ("errors",),
    "call_invitation": ("agent_name", "start", "end", "duration"),
    "delivery_failure": ("recipient", "reason", "outbox_id"),
    "quarantine_alert": ("reason", "message_id", "uid", "sender", "subject", "quarantine_id"),
    "security_alert": ("breach_report_deadline",),
    "breach_deadline_warning": ("breach_report_deadline", "time_left"),
    "manager_report": ("report", "kind", "scale"),
    "feedback_expired": ("number", "feedback_kind"),
    "feedback_rating_invalid": ("given", "feedback"),
}


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
    }


def _sample_extras(now: datetime) -> dict:
    history = [
        {"at": now - timedelta(hours=3), "actor": "anna.svensson@example.com", "kind": "logged",
         "text": "Ticket logged from mail"},
        {"at": now - timedelta(hours=2), "actor": "alice@example.com", "kind": "reply",
         "text": "Could you send a photo of the printer's display?"},
        {"at": now - timedelta(minutes=5), "actor": "mailticket", "kind": "escalation", "text": None},
    ]
    return {
        "decision_reasons": ["rule 'printers': subject contains 'printer'", "impact medium × urgency medium → P3"],
        "agent_name": "Alice Andersson",
        "author_name": "Anna Svensson",
        "body": "Thanks, I have restarted the print server.\nCould you try again?",
        "unverified": False,
        "clock": "resolution",
        "due": now + timedelta(hours=2),
        "time_used": timedelta(hours=6),
        "time_left": timedelta(hours=2),
        "from_tier": 1,
        "to_tier": 2,
        "reason": "resolution target of 8 h breached",
        "history": history,
        "auto_close_after": timedelta(days=3),
        "errors": [{"line": "#priority P7", "problem": "unknown priority P7", "valid": "#priority P1..P4"}],
        "start": now + timedelta(days=1, hours=2),
        "end": now + timedelta(days=1, hours=2, minutes=30),
        "duration": timedelta(minutes=30),
        "recipient": "anna.svensson@example.com",
        "outbox_id": 17,
        "message_id": "<abc123@mail.example.com>",
        "uid": 4711,
        "sender": "someone@example.org",
        "subject": "Help with VPN",
        "quarantine_id": 9,
        "breach_report_deadline": now + timedelta(hours=70),
        "report": sample_report(),
        "kind": "weekly",
        "scale": {"target": 86400.0, "resolution": 104400.0, "backlog": 2, "ratings": 1},
        "feedback": sample_feedback(),
        "number": 42,
        "feedback_kind": "rating",
        "given": "6",
    }


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
            "empty": False, "overall": dict(_sample_figures(12), breaches=1),
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
                       "description": "I think I gave my password to a fake login page."},
    "resolved": {"status": "resolved"},
    "closed": {"status": "closed"},
}
_EXTRA_CHANGES = {
    "delivery_failure": {"reason": "550 5.1.1 <anna.svensson@example.com>: user unknown"},
    "quarantine_alert": {"reason": "MIME nesting deeper than 50 levels"},
    "escalation_manager": {"from_tier": 3, "to_tier": 3, "reason": "resolution target of 8 h breached at tier 3"},
    "requester_update": {"body": "It still prints blank pages, also after a restart."},
    "reopened": {"body": "Sorry, it is back: blank pages again since lunch."},
    "resolved": {"body": "We replaced the toner cartridge. Test prints look fine now."},
    "note": {"body": "Toner ordered, arrives tomorrow.", "unverified": True},
    "warning": {"time_used": timedelta(hours=18), "time_left": timedelta(hours=6), "due": NOW + timedelta(hours=6)},
}
_SECURITY = ("security_alert", "breach_deadline_warning")
_NO_TICKET = ("manager_report",)  # mail about no ticket


def sample_context(name: str, now: datetime = NOW) -> dict:
    """A full context for template ``name``: the common keys and that template's own."""
    ticket = sample_ticket(now) | _TICKET_CHANGES.get(name, {})
    if name in _SECURITY:
        ticket |= _TICKET_CHANGES["security_alert"]
    extras = _sample_extras(now) | _EXTRA_CHANGES.get(name, {})
    if name == "breach_deadline_warning":
        extras |= {"breach_report_deadline": now + timedelta(hours=12), "time_left": timedelta(hours=12)}
    if name in _NO_TICKET:
        ticket = None
    context = {"service": sample_service(), "ticket": ticket, "timezone": "Europe/Stockholm", "now": now}
    context.update({key: extras[key] for key in EXTRA_KEYS[name]})
    return context
