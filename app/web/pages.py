"""The pages: the shortening form at / and the details of one link at /links/<code>."""

from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.exceptions import NotFound

from app.api.http import public_base
from app.services import links, stats
from app.web.chart import bar_chart
from app.web.render import page

bp = Blueprint("web", __name__)


@bp.before_request
def _no_empty_path() -> None:
    """404 for an empty path (an absolute-form target, `GET http://host HTTP/1.1`): not the home page."""
    # Werkzeug would answer it with a 308 to "/" on whatever Host was sent: a Location built from an
    # untrusted header. Browsers always send a path, so such a request keeps the 404 it had before.
    if not request.environ.get("PATH_INFO"):
        raise NotFound()


@bp.get("/", strict_slashes=False)
def index() -> Response:
    """The form that shortens a URL through POST /shorten (with an optional alias and expiry)."""
    return page("index.html", base=public_base())


@bp.get("/links/<code>")
def link_page(code: str) -> Response:
    """A link's details and its clicks per day over the last 30 days (anonymous links only)."""
    # A browser page sends no API key, so it sees what an anonymous caller sees: anonymous links are
    # public, an owned link answers 404 as if it did not exist (as GET /urls/<code> does without a key).
    link, report = stats.link_report(code, None, stats.window(None, None, "day"))
    return page(
        "link.html",
        link=link,
        state=links.link_state(link),
        short_url=f"{public_base()}/{link.code}",
        totals=report["totals"],
        chart=bar_chart(report["series"]),
    )
