"""API keys: issuing, authenticating, listing and revoking."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.db import db, utcnow
from app.errors import Forbidden, InvalidInput, ResourceNotFound, Unauthorized
from app.models import ApiKey, User

KEY_PREFIX = "shk_"
VISIBLE_PREFIX_LENGTH = 12
# last_used_at is refreshed at most this often, so authentication is not a write per request.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user behind a valid key, their role and the key used."""

    user_id: int
    role: str
    key_id: int
    key_expires_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        """True for administrators."""
        return self.role == "admin"


def generate_key() -> str:
    """A new high-entropy secret (256 random bits), recognisable by its prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw_key: str) -> str:
    """The SHA-256 hex digest stored instead of the key."""
    return hashlib.sha256(raw_key.encode("utf-8", "surrogatepass")).hexdigest()


def authenticate(raw_key: str, *, now: datetime | None = None) -> Principal:
    """The principal a key belongs to; Unauthorized when unknown, expired or revoked."""
    now = now or utcnow()
    row = (
        ApiKey.select(
            ApiKey.id, ApiKey.user, User.role, ApiKey.expires_at, ApiKey.revoked_at, ApiKey.last_used_at
        )
        .join(User)
        .where(ApiKey.key_hash == hash_key(raw_key))
        .tuples()
        .first()
    )
    if row is None:
        raise Unauthorized("The API key is not valid.")
    key_id, user_id, role, expires_at, revoked_at, last_used_at = row
    if revoked_at is not None or (expires_at is not None and expires_at <= now):
        raise Unauthorized("The API key has expired or been revoked.")
    if last_used_at is None or now - last_used_at > TOUCH_INTERVAL:
        ApiKey.update(last_used_at=now).where(ApiKey.id == key_id).execute()
    return Principal(user_id=user_id, role=role, key_id=key_id, key_expires_at=expires_at)


def issue_key(
    principal: Principal,
    *,
    user_id: int | None = None,
    name: str = "",
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for the caller (or, for admins, for `user_id`); return it with its secret."""
    now = now or utcnow()
    owner_id = principal.user_id if user_id is None else user_id
    if owner_id != principal.user_id and not principal.is_admin:
        raise Forbidden("Only admins can issue keys for other users.")
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at must be in the future", field="expires_at")
    # A key never outlives the key that created it: a leaked short-lived key cannot mint a
    # permanent one.
    limit = principal.key_expires_at
    if limit is not None:
        if expires_at is not None and expires_at > limit:
            raise InvalidInput(
                f"expires_at must not be after your key's expiry ({limit.isoformat()})", field="expires_at"
            )
        expires_at = expires_at or limit
    if not User.select().where(User.id == owner_id).exists():
        raise InvalidInput(f"user {owner_id} does not exist", field="user_id")
    return create_key(owner_id, name=name, expires_at=expires_at, now=now)


def create_key(
    user_id: int,
    *,
    name: str = "",
    expires_at: datetime | None = None,
    now: datetime | None = None,
    raw_key: str | None = None,
) -> tuple[ApiKey, str]:
    """Store a key (a new random one unless `raw_key` is given) for `user_id` without checks."""
    raw_key = raw_key or generate_key()
    with db.atomic():
        key = ApiKey.create(
            user=user_id,
            name=name,
            prefix=raw_key[:VISIBLE_PREFIX_LENGTH],
            key_hash=hash_key(raw_key),
            created_at=now or utcnow(),
            expires_at=expires_at,
        )
    return key, raw_key


def list_keys(principal: Principal, *, user_id: int | None = None) -> list[ApiKey]:
    """The caller's keys; admins see every key, or one user's with `user_id`."""
    query = ApiKey.select().order_by(ApiKey.id)
    if not principal.is_admin:
        if user_id not in (None, principal.user_id):
            raise Forbidden("Only admins can list other users' keys.")
        user_id = principal.user_id
    if user_id is not None:
        query = query.where(ApiKey.user == user_id)
    return list(query)


def revoke_key(principal: Principal, key_id: int, *, now: datetime | None = None) -> None:
    """Revoke a key of the caller (admins: any key); other users' keys are not found."""
    query = ApiKey.update(revoked_at=now or utcnow()).where(ApiKey.id == key_id, ApiKey.revoked_at.is_null())
    if not principal.is_admin:
        query = query.where(ApiKey.user == principal.user_id)
    if query.execute() == 0 and not _key_visible(principal, key_id):
        raise ResourceNotFound("No such API key.")


def _key_visible(principal: Principal, key_id: int) -> bool:
    query = ApiKey.select().where(ApiKey.id == key_id)
    if not principal.is_admin:
        query = query.where(ApiKey.user == principal.user_id)
    return query.exists()
