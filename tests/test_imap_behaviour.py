"""IMAP intake: IDLE or polling, reconnect after the server went away, \\Seen where MOVE is missing."""

import logging
import socket

from mailticket.models import InboundMail, Ticket
from tests.harness import DaemonThread, make_mail, wait_until, write_config


def test_reconnects_after_the_server_restarts(tmp_path, mailbox_user, smtp_sink, caplog):
    caplog.set_level(logging.INFO)
    dovecot, user = mailbox_user.server, mailbox_user.name
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink)
    with DaemonThread(cfg) as d:
        dovecot.append(user, "INBOX", make_mail(message_id="<before@customer.example>"))
        wait_until(lambda: dovecot.folder_count(user, "Processed") == 1, timeout=20, what="first mail")
        dovecot.stop()
        # Dovecot lets running sessions outlive its master; cut ours too, as a network failure would
        d.daemon.source.client._imap.sock.shutdown(socket.SHUT_RDWR)
        wait_until(lambda: caplog.text.count("mailbox failed") >= 2, timeout=20,
                   what="the daemon noticing, and failing to reconnect while the server is down")
        dovecot.start()
        dovecot.append(user, "INBOX", make_mail(message_id="<after@customer.example>"))
        wait_until(lambda: dovecot.folder_count(user, "Processed") == 2, timeout=90, interval=0.3,
                   what="second mail after the restart")
    assert Ticket.select().count() == 2
    assert caplog.text.count("connected to IMAP") >= 2


def test_polling_when_idle_is_off(tmp_path, mailbox_user, smtp_sink):
    dovecot, user = mailbox_user.server, mailbox_user.name
    cfg = write_config(tmp_path, user=mailbox_user, sink=smtp_sink, extra={"imap": {"idle": False,
                                                                                   "poll_interval": "1s"}})
    with DaemonThread(cfg) as d:
        wait_until(lambda: d.daemon.ready, what="ready")
        assert d.daemon.source.can_idle is False
        dovecot.append(user, "INBOX", make_mail(message_id="<polled@customer.example>"))
        wait_until(lambda: dovecot.folder_count(user, "Processed") == 1, timeout=20, what="polled mail")
    assert Ticket.select().count() == 1


def test_without_move_processed_mail_is_copied_and_marked_seen(tmp_path, mailbox_user, smtp_sink):
    """Servers without MOVE: copy to the processed folder, flag \\Seen, and never fetch it again."""
    from mailticket import db
    from mailticket.service import intake
    from mailticket.config import load_config
    from mailticket.service.wiring import build_desk
    from mailticket.service.mailbox import ImapSource
    dovecot, user = mailbox_user.server, mailbox_user.name
    cfg = load_config(write_config(tmp_path, user=mailbox_user, sink=smtp_sink))
    db.connect(cfg.database.url)
    desk = build_desk(cfg)
    source = ImapSource(cfg.imap)
    source.connect()
    source.can_move = False  # as if the server lacked the MOVE extension
    try:
        dovecot.append(user, "INBOX", make_mail(message_id="<nomove@customer.example>"))
        first = intake.imap_cycle(desk, source, "w")
        second = intake.imap_cycle(desk, source, "w")
    finally:
        source.close()
    assert first.fetched == 1 and first.moved == 1 and second.fetched == 0
    assert dovecot.folder_count(user, "Processed") == 1 and dovecot.folder_count(user, "INBOX") == 1
    with dovecot.client(user) as c:
        c.select_folder("INBOX")
        assert c.search(["UNSEEN"]) == [] and len(c.search(["SEEN"])) == 1
    assert Ticket.select().count() == 1 and InboundMail.select().count() == 1
