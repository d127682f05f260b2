"""Short codes: one alphabet, generated with `secrets`, checked before any database work."""

from __future__ import annotations

import re
import secrets
import string

from app.models.link import MAX_CODE_LENGTH

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
        # One uniform draw below 62**length, written in base 62: one system call per code, where
        # a secrets.choice per character made one each (a tenth of a create's time).
        number = secrets.randbelow(_BASE**length)
        digits = []
        for _ in range(length):
            number, digit = divmod(number, _BASE)
            digits.append(ALPHABET[digit])
        code = "".join(digits)
        if code.lower() not in RESERVED_CODES:
            return code


def is_well_formed(code: str) -> bool:
    """True when `code` could be a stored code (alphabet, length, not reserved): worth a lookup."""
    return _CODE_SHAPE.fullmatch(code) is not None
