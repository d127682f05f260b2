"""GET /urls/<code>/qr: the short URL as an SVG or PNG QR code, with the link's visibility rules."""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET

import pytest
import segno

from app.errors import InvalidInput
from app.services.qr import render_qr
from tests.factories import auth, make_key, make_link, make_user

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def expected(data: str, kind: str, scale: int = 4, border: int = 4) -> bytes:
    buffer = io.BytesIO()
    segno.make_qr(data).save(buffer, kind=kind, scale=scale, border=border)
    return buffer.getvalue()


def png_width(body: bytes) -> int:
    assert body[:8] == PNG_MAGIC and body[12:16] == b"IHDR"
    return struct.unpack(">I", body[16:20])[0]


def test_svg_is_the_default_and_encodes_the_short_url(client):
    link = make_link(code="qrsvg1")
    response = client.get("/urls/qrsvg1/qr")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    root = ET.fromstring(response.data)  # noqa: S314 (our own output)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert response.data == expected(f"http://localhost/{link.code}", "svg")


def test_svg_may_not_run_scripts_and_may_be_cached_for_a_day(client):
    make_link(code="qrsvg2")
    response = client.get("/urls/qrsvg2/qr")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"] == 'inline; filename="qrsvg2.svg"'
    assert b"<script" not in response.data


def test_png_encodes_the_short_url_with_the_given_scale_and_border(client):
    make_link(code="qrpng1")
    response = client.get("/urls/qrpng1/qr?format=png&scale=3&border=2")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.data == expected("http://localhost/qrpng1", "png", scale=3, border=2)
    modules = segno.make_qr("http://localhost/qrpng1").symbol_size(scale=1, border=2)[0]
    assert png_width(response.data) == modules * 3


def test_png_grows_with_scale(client):
    make_link(code="qrpng2")
    widths = [png_width(client.get(f"/urls/qrpng2/qr?format=png&scale={scale}").data) for scale in (1, 4, 40)]
    assert widths[0] < widths[1] < widths[2]


def test_qr_uses_the_configured_base_url(make_client):
    make_link(code="qrbase")
    response = make_client(base_url="https://sho.rt").get("/urls/qrbase/qr?format=png")
    assert response.data == expected("https://sho.rt/qrbase", "png")


def test_owned_links_show_their_qr_code_to_owner_and_admins_only(client):
    owner, other, boss = make_user("qr-owner"), make_user("qr-other"), make_user("qr-boss", role="admin")
    make_link(code="qrmine", owner=owner)
    assert client.get("/urls/qrmine/qr").status_code == 404
    assert client.get("/urls/qrmine/qr", headers=auth(make_key(other))).status_code == 404
    for user in (owner, boss):
        response = client.get("/urls/qrmine/qr", headers=auth(make_key(user)))
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "private, max-age=86400"  # never in a shared cache


def test_anonymous_links_show_their_qr_code_to_anyone(client):
    make_link(code="qranon")
    key = make_key(make_user("qr-someone"))
    assert client.get("/urls/qranon/qr", headers=auth(key)).status_code == 200


def test_a_wrong_key_is_401_not_anonymous(client):
    make_link(code="qrkey1")
    response = client.get("/urls/qrkey1/qr", headers=auth("shk_wrong"))
    assert response.status_code == 401


@pytest.mark.parametrize("code", ["nosuchcode", "health", "bad!code"])
def test_unknown_code_is_404_json(client, code):
    response = client.get(f"/urls/{code}/qr")
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"
    assert response.headers["Cache-Control"] == "no-store"


def test_deleted_link_has_no_qr_code(client, admin):
    from app.services.links import delete_link

    make_link(code="qrgone")
    delete_link("qrgone", admin)
    assert client.get("/urls/qrgone/qr").status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("format=gif", "format"),
        ("format=SVG", "format"),
        ("scale=0", "scale"),
        ("scale=41", "scale"),
        ("scale=big", "scale"),
        ("border=-1", "border"),
        ("border=17", "border"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(client, query, field):
    make_link(code="qrbad1")
    response = client.get(f"/urls/qrbad1/qr?{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "invalid_input" and field in body["fields"]


def test_limits_are_accepted(client):
    make_link(code="qrlim1")
    for query in ("scale=1&border=0", "scale=40&border=16&format=png"):
        assert client.get(f"/urls/qrlim1/qr?{query}").status_code == 200


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"kind": "gif"}, "format"), ({"scale": 0}, "scale"), ({"border": 17}, "border")],
)
def test_render_qr_refuses_bad_values_itself(changes, field):
    with pytest.raises(InvalidInput) as caught:
        render_qr("https://sho.rt/x", **changes)
    assert field in caught.value.extra["fields"]


def test_qr_codes_count_against_the_management_rate_limit(make_client):
    make_link(code="qrrate")
    client = make_client(ratelimit_enabled=True, ratelimit_manage="3/minute")
    statuses = [client.get("/urls/qrrate/qr").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_qr_route_is_described_for_openapi(app):
    from app.api.schemas import QrQuery

    operation = app.view_functions["qr.qr_code"].openapi
    assert operation.query is QrQuery and 404 in operation.errors
