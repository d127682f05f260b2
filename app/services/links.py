"""Creating, resolving and listing links."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from peewee import IntegrityError

from app.config import Settings
from app.db import db, utcnow
from app.errors import CodeSpaceExhausted, InvalidInput, LinkNotFound
from app.models import Link
from app.services.codes import generate_code, is_well_formed
from app.services.urls import normalize_url

MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Page:
    """One page of links, newest first, and the cursor of the next page (None on the last)."""

    links: list[Link]
    next_cursor: str | None


def create_link(
    raw_url: str,
    settings: Settings,
    *,
    own_netlocs: frozenset[str] = frozenset(),
    now: datetime | None = None,
) -> Link:
    """Validate `raw_url` and store it under a fresh random code; the row is committed on return."""
    target = normalize_url(raw_url, max_length=settings.max_url_length, own_netlocs=own_netlocs)
    created_at = now or utcnow()
    for _ in range(settings.code_attempts):
        code = generate_code(settings.code_length)
        try:
            with db.atomic():  # a savepoint when nested, so one collision does not abort the rest
                return Link.create(code=code, target_url=target, created_at=created_at)
        except IntegrityError:
            continue  # the database says the code is taken: draw again
    raise CodeSpaceExhausted()


def resolve_target(code: str) -> str:
    """The target URL of `code`; malformed codes are refused without a query."""
    if not is_well_formed(code):
        raise LinkNotFound()
    row = Link.select(Link.target_url).where(Link.code == code).tuples().first()
    if row is None:
        raise LinkNotFound()
    return row[0]


def list_links(limit: int, cursor: str | None = None) -> Page:
    """Links newest first, keyset-paginated on the primary key so every page costs the same."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
    query = Link.select().order_by(Link.id.desc()).limit(limit + 1)
    if cursor:
        query = query.where(Link.id < decode_cursor(cursor))
    links = list(query)
    if len(links) <= limit:
        return Page(links, None)
    return Page(links[:limit], encode_cursor(links[limit - 1].id))


def encode_cursor(last_id: int) -> str:
    """An opaque cursor that resumes the listing after the link with id `last_id`."""
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor resumes after; InvalidInput when it was not made by encode_cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if raw.isdigit() and len(raw) < 20:
            return int(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidInput(
        "cursor is not valid; use the URL from the previous page's Link header", field="cursor"
    )
