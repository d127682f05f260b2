"""Rendering an HTML page with its own Content-Security-Policy."""

from __future__ import annotations

from flask import Response, make_response, render_template

# The pages load their script, style sheet and images from this origin only, call only this
# origin's API and run no inline code: an injected tag can neither run nor phone home.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def page(template: str, status: int = 200, **context: object) -> Response:
    """`template` rendered as an HTML response with `status` and the pages' CSP."""
    response = make_response(render_template(template, **context), status)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response
