"""`mailticket backup DIR` and `mailticket restore DIR`: everything the desk needs, copied
consistently while the daemon runs, and put back into a stopped desk.

A backup folder holds:

  mailticket.db        the SQLite database, by SQLite's online backup API (one snapshot)
  mailticket.db.sent   the sender's log of sent mails (SQLite), taken in the same moment
  database.pgdump      or, on PostgreSQL, pg_dump's archive (pg_dump takes its own snapshot)
  attachments/…        the stored attachment files
  secret.key           the signing secret (links and reply addresses in mail already sent use it)
  manifest.json        written last: what is there, each file's size and SHA-256, and counts

On SQLite the snapshot is taken while the database's write lock is held for a moment, and the
sent log is copied under the same lock: the daemon cannot fold the log into the database in
between, so every mail sent before the backup is marked sent in it, once. Attachment files are
copied after the snapshot; the files it names are checked to be there. A mail sent after the
backup is sent again, with the same Message-ID, by a desk restored from it.

Restore checks every file against the manifest first and refuses a damaged or incomplete
backup; it refuses while a daemon runs on the desk (``desklock``; on PostgreSQL also a daemon
elsewhere that holds the IMAP folder's lease) and over a desk that has data, unless told to
``--overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..db import sqlite_path
from ..disk import flush
from ..inbound.attachments import ATTACHMENT_DIR
from . import desklock

log = logging.getLogger("mailticket.backup")

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "mailticket.db"
SENT_FILE = "mailticket.db.sent"
PG_FILE = "database.pgdump"
SECRET_FILE = "secret.key"
LOCK_TIMEOUT = 60.0  # seconds to wait for the daemon's write lock


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why and what to do."""


@dataclass
class Summary:
    folder: Path
    counts: dict = field(default_factory=dict)
    files: int = 0
    missing: list[str] = field(default_factory=list)  # attachments the database names but the disk lacks
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- backup

def backup(config, folder: Path) -> Summary:
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty: give a new or empty folder (a backup never overwrites one)")
    url = config.database.url
    path = sqlite_path(url)
    if path is None and not shutil.which("pg_dump"):
        raise BackupError("the database is PostgreSQL and pg_dump is not on PATH: back it up with PostgreSQL's own "
                          "tools (pg_dump, or pg_basebackup for the whole cluster), and copy "
                          f"{config.service.data_dir / ATTACHMENT_DIR} and the signing secret beside it")
    folder.mkdir(parents=True, exist_ok=True)
    summary = Summary(folder)
    if path is not None:
        _sqlite_snapshot(Path(path), folder)
        summary.counts = _counts(sqlite3.connect(folder / SQLITE_FILE))
        attachments = _attachment_paths(sqlite3.connect(folder / SQLITE_FILE))
    else:
        _pg_dump(url, folder / PG_FILE)
        summary.counts, attachments = _pg_counts()
    summary.missing = _copy_attachments(config.service.data_dir, folder, attachments)
    secret, note = _secret(config)
    _write_private(folder / SECRET_FILE, secret)
    if note:
        summary.notes.append(note)
    files = _checksums(folder)
    summary.files = len(files)
    _write_manifest(folder, {
        "format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mailticket": __version__, "database": "sqlite" if path is not None else "postgresql",
        "counts": summary.counts, "missing_attachments": summary.missing, "files": files})
    return summary


def _sqlite_snapshot(path: Path, folder: Path) -> None:
    """The database as of one moment, and the sent log as of the same moment (see the module doc)."""
    if not path.exists():
        raise BackupError(f"there is no database at {path}")
    hold = sqlite3.connect(path, timeout=LOCK_TIMEOUT, isolation_level=None)
    snap = sqlite3.connect(path, timeout=LOCK_TIMEOUT, isolation_level=None)
    try:
        hold.execute("BEGIN IMMEDIATE")  # the daemon's writes (and folds of the sent log) wait a moment
        try:
            snap.execute("BEGIN")
            snap.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # the snapshot starts here
            sent = Path(f"{path}.sent")
            if sent.exists():
                _sqlite_copy(sqlite3.connect(sent, timeout=LOCK_TIMEOUT), folder / SENT_FILE)
        finally:
            hold.execute("ROLLBACK")
        _sqlite_copy(snap, folder / SQLITE_FILE)  # from the snapshot, while the daemon goes on
        snap.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the database {path}: {exc}") from None
    finally:
        hold.close()
        snap.close()


def _sqlite_copy(source: sqlite3.Connection, target: Path) -> None:
    """SQLite's online backup into a single self-contained file (no -wal beside it)."""
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode = DELETE")
    finally:
        copy.close()
    flush(target)


def _counts(conn: sqlite3.Connection) -> dict:
    try:
        return {name: conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
                for name, table in (("tickets", "ticket"), ("mails", "inbound_mail"), ("outbox", "outbox"),
                                    ("attachments", "attachment"), ("events", "event"))}
    finally:
        conn.close()


def _attachment_paths(conn: sqlite3.Connection) -> list[str]:
    try:
        return [p for (p,) in conn.execute('SELECT "path" FROM "attachment"')]
    finally:
        conn.close()


def _pg_dump(url: str, target: Path) -> None:
    done = subprocess.run(["pg_dump", "--format=custom", "--no-owner", "--file", str(target), "--dbname",
                           _libpq_url(url)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")


def _pg_counts() -> tuple[dict, list[str]]:
    """Taken after pg_dump's snapshot: counts at least as high as in the dump, and every file it names."""
    from ..models import Attachment, Event, InboundMail, Outbox, Ticket
    counts = {"tickets": Ticket.select().count(), "mails": InboundMail.select().count(),
              "outbox": Outbox.select().count(), "attachments": Attachment.select().count(),
              "events": Event.select().count()}
    return counts, [p for (p,) in Attachment.select(Attachment.path).tuples()]


def _libpq_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return "postgresql://" + rest


def _copy_attachments(data_dir: Path, folder: Path, named: list[str]) -> list[str]:
    """Copy the attachment files; return those the database names that are not on disk."""
    source = Path(data_dir) / ATTACHMENT_DIR
    if source.is_dir():
        shutil.copytree(source, folder / ATTACHMENT_DIR, copy_function=shutil.copy2, dirs_exist_ok=True)
    return sorted(p for p in named if not (folder / p).is_file())


def _secret(config) -> tuple[bytes, str | None]:
    from ..desk.tokens import SECRET_FILE as DATA_SECRET, configured_secret
    configured = configured_secret(config.service.secret)
    if configured is not None:
        return configured, (f"the signing secret comes from {config.service.secret.key}; it is in the backup as "
                            f"{SECRET_FILE} too, keep the backup as safe as that")
    path = Path(config.service.data_dir) / DATA_SECRET
    if not path.exists():
        raise BackupError(f"there is no signing secret at {path}: is data_dir the desk's?")
    return path.read_bytes(), None


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _checksums(folder: Path) -> dict:
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel != MANIFEST:
            files[rel] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(folder: Path, manifest: dict) -> None:
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    flush(tmp)
    os.replace(tmp, folder / MANIFEST)
    flush(folder)


# ---------------------------------------------------------------- restore

def verify(folder: Path) -> dict:
    """The manifest of an intact backup; BackupError naming what is missing or damaged."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{folder} is not a complete mailticket backup: it has no {MANIFEST} (the backup may "
                          "have been interrupted)") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder / MANIFEST} cannot be read: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{folder / MANIFEST}: backup format {manifest.get('format')!r}, this mailticket "
                          f"reads format {FORMAT}")
    damaged = []
    for rel, expected in sorted(manifest.get("files", {}).items()):
        path = folder / rel
        if not path.is_file():
            damaged.append(f"{rel} is missing")
        elif path.stat().st_size != expected["size"] or _sha256(path) != expected["sha256"]:
            damaged.append(f"{rel} does not match its checksum")
    if damaged:
        raise BackupError(f"the backup in {folder} is damaged, nothing was restored: " + "; ".join(damaged[:10])
                          + (f" and {len(damaged) - 10} more" if len(damaged) > 10 else ""))
    return manifest


def restore(config, folder: Path, *, overwrite: bool = False) -> Summary:
    folder = Path(folder)
    manifest = verify(folder)
    path = sqlite_path(config.database.url)
    kind = "sqlite" if path is not None else "postgresql"
    if manifest["database"] != kind:
        raise BackupError(f"the backup holds a {manifest['database']} database and this desk's database.url is "
                          f"{kind}: restore it into a desk of the same kind")
    data_dir = Path(config.service.data_dir)
    try:
        hold = desklock.hold_exclusive(data_dir)
    except desklock.DeskBusy as exc:
        raise BackupError(f"refusing to restore over a running desk: {exc}") from None
    try:
        _no_lease_held(config, path)
        if not overwrite and _has_data(path):
            raise BackupError("this desk already has tickets or mail: restoring would replace them; give "
                              "--overwrite to do that (after a backup of its own, if it matters)")
        if path is not None:
            _restore_sqlite(folder, Path(path))
        else:
            _pg_restore(config.database.url, folder / PG_FILE)
        _restore_attachments(folder, data_dir)
        summary = Summary(folder, counts=manifest.get("counts", {}), files=len(manifest["files"]),
                          missing=manifest.get("missing_attachments", []))
        note = _restore_secret(config, folder)
        if note:
            summary.notes.append(note)
    finally:
        desklock.release(hold)
    from .. import db
    db.connect(config.database.url)  # a backup of an older version is migrated now
    return summary


def _no_lease_held(config, path) -> None:
    """PostgreSQL: a daemon on another machine holds the IMAP folder's lease while it runs."""
    if path is not None:
        return
    from .. import db
    from ..models import Lease
    try:
        db.connect(config.database.url, migrate=False)
        if not Lease.table_exists():
            return
        now = datetime.now(timezone.utc)
        held = [lease for lease in Lease.select() if lease.expires_at > now]
    except Exception:
        return  # an empty or unreachable database: pg_restore says what is wrong
    if held:
        raise BackupError(f"refusing to restore over a running desk: daemon {held[0].holder} holds the lease on "
                          f"{held[0].name} until {held[0].expires_at.isoformat(timespec='seconds')}; stop it first")


def _has_data(path) -> bool:
    if path is not None:
        if not Path(path).exists():
            return False
        conn = sqlite3.connect(path)
        try:
            return any(conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() for t in ("ticket", "inbound_mail"))
        except sqlite3.Error:
            return False
        finally:
            conn.close()
    from ..models import InboundMail, Ticket
    try:
        return Ticket.select().exists() or InboundMail.select().exists()
    except Exception:
        return False


def _restore_sqlite(folder: Path, path: Path) -> None:
    """The backup's database file in place of the desk's, whole: the old one's -wal and -shm go first
    (a stale log beside the new file would be applied to it), the new file comes by rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".restoring")
    shutil.copyfile(folder / SQLITE_FILE, tmp)
    flush(tmp)
    for stale in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
                  *(path.with_name(path.name + ".sent" + suffix) for suffix in ("", "-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    os.replace(tmp, path)
    if (folder / SENT_FILE).exists():
        sent = path.with_name(path.name + ".sent")
        shutil.copyfile(folder / SENT_FILE, sent)
        flush(sent)
    flush(path.parent)


def _pg_restore(url: str, archive: Path) -> None:
    if not shutil.which("pg_restore"):
        raise BackupError("pg_restore is not on PATH: restore the database with PostgreSQL's own tools "
                          f"(pg_restore --clean --if-exists --no-owner -d DATABASE {archive})")
    done = subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                           "--dbname", _libpq_url(url), str(archive)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()[:500]}")


def _restore_attachments(folder: Path, data_dir: Path) -> None:
    target = data_dir / ATTACHMENT_DIR
    if target.exists():
        shutil.rmtree(target)
    if (folder / ATTACHMENT_DIR).is_dir():
        shutil.copytree(folder / ATTACHMENT_DIR, target, copy_function=shutil.copy2)


def _restore_secret(config, folder: Path) -> str | None:
    """The signing secret into DATA_DIR/secret.key; a configured one is the admin's to set."""
    from ..desk.tokens import SECRET_FILE as DATA_SECRET, configured_secret
    secret = (folder / SECRET_FILE).read_bytes()
    configured = configured_secret(config.service.secret)
    if configured is not None:
        if configured != secret:
            return (f"the signing secret configured by {config.service.secret.key} differs from the backup's: "
                    "links and reply addresses in mail sent before will not be accepted until it is set to the "
                    f"content of {folder.resolve() / SECRET_FILE}")
        return None
    path = Path(config.service.data_dir) / DATA_SECRET
    tmp = path.with_name(f".{DATA_SECRET}.restoring")
    tmp.unlink(missing_ok=True)
    _write_private(tmp, secret)
    os.replace(tmp, path)
    return None
