"""Request shapes (pydantic) and the helpers that turn request input into validated values."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from flask import Request, json
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import InvalidInput, MalformedJson, MissingBody, UnsupportedMediaType
from app.services.imports import STATES, ImportRow
from app.services.links import MAX_PAGE_SIZE, NewLink

Shape = TypeVar("Shape", bound=BaseModel)

Alias = Annotated[
    StrictStr, Field(pattern=r"^[A-Za-z0-9_-]{3,64}$", description="Custom code: 3-64 of A-Z a-z 0-9 _ -")
]
MAX_ID = 2**63 - 1  # ids are BIGINT: larger numbers cannot name anything
# Control characters (NUL above all, which PostgreSQL cannot store) are refused in free text.
Text = Annotated[StrictStr, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]
Title = Annotated[Text, Field(max_length=200)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _utc_in_range(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    if not 2 <= value.year <= 9998:
        raise ValueError("must be between the years 2 and 9998")
    return value


# An aware timestamp, in UTC, far enough from datetime's limits for hour arithmetic.
Moment = Annotated[AwareDatetime, AfterValidator(_utc_in_range)]
PositiveInt = Annotated[StrictInt, Field(ge=1, le=2**62)]
RedirectType = Literal[301, 302, 307, 308]
Name = Annotated[StrictStr, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class CreateLinkRequest(Body):
    """Body of POST /shorten and POST /urls."""

    url: StrictStr = Field(description="Absolute http(s) URL to shorten.")
    alias: Alias | None = None
    title: Title | None = None
    expires_at: Moment | None = Field(None, description="ISO 8601 with a timezone, in the future.")
    max_clicks: PositiveInt | None = None
    redirect_type: RedirectType | None = None


class UpdateLinkRequest(Body):
    """Body of PATCH /urls/<code>: only the fields sent change; null clears an optional field."""

    url: StrictStr | None = None
    title: Title | None = None
    expires_at: Moment | None = None
    max_clicks: PositiveInt | None = None
    redirect_type: RedirectType | None = None
    is_active: StrictBool | None = None


class ListLinksQuery(BaseModel):
    """Query string of GET /urls."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(100, ge=1, le=MAX_PAGE_SIZE, description="Links per page.")
    cursor: str | None = Field(None, max_length=64, description="Opaque cursor from the Link header.")
    active: bool | None = Field(None, description="Only links that redirect now (true) or not (false).")
    q: Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")] | None = Field(
        None, max_length=200, description="Search in the stored (normalised) target URL and title."
    )
    owner: Id | None = Field(None, description="Admins: only this user's links.")


class StatsQuery(BaseModel):
    """Query string of the stats endpoints (`from`/`to` in ISO 8601 with a timezone, `Z` or %2B)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    start: Moment | None = Field(None, alias="from", description="Window start (default: 30 days before to).")
    end: Moment | None = Field(None, alias="to", description="Window end, exclusive (default: now).")
    bucket: Literal["hour", "day", "month"] = Field("day", description="Time-series bucket.")


class SiteStatsQuery(StatsQuery):
    """Query string of GET /stats."""

    limit: int = Field(10, ge=1, le=100, description="How many top links.")


class CreateKeyRequest(Body):
    """Body of POST /keys."""

    name: Annotated[Text, Field(max_length=100)] = ""
    expires_at: Moment | None = None
    user_id: Id | None = Field(None, description="Admins: issue the key for this user.")


class ListKeysQuery(BaseModel):
    """Query string of GET /keys."""

    model_config = ConfigDict(extra="ignore")

    user_id: Id | None = None


class CreateUserRequest(Body):
    """Body of POST /users."""

    name: Name
    role: Literal["admin", "user"] = "user"


class QrQuery(BaseModel):
    """Query string of GET /urls/<code>/qr."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["svg", "png"] = Field("svg", description="Image format.")
    scale: int = Field(4, ge=1, le=40, description="Size of one module in pixels.")
    border: int = Field(4, ge=0, le=16, description="Quiet zone around the code, in modules.")


# Columns an import ignores: those an export adds for people and those of a rejects file, so that
# either file imports as it is. (An export's `owner_id` and `state` are read: see parse_import_row.)
IGNORED_COLUMNS = frozenset({"created_at", "click_count", "row", "error", "reason"})
_INTEGER_CELL = re.compile(r"\s*[0-9]+\s*")
_BOOLEAN_CELLS = {"true": True, "1": True, "false": False, "0": False}


def parse_import_row(row: object) -> ImportRow:
    """One import row (CSV cells are strings, empty ones unset) as an ImportRow, by the API's field rules.

    Beyond the fields of POST /shorten: `owner_id` (a user id), `state` (an export's: active,
    inactive, expired or exhausted) and `is_active` (true or false). A row whose state is not
    active, or whose is_active is false, is a dead link.
    """
    if not isinstance(row, Mapping):
        raise InvalidInput("the row must be an object with at least a url")
    data = {
        key: value for key, value in row.items() if key not in IGNORED_COLUMNS and value not in ("", None)
    }
    problems: dict[str, str] = {}
    owner_id = _import_cell(problems, "owner_id", data.pop("owner_id", None), _owner_cell)
    state = _import_cell(problems, "state", data.pop("state", None), _state_cell)
    is_active = _import_cell(problems, "is_active", data.pop("is_active", None), _boolean_cell)
    for name in ("max_clicks", "redirect_type"):
        if isinstance(data.get(name), str) and _INTEGER_CELL.fullmatch(data[name]):
            data[name] = int(data[name])
    new = None
    try:
        new = NewLink(**_validate(CreateLinkRequest, data).model_dump())
    except InvalidInput as error:
        problems = {**error.extra["fields"], **problems}
    if new is None or problems:
        summary = "; ".join(f"{name}: {message}" for name, message in problems.items())
        raise InvalidInput(summary, fields=problems)
    active = is_active is not False and state in (None, "active")
    return ImportRow(new, active=active, owner_id=owner_id)


def _import_cell(
    problems: dict[str, str], name: str, value: object, parse: Callable[[object], object]
) -> Any:
    """`value` parsed (None stays None); a ValueError is recorded in `problems` under `name`."""
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as error:
        problems[name] = str(error)
        return None


def _owner_cell(value: object) -> int:
    if isinstance(value, str) and _INTEGER_CELL.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ValueError("must be a user id (a positive integer)")
    return value


def _state_cell(value: object) -> str:
    state = value.strip().lower() if isinstance(value, str) else None
    if state not in STATES:
        raise ValueError(f"must be one of {', '.join(STATES)}")
    return state


def _boolean_cell(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_CELLS:
        return _BOOLEAN_CELLS[value.strip().lower()]
    raise ValueError("must be true or false")


def parse_json(request: Request, shape: type[Shape]) -> Shape:
    """Validate the JSON object body against `shape`, reporting every bad field at once."""
    data = request.get_data(cache=True)
    if not data:
        raise MissingBody()
    if request.content_length is None and len(data) >= (request.max_content_length or len(data) + 1):
        # A streamed (chunked) body is cut at the limit by Werkzeug; never parse the prefix.
        raise RequestEntityTooLarge()
    if not request.is_json:
        raise UnsupportedMediaType()
    return parse_json_body(data, shape)


def parse_json_body(data: bytes, shape: type[Shape]) -> Shape:
    """Validate `data`, the bytes of a JSON request body, against `shape` (the part of `parse_json`
    after the HTTP checks; the create fast path calls it directly)."""
    try:
        body = json.loads(data)  # what request.get_json() calls (the app's JSON provider)
    except ValueError:
        raise MalformedJson() from None
    except RecursionError:
        raise MalformedJson("The request body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise InvalidInput('The body must be a JSON object, e.g. {"url": "https://example.com"}.')
    return _validate(shape, body)


def parse_query(request: Request, shape: type[Shape]) -> Shape:
    """Validate the query string against `shape`."""
    return _validate(shape, request.args.to_dict())


def _validate(shape: type[Shape], data: dict) -> Shape:
    try:
        return shape.model_validate(data)
    except ValidationError as error:
        fields = {_location(e["loc"]): _message(e) for e in error.errors(include_url=False)}
        summary = "; ".join(f"{name}: {message}" for name, message in fields.items())
        raise InvalidInput(f"Invalid request: {summary}", fields=fields) from None


def _location(loc: tuple) -> str:
    return str(loc[0]) if loc else "body"  # bodies are flat: the field name is the location


def _message(error: dict) -> str:
    if error["type"] == "missing":
        return "this field is required"
    if error["type"] == "extra_forbidden":
        return "unknown field; remove it"
    return error["msg"]
