"""Sizes as admins write them: ``10MB``, ``500KB``, ``1.5MiB``, or a bare number of bytes.

KB, MB and GB are powers of 1000 (as mail servers and their limits are written, Postfix's
``message_size_limit`` aside); KiB, MiB and GiB powers of 1024.
"""

import re

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3,
          "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)", re.IGNORECASE)

# The largest mail the desk takes in: the listener refuses more (SMTP 552), `import` skips it.
MAX_MAIL = 50 * 1024 * 1024


def parse_size(text: str | int) -> int:
    """Bytes from ``"10MB"``, ``"500 KB"``, ``"2MiB"`` or an integer; ValueError saying what is valid."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ValueError(f"{text!r} is not a size; write e.g. 10MB, 500KB or 2MiB")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"{text!r} is negative; a size must be 0 or more")
        return text
    match = _SIZE.fullmatch(text.strip())
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"{text!r} is not a size; write e.g. 10MB, 500KB or 2MiB")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value > 1000 ** 5:  # a petabyte: beyond any bound a key has (and float('9' * 400) is inf)
        raise ValueError(f"{text!r} is too large a size (more than a petabyte)")
    return int(value)


def format_size(size: int, locale: str = "en") -> str:
    """``340 B``, ``12 KB``, ``1.4 MB`` (``1,4 MB`` in Swedish): what a person reads next to a file."""
    for unit, scale in (("GB", 1000 ** 3), ("MB", 1000 ** 2), ("KB", 1000)):
        if size >= scale:
            value = size / scale
            shown = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            shown = shown.removesuffix(".0")
            return (shown.replace(".", ",") if locale == "sv" else shown) + f" {unit}"
    return f"{size} B"
