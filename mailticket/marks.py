"""Failing-since marks: when the mailbox or the outgoing mail began to fail, and the last error.

The daemon marks the mailbox, the sender marks outgoing mail; the first failure of an episode
sets the mark (later ones only refresh its error), the first success after it clears it. The
alarms (``desk.alarms``) read the marks: a problem older than ``[service] alarm_after`` mails the
admin. Kept as ``KeyValue`` rows named ``failing_since:<what>``.
"""

from __future__ import annotations

from datetime import datetime

from .models import KeyValue, database_proxy

PREFIX = "failing_since:"


def set_failing(what: str, now: datetime, error: str) -> None:
    """``what`` failed now: the mark keeps the time of the episode's first failure."""
    KeyValue.insert(key=PREFIX + what, value=error[:2000], at=now).on_conflict(
        conflict_target=[KeyValue.key], update={KeyValue.value: error[:2000]}).execute()


def clear_failing(what: str) -> None:
    KeyValue.delete().where(KeyValue.key == PREFIX + what).execute()


def failing(what: str) -> KeyValue | None:
    """The mark (``at``: since when, ``value``: the last error), or None while it works."""
    return KeyValue.get_or_none(KeyValue.key == PREFIX + what)


class FailingMark:
    """One process's writer of a mark, writing only when the state changes: a failure sets it
    once an episode, a success clears it only where it was set (read once, then remembered)."""

    def __init__(self, what: str):
        self.what = what
        self._set: bool | None = None  # unknown until read
        self._database = None  # what _set was learnt from (a test process opens many)

    def _known(self) -> bool | None:
        if self._database is not database_proxy.obj:
            self._database, self._set = database_proxy.obj, None
        return self._set

    def failed(self, now: datetime, error: str, *, refresh: bool = False) -> None:
        """Set the mark; with ``refresh`` also when it is set, to keep its error the latest."""
        if refresh or self._known() is not True:
            set_failing(self.what, now, error)
            self._set = True

    def worked(self) -> bool:
        """Clear the mark; True when it was set (the first success after failures)."""
        if self._known() is None:
            self._set = failing(self.what) is not None
        if self._set:
            clear_failing(self.what)
            self._set = False
            return True
        return False
