"""Bulk import and export of links: plain rows in, a summary out; batched, idempotent, no row lost.

An import applies the API's rules to every row (the caller's `parse_row` for the field shapes, then
the link service's URL policy, future expiry and reserved aliases) and writes the accepted rows in
multi-row statements, one transaction per batch. Re-running a file creates nothing new:

- a row with an alias is *already present* when that code exists with the same (normalised)
  target; another target, or a deleted link's code, is a rejection (the alias is taken);
- a row without an alias is *already present* when a link that is not deleted has the same
  normalised URL, owner and title (as the API would create a fresh code every time, this
  identity is what makes a re-run harmless).

What an export says about a link is never silently dropped on the way back in:

- a dead row (an export's `state` inactive, expired or exhausted, or `is_active` false) is created
  deactivated, so it never redirects; its expiry is kept even when past (the "in the future" rule
  is for links that would redirect);
- a row naming an owner (`owner_id`) is created under that owner only with `keep_owners` (and
  when the user exists), or under the import's `owner_id` (an explicit override); otherwise it is
  rejected rather than made public.

Click counts are not carried: every created link starts at 0 clicks.

A bad row is rejected with its number and the reason, and never costs the other rows of its batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice
from typing import Any

from peewee import DataError, IntegrityError

from app.config import Settings
from app.db import db, utcnow
from app.errors import AppError, InvalidInput
from app.models import Link, User
from app.services.codes import generate_code
from app.services.links import NewLink, link_state, new_link_fields, normalize_target
from app.services.urls import own_netlocs

BATCH_SIZE = 1000
# Rows checked against the database per lookup, in batches: without an index on the target URL, each
# identity lookup scans the link table, so fewer, larger lookups (measured: 100k rows, 2.4 s → 0.3 s).
LOOKUP_BATCHES = 10
# Columns written by an import, in database form (multi-row INSERT ... RETURNING).
_COLUMNS = (
    "code",
    "target_url",
    "created_at",
    "updated_at",
    "owner",
    "title",
    "expires_at",
    "max_clicks",
    "redirect_type",
    "is_active",
    "click_count",
    "human_click_count",
)
EXPORT_COLUMNS = (
    "alias",
    "url",
    "title",
    "expires_at",
    "max_clicks",
    "redirect_type",
    "owner_id",
    "state",
    "created_at",
    "click_count",
)
# The `state` values of an export (link_state); all but "active" are dead links.
STATES = ("active", "inactive", "expired", "exhausted")
# A CSV cell starting with one of these is a formula to a spreadsheet (or, for "'", starts like an
# escaped one): exports prefix such cells with "'", and a CSV import takes that prefix off again.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_cell(value: Any) -> Any:
    """`value` safe for a spreadsheet: a text starting like a formula is prefixed with "'"."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def from_csv_cell(value: Any) -> Any:
    """The value csv_cell was given: one "'" taken off a cell it escaped (other cells unchanged)."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(_FORMULA_STARTS):
        return value[1:]
    return value


@dataclass(frozen=True)
class ImportRow:
    """One parsed row: the link to create, whether it may redirect, and the owner the row names."""

    new: NewLink
    active: bool = True  # False: a dead link (inactive, expired or exhausted), created deactivated
    owner_id: int | None = None  # the row's owner_id column (an export's), not the import's owner


@dataclass(frozen=True)
class Rejection:
    """A row that was not imported: its 1-based number, a stable code and what to fix."""

    row: int
    code: str
    reason: str
    data: Any


@dataclass
class ImportSummary:
    """What an import did with each row."""

    created: int = 0
    present: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows read."""
        return self.created + self.present + len(self.rejected)


@dataclass
class _Candidate:
    """A row that passed the shape and URL rules, on its way to the database."""

    row: int
    data: Any
    new: NewLink
    target_url: str
    active: bool = True
    row_owner: int | None = None  # the owner the row names
    owner: int | None = None  # the owner the link gets (and is identified by)
    code: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    refused: bool = False  # the database refused the row itself: rejected, never retried


def import_links(
    rows: Iterable[Any],
    settings: Settings,
    parse_row: Callable[[Any], ImportRow | NewLink],
    *,
    owner_id: int | None = None,
    keep_owners: bool = False,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Create the links `rows` describe, `batch_size` rows per transaction, and say what became of each.

    `parse_row` turns a row into an ImportRow (or a NewLink) or raises InvalidInput (the edge's field
    rules). `owner_id` owns every created link, whatever owner a row names; without it, a row naming
    an owner is created under that owner with `keep_owners` (rejected if no such user), and rejected
    without. `on_progress` is called with the number of rows settled since its previous call.
    """
    if owner_id is not None and keep_owners:
        raise InvalidInput("give either an owner or keep_owners, not both", field="owner")
    if owner_id is not None and not User.select().where(User.id == owner_id).exists():
        raise InvalidInput(f"no user with id {owner_id}", field="owner")
    importer = _Importer(settings, parse_row, owner_id, keep_owners, now or utcnow())
    numbered = enumerate(rows, start=1)
    progress = _Progress(on_progress)
    while chunk := list(islice(numbered, batch_size * LOOKUP_BATCHES)):
        importer.run(chunk, batch_size, progress)
    importer.summary.rejected.sort(key=lambda rejection: rejection.row)
    return importer.summary


class _Importer:
    """The state of one import: its summary, and the aliases and identities it has already seen."""

    def __init__(
        self,
        settings: Settings,
        parse_row: Callable[[Any], ImportRow | NewLink],
        owner_id: int | None,
        keep_owners: bool,
        now: datetime,
    ) -> None:
        self.settings = settings
        self.parse_row = parse_row
        self.owner_id = owner_id
        self.keep_owners = keep_owners
        self.now = now
        # Without a request, only BASE_URL tells this service's address (a link there would loop).
        self.own_netlocs = own_netlocs([settings.base_url] if settings.base_url else [])
        self.summary = ImportSummary()
        self.aliases: dict[str, str] = {}  # alias → target, from this file
        self.identities: set[_Identity] = set()  # (owner, target, title) of alias-less rows

    def run(self, chunk: list[tuple[int, Any]], batch_size: int, progress: _Progress) -> None:
        """Check a chunk of rows with one lookup, then write its new rows `batch_size` per transaction."""
        candidates = [c for c in (self._parse(number, data) for number, data in chunk) if c is not None]
        codes = _existing_codes([c.new.alias for c in candidates if c.new.alias is not None])
        alias_less = [c for c in candidates if c.new.alias is None]
        identities = _existing_identities({c.target_url for c in alias_less}, {c.owner for c in alias_less})
        kept = {c.row_owner for c in candidates if c.row_owner is not None} if self.keep_owners else set()
        users = _existing_users(kept)
        fresh = [c for c in candidates if self._is_new(c, codes, identities, users)]
        for start in range(0, len(fresh), batch_size):
            batch = fresh[start : start + batch_size]
            with db.atomic():
                self._insert(batch)
            progress.reached(batch[-1].row)
        progress.reached(chunk[-1][0])

    def _parse(self, number: int, data: Any) -> _Candidate | None:
        try:
            parsed = self.parse_row(data)
            row = parsed if isinstance(parsed, ImportRow) else ImportRow(parsed)
            target = normalize_target(row.new.url, self.settings, self.own_netlocs)
        except AppError as error:
            self._reject(number, data, error.code, error.message)
            return None
        # The import's owner overrides the row's; without it the row's owner identifies the link (a
        # row already present is settled as such, whatever the options).
        owner = self.owner_id if self.owner_id is not None else row.owner_id
        return _Candidate(number, data, row.new, target, row.active, row.owner_id, owner)

    def _is_new(
        self, c: _Candidate, codes: dict[str, tuple[str, bool]], identities: set[_Identity], users: set[int]
    ) -> bool:
        """False for a row already present or rejected; True (with its columns) for one to insert."""
        alias = c.new.alias
        identity = (c.owner, c.target_url, c.new.title)
        if alias is not None:
            known = (self.aliases[alias], False) if alias in self.aliases else codes.get(alias)
            if known is not None:
                self._settle_taken_alias(c, *known)
                return False
        elif identity in self.identities or identity in identities:
            self.summary.present += 1
            return False
        if (refusal := self._owner_refusal(c, users)) is not None:
            self._reject(c.row, c.data, *refusal)
            return False
        try:
            c.fields = _link_fields(c, self.now)
        except AppError as error:
            self._reject(c.row, c.data, error.code, error.message)
            return False
        if alias is not None:
            self.aliases[alias] = c.target_url
        else:
            self.identities.add(identity)
        return True

    def _owner_refusal(self, c: _Candidate, users: set[int]) -> tuple[str, str] | None:
        """Why the row may not be created under its owner (code, reason), or None when it may."""
        if self.owner_id is not None or c.row_owner is None:
            return None
        if not self.keep_owners:
            return (
                "owner_not_kept",
                f"owned by user {c.row_owner} in the export: import with --keep-owners or --owner",
            )
        if c.row_owner not in users:
            return (
                "unknown_owner",
                f"owned by user {c.row_owner} in the export, and there is no user with id "
                f"{c.row_owner}: create the user, or import with --owner",
            )
        return None

    def _settle_taken_alias(self, c: _Candidate, target: str, deleted: bool) -> None:
        if deleted:
            self._reject(
                c.row,
                c.data,
                "alias_taken",
                f"alias {c.new.alias!r} belonged to a deleted link; never reused",
            )
        elif target == c.target_url:
            self.summary.present += 1
        else:
            self._reject(c.row, c.data, "alias_taken", f"alias {c.new.alias!r} is taken by another URL")

    def _insert(self, fresh: list[_Candidate]) -> None:
        """Insert `fresh`; codes the database refuses as taken are drawn again (aliases: re-checked)."""
        pending = fresh
        for _ in range(self.settings.code_attempts):
            if not pending:
                return
            self._assign_codes(pending)
            inserted = self._write(pending)
            self.summary.created += sum(1 for c in pending if c.code in inserted)
            missed = [c for c in pending if c.code not in inserted and not c.refused]
            self._settle_aliases([c for c in missed if c.new.alias is not None])
            pending = [c for c in missed if c.new.alias is None]
        for c in pending:
            self._reject(c.row, c.data, "code_generation_failed", "no free code found; retry the import")

    def _assign_codes(self, pending: list[_Candidate]) -> None:
        taken = {c.new.alias for c in pending if c.new.alias is not None}
        for c in pending:
            if c.new.alias is not None:
                c.code = c.new.alias
                continue
            while (code := generate_code(self.settings.code_length)) in taken:
                continue  # two rows of one statement must not draw the same code
            taken.add(code)
            c.code = code

    def _write(self, pending: list[_Candidate]) -> set[str]:
        """The codes inserted; if the database refuses the statement, row by row (refused rows rejected)."""
        try:
            with db.atomic():  # a savepoint: a refused statement leaves the batch's transaction usable
                return _insert_returning_codes([_values(c) for c in pending])
        except (IntegrityError, DataError):
            pass
        inserted: set[str] = set()
        for c in pending:
            try:
                with db.atomic():
                    inserted |= _insert_returning_codes([_values(c)])
            except (IntegrityError, DataError) as error:
                first_line = (
                    str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                )
                self._reject(c.row, c.data, "database_refused", f"the database refused the row: {first_line}")
                c.refused = True
                self.aliases.pop(c.new.alias or "", None)
                self.identities.discard((c.owner, c.target_url, c.new.title))
        return inserted

    def _settle_aliases(self, missed: list[_Candidate]) -> None:
        """Aliases the database refused (taken meanwhile by another writer, or a refused row)."""
        current = _existing_codes([c.code for c in missed])
        for c in missed:
            target, deleted = current.get(c.code, ("", False))  # absent: taken and gone again
            self._settle_taken_alias(c, target, deleted)

    def _reject(self, number: int, data: Any, code: str, reason: str) -> None:
        self.summary.rejected.append(Rejection(number, code, reason, data))


class _Progress:
    """Turns "settled up to row N" into the increments `on_progress` expects."""

    def __init__(self, on_progress: Callable[[int], None] | None) -> None:
        self.on_progress = on_progress
        self.row = 0

    def reached(self, row: int) -> None:
        """Rows up to `row` are settled."""
        if self.on_progress is not None and row > self.row:
            self.on_progress(row - self.row)
        self.row = max(self.row, row)


def _existing_codes(codes: list[str]) -> dict[str, tuple[str, bool]]:
    """code → (target, deleted) for the given codes that exist."""
    if not codes:
        return {}
    query = Link.select(Link.code, Link.target_url, Link.deleted_at).where(Link.code.in_(codes))
    return {code: (target, deleted_at is not None) for code, target, deleted_at in query.tuples()}


# (owner id or None, target, title): what identifies a link created from a row without alias.
_Identity = tuple[int | None, str, str | None]


def _existing_identities(urls: set[str], owners: set[int | None]) -> set[_Identity]:
    """(owner, target, title) of the links of `owners` (None: anonymous), not deleted, among `urls`."""
    if not urls:
        return set()
    owned = [owner for owner in owners if owner is not None]
    owner = Link.owner.is_null() | Link.owner.in_(owned) if owned else Link.owner.is_null()
    query = Link.select(Link.owner, Link.target_url, Link.title).where(
        Link.target_url.in_(list(urls)), owner, Link.deleted_at.is_null()
    )
    return set(query.tuples())


def _existing_users(ids: set[int]) -> set[int]:
    """The ids among `ids` that name a user."""
    if not ids:
        return set()
    return {user_id for (user_id,) in User.select(User.id).where(User.id.in_(list(ids))).tuples()}


def _link_fields(c: _Candidate, now: datetime) -> dict[str, Any]:
    """The row's columns by the link service's rules; a dead row keeps its expiry, even a past one."""
    if c.active:
        return new_link_fields(c.new, c.target_url, owner_id=c.owner, now=now)
    # Created deactivated, the link never redirects: "expires_at must be in the future" (which keeps
    # a new link from being born expired) does not apply, and an expired export row imports as is.
    fields = new_link_fields(replace(c.new, expires_at=None), c.target_url, owner_id=c.owner, now=now)
    return {**fields, "expires_at": c.new.expires_at}


def _values(c: _Candidate) -> tuple:
    """The row's values in database form, in _COLUMNS order; click counts start at 0."""
    fields = c.fields
    stamp = _timestamp(fields["created_at"])
    expires_at = fields["expires_at"] and _timestamp(fields["expires_at"])
    return (
        *(c.code, fields["target_url"], stamp, _timestamp(fields["updated_at"]), fields["owner"]),
        *(fields["title"], expires_at, fields["max_clicks"], fields["redirect_type"], c.active, 0, 0),
    )


@functools.lru_cache(maxsize=4)
def _timestamp(moment: datetime) -> str:
    """`moment` as stored; cached, as every row of an import carries the same creation time."""
    return Link.created_at.db_value(moment)


def _insert_returning_codes(rows: list[tuple]) -> set[str]:
    """One multi-row INSERT; rows whose code exists are skipped. Returns the codes inserted."""
    columns = ", ".join(Link._meta.fields[name].column_name for name in _COLUMNS)
    one_row = f"({', '.join([db.obj.param] * len(_COLUMNS))})"
    values = ", ".join([one_row] * len(rows))
    # Identifiers come from the model and every value is a parameter.
    sql = f"INSERT INTO {Link._meta.table_name} ({columns}) VALUES {values} ON CONFLICT (code) DO NOTHING"  # noqa: S608
    sql += " RETURNING code"
    cursor = db.execute_sql(sql, [value for row in rows for value in row])
    return {code for (code,) in cursor.fetchall()}


def export_rows(*, batch_size: int = BATCH_SIZE, now: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Every link that is not deleted, oldest first, as import-compatible rows (read by keyset pages)."""
    now = now or utcnow()
    last_id = 0
    while True:
        page = list(
            Link.select()
            .where(Link.deleted_at.is_null(), Link.id > last_id)
            .order_by(Link.id)
            .limit(batch_size)
        )
        yield from (_export_row(link, now) for link in page)
        if len(page) < batch_size:
            return
        last_id = page[-1].id


def _export_row(link: Link, now: datetime) -> dict[str, Any]:
    return {
        "alias": link.code,
        "url": link.target_url,
        "title": link.title,
        "expires_at": link.expires_at.isoformat() if link.expires_at else None,
        "max_clicks": link.max_clicks,
        "redirect_type": link.redirect_type,
        "owner_id": link.owner_id,
        "state": link_state(link, now),
        "created_at": link.created_at.isoformat(),
        "click_count": link.click_count,
    }


def summarize_rejections(rejected: list[Rejection]) -> list[tuple[str, int, Rejection]]:
    """Rejections grouped by code, most frequent first: (code, count, first example)."""
    groups: dict[str, list[Rejection]] = {}
    for rejection in rejected:
        groups.setdefault(rejection.code, []).append(rejection)
    return sorted(((code, len(items), items[0]) for code, items in groups.items()), key=lambda g: -g[1])
