"""OpenAPI 3.1 description, generated from the routes and the pydantic models they validate with.

Each API view carries an `Operation` (`@documented(...)`): its body and query models (the very
classes `parse_json`/`parse_query` validate with), its response models and the statuses it can
answer. `build_spec` walks the app's URL map, so a route cannot exist without being described
(`tests/api/test_openapi.py` fails on an undocumented one). `/docs` serves Swagger UI from the
assets bundled in the flask-swagger-ui package: no CDN, it works offline.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import flask_swagger_ui
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    render_template_string,
    send_from_directory,
)
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import IntegerConverter, Rule

from app.api.responses import ErrorOut

View = TypeVar("View", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"
_PLACEHOLDER = re.compile(r"<(?:(?P<kind>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")
# Routes that are not part of the JSON API: pages, documentation assets, static files.
NOT_API_BLUEPRINTS = frozenset({"docs", "web"})
NOT_API_ENDPOINTS = frozenset({"static"})
# What any route may answer besides its own statuses.
COMMON_ERRORS = {
    405: "Method not allowed here (`Allow` lists the methods).",
    429: "Rate limit exceeded (`Retry-After`).",
    503: "The database is unavailable (`Retry-After`).",
}
STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No content",
    301: "Moved permanently",
    302: "Found",
    307: "Temporary redirect",
    308: "Permanent redirect",
    400: "Invalid input (the message and `fields` say what to fix).",
    401: "Missing or invalid API key.",
    403: "The key lacks the right.",
    404: "No such resource (or not yours).",
    409: "Conflict.",
    410: "The link no longer redirects.",
    413: "Body too large.",
    415: "Body is not application/json.",
}
DOCS_ASSETS = os.path.join(os.path.dirname(flask_swagger_ui.__file__), "dist")


@dataclass(frozen=True)
class Operation:
    """What the description says about one view."""

    responses: dict[int, Any]  # status → model, [model] for an array, or None for no body
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    auth: str = "optional"  # "optional", "required" or "none"
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    headers: dict[int, dict[str, str]] = field(default_factory=dict)
    media: dict[int, tuple[str, ...]] = field(default_factory=dict)  # non-JSON bodies: status → types


def documented(
    responses: dict[int, Any],
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    auth: str = "optional",
    errors: tuple[int, ...] = (),
    tags: tuple[str, ...] = (),
    headers: dict[int, dict[str, str]] | None = None,
    media: dict[int, tuple[str, ...]] | None = None,
) -> Callable[[View], View]:
    """Attach the OpenAPI operation of a view (its docstring becomes the summary)."""
    operation = Operation(responses, body, query, auth, errors, tags, headers or {}, media or {})

    def attach(view: View) -> View:
        view.openapi = operation  # type: ignore[attr-defined]
        return view

    return attach


def api_rules(app: Flask) -> list[Rule]:
    """The URL rules that belong to the JSON API (and must be described)."""
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in NOT_API_ENDPOINTS and rule.endpoint.split(".")[0] not in NOT_API_BLUEPRINTS
    ]


def build_spec(app: Flask) -> dict:
    """The OpenAPI 3.1 document of `app`."""
    models: set[type[BaseModel]] = {ErrorOut}
    paths: dict[str, dict] = {}
    for rule in api_rules(app):
        view = app.view_functions[rule.endpoint]
        operation: Operation | None = getattr(view, "openapi", None)
        if operation is None:
            raise LookupError(f"route {rule.rule} ({rule.endpoint}) is not documented: add @documented")
        for model in (operation.body, *operation.responses.values()):
            if model is not None:
                models.add(model[0] if isinstance(model, list) else model)
        path, parameters = _path(rule, app.url_map.converters)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(view, operation, parameters, rule, method)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "URL shortener",
            "version": "1",
            "description": "Short links with aliases, expiry, click limits, analytics and API keys. "
            "Every error is JSON {error, code}.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _schemas(models),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


def _schemas(models: set[type[BaseModel]]) -> dict:
    inputs = [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)]
    _, definitions = models_json_schema(inputs, ref_template=REF, by_alias=True)
    return definitions.get("$defs", {})


def _path(rule: Rule, converters: dict[str, type]) -> tuple[str, list[dict]]:
    """`/urls/<code>` → `/urls/{code}` and its path parameters."""
    parameters = []

    def placeholder(match: re.Match) -> str:
        kind, args, name = match.group("kind") or "default", match.group("args") or "", match.group("name")
        converter = converters[kind]
        if issubclass(converter, IntegerConverter):
            maximum = re.search(r"max=(\d+)", args)
            schema: dict = {
                "type": "integer",
                "minimum": 1,
                "maximum": int(maximum[1]) if maximum else 2**63 - 1,
            }
        else:
            schema = {"type": "string", "pattern": f"^(?:{converter.regex})$"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
        return f"{{{name}}}"

    return _PLACEHOLDER.sub(placeholder, rule.rule), parameters


def _operation(view: Callable, operation: Operation, parameters: list[dict], rule: Rule, method: str) -> dict:
    summary = (view.__doc__ or "").strip().splitlines()[0] if view.__doc__ else rule.endpoint
    spec: dict[str, Any] = {
        "operationId": f"{rule.endpoint.replace('.', '_')}_{method.lower()}_{_slug(rule.rule)}",
        "summary": summary,
        "tags": list(operation.tags) or [rule.endpoint.split(".")[0]],
        "parameters": parameters + _query_parameters(operation.query),
        "responses": _responses(operation),
    }
    if operation.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=operation.body.__name__)}}},
        }
    if operation.auth != "none":
        spec["security"] = [{"bearer": []}, {"apiKey": []}] + ([{}] if operation.auth == "optional" else [])
    return spec


def _slug(path: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in path).strip("_") or "root"


def _query_parameters(model: type[BaseModel] | None) -> list[dict]:
    if model is None:
        return []
    schema = model.model_json_schema(by_alias=True, ref_template=REF)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {key: value for key, value in prop.items() if key != "description"},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _responses(operation: Operation) -> dict:
    error = {"application/json": {"schema": {"$ref": REF.format(model=ErrorOut.__name__)}}}
    responses: dict[str, dict] = {}
    for status, model in operation.responses.items():
        entry: dict[str, Any] = {"description": STATUS_TEXT.get(status, "")}
        if model is not None:
            entry["content"] = {"application/json": {"schema": _response_schema(model)}}
        elif status in operation.media:
            binary = {"type": "string"}
            entry["content"] = {media_type: {"schema": binary} for media_type in operation.media[status]}
        if status in operation.headers:
            entry["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in operation.headers[status].items()
            }
        responses[str(status)] = entry
    statuses = {*operation.errors, *COMMON_ERRORS, *((401,) if operation.auth != "none" else ())}
    if operation.body is not None:
        statuses |= {400, 413, 415}
    if operation.query is not None:
        statuses.add(400)
    for status in sorted(statuses):
        text = COMMON_ERRORS.get(status) or STATUS_TEXT.get(status, "Error.")
        responses.setdefault(str(status), {"description": text, "content": error})
    return responses


def _response_schema(model: Any) -> dict:
    if isinstance(model, list):  # [Model]: an array of it
        return {"type": "array", "items": {"$ref": REF.format(model=model[0].__name__)}}
    return {"$ref": REF.format(model=model.__name__)}


docs = Blueprint("docs", __name__)

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>URL shortener API</title>
<link rel="stylesheet" href="{{ url_for('docs.asset', filename='swagger-ui.css') }}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{{ url_for('docs.asset', filename='swagger-ui-bundle.js') }}"></script>
<script src="{{ url_for('docs.init') }}"></script>
</body>
</html>
"""
DOCS_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
};
"""
# Swagger UI sets inline styles and shows data: icons; nothing else may load or run.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@docs.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 description of this service."""
    response = jsonify(_cached_spec(current_app._get_current_object()))
    response.headers["Cache-Control"] = "no-cache"
    return response


@functools.cache
def _cached_spec(app: Flask) -> dict:
    return build_spec(app)


@docs.get("/docs")
def page() -> Response:
    """Browsable API documentation (Swagger UI, served from this service)."""
    response = Response(render_template_string(DOCS_PAGE), mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    response.headers["Cache-Control"] = "no-cache"
    return response


@docs.get("/docs/init.js")
def init() -> Response:
    """Swagger UI's start-up script (a file, so the page needs no inline script)."""
    response = Response(DOCS_INIT, mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@docs.get("/docs/assets/<path:filename>")
def asset(filename: str) -> Response:
    """Swagger UI's bundled files."""
    response = send_from_directory(DOCS_ASSETS, filename, max_age=86400)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
