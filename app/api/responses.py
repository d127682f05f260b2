"""Response shapes (pydantic), for the OpenAPI description; the serialisers in `http.py` produce them.

`tests/api/test_openapi.py` validates real responses against these models (extra keys forbidden),
and schemathesis checks every answer against the generated description, so they cannot drift.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    """Base of response shapes: nothing undocumented may appear."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(Out):
    """Every error: a message for people, a stable code for programs."""

    model_config = ConfigDict(extra="allow")  # plus context, e.g. `fields` for invalid input

    error: str = Field(description="What went wrong and what to do.")
    code: str = Field(description="Stable machine-readable code (docs/ERROR_HANDLING.md).")


class LinkOut(Out):
    """A short link."""

    short_code: str
    short_url: str
    original_url: str = Field(description="The stored target: normalised, ASCII ('' once deleted).")
    created_at: str
    updated_at: str
    title: str | None
    expires_at: str | None
    max_clicks: int | None
    redirect_type: Literal[301, 302, 307, 308] | None
    is_active: bool
    state: Literal["active", "inactive", "expired", "exhausted"]
    click_count: int
    human_click_count: int
    owner_id: int | None


class KeyOut(Out):
    """An API key (the secret `key` only in the answer to its creation)."""

    id: int
    name: str
    prefix: str
    user_id: int
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None
    key: str | None = Field(None, description="The secret; shown once, at creation.")


class UserOut(Out):
    """A user."""

    id: int
    name: str
    role: Literal["admin", "user"]
    created_at: str


class Totals(Out):
    """Click totals over a window."""

    clicks: int
    human_clicks: int
    bot_clicks: int
    unique_visitors: int = Field(description="Visitor-days: the visitor hash changes daily.")
    bot_share: float


class SeriesPoint(Out):
    """One bucket of the time series."""

    start: str
    clicks: int
    human_clicks: int


class Ranked(Out):
    """One entry of a top list."""

    name: str
    clicks: int


class LinkStatsOut(Out):
    """Statistics of one link over a window."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    short_code: str
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    bucket: Literal["hour", "day", "month"]
    totals: Totals
    series: list[SeriesPoint]
    referrers: list[Ranked]
    browsers: list[Ranked]
    operating_systems: list[Ranked]
    devices: list[Ranked]


class TopLink(Out):
    """A link among the most clicked."""

    short_code: str
    human_clicks: int


class SiteStatsOut(Out):
    """Site-wide statistics over a window."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: str = Field(alias="from")
    end: str = Field(alias="to")
    bucket: Literal["hour", "day", "month"]
    totals: Totals
    top_links: list[TopLink]


class HealthOut(Out):
    """Readiness."""

    status: Literal["ok"]
    database: Literal["ok"]
    database_latency_ms: float
    cache_notifications: Literal["listening", "connecting", "off"]


class LivezOut(Out):
    """Liveness."""

    status: Literal["ok"]
