"""Writing mail: templates and rendering, notifications, drafts, invitations, the wire format,
the outbox and the sent log. Imports the shared basics and inbound's mail policy only;
nothing of the desk or the service (the desk calls it, the service's sender drains it).
"""
