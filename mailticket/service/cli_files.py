"""``mailticket attachment TICKET [NAME]``: list a ticket's files, or write one of them out.

The mails about a ticket carry its files up to ``[service] attach_max``; the others are listed
there with name and size, and an admin fetches them with this command.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .exitcodes import EXIT_OK, EXIT_PROBLEM


def attachment(args) -> int:
    from ..desk import files
    from ..sizes import format_size
    from .cli_commands import _setup
    config = _setup(args)
    try:
        found = files.find(config.service.data_dir, args.ticket, args.name)
        if args.name is None:
            for name, row in found:
                print(f"{name}\t{format_size(row.size)}\t{row.content_type}")
            if not found:
                print(f"ticket {args.ticket} has no files", file=sys.stderr)
            return EXIT_OK
        name, row = found[0]
        data = files.read(config.service.data_dir, row)
    except files.NotFound as exc:
        print(f"mailticket: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    return _write(data, args.output or _safe_local_name(name), name, args.force)


def _write(data: bytes, output: str, name: str, force: bool) -> int:
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return EXIT_OK
    target = Path(output)
    if target.is_dir():
        target = target / _safe_local_name(name)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        print(f"mailticket: {target} exists; give --force to overwrite it, or -o PATH", file=sys.stderr)
        return EXIT_PROBLEM
    except OSError as exc:
        print(f"mailticket: cannot write {target}: {exc.strerror}", file=sys.stderr)
        return EXIT_PROBLEM
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    print(f"{target}: {len(data)} bytes", file=sys.stderr)
    return EXIT_OK


def _safe_local_name(name: str) -> str:
    """The stored name is already sanitised (no path, no ..); this keeps it so on any input."""
    return Path(name).name.lstrip(".") or "attachment"
