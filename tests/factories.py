"""Plain functions that create rows with sensible defaults."""

from __future__ import annotations

from datetime import datetime

from app.db import utcnow
from app.models import Link, User
from app.services.api_keys import create_key
from app.services.codes import generate_code


def make_link(
    target_url: str = "https://example.com/page",
    *,
    code: str | None = None,
    created_at: datetime | None = None,
    owner: User | None = None,
    **fields,
) -> Link:
    """Insert a link directly, bypassing the service rules."""
    created_at = created_at or utcnow()
    return Link.create(
        code=code or generate_code(7),
        target_url=target_url,
        created_at=created_at,
        updated_at=created_at,
        owner=owner,
        **fields,
    )


def make_user(name: str = "alice", *, role: str = "user") -> User:
    """Insert a user."""
    return User.create(name=name, role=role, created_at=utcnow())


def make_key(user: User, **fields) -> str:
    """Issue a key for `user`; return the secret."""
    return create_key(user.id, **fields)[1]


def auth(secret: str) -> dict[str, str]:
    """Headers that authenticate with `secret`."""
    return {"Authorization": f"Bearer {secret}"}
