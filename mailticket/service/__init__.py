"""Running the service: daemon, intake, IMAP mailbox and listener, SMTP transport and sender
process, lease, OAuth2, sd_notify, health, import, the CLI and the wiring of a desk.
May import everything; nothing imports it.
"""
