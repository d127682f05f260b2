"""Every error, including Werkzeug's own and unexpected ones, is JSON with `error` and `code`."""

from __future__ import annotations

import logging

import pytest

from app.api import links as links_api


@pytest.mark.parametrize("path", ["/no/such/route", "/urls/", "/shorten/extra", "/static/x.css"])
def test_unknown_route_is_404_json(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", "/shorten", {"POST", "OPTIONS"}),
        ("delete", "/urls", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("put", "/health", {"GET", "HEAD", "OPTIONS"}),
        ("post", "/abcdefg", {"GET", "HEAD", "OPTIONS"}),
        ("patch", "/livez", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_wrong_method_is_405_json_with_allow(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response.get_json()["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) == allowed


def test_unexpected_error_is_generic_500_and_logged(client, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(links_api.links, "list_links", explode)
    with caplog.at_level(logging.ERROR):
        response = client.get("/urls")
    assert response.status_code == 500
    assert response.get_json() == {"error": "Internal server error.", "code": "internal_error"}
    assert b"secret internal detail" not in response.data
    assert "secret internal detail" in caplog.text and "Traceback" in caplog.text
