"""A ticket's history as people read it in a mail: what happened in words, newest first, at most ten.

The stored events are the desk's log (``Event``: a kind, an English text for the admin, data).
A notification shows the events an agent cares about, each said in words of the mail's language
(``i18n.Message``; the table ``WORDS`` below, one line per event kind), with the person's own
text where there is one (a reply, a note), and leaves out the bookkeeping (acknowledgement
queued, first response stopped the clock, a command line as typed). The rest is in
``mailticket show``. A new event kind: add its words to ``WORDS`` (and to the catalogues), or to
``BOOKKEEPING`` when nobody needs to read it in a mail.
"""

from __future__ import annotations

import re

from ..i18n import Message, N_
from ..models import Event

LIMIT = 10  # entries in a notification; the rest is in `mailticket show`
TEXT_CHARS = 200  # of a reply or note shown in the history

# Events that are the desk's bookkeeping, not news for the people working the ticket.
BOOKKEEPING = frozenset({"acknowledged", "not-acknowledged", "not-notified", "suppressed", "first_response",
                         "command", "categorised", "command_error"})

STATUS_WORDS = {"new": N_("new"), "open": N_("open"), "pending": N_("waiting for the requester"),
                "resolved": N_("resolved"), "closed": N_("closed")}
TYPE_WORDS = {"incident": N_("incident"), "request": N_("service request")}

# kind -> msgid; fields are filled in by ``_args`` from the event
WORDS = {
    "logged": N_("Ticket logged from the requester's mail"),
    "reply_in": N_("The requester wrote"),
    "reply_out": N_("Reply to the requester"),
    "note": N_("Internal note"),
    "status": N_("Status changed to {status}"),
    "priority": N_("Priority changed to {priority}"),
    "assign": N_("Assigned to {assignee}"),
    "escalation": N_("Escalated to tier {to_tier}"),
    "warning": N_("SLA warning sent to tier {tier}"),
    "security": N_("Security contact told"),
    "breach_deadline": N_("Reminder of the breach-report deadline sent"),
    "call": N_("Call booked with the requester"),
    "link": N_("Linked with ticket {tag}"),
    "category": N_("Category changed to {value}"),
    "type": N_("Type changed to {value}"),
    "alert": N_("Monitoring alert"),
    "delivery_failure": N_("A mail could not be delivered"),
    "reopen": N_("Reopened by the requester's reply"),
    "auto_reply": N_("Automatic reply received (out of office or similar)"),
    # the working day by mail and admin safety
    "participant": N_("{address} added in Cc"),
    "participants_left_out": N_("People in Cc not added: {count}"),
    "merge": N_("Merged with ticket {tag}"),
    "parent": N_("Made part of the major incident {tag}"),
    "child": N_("Ticket {tag} added to this major incident"),
    "children": N_("Child tickets changed with this major incident"),
    "broadcast": N_("Major-incident update sent to the requesters"),
    "on_behalf": N_("Logged by an agent on the requester's behalf"),
    "pending_reminder": N_("Reminder sent to the requester"),
    "files": N_("Files received"),
    "files_not_sent": N_("Files not sent with the reply (empty or too large)"),
    "sender_recovered": N_("Sender's address taken from another header"),
    "erasure": N_("Personal data erased on request"),
    "retention": N_("Raw mail and files removed after the retention period"),
}
# calls that happen (desk/calls.py)
WORDS.update({
    "call_moved": N_("Call with the requester moved"),
    "call_cancelled": N_("Call with the requester cancelled"),
    "call_reminder": N_("Reminder of the call sent to the agent"),
    "phone": N_("Requester's phone number changed"),
})
CALL_ANSWERS = {"ACCEPTED": N_("The requester accepted the call"),
                "DECLINED": N_("The requester declined the call"),
                "TENTATIVE": N_("The requester tentatively accepted the call"),
                "COUNTER": N_("The requester proposed another time for the call")}
CALL_ANSWER_OTHER = N_("The requester's calendar answered the call invitation")
UNASSIGNED = N_("Assignment removed: back to the tier")
ASSIGN_UNCHANGED = N_("Assignment unchanged")
SECURITY_SET = N_("Classified as a security incident")
SECURITY_CLEARED = N_("Security classification cleared: {reason}")
UNVERIFIED_NOTE = N_("UNVERIFIED note: the sender could not be proven; nothing in it was done")
TO_MANAGER = N_("Escalated to the escalation manager")
OTHER = N_("Other change (see mailticket show)")
# kinds whose stored text is what a person wrote (shown as it is) rather than the desk's log line
PERSONS_TEXT = frozenset({"reply_in", "reply_out", "note", "alert"})
IMPORTANT = frozenset({"escalation", "security", "reopen", "delivery_failure", "breach_deadline"})


def for_people(ticket, limit: int = LIMIT) -> dict:
    """``{"history": [entry, ...], "history_more": N}``: the newest ``limit`` entries worth reading,
    newest first, and how many older ones were left for ``mailticket show``."""
    events = [e for e in ticket.events.order_by(Event.at.desc(), Event.id.desc()) if e.kind not in BOOKKEEPING]
    return {"history": [entry(e) for e in events[:limit]], "history_more": max(len(events) - limit, 0)}


def entry(event: Event) -> dict:
    """One event for a mail: when, who (an address, or None for the desk), what (words), the person's text."""
    data = event.data or {}
    unverified = event.kind == "note" and bool(data.get("unverified"))
    return {"at": event.at, "who": None if event.actor in ("system", "", None) else event.actor,
            "what": _what(event, data, unverified), "text": _text(event), "unverified": unverified,
            "important": event.kind in IMPORTANT or unverified}


def _what(event: Event, data: dict, unverified: bool) -> Message:
    if unverified:
        return Message(UNVERIFIED_NOTE)
    if event.kind == "escalation" and "to_tier" not in data:
        return Message(TO_MANAGER)
    if event.kind == "assign" and ("new" in data and data["new"] is None or (event.text or "").startswith("already")):
        return Message(ASSIGN_UNCHANGED if (event.text or "").startswith("already") else UNASSIGNED)
    if event.kind == "security" and "on" in data:
        return Message(SECURITY_SET) if data["on"] else Message(SECURITY_CLEARED, reason=data.get("reason") or "")
    if event.kind == "call_answer":
        return Message(CALL_ANSWERS.get(data.get("answer"), CALL_ANSWER_OTHER))
    words = WORDS.get(event.kind)
    if words is None:
        return Message(OTHER)
    return Message(words, **_args(event, data))


_ARROW = re.compile(r"->\s*(\S+)\s*$")
_TAG = re.compile(r"\[[^\]\s]+#\d+\]")


def _args(event: Event, data: dict) -> dict:
    """The fields of the event's words, from its data (or, for older events, its log line)."""
    text = event.text or ""
    after = _ARROW.search(text)
    kind = event.kind
    if kind == "status":
        new = data.get("new") or (after.group(1).rstrip(":") if after else "")
        return {"status": Message(STATUS_WORDS[new]) if new in STATUS_WORDS else new}
    if kind == "priority":
        return {"priority": data.get("new") or (after.group(1) if after else "")}
    if kind == "assign":
        return {"assignee": data.get("assignee") or data.get("new") or text.removeprefix("assigned to ")}
    if kind == "escalation":
        return {"to_tier": data["to_tier"]}
    if kind == "warning":
        return {"tier": data.get("tier", "")}
    if kind in ("link", "merge", "parent", "child"):
        found = _TAG.search(text)
        return {"tag": found.group(0) if found else ""}
    if kind == "participant":
        return {"address": data.get("address", "")}
    if kind == "participants_left_out":
        return {"count": data.get("count", "")}
    if kind in ("category", "type"):
        value = data.get("new") or (after.group(1) if after else "")
        return {"value": Message(TYPE_WORDS[value]) if kind == "type" and value in TYPE_WORDS else value}
    return {}


def _text(event: Event) -> str | None:
    if event.kind not in PERSONS_TEXT or not event.text:
        return None
    text = " ".join(event.text.split())
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1].rstrip() + "…"
