"""Links: creating, resolving for a redirect, reading, editing, deleting and listing."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from peewee import Expression, IntegrityError

from app.config import Settings
from app.db import PooledPostgres, db, is_postgres, utcnow
from app.errors import (
    AliasTaken,
    CodeSpaceExhausted,
    Forbidden,
    InvalidInput,
    LinkGone,
    LinkNotFound,
    Unauthorized,
)
from app.models import Link
from app.services.api_keys import Principal
from app.services.clicks import ClickRecorder
from app.services.codes import RESERVED_CODES, generate_code, is_well_formed
from app.services.link_cache import UNCACHED, LinkCache
from app.services.urls import is_blocked_url, normalize_url

if TYPE_CHECKING:
    from app.services.link_events import LinkChangeListener

MAX_PAGE_SIZE = 1000
# Set (per transaction) to the code of the link being inserted: the change trigger skips that row,
# the process announces it itself (migration 0005).
UNANNOUNCED_SETTING = "shortener.unannounced_code"
Announce = Callable[[str], None]
# Permanent redirects may be cached by clients; temporary ones come back on every click.
PERMANENT_STATUSES = (301, 308)
EDITABLE = ("url", "title", "expires_at", "max_clicks", "redirect_type", "is_active")


@dataclass(frozen=True)
class NewLink:
    """What a client may set when creating a link."""

    url: str
    alias: str | None = None
    title: str | None = None
    expires_at: datetime | None = None
    max_clicks: int | None = None
    redirect_type: int | None = None


@dataclass(frozen=True)
class Page:
    """One page of links, newest first, and the cursor of the next page (None on the last)."""

    links: list[Link]
    next_cursor: str | None


class Redirect(NamedTuple):
    """Where a code sends the client, and with which status. (A named tuple, made on every redirect:
    a frozen dataclass took three times as long to build.)"""

    link_id: int
    url: str
    status: int
    max_age: int = 0  # seconds clients may cache the redirect; 0: they must come back every time


def create_link(
    new: NewLink,
    settings: Settings,
    *,
    principal: Principal | None = None,
    own_netlocs: frozenset[str] = frozenset(),
    now: datetime | None = None,
    cache: LinkCache | None = None,
) -> Link:
    """Validate and store a link (committed on return), under its alias or a fresh random code."""
    if principal is None and not settings.anonymous_shorten:
        raise Unauthorized("Anonymous shortening is disabled: send an API key.")
    now = now or utcnow()
    owner_id = principal.user_id if principal else None
    fields = new_link_fields(
        new, normalize_target(new.url, settings, own_netlocs), owner_id=owner_id, now=now
    )
    # With a change listener in this process, it announces the new code to the other processes
    # (`LinkCache.announce`); otherwise the database's trigger does, inside the insert's commit.
    announce = cache.announce if cache is not None else None
    if new.alias is not None:
        link = _insert_alias(new.alias, fields, announce)
    else:
        link = _insert_random(settings, fields, announce)
    if cache is not None:  # drop a cached "no such code" (an alias probed before it existed)
        cache.created(link.code)
    return link


def _insert_random(settings: Settings, fields: dict[str, Any], announce: Announce | None = None) -> Link:
    for _ in range(settings.code_attempts):
        try:
            return _insert(generate_code(settings.code_length), fields, announce)
        except IntegrityError:
            continue  # the database says the code is taken: draw again
    raise CodeSpaceExhausted()


def _forget(cache: LinkCache | None, code: str) -> None:
    if cache is not None:
        cache.invalidate(code)


def _insert(code: str, fields: dict[str, Any], announce: Announce | None = None) -> Link:
    link = Link(code=code, **fields)  # the model's defaults filled in
    if not db.in_transaction():
        # One statement is atomic on its own: committed on return in one round trip, where
        # BEGIN / INSERT / COMMIT took three (a third of a create's time on PostgreSQL).
        if announce is None or not is_postgres():
            _insert_row(link)
            return link
        # The trigger's NOTIFY would serialise every create's commit, fsync included, behind one
        # lock: the insert tells the trigger to stay quiet, and the code is announced once
        # committed, batched with others (migration 0005, services.link_events).
        _insert_row(link, unannounced=True)
        announce(code)
        return link
    # In a transaction: the trigger announces the code when (and only if) the transaction commits.
    with db.atomic():  # a savepoint when nested, so one collision does not abort the caller
        _insert_row(link)
    return link


def _insert_row(link: Link, *, unannounced: bool = False) -> None:
    """INSERT a new `link` and set its id, with SQL rendered once per database type and column set
    (peewee builds it anew for every insert: a sixth of a create's time). `unannounced`
    (PostgreSQL): the change trigger sends no notification for this row; the caller announces it."""
    data = link.__data__
    database = db.obj
    sql, columns, returning = _insert_sql(type(database), frozenset(data) - {"id"}, unannounced)
    fields = Link._meta.fields
    params = [fields[name].db_value(data[name]) for name in columns]
    if isinstance(database, PooledPostgres):
        # A connection that dies may take the commit's answer with it: look for the row before
        # inserting it again (which would store a second link, or answer 409 for its own alias).
        found = database.execute_once(sql, params, lambda: _stored_id(link))
        link.id = found if isinstance(found, int) else found.fetchone()[0]
    else:
        cursor = db.execute_sql(sql, params)
        link.id = cursor.fetchone()[0] if returning else cursor.lastrowid
    link._dirty.clear()


def _stored_id(link: Link) -> int | None:
    """The id of the row `_insert_row` stored for `link` (same code, same creation instant), if any."""
    row = (
        Link.select(Link.id)
        .where((Link.code == link.code) & (Link.created_at == link.created_at))
        .tuples()
        .first()
    )
    return row[0] if row else None


@functools.cache
def _insert_sql(
    _database_type: type, names: frozenset[str], unannounced: bool = False
) -> tuple[str, tuple[str, ...], bool]:
    """The INSERT of a link with these columns as peewee renders it, its columns in the order of
    its parameters, and whether it returns the id.

    `unannounced` (PostgreSQL): the code's value is `set_config(UNANNOUNCED_SETTING, code, true)`,
    which sets the setting for this transaction before the row is inserted and returns the code, so
    the change trigger (its WHEN clause) skips exactly that row. (An INSERT … SELECT from a subquery
    setting it did the same for ~30 µs more of the server's planning per create.)
    """
    fields = Link._meta.fields
    query = Link.insert({fields[name]: None for name in names})
    sql = query.sql()[0]
    listed = sql[sql.index("(") + 1 : sql.index(")")]
    by_column = {field.column_name: name for name, field in fields.items()}
    columns = tuple(by_column[column.strip().strip('"`')] for column in listed.split(","))
    if unannounced:
        head, tail = sql.split(" VALUES (", 1)
        placeholders = ["%s"] * len(columns)
        placeholders[columns.index("code")] = f"set_config('{UNANNOUNCED_SETTING}', %s, true)"
        sql = f"{head} VALUES ({', '.join(placeholders)}{tail[tail.index(')') :]}"
    return sql, columns, " RETURNING " in sql


def new_link_fields(new: NewLink, target_url: str, *, owner_id: int | None, now: datetime) -> dict[str, Any]:
    """The columns of a new link to `target_url` (from normalize_target), its code aside.

    Applies the rules beyond the URL: the expiry must be in the future, the alias not reserved.
    """
    expires_at = _future(new.expires_at, now)
    if new.alias is not None and new.alias.lower() in RESERVED_CODES:
        raise InvalidInput(f"alias {new.alias!r} is reserved; choose another one", field="alias")
    return {
        "target_url": target_url,
        "title": new.title,
        "expires_at": expires_at,
        "max_clicks": new.max_clicks,
        "redirect_type": new.redirect_type,
        "owner": owner_id,
        "created_at": now,
        "updated_at": now,
    }


def _insert_alias(alias: str, fields: dict[str, Any], announce: Announce | None = None) -> Link:
    try:
        return _insert(alias, fields, announce)
    except IntegrityError:
        raise AliasTaken(f"The alias {alias!r} is already taken; choose another one.") from None


class Visit(NamedTuple):
    """What a GET redirect tells about its visitor (recorded as a click)."""

    user_agent: str = ""
    referrer: str | None = None
    client_ip: str = ""


def resolve_for_redirect(
    code: str,
    settings: Settings,
    clicks: ClickRecorder,
    cache: LinkCache,
    *,
    visit: Visit | None = None,
    now: datetime | None = None,
) -> Redirect:
    """Where `code` redirects now, recording `visit` as a click; LinkNotFound / LinkGone otherwise.

    Served from the per-process cache when possible, else one indexed read with pre-rendered SQL.
    Links with a click limit are never cached (their stored count must be current), and the limit
    check and the click's recording are one atomic step, so one process never exceeds the limit.
    """
    if not is_well_formed(code):
        raise LinkNotFound()
    row = cache.get(code)
    if row is UNCACHED:
        generation = cache.generation
        row = _load_redirect_row(code)
        if row is None or row[5] is None:
            cache.put(code, row, generation)
    return _follow(row, settings, clicks, visit, now)


def resolve_cached(
    code: str, settings: Settings, clicks: ClickRecorder, cache: LinkCache, *, visit: Visit | None = None
) -> Redirect | None:
    """`resolve_for_redirect` for a live link held by the cache; None for anything else (unknown to
    the cache, unknown code, gone), which the caller must send through `resolve_for_redirect`."""
    row = cache.peek(code)
    if row is None:
        return None
    try:
        return _follow(row, settings, clicks, visit, None)
    except LinkGone:
        return None


def is_unknown_code(code: str, listener: LinkChangeListener) -> bool:
    """True when no link has `code`, known without the database: a malformed code is left to the
    router; a well-formed one is settled by the known-codes filter that `listener` keeps current."""
    return is_well_formed(code) and listener.knows_absent(code)


def _follow(
    row: tuple | None, settings: Settings, clicks: ClickRecorder, visit: Visit | None, now: datetime | None
) -> Redirect:
    """The redirect a loaded row gives (recording `visit`), or LinkNotFound / LinkGone."""
    if row is None:
        raise LinkNotFound()
    link_id, url, redirect_type, is_active, expires_at, max_clicks, human_clicks, deleted_at = row
    if deleted_at is not None or not is_active:
        raise LinkGone()
    if expires_at is not None and expires_at <= (now or utcnow()):
        raise LinkGone("This short link has expired.")
    if settings.blocked_domains and is_blocked_url(url, settings.blocked_domains):
        # Blocking a domain also stops the links created before it was blocked.
        raise LinkGone("This short link's destination has been blocked.")
    allowance = None if max_clicks is None else max_clicks - human_clicks
    admitted = (
        clicks.record(
            link_id,
            user_agent=visit.user_agent,
            referrer=visit.referrer,
            client_ip=visit.client_ip,
            limit=allowance,
            now=now,
        )
        if visit is not None
        else allowance is None or clicks.pending(link_id) < allowance
    )
    if not admitted:
        raise LinkGone("This short link has reached its click limit.")
    status = redirect_type or settings.default_redirect_status
    if status in PERMANENT_STATUSES and max_clicks is None:
        return Redirect(link_id, url, status, _permanent_max_age(settings, expires_at, now))
    return Redirect(link_id, url, status)


def _permanent_max_age(settings: Settings, expires_at: datetime | None, now: datetime | None) -> int:
    """How long a permanent redirect may be cached: the configured age, never past the link's expiry."""
    if expires_at is None:
        return settings.permanent_redirect_max_age
    remaining = int((expires_at - (now or utcnow())).total_seconds())
    return max(0, min(settings.permanent_redirect_max_age, remaining))


def normalize_target(raw: str, settings: Settings, own_netlocs: frozenset[str] = frozenset()) -> str:
    """`raw` normalised and checked against the target policy of `settings` (InvalidUrl otherwise)."""
    return normalize_url(
        raw,
        max_length=settings.max_url_length,
        own_netlocs=own_netlocs,
        allow_private=settings.allow_private_targets,
        blocked_domains=settings.blocked_domains,
    )


def _load_redirect_row(code: str) -> tuple | None:
    row = db.execute_sql(_redirect_sql(type(db.obj)), (code,)).fetchone()
    if row is None or row[4] is None:
        return row
    return (*row[:4], Link.expires_at.python_value(row[4]), *row[5:])  # aware UTC once, not per hit


@functools.cache
def _redirect_sql(_database_type: type) -> str:
    """The redirect lookup, rendered once per database type: the hot path skips query building."""
    query = Link.select(
        Link.id,
        Link.target_url,
        Link.redirect_type,
        Link.is_active,
        Link.expires_at,
        Link.max_clicks,
        Link.human_click_count,
        Link.deleted_at,
    ).where(Link.code == "")
    return query.sql()[0]


def link_state(link: Link, now: datetime | None = None) -> str:
    """`active`, `inactive` (deactivated), `expired` or `exhausted` (click limit reached)."""
    if not link.is_active:
        return "inactive"
    if link.expires_at is not None and link.expires_at <= (now or utcnow()):
        return "expired"
    if link.max_clicks is not None and link.human_click_count >= link.max_clicks:
        return "exhausted"
    return "active"


def get_link(code: str, principal: Principal | None) -> Link:
    """A link the caller may see: anonymous links are public, owned ones only to owner and admins."""
    link = (
        Link.select().where(Link.code == code, Link.deleted_at.is_null()).first()
        if is_well_formed(code)
        else None
    )
    if link is None or not _can_see(link, principal):
        raise LinkNotFound()
    return link


def update_link(
    code: str,
    changes: dict[str, Any],
    settings: Settings,
    principal: Principal | None,
    *,
    own_netlocs: frozenset[str] = frozenset(),
    now: datetime | None = None,
    cache: LinkCache | None = None,
) -> Link:
    """Apply `changes` (a subset of EDITABLE; None clears optional fields) to an editable link."""
    link = _editable(code, principal)
    now = now or utcnow()
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    if "url" in changes:
        changes["target_url"] = normalize_target(changes.pop("url"), settings, own_netlocs)
    if changes.get("is_active", True) is None:
        raise InvalidInput("is_active must be true or false", field="is_active")
    if "expires_at" in changes:
        changes["expires_at"] = _future(changes["expires_at"], now)
    # Write only the changed columns, and only while the link still exists: a full save() would
    # write back click counters read earlier, or resurrect a link deleted meanwhile.
    fields = {getattr(Link, name): value for name, value in changes.items()}
    fields[Link.updated_at] = now
    if Link.update(fields).where(Link.id == link.id, Link.deleted_at.is_null()).execute() == 0:
        raise LinkNotFound()
    _forget(cache, link.code)
    return Link.get_by_id(link.id)


def delete_link(
    code: str, principal: Principal | None, *, now: datetime | None = None, cache: LinkCache | None = None
) -> None:
    """Delete an editable link, keeping a tombstone so that its code is never reused."""
    link = _editable(code, principal)
    now = now or utcnow()
    (
        Link.update(deleted_at=now, updated_at=now, is_active=False, target_url="", title=None)
        .where(Link.id == link.id)
        .execute()
    )
    _forget(cache, link.code)


def list_links(
    principal: Principal | None,
    settings: Settings,
    *,
    limit: int = 100,
    cursor: str | None = None,
    active: bool | None = None,
    q: str | None = None,
    owner: int | None = None,
    now: datetime | None = None,
) -> Page:
    """Links newest first, keyset-paginated on the primary key so every page costs the same.

    Admins see every link (or one owner's with `owner`), users their own, anonymous callers the
    anonymous links.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
    query = Link.select().where(Link.deleted_at.is_null(), _visible_to(principal, settings, owner))
    if active is not None:
        query = query.where(_live(now or utcnow()) if active else ~_live(now or utcnow()))
    if q:
        query = query.where(Link.target_url.contains(q) | Link.title.contains(q))
    if cursor:
        query = query.where(Link.id < decode_cursor(cursor))
    links = list(query.order_by(Link.id.desc()).limit(limit + 1))
    if len(links) <= limit:
        return Page(links, None)
    return Page(links[:limit], encode_cursor(links[limit - 1].id))


def _visible_to(principal: Principal | None, settings: Settings, owner: int | None) -> Expression:
    if owner is not None and (principal is None or not principal.is_admin):
        raise Forbidden("Only admins can filter by owner.")
    if principal is None:
        if not settings.anonymous_shorten:
            raise Unauthorized("Anonymous access is disabled: send an API key.")
        return Link.owner.is_null()
    if principal.is_admin:
        return Link.owner == owner if owner is not None else Link.id.is_null(False)
    return Link.owner == principal.user_id


def _live(now: datetime) -> Expression:
    """SQL for "this link redirects now" (same rules as link_state)."""
    not_expired = Link.expires_at.is_null() | (Link.expires_at > now)
    not_exhausted = Link.max_clicks.is_null() | (Link.human_click_count < Link.max_clicks)
    return (Link.is_active == True) & not_expired & not_exhausted  # noqa: E712 (SQL, not Python)


def _can_see(link: Link, principal: Principal | None) -> bool:
    if link.owner_id is None:
        return True
    return principal is not None and (principal.is_admin or principal.user_id == link.owner_id)


def _editable(code: str, principal: Principal | None) -> Link:
    if principal is None:
        raise Unauthorized()
    link = get_link(code, principal)
    if not principal.is_admin and link.owner_id != principal.user_id:
        raise Forbidden("Anonymous links can only be changed by an admin.")
    return link


def _future(expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at must be in the future", field="expires_at")
    return expires_at


def encode_cursor(last_id: int) -> str:
    """An opaque cursor that resumes the listing after the link with id `last_id`."""
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor resumes after; InvalidInput when it was not made by encode_cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if raw.isdigit() and int(raw) < 2**63:
            return int(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidInput(
        "cursor is not valid; use the URL from the previous page's Link header", field="cursor"
    )
