"""The exceptions mailticket raises on purpose.

    MailticketError
     ├── ConfigError        a config file or key is wrong (names file and key)
     ├── QuarantineError    one mail cannot be processed at all (the reason is shown to the admin)
     ├── MailboxError       the IMAP server or the inbound listener failed (retried with back-off)
     ├── StorageError       attachment files could not be flushed to disk (the batch is retried)
     └── DeliveryError      an outgoing mail could not be handed to the SMTP server
          ├── TemporaryDeliveryError   4xx, refused connection, timeout: retry later
          │    └── DeliveryAborted     we cut the session ourselves (stopping): not an attempt
          └── PermanentDeliveryError   5xx: give up at once
"""


class MailticketError(Exception):
    """Base of every deliberate mailticket error."""


class ConfigError(MailticketError):
    """A configuration problem, naming the file and the key it concerns."""

    def __init__(self, problem: str, file: str | None = None, key: str | None = None):
        self.problem, self.file, self.key = problem, file, key
        where = ": ".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {problem}" if where else problem)


class ConfigErrors(ConfigError):
    """Problems in several places of one file (``errors``, each naming its key); reads as all of them
    on one line, and as the first where one file, key and problem are asked for."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = list(errors)
        first = self.errors[0]
        MailticketError.__init__(self, "; ".join(str(e) for e in self.errors))
        self.problem, self.file, self.key = first.problem, first.file, first.key


class QuarantineError(MailticketError):
    """This mail cannot be processed; it goes to quarantine with this reason."""


class MailboxError(MailticketError):
    """The mailbox (IMAP server) failed; the daemon retries with back-off."""


class StorageError(MailticketError):
    """Stored attachment files could not be flushed to disk (the message names the file); the
    transaction that would record them does not commit, and the daemon retries with back-off."""


class DeliveryError(MailticketError):
    """An outgoing mail could not be delivered."""


class TemporaryDeliveryError(DeliveryError):
    """Retry later (4xx, connection refused, timeout). ``server_down``: the server could not be
    reached or dropped the session, so the other queued mails need not be tried now either."""

    def __init__(self, message: str, server_down: bool = False):
        super().__init__(message)
        self.server_down = server_down


class DeliveryAborted(TemporaryDeliveryError):
    """The sender cut the SMTP session itself because it is stopping (``SmtpTransport.abort``):
    the mail stays queued as it was, no attempt counted."""

    def __init__(self, message: str):
        super().__init__(message, server_down=True)


class PermanentDeliveryError(DeliveryError):
    """Do not retry (5xx)."""
