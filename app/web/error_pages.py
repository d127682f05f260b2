"""Friendly HTML pages for a missing (404) or dead (410) link, for browsers only.

Browsers following a short link, or opening a link page, get a page; every other client (any
Accept that does not prefer text/html over application/json) keeps the JSON error.
"""

from __future__ import annotations

from flask import Flask, Response, request

from app.errors import AppError, LinkGone, LinkNotFound, render
from app.web.render import page

# Blueprints whose missing or dead links a browser may land on.
PAGE_BLUEPRINTS = frozenset({"redirect", "web"})


def register(app: Flask) -> None:
    """Answer LinkNotFound and LinkGone with an HTML page when a browser asks for one."""
    app.register_error_handler(LinkNotFound, link_error)
    app.register_error_handler(LinkGone, link_error)


def prefers_html() -> bool:
    """True when the client ranks text/html above application/json (a browser navigating)."""
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def link_error(error: AppError) -> Response:
    """The error as an HTML page for browsers on a link route, else the usual JSON."""
    if request.blueprint not in PAGE_BLUEPRINTS:
        return render(error)
    if prefers_html():
        response = page("error.html", status=error.status, error=error, gone=isinstance(error, LinkGone))
    else:
        response = render(error)
    response.vary.add("Accept")  # the same URL answers HTML or JSON depending on Accept
    return response
