"""Request shapes (pydantic) and the helpers that turn request input into validated values."""

from __future__ import annotations

from typing import TypeVar

from flask import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import InvalidInput, MalformedJson, MissingBody, UnsupportedMediaType
from app.services.links import MAX_PAGE_SIZE

Shape = TypeVar("Shape", bound=BaseModel)


class ShortenRequest(BaseModel):
    """Body of POST /shorten."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(description="Absolute http(s) URL to shorten.")


class ListLinksQuery(BaseModel):
    """Query string of GET /urls."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(100, ge=1, le=MAX_PAGE_SIZE, description="Links per page.")
    cursor: str | None = Field(None, max_length=64, description="Opaque cursor from the Link header.")


def parse_json(request: Request, shape: type[Shape]) -> Shape:
    """Validate the JSON object body against `shape`, reporting every bad field at once."""
    if not request.content_length and not request.get_data(cache=True):
        raise MissingBody()
    if not request.is_json:
        raise UnsupportedMediaType()
    body = request.get_json(silent=True)
    if body is None:
        raise MalformedJson()
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
    return ".".join(str(part) for part in loc) or "body"


def _message(error: dict) -> str:
    if error["type"] == "missing":
        return "this field is required"
    if error["type"] == "extra_forbidden":
        return "unknown field; remove it"
    return error["msg"]
