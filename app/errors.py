"""Typed errors raised by services, and the one place that renders every error as JSON."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from app.db import UNAVAILABLE_ERRORS, release_after_failure

log = logging.getLogger(__name__)


class AppError(Exception):
    """Base of every error a client may see: an HTTP status, a stable code and a message."""

    status = 500
    code = "internal_error"
    message = "Internal server error."

    def __init__(self, message: str | None = None, **extra: object) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.extra = extra

    def headers(self) -> dict[str, str]:
        """Extra response headers for this error."""
        return {}


class InvalidInput(AppError):
    """The request is well-formed but a field holds a value we cannot accept."""

    status = 400
    code = "invalid_input"
    message = "The request body is invalid."

    def __init__(self, message: str | None = None, *, field: str | None = None, **extra: object) -> None:
        if field is not None:
            extra.setdefault("fields", {field: message or self.message})
        super().__init__(message, **extra)


class InvalidUrl(InvalidInput):
    """The target URL is not an acceptable absolute http(s) URL."""

    code = "invalid_url"


class MalformedJson(AppError):
    """The body could not be parsed as JSON."""

    status = 400
    code = "malformed_json"
    message = "The request body is not valid JSON."


class MissingBody(AppError):
    """A JSON body was required and none was sent."""

    status = 400
    code = "missing_body"
    message = 'Send a JSON object body, e.g. {"url": "https://example.com"}.'


class UnsupportedMediaType(AppError):
    """A body was sent with a content type other than JSON."""

    status = 415
    code = "unsupported_media_type"
    message = "Send the body as JSON with the header Content-Type: application/json."


class InvalidHost(AppError):
    """The Host header is not a valid host, and no BASE_URL says what our address is."""

    status = 400
    code = "invalid_host"
    message = "The Host header is missing or invalid; send a valid Host header."


class LinkNotFound(AppError):
    """No link has this code."""

    status = 404
    code = "not_found"
    message = "No short link with this code exists."


class LinkGone(AppError):
    """The link exists but no longer redirects: deactivated, expired, used up or deleted."""

    status = 410
    code = "link_gone"
    message = "This short link is no longer active."


class AliasTaken(AppError):
    """The requested custom alias is already in use (or was used before)."""

    status = 409
    code = "alias_taken"
    message = "This alias is already taken; choose another one."


class ResourceNotFound(AppError):
    """An API resource (key, user) does not exist or is not visible to the caller."""

    status = 404
    code = "not_found"
    message = "No such resource."


class Unauthorized(AppError):
    """No valid API key was presented where one is required."""

    status = 401
    code = "unauthorized"
    message = "A valid API key is required: send Authorization: Bearer <key>."

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="shortener"'}


class Forbidden(AppError):
    """The API key is valid but lacks the right for this action."""

    status = 403
    code = "forbidden"
    message = "Your API key does not allow this action."


class RateLimited(AppError):
    """The client sent more requests than its limit allows; it may retry after `retry_after` seconds."""

    status = 429
    code = "rate_limited"
    message = "Too many requests; slow down."

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServiceUnavailable(AppError):
    """A dependency is down; the client should retry shortly."""

    status = 503
    code = "service_unavailable"
    message = "The service is temporarily unavailable; retry shortly."

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached or did not answer in time."""

    code = "database_unavailable"
    message = "The database is temporarily unavailable; retry shortly."


class CodeSpaceExhausted(ServiceUnavailable):
    """Every attempt to pick a free short code collided."""

    code = "code_generation_failed"
    message = "Could not allocate a free short code; retry the request."


# Werkzeug's own errors, mapped to stable codes and messages that say what to do.
_HTTP_CODES = {
    400: ("bad_request", "The request could not be understood."),
    404: ("not_found", "No such resource. See the README for the API routes."),
    405: ("method_not_allowed", "This method is not allowed here; see the Allow header."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", UnsupportedMediaType.message),
}


def error_response(
    http_status: int, code: str, message: str, headers: dict[str, str] | None = None, /, **extra: object
) -> Response:
    """The single JSON shape of every error: {"error": message, "code": code, ...}."""
    response = jsonify({"error": message, "code": code, **extra})
    response.status_code = http_status
    response.headers.update(headers or {})
    return response


def render(error: AppError) -> Response:
    """The JSON response of a typed error."""
    return error_response(error.status, error.code, error.message, error.headers(), **error.extra)


def register_error_handlers(app: Flask) -> None:
    """Render AppErrors, database outages, Werkzeug errors and anything else as JSON."""

    app.register_error_handler(AppError, render)

    def _database_unavailable(error: Exception) -> Response:
        log.warning("database unavailable: %s", str(error).strip() or type(error).__name__)
        release_after_failure()
        return render(DatabaseUnavailable())

    for unavailable in UNAVAILABLE_ERRORS:
        app.register_error_handler(unavailable, _database_unavailable)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code, message = _HTTP_CODES.get(status, (_snake(error.name), error.description or error.name))
        allow = {"Allow": ", ".join(error.valid_methods)} if getattr(error, "valid_methods", None) else {}
        return error_response(status, code, message, allow)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, AppError.code, AppError.message)


def _snake(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")
