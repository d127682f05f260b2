"""Short codes: one alphabet, generated with `secrets`, checked before any database work."""

from __future__ import annotations

import os
import re
import string
import threading

from app.models.link import MAX_CODE_LENGTH
from app.processes import current_pid

ALPHABET = string.ascii_letters + string.digits  # generated codes: base62
_BASE = len(ALPHABET)
CODE_CHARS = ALPHABET + "_-"  # custom aliases may also use '_' and '-'

# Paths the service routes itself; a code must never shadow one of them.
RESERVED_CODES = frozenset(
    {"health", "livez", "urls", "shorten", "api", "docs", "metrics", "static", "keys", "stats", "users"}
    | {"links"}  # the web page: /links/<code>
)

# The shape of any stored code, as a regex usable by the router (no anchors) and by fullmatch.
CODE_PATTERN = (
    rf"(?!(?:{'|'.join(sorted(RESERVED_CODES))})(?![^/]))[{re.escape(CODE_CHARS)}]{{1,{MAX_CODE_LENGTH}}}"
)
_CODE_SHAPE = re.compile(CODE_PATTERN)


def generate_code(length: int) -> str:
    """A random code of `length` characters from ALPHABET that is not a reserved word."""
    while True:
        # One uniform draw below 62**length, written in base 62 (a draw per character cost a
        # system call each: a tenth of a create's time).
        number = randbelow(_BASE**length)
        digits = []
        for _ in range(length):
            number, digit = divmod(number, _BASE)
            digits.append(ALPHABET[digit])
        code = "".join(digits)
        if code.lower() not in RESERVED_CODES:
            return code


RANDOM_BATCH = 4096  # bytes of the system's CSPRNG fetched per refill: about 500 7-character codes


class _RandomBytes(threading.local):
    """Bytes of the operating system's CSPRNG (`os.urandom`, as `secrets` uses), fetched a batch at a
    time per thread and each handed out once: a create no longer makes a system call that also
    lets go of the GIL (under load the thread then waited up to a switch interval to get it back).
    Tied to the process that fetched them: a forked child never reuses its parent's bytes."""

    def __init__(self) -> None:
        self.pid = 0
        self.data = b""
        self.used = 0

    def take(self, count: int) -> bytes:
        if self.used + count > len(self.data) or self.pid != current_pid():
            self.data, self.used, self.pid = os.urandom(max(RANDOM_BATCH, count)), 0, current_pid()
        start, self.used = self.used, self.used + count
        return self.data[start : self.used]


_random_bytes = _RandomBytes()


def randbelow(limit: int) -> int:
    """A uniform random integer in [0, limit), as `secrets.randbelow` draws it: from the system's
    CSPRNG, by rejection (never `% limit` of a wider number, which would favour low values)."""
    bits = limit.bit_length()
    size = (bits + 7) // 8
    excess = size * 8 - bits
    while True:
        number = int.from_bytes(_random_bytes.take(size), "big") >> excess
        if number < limit:
            return number


def is_well_formed(code: str) -> bool:
    """True when `code` could be a stored code (alphabet, length, not reserved): worth a lookup."""
    return _CODE_SHAPE.fullmatch(code) is not None
