"""Pending tickets do not go silent: one reminder to the requester after ``pending_reminder``, a
resolution with a notice after ``pending_resolve_after``; a reply in between resumes the ticket.

Through Dovecot and the SMTP sink with the daemon's own SLA scan (3 s and 8 s, as the issue
asks), on SQLite in English and PostgreSQL in Swedish; the decisions also as pure functions.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mailticket.desk import sla
from mailticket.errors import ConfigError
from mailticket.models import Event, Ticket
from tests.harness import make_mail, wait_until
from tests.test_conversations_agents import thunderbird_reply
from tests.test_working_day_files import case, live_desk  # noqa: F401 - the (database, language) matrix

ANNA = "Anna Svensson <anna@customer.example>"
SLA = {"check_interval": "1s", "pending_reminder": "3s", "pending_resolve_after": "8s"}
REMINDER = {"en": "We are waiting for your answer", "sv": "Vi väntar på ditt svar"}
RESOLVED = {"en": "Resolved, as we have not heard from you", "sv": "Löst, eftersom vi inte hört av dig"}


# The requester writes in the desk's language (else they are answered in their own: issue 26).
OPENING = {"en": "The printer on floor 3 does not print.", "sv": "Skrivaren på plan 3 skriver inte ut."}


def kinds(ticket) -> list[str]:
    return [e.kind for e in Event.select().where(Event.ticket == ticket).order_by(Event.id)]


def set_pending(live, notification) -> None:
    live.deliver(thunderbird_reply(notification, "#status pending\n\nCould you tell me the printer's name?",
                                   sender="Alice <alice@example.com>"))
    live.wait_mail("anna@customer.example", contains="printer's name")


def test_one_reminder_then_resolution_with_a_notice(case, tmp_path, mailbox_user, smtp_sink):
    locale = case[1]
    with live_desk(case, tmp_path, mailbox_user, smtp_sink, sla=SLA) as live:
        ticket, notification = live.open_ticket("<pending-1@customer.example>", body=OPENING[locale])
        set_pending(live, notification)
        (reminder,) = live.wait_mail("anna@customer.example", contains=REMINDER[locale])
        assert reminder["In-Reply-To"] == "<pending-1@customer.example>"
        assert reminder["Auto-Submitted"] == "auto-generated"
        (notice,) = live.wait_mail("anna@customer.example", contains=RESOLVED[locale])
        t = Ticket.get_by_id(ticket.id)
        assert t.status == "resolved" and t.resolved_at is not None
        live.wait_outbox_sent()
        assert len(live.mails("anna@customer.example", REMINDER[locale])) == 1  # one reminder, not one a scan
        history = kinds(t)
        assert history.index("pending_reminder") < history.index("status", history.index("pending_reminder"))
        (resolution,) = [e for e in Event.select().where(Event.ticket == t, Event.kind == "status")
                         if e.data["new"] == "resolved"]
        assert resolution.actor == "system" and "without an answer" in resolution.text


def test_a_reply_in_between_resumes_the_ticket(case, tmp_path, mailbox_user, smtp_sink):
    locale = case[1]
    root = "<pending-2@customer.example>"
    with live_desk(case, tmp_path, mailbox_user, smtp_sink, sla=SLA) as live:
        ticket, notification = live.open_ticket(root, body=OPENING[locale])
        set_pending(live, notification)
        live.wait_mail("anna@customer.example", contains=REMINDER[locale])
        live.deliver(make_mail(sender=ANNA, subject=f"Re: [SD#{ticket.id}] Printer broken", body="It is the HP 4000.",
                               message_id="<pending-2-answer@customer.example>", in_reply_to=root, references=root))
        wait_until(lambda: Ticket.get_by_id(ticket.id).status == "open", timeout=30, what="resumed")
        t = Ticket.get_by_id(ticket.id)
        assert t.resolution_paused_since is None and t.resolution_due is not None  # the clock runs again
        pending_since = Event.select().where(Event.ticket == t, Event.kind == "pending_reminder").get().at
        # well past the moment it would have been resolved, two scans later: still open, no notice
        wait_until(lambda: datetime.now(timezone.utc) > pending_since + timedelta(seconds=8), timeout=30)
        live.processed(3)
        live.wait_outbox_sent()
        assert Ticket.get_by_id(ticket.id).status == "open"
        assert not live.mails("anna@customer.example", RESOLVED[locale])


# ---------------------------------------------------------------- the decisions, pure

POLICY = sla.load_policy({"pending_reminder": "3d", "pending_resolve_after": "7d"}, "UTC", "f.toml")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def pending_state(now_sent=frozenset()):
    clock = sla.Clock(T0 - timedelta(hours=1), timedelta(hours=24)).pause(T0)
    return sla.TicketState("P3", 1, "pending", T0 - timedelta(hours=1), sla.Clock(T0, timedelta(hours=3)), clock,
                           already_sent=now_sent)


@pytest.mark.parametrize("after,expected", [
    (timedelta(days=2, hours=23), []),
    (timedelta(days=3), ["pending_reminder"]),
    (timedelta(days=6), ["pending_reminder"]),
    (timedelta(days=7), ["pending_resolve"]),
    (timedelta(days=30), ["pending_resolve"]),  # a late scan resolves without a reminder first
])
def test_pending_actions_over_time(after, expected):
    actions = [a for a in sla.due_actions(pending_state(), T0 + after, POLICY) if a.kind.startswith("pending")]
    assert [a.kind for a in actions] == expected


def test_the_reminder_is_sent_once_per_pending_spell():
    first = sla.due_actions(pending_state(), T0 + timedelta(days=3), POLICY)
    (reminder,) = [a for a in first if a.kind == "pending_reminder"]
    assert reminder.key == "pending_reminder:20261201T090000Z"
    again = sla.due_actions(pending_state(frozenset({reminder.key})), T0 + timedelta(days=4), POLICY)
    assert not [a for a in again if a.kind.startswith("pending")]


def test_pending_settings_are_checked():
    off = sla.load_policy({"pending_reminder": "0", "pending_resolve_after": "0"}, "UTC", "f.toml")
    assert sla.pending_moments(T0, off) == []
    with pytest.raises(ConfigError) as err:
        sla.load_policy({"pending_reminder": "8d", "pending_resolve_after": "7d"}, "UTC", "f.toml")
    assert "sla.pending_reminder" in str(err.value) and "never be sent" in str(err.value)
    with pytest.raises(ConfigError) as err:
        sla.load_policy({"pending_resolve_after": "soon"}, "UTC", "f.toml")
    assert "sla.pending_resolve_after" in str(err.value)
