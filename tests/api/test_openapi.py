"""The OpenAPI description: generated from the routes and models, complete, and true to the answers."""

from __future__ import annotations

import re

import pytest

from app.api.openapi import api_rules, build_spec
from app.api.responses import HealthOut, KeyOut, LinkOut, LinkStatsOut, LivezOut, SiteStatsOut, UserOut
from tests.factories import auth, make_key, make_user


def test_openapi_json_is_an_openapi_3_1_document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.is_json
    spec = response.get_json()
    assert spec["openapi"] == "3.1.0"
    assert {"LinkOut", "CreateLinkRequest", "ErrorOut"} <= set(spec["components"]["schemas"])
    create = spec["paths"]["/shorten"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "CreateLinkRequest"
    )
    assert create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("LinkOut")
    assert "409" in create["responses"] and "415" in create["responses"] and "429" in create["responses"]


def test_every_api_route_and_method_is_described(app):
    spec = build_spec(app)
    for rule in api_rules(app):
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], f"{method} {rule.rule} is not described"


def test_an_undocumented_route_cannot_be_described(make_client):
    other = make_client().application
    other.add_url_rule("/undocumented", "undocumented", lambda: "x")
    with pytest.raises(LookupError, match="/undocumented"):
        build_spec(other)


def test_request_models_are_the_ones_that_validate(client):
    spec = client.get("/openapi.json").get_json()
    alias = spec["components"]["schemas"]["CreateLinkRequest"]["properties"]["alias"]
    assert "^[A-Za-z0-9_-]{3,64}$" in str(alias)
    params = {p["name"]: p for p in spec["paths"]["/urls"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 1000 and not params["limit"]["required"]
    stats = {p["name"] for p in spec["paths"]["/urls/{code}/stats"]["get"]["parameters"]}
    assert {"code", "from", "to", "bucket"} <= stats


def test_answers_match_the_described_models(client):
    admin = auth(make_key(make_user("doc-admin", role="admin")))
    created = client.post("/shorten", json={"url": "https://example.com/doc", "title": "Doc"}, headers=admin)
    link = LinkOut.model_validate(created.get_json())
    LinkOut.model_validate(client.get(f"/urls/{link.short_code}", headers=admin).get_json())
    [LinkOut.model_validate(item) for item in client.get("/urls", headers=admin).get_json()]
    client.get(f"/{link.short_code}", headers={"User-Agent": "Mozilla/5.0 Firefox/120.0"})
    LinkStatsOut.model_validate(client.get(f"/urls/{link.short_code}/stats", headers=admin).get_json())
    SiteStatsOut.model_validate(client.get("/stats", headers=admin).get_json())
    KeyOut.model_validate(client.post("/keys", json={"name": "k"}, headers=admin).get_json())
    [KeyOut.model_validate(item) for item in client.get("/keys", headers=admin).get_json()]
    UserOut.model_validate(client.post("/users", json={"name": "bob"}, headers=admin).get_json())
    HealthOut.model_validate(client.get("/health").get_json())
    LivezOut.model_validate(client.get("/livez").get_json())


def test_docs_page_works_offline_under_a_strict_policy(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp and "default-src 'none'" in csp
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(source.startswith("/docs/") for source in sources), sources
    assert "<script>" not in html  # no inline script
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert client.get("/docs/assets/../../app/config.py").status_code == 404
