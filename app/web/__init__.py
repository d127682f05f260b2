"""The web page: a form to shorten a URL, a page per link, and friendly HTML 404/410 pages."""

from __future__ import annotations

from flask import Flask

from app.web import error_pages, pages


def register(app: Flask) -> None:
    """Register the pages and the HTML error pages (call before the redirect blueprint)."""
    app.register_blueprint(pages.bp)
    error_pages.register(app)
