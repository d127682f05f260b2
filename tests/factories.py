"""Plain functions that create rows with sensible defaults."""

from __future__ import annotations

from datetime import datetime

from app.db import utcnow
from app.models import Link
from app.services.codes import generate_code


def make_link(
    target_url: str = "https://example.com/page",
    *,
    code: str | None = None,
    created_at: datetime | None = None,
) -> Link:
    """Insert a link directly, bypassing the service rules."""
    return Link.create(
        code=code or generate_code(7), target_url=target_url, created_at=created_at or utcnow()
    )
