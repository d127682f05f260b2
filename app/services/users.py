"""Users and the first administrator."""

from __future__ import annotations

from peewee import IntegrityError

from app.db import db, utcnow
from app.errors import AppError, Forbidden, InvalidInput
from app.models import ApiKey, User
from app.models.user import ROLES
from app.services.api_keys import Principal, create_key, hash_key

MIN_INITIAL_KEY_LENGTH = 32


class UserExists(AppError):
    """A user with this name already exists."""

    status = 409
    code = "user_exists"
    message = "A user with this name already exists."


def create_user(principal: Principal | None, name: str, role: str = "user") -> User:
    """Create a user (admins only; `principal=None` is the trusted CLI)."""
    if principal is not None and not principal.is_admin:
        raise Forbidden("Only admins can create users.")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    try:
        with db.atomic():
            return User.create(name=name, role=role, created_at=utcnow())
    except IntegrityError:
        raise UserExists(f"A user named {name!r} already exists.") from None


def list_users(principal: Principal) -> list[User]:
    """Every user, oldest first (admins only)."""
    if not principal.is_admin:
        raise Forbidden("Only admins can list users.")
    return list(User.select().order_by(User.id))


def create_admin(name: str) -> tuple[User, str]:
    """Create an admin user and a first key for it; return the user and the secret (CLI)."""
    with db.atomic():
        user = create_user(None, name, "admin")
        _key, raw_key = create_key(user.id, name="created by the CLI")
    return user, raw_key


def ensure_initial_admin(raw_key: str) -> bool:
    """Make `raw_key` (INITIAL_API_KEY) an admin key unless it already exists; True if created."""
    if len(raw_key) < MIN_INITIAL_KEY_LENGTH:
        raise InvalidInput(f"INITIAL_API_KEY must be at least {MIN_INITIAL_KEY_LENGTH} characters long")
    with db.atomic():
        if ApiKey.select().where(ApiKey.key_hash == hash_key(raw_key)).exists():
            return False
        user, _created = User.get_or_create(name="admin", defaults={"role": "admin", "created_at": utcnow()})
        if user.role != "admin":
            raise InvalidInput("a non-admin user named 'admin' exists; cannot attach INITIAL_API_KEY to it")
        create_key(user.id, name="INITIAL_API_KEY", raw_key=raw_key)
    return True
