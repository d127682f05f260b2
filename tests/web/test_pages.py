"""The web pages: the form at /, a link's page with its clicks, their CSP and accessibility basics."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from html.parser import HTMLParser

from app.db import utcnow
from app.web.render import PAGE_CSP
from tests.factories import make_link, make_user

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, in order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def all(self, name: str) -> list[dict]:
        return [attrs for tag, attrs in self.tags if tag == name]


def visit(client, code: str, ip: str = "192.0.2.1"):
    return client.get(f"/{code}", headers={"User-Agent": FIREFOX}, environ_base={"REMOTE_ADDR": ip})


def assert_accessible_page(response) -> Tags:
    """Checks every page passes: HTML, its own strict CSP, no inline code, labels and language."""
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    html = response.get_data(as_text=True)
    tags = Tags(html)
    assert tags.all("html") == [{"lang": "en"}]
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in tags.all("meta")
    assert all("src" in script for script in tags.all("script")), "inline scripts break the CSP"
    assert not any("style" in attrs for _, attrs in tags.tags), "inline styles break the CSP"
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+=", html), "inline event handlers break the CSP"
    loaded = [attrs["src"] for _, attrs in tags.tags if "src" in attrs] + [
        x["href"] for x in tags.all("link")
    ]
    assert loaded
    assert all(url.startswith("/") and not url.startswith("//") for url in loaded), "load only from here"
    labelled = {label["for"] for label in tags.all("label")}
    for field in tags.all("input"):
        assert field["id"] in labelled, f"input {field['id']} has no label"
    return tags


def test_the_form_page_renders_with_labelled_fields_a_live_error_region_and_its_own_csp(client):
    response = client.get("/", base_url="https://sho.rt")
    assert response.status_code == 200
    tags = assert_accessible_page(response)
    assert [field["id"] for field in tags.all("input")] == ["url", "alias", "expires_at", "short-url"]
    assert {"id": "form-error", "class": "error", "role": "alert"} in tags.all("div")
    assert [script["src"] for script in tags.all("script")] == ["/static/shorten.js"]
    assert tags.all("img")[0]["id"] == "qr"
    assert "https://sho.rt/" in response.get_data(as_text=True)  # the alias prefix shows the public base


def test_the_page_assets_are_served_from_this_origin(client):
    for path, kind in [
        ("/static/site.css", "text/css"),
        ("/static/shorten.js", "text/javascript"),
        ("/static/favicon.svg", "image/svg+xml"),
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.content_type.startswith(kind)


def test_a_link_page_shows_the_details_and_the_clicks_of_today_in_the_chart(client, app):
    link = make_link("https://example.com/launch", title="Launch <plan>")
    visit(client, link.code, "192.0.2.1")
    visit(client, link.code, "192.0.2.2")
    client.get(f"/{link.code}", headers={"User-Agent": "curl/8.0"})  # a bot: counted, not human
    assert app.extensions["clicks"].flush() == 3

    response = client.get(f"/links/{link.code}", base_url="https://sho.rt")

    assert response.status_code == 200
    tags = assert_accessible_page(response)
    html = response.get_data(as_text=True)
    assert 'id="total-clicks">3<' in html
    assert 'id="human-clicks">2<' in html
    assert 'id="unique-visitors">3<' in html
    assert "Launch &lt;plan&gt;" in html  # escaped
    assert {
        "id": "short-url",
        "type": "text",
        "readonly": None,
        "value": f"https://sho.rt/{link.code}",
    } in tags.all("input")
    assert {"src": f"/urls/{link.code}/qr", "alt": f"QR code for https://sho.rt/{link.code}"}.items() <= (
        tags.all("img")[0].items()
    )
    bars = tags.all("rect")
    assert 30 <= len(bars) <= 31
    assert bars[-1]["data-day"] == utcnow().date().isoformat()
    assert bars[-1]["data-clicks"] == "3"
    assert sum(int(bar["data-clicks"]) for bar in bars) == 3
    assert {"id": "clicks-chart", "role": "img"}.items() <= tags.all("svg")[0].items()
    assert "3 clicks from" in html


def test_a_link_page_shows_a_link_that_no_longer_redirects_with_its_state(client):
    link = make_link(is_active=False, expires_at=utcnow() + timedelta(days=2))
    response = client.get(f"/links/{link.code}")
    assert response.status_code == 200
    assert '<span id="state" class="state state-inactive">inactive</span>' in response.get_data(as_text=True)
    assert 'id="total-clicks">0<' in response.get_data(as_text=True)


def test_an_owned_link_has_no_public_page(client):
    # A page sends no API key, so an owned link is as invisible as to any anonymous caller.
    link = make_link(owner=make_user())
    page = client.get(f"/links/{link.code}", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 404
    assert page.content_type.startswith("text/html")
    assert link.target_url not in page.get_data(as_text=True)
    api = client.get(f"/links/{link.code}")
    assert api.status_code == 404
    assert api.get_json()["code"] == "not_found"


def test_unknown_deleted_and_malformed_codes_have_no_page(client):
    deleted = make_link(deleted_at=utcnow())
    for code in ["nosuch1", deleted.code, "bad!code", "x" * 300]:
        response = client.get(f"/links/{code}", headers={"Accept": BROWSER_ACCEPT})
        assert response.status_code == 404, code
        assert response.headers["Content-Security-Policy"] == PAGE_CSP


def test_pages_refuse_a_client_blocked_for_guessing_codes(make_client):
    client = make_client(ratelimit_enabled=True, ratelimit_misses="2/minute")
    ip = {"REMOTE_ADDR": f"2001:db8::{secrets.token_hex(2)}"}
    assert [client.get(f"/guess{i}", environ_base=ip).status_code for i in range(2)] == [404, 404]
    refused = client.get("/", environ_base=ip)
    assert (refused.status_code, refused.get_json()["code"]) == (429, "rate_limited")
    assert refused.headers["Retry-After"] == "60"
    assert client.get("/", environ_base={"REMOTE_ADDR": "192.0.2.77"}).status_code == 200


def test_an_empty_path_is_not_the_home_page_and_redirects_nowhere(client):
    # The test client sends "//evil.example" as Host evil.example with an empty path; Werkzeug would
    # otherwise redirect it to http://evil.example/.
    response = client.get("//evil.example")
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"
    assert "Location" not in response.headers
