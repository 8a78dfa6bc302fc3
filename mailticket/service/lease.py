"""A lease on the IMAP folder, so that of several daemons on one database only one reads it,
and another takes over when the holder dies (the lease runs out)."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..models import Lease


def acquire(name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease; True when ``holder`` has it until ``now + ttl``."""
    db = Lease._meta.database
    until = now + ttl
    with db.atomic():
        updated = (Lease.update(holder=holder, expires_at=until)
                   .where(Lease.name == name, (Lease.holder == holder) | (Lease.expires_at < now)).execute())
        if updated:
            return True
        inserted = Lease.insert(name=name, holder=holder, expires_at=until).on_conflict_ignore().execute()
        if inserted:
            lease = Lease.get_or_none(Lease.name == name)
            return lease is not None and lease.holder == holder
    return False


def release(name: str, holder: str) -> None:
    Lease.delete().where(Lease.name == name, Lease.holder == holder).execute()
