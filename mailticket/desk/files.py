"""A ticket's files: stored from each mail, carried by the mails about the ticket, found by name.

A requester's files go with the tier's new-ticket, requester-update and escalation mails (and
the assignee's), the same bytes, as many as fit in ``[service] attach_max`` in all and under the
mail server's limit (``[outbox] max_size``, counted as encoded); the others are listed with
name and size, and ``mailticket attachment TICKET NAME`` fetches them. An agent's files go to
the requester with the public reply, except an empty file or one the mail server would refuse:
those stay on the ticket and the agent is told. An inline image (``cid:``) is shown by the HTML
part of the mail that carries it.

Names are for people: two files of one ticket with the same name are told apart as
``photo.png`` and ``photo (2).png``, in the order they came, in every mail and on the CLI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..inbound.attachments import open_attachment, store_attachment
from ..models import Attachment, Event, Ticket
from ..outbound.drafts import MailFile

log = logging.getLogger("mailticket.files")

ROOM_FOR_TEXT = 200_000  # bytes of a mail's own text, HTML and headers, kept free under max_size


def store(desk, inbound, ticket: Ticket, attachments, *, actor: str, now) -> list[Attachment]:
    """Each file of the mail on disk and on the ticket, named in its history; the bytes stay at
    hand for a mail written at once (``Attachment.data``, not a column)."""
    rows = []
    for att in attachments:
        path = store_attachment(desk.data_dir, att)
        row = Attachment.create(inbound=inbound, ticket=ticket, filename=att.filename[:250],
                                content_type=att.content_type[:120], size=len(att.data), path=path,
                                content_id=att.content_id, inline=att.inline)
        row.data = att.data
        rows.append(row)
    if rows:
        names = unique_names(of_ticket(ticket))
        Event.create(ticket=ticket, at=now, actor=actor, kind="files", inbound=inbound,
                     text=", ".join(f"{names[r.id]} ({r.size} bytes)" for r in rows),
                     data={"files": [names[r.id] for r in rows]})
    return rows


def of_ticket(ticket: Ticket | int) -> list[Attachment]:
    return list(Attachment.select().where(Attachment.ticket == ticket).order_by(Attachment.id))


def unique_names(rows: list[Attachment]) -> dict[int, str]:
    """Each file's name on its ticket: a repeated name gets `` (2)``, `` (3)`` … before its extension."""
    names, taken = {}, set()
    for row in sorted(rows, key=lambda r: r.id):
        name, n = row.filename, 1
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, dot, ext = name, "", ""
        while name.lower() in taken:
            n += 1
            name = f"{stem} ({n}){dot}{ext}"
        taken.add(name.lower())
        names[row.id] = name
    return names


def encoded_size(size: int) -> int:
    """What ``size`` bytes take in a mail: base64 in lines of 76 with CRLF, and a part header."""
    return (size + 2) // 3 * 4 * 78 // 76 + 300


@dataclass
class Carried:
    """What one mail says about files (``context``, for ``_attachments.*``) and what it attaches."""

    context: list[dict]
    files: list[MailFile]


def for_notification(desk, ticket: Ticket, rows: list[Attachment]) -> Carried:
    """The files for an agent's mail: in order, each that still fits attach_max and the server's limit."""
    cfg = desk.config
    return _carry(desk, ticket, rows, raw_budget=cfg.service.attach_max,
                  mail_budget=cfg.outbox.max_size - ROOM_FOR_TEXT)


def for_requester(desk, ticket: Ticket, rows: list[Attachment]) -> tuple[Carried, list[dict]]:
    """The files of an agent's public reply, and those refused (empty, or over the server's limit)."""
    limit = desk.config.outbox.max_size
    carried = _carry(desk, ticket, rows, raw_budget=None, mail_budget=limit - ROOM_FOR_TEXT)
    refused = [{"name": f["name"], "size": f["size"], "why": "empty" if f["state"] == "empty" else "too_big",
                "limit": limit} for f in carried.context if f["state"] != "attached"]
    carried.context = [f for f in carried.context if f["state"] == "attached"]
    return carried, refused


def _carry(desk, ticket, rows, *, raw_budget: int | None, mail_budget: int) -> Carried:
    names = unique_names(of_ticket(ticket)) if rows else {}
    raw_used = mail_used = 0
    context, files = [], []
    for row in rows:
        name = names.get(row.id, row.filename)
        encoded = encoded_size(row.size)
        if row.size == 0:
            state = "empty"
        elif (raw_budget is not None and raw_used + row.size > raw_budget) or mail_used + encoded > mail_budget:
            state = "over_limit"
        else:
            state = "attached"
            raw_used, mail_used = raw_used + row.size, mail_used + encoded
        cid = _content_id(desk, row) if state == "attached" else None
        context.append({"name": name, "size": row.size, "content_type": row.content_type, "state": state, "cid": cid})
        if state == "attached":
            files.append(MailFile(name, row.content_type, row.path, cid, getattr(row, "data", None)))
    return Carried(context, files)


def _content_id(desk, row: Attachment) -> str | None:
    """Our own Content-ID for an inline image (the sender's could carry anything into our headers)."""
    if row.inline and row.content_type.lower().startswith("image/"):
        return f"file{row.id}@{desk.config.service.domain}"
    return None


def mail_context(carried: Carried, desk) -> dict:
    return {"files": carried.context, "attach_max": desk.config.service.attach_max}


# ---------------------------------------------------------------- mailticket attachment

class NotFound(LookupError):
    """No such ticket or file; the message says what there is."""


def find(data_dir, ticket_id: int, name: str | None) -> list[tuple[str, Attachment]]:
    """The ticket's files as (name, row); with ``name``, the one file of that name (case-insensitive
    when the exact name is not there). NotFound names what the ticket has."""
    ticket = Ticket.get_or_none(Ticket.id == ticket_id)
    if ticket is None:
        raise NotFound(f"there is no ticket {ticket_id}")
    rows = of_ticket(ticket)
    names = unique_names(rows)
    listed = [(names[r.id], r) for r in rows]
    if name is None:
        return listed
    exact = [item for item in listed if item[0] == name] or [item for item in listed if item[0].lower() == name.lower()]
    if not exact:
        have = ", ".join(n for n, _ in listed) if listed else "no files"
        raise NotFound(f"ticket {ticket_id} has no file named {name!r}; it has: {have}")
    return exact[:1]


def read(data_dir, row: Attachment) -> bytes:
    """The stored bytes; NotFound when the file is no longer on disk (removed by retention)."""
    try:
        return open_attachment(data_dir, row.path)
    except (OSError, ValueError) as exc:
        raise NotFound(f"{row.filename!r} is recorded but its file {row.path} cannot be read: "
                       f"{getattr(exc, 'strerror', None) or exc}") from None
