"""Hostile input through the HTTP API: the service answers every request with a deliberate status.

Invariants checked on every response of this module (`send`):

- never a 5xx;
- a 4xx (except to HEAD, which has no body) is JSON with string fields `error` and `code`;
- no response header carries a CR, LF or other control character, or a non-ASCII character (WSGI
  servers must send headers as latin-1; gunicorn refuses anything it cannot encode), so nothing the
  client sent can split or smuggle a header.

Where the behaviour is defined (README, docs/ERROR_HANDLING.md) the exact status and `code` are
asserted: malformed or non-object JSON, lone surrogates, deep nesting, oversized (also chunked)
bodies, malformed bracketed hosts, trailing dots in any script, private targets and credentials,
control characters in click headers, and every method on every route.
"""

from __future__ import annotations

import io
import re
from urllib.parse import quote, urlsplit

import pytest

from app import create_app
from app.config import Settings
from app.db import db
from app.models import Link
from app.services.api_keys import create_key
from tests.factories import auth, make_key, make_link, make_user

LINK_CODE = "Hostile1"
LINK_TARGET = "https://example.com/hostile/target"
JSON = "application/json"
HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


# --- helpers ---------------------------------------------------------------------------------------


def check_invariants(response, method: str = "GET"):
    """The invariants every answer keeps, whatever was sent."""
    status = response.status_code
    assert status < 500, f"{status}: {response.get_data()[:500]!r}"
    for name, value in response.headers.items():
        assert not HEADER_UNSAFE.search(name + value), f"control character in header {name}: {value!r}"
        assert (name + value).isascii(), f"non-ASCII header {name}: {value!r}"
        assert name.lower() not in {"set-cookie", "x-injected"}, f"injected header {name}: {value!r}"
    if 400 <= status < 500 and method != "HEAD":
        body = response.get_json(silent=True)
        assert isinstance(body, dict), f"{status} without a JSON object body: {response.get_data()[:300]!r}"
        assert isinstance(body.get("error"), str) and body["error"], body
        assert isinstance(body.get("code"), str) and body["code"], body
    return response


def send(client, method: str, path: str, **kwargs):
    """Send a request and check the invariants on the answer."""
    return check_invariants(client.open(path, method=method, **kwargs), method)


def assert_error(response, status: int, code: str, *, field: str | None = None, message: str | None = None):
    """The response is the JSON error `code` with `status` (naming `field`, saying `message`)."""
    assert response.status_code == status, f"{response.status_code}: {response.get_data()[:500]!r}"
    body = response.get_json()
    assert body["code"] == code, body
    if field is not None:
        assert field in body.get("fields", {}), body
    if message is not None:
        assert message in body["error"], body
    return body


def post_json(client, body: dict, path: str = "/shorten", **kwargs):
    return send(client, "POST", path, json=body, **kwargs)


def shorten(client, url, **fields):
    return post_json(client, {"url": url, **fields})


def raw_json(client, data: bytes | str, path: str = "/shorten", method: str = "POST", **kwargs):
    return send(client, method, path, data=data, content_type=JSON, **kwargs)


@pytest.fixture
def admin_headers():
    """Headers of an admin API key."""
    return auth(make_key(make_user("hostile-admin", role="admin")))


@pytest.fixture
def link():
    """An anonymous link under a known code."""
    return make_link(LINK_TARGET, code=LINK_CODE)


# The endpoints that take a JSON body, called as an admin (so the body is what gets judged).
JSON_ENDPOINTS = [
    pytest.param("POST", "/shorten", id="POST-shorten"),
    pytest.param("POST", "/urls", id="POST-urls"),
    pytest.param("PATCH", f"/urls/{LINK_CODE}", id="PATCH-urls-code"),
    pytest.param("POST", "/keys", id="POST-keys"),
    pytest.param("POST", "/users", id="POST-users"),
]


# --- content types ---------------------------------------------------------------------------------


NON_JSON_BODIES = [
    pytest.param("text/plain", '{"url": "https://example.com/ct"}', id="text-plain"),
    pytest.param("application/x-www-form-urlencoded", "url=https%3A%2F%2Fexample.com%2Fct", id="form"),
    pytest.param("multipart/form-data", {"url": "https://example.com/ct"}, id="multipart"),
]


@pytest.mark.parametrize(("content_type", "data"), NON_JSON_BODIES)
@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_a_body_that_is_not_json_is_415_on_every_json_endpoint(
    client, link, admin_headers, method, path, content_type, data
):
    response = send(client, method, path, data=data, content_type=content_type, headers=admin_headers)
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/json",
        "application/xml",
        "application/jsonx",
        "application/javascript",
        "application/octet-stream",
        "json",
        "application/json-seq",
    ],
)
def test_json_under_a_content_type_that_is_not_json_is_415(client, content_type):
    response = send(
        client, "POST", "/shorten", data='{"url": "https://example.com/ct"}', content_type=content_type
    )
    assert_error(response, 415, "unsupported_media_type")


def test_a_body_without_any_content_type_is_415(client):
    response = send(client, "POST", "/shorten", data=b'{"url": "https://example.com/ct"}')
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "APPLICATION/JSON",
        "Application/Json; Charset=UTF-8",
        "application/vnd.api+json",
        "application/merge-patch+json",
    ],
)
def test_json_content_type_variants_are_accepted(client, content_type):
    response = send(
        client, "POST", "/shorten", data='{"url": "https://example.com/ct"}', content_type=content_type
    )
    assert response.status_code == 201
    assert response.get_json()["original_url"] == "https://example.com/ct"


@pytest.mark.parametrize("content_type", [None, JSON, "text/plain"])
@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_no_body_is_400_missing_body_on_every_json_endpoint(
    client, link, admin_headers, method, path, content_type
):
    response = send(client, method, path, content_type=content_type, headers=admin_headers)
    assert_error(response, 400, "missing_body")


# --- invalid JSON ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"url": "https://exa', id="truncated-string"),
        pytest.param(b'{"url": "https://example.com"', id="truncated-object"),
        pytest.param(b"{", id="lone-brace"),
        pytest.param(b"}", id="closing-brace"),
        pytest.param(b'{"url": "https://example.com"} xyz', id="trailing-garbage"),
        pytest.param(b'{"url": "https://example.com"}{"url": "https://evil.example"}', id="two-objects"),
        pytest.param(b"{'url': 'https://example.com'}", id="single-quotes"),
        pytest.param(b'{"url": "https://example.com",}', id="trailing-comma"),
        pytest.param(b'// comment\n{"url": "https://example.com"}', id="comment"),
        pytest.param(b'{url: "https://example.com"}', id="unquoted-key"),
        pytest.param(b"url", id="bare-word"),
        pytest.param(b"   \n\t ", id="whitespace-only"),
        pytest.param(b'{"url": "https://example.com", "max_clicks": 0x10}', id="hex-number"),
        pytest.param(b'{"url": "https://example.com", "max_clicks": 010}', id="leading-zero"),
        pytest.param(b'{"url": "https://example.com", "max_clicks": +1}', id="plus-sign"),
        pytest.param(b'{"url": "https://" "example.com"}', id="adjacent-strings"),
        pytest.param(b'{"url": "https://example.com/\x01"}', id="raw-control-char-in-string"),
        pytest.param(b'{"url": "https://example.com/\n"}', id="raw-newline-in-string"),
        pytest.param(b'{"url": "https://example.com/\\x41"}', id="invalid-escape"),
        pytest.param(b'{"url": "https://example.com/\\u12"}', id="short-unicode-escape"),
        pytest.param(b'{"url": "https://example.com/\xff"}', id="non-utf8-ff"),
        pytest.param(b'{"url": "https://example.com/caf\xe9"}', id="latin1"),
        pytest.param(b'{"url": "https://example.com/\xc0\xaf"}', id="overlong-utf8"),
        pytest.param(b'{"url": "https://example.com/\xe2\x82"}', id="truncated-utf8"),
        pytest.param(b"\x00", id="nul-byte"),
        pytest.param(b'\x00{"url": "https://example.com"}', id="leading-nul"),
    ],
)
def test_invalid_json_is_400_malformed_json(client, data):
    assert_error(raw_json(client, data), 400, "malformed_json")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param(b'{"url": NaN}', "url", id="url-NaN"),
        pytest.param(b'{"url": Infinity}', "url", id="url-Infinity"),
        pytest.param(b'{"url": -Infinity}', "url", id="url-minus-Infinity"),
        pytest.param(b'{"url": "https://example.com", "max_clicks": NaN}', "max_clicks", id="clicks-NaN"),
        pytest.param(b'{"url": "https://example.com", "max_clicks": 1e999}', "max_clicks", id="clicks-1e999"),
        pytest.param(b"NaN", None, id="top-level-NaN"),
    ],
)
def test_non_finite_numbers_are_refused_with_400(client, data, field):
    # NaN/Infinity are not JSON (RFC 8259); Python's parser reads them as floats, which no field takes.
    response = raw_json(client, data)
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] in {"malformed_json", "invalid_input"}
    if body["code"] == "invalid_input" and field is not None:
        assert field in body["fields"]


def test_duplicate_keys_take_the_last_value_and_it_is_validated(client):
    # A filter that inspects the first "url" must not be bypassable: the value used is validated.
    response = raw_json(client, b'{"url": "https://example.com/first", "url": "javascript:alert(1)"}')
    assert_error(response, 400, "invalid_url")


def test_duplicate_keys_store_the_value_that_was_validated(client):
    response = raw_json(client, b'{"url": "javascript:alert(1)", "url": "https://example.com/dup"}')
    assert response.status_code == 201
    assert response.get_json()["original_url"] == "https://example.com/dup"


def test_a_utf8_byte_order_mark_is_ignored(client):
    response = raw_json(client, b'\xef\xbb\xbf{"url": "https://example.com/bom"}')
    assert response.status_code == 201
    assert response.get_json()["original_url"] == "https://example.com/bom"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_json_in_another_unicode_encoding_is_read_correctly_or_refused(client, encoding):
    response = raw_json(client, '{"url": "https://example.com/wide"}'.encode(encoding))
    if response.status_code == 201:
        assert response.get_json()["original_url"] == "https://example.com/wide"
    else:
        assert_error(response, 400, "malformed_json")


# --- lone surrogates (valid JSON escapes that are not Unicode scalar values) -------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://example.com/\ud800", id="path"),
        pytest.param("https://example.com/?q=\udfff", id="query"),
        pytest.param("https://example.com/#\ud800", id="fragment"),
        pytest.param("https://ex\ud800ample.com/", id="host"),
        pytest.param("\ud800https://example.com/", id="before-scheme"),
    ],
)
def test_lone_surrogate_in_url_is_400_invalid_url(client, url):
    assert_error(shorten(client, url), 400, "invalid_url")


def test_lone_surrogate_in_patched_url_is_400_invalid_url(client, link, admin_headers):
    response = send(
        client,
        "PATCH",
        f"/urls/{LINK_CODE}",
        json={"url": "https://example.com/\ud800"},
        headers=admin_headers,
    )
    assert_error(response, 400, "invalid_url")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        pytest.param("/shorten", {"url": "https://example.com/", "title": "t\ud800"}, "title", id="title"),
        pytest.param("/shorten", {"url": "https://example.com/", "alias": "ab\ud800"}, "alias", id="alias"),
        pytest.param("/users", {"name": "eve\udfff"}, "name", id="user-name"),
        pytest.param("/keys", {"name": "laptop\ud800"}, "name", id="key-name"),
    ],
)
def test_lone_surrogate_in_a_text_field_is_400_invalid_input(client, admin_headers, path, body, field):
    assert_error(post_json(client, body, path, headers=admin_headers), 400, "invalid_input", field=field)


def test_lone_surrogate_in_a_field_name_is_400_invalid_input(client):
    response = post_json(client, {"url": "https://example.com/", "x\ud800": 1})
    assert_error(response, 400, "invalid_input")


def test_utf8_encoded_surrogate_bytes_are_400(client):
    # b"\xed\xa0\x80" is not UTF-8, but Python's json decodes bytes with "surrogatepass": it becomes U+D800.
    response = raw_json(client, b'{"url": "https://example.com/\xed\xa0\x80"}')
    assert response.status_code == 400
    assert response.get_json()["code"] in {"malformed_json", "invalid_url"}


def test_a_valid_surrogate_pair_is_an_ordinary_character(client):
    response = raw_json(client, b'{"url": "https://example.com/\\ud83d\\ude00"}')
    assert response.status_code == 201
    assert response.get_json()["original_url"] == "https://example.com/%F0%9F%98%80"


# --- nesting and shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"[" * 10_000, id="10000-open-brackets"),
        pytest.param(b'{"url": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="5000-deep-array"),
        pytest.param(b'{"a":' * 2500 + b"1" + b"}" * 2500, id="2500-deep-object"),
    ],
)
def test_deeply_nested_json_is_400(client, data):
    response = raw_json(client, data)
    assert response.status_code == 400
    assert response.get_json()["code"] in {"malformed_json", "invalid_input"}


def test_moderately_nested_json_is_400_invalid_input_naming_the_field(client):
    response = raw_json(client, b'{"url": ' + b"[" * 100 + b"]" * 100 + b"}")
    assert_error(response, 400, "invalid_input", field="url")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"[]", id="empty-list"),
        pytest.param(b'[{"url": "https://example.com"}]', id="list-of-object"),
        pytest.param(b'"https://example.com"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"-0.0", id="negative-zero"),
        pytest.param(b"1e999", id="overflowing-number"),
        pytest.param(b"true", id="true"),
        pytest.param(b"false", id="false"),
        pytest.param(b"null", id="null"),
    ],
)
def test_json_that_is_not_an_object_is_400_invalid_input(client, data):
    assert_error(raw_json(client, data), 400, "invalid_input", message="JSON object")


# --- wrong field types and values ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(42, id="int"),
        pytest.param(4.2, id="float"),
        pytest.param(-1, id="negative"),
        pytest.param([], id="empty-list"),
        pytest.param(["https://example.com"], id="list"),
        pytest.param({}, id="empty-object"),
        pytest.param({"href": "https://example.com"}, id="object"),
        pytest.param(True, id="true"),
        pytest.param(False, id="false"),
        pytest.param(None, id="null"),
    ],
)
def test_url_of_the_wrong_type_is_400_invalid_input_naming_url(client, value):
    assert_error(post_json(client, {"url": value}), 400, "invalid_input", field="url")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"alias": 12345}, "alias", id="alias-int"),
        pytest.param({"alias": ["abc"]}, "alias", id="alias-list"),
        pytest.param({"alias": True}, "alias", id="alias-bool"),
        pytest.param({"alias": "ab"}, "alias", id="alias-too-short"),
        pytest.param({"alias": "a" * 65}, "alias", id="alias-too-long"),
        pytest.param({"title": 123}, "title", id="title-int"),
        pytest.param({"title": {"x": 1}}, "title", id="title-object"),
        pytest.param({"title": "t" * 201}, "title", id="title-too-long"),
        pytest.param({"max_clicks": "5"}, "max_clicks", id="clicks-string"),
        pytest.param({"max_clicks": 0}, "max_clicks", id="clicks-zero"),
        pytest.param({"max_clicks": -1}, "max_clicks", id="clicks-negative"),
        pytest.param({"max_clicks": 1.5}, "max_clicks", id="clicks-float"),
        pytest.param({"max_clicks": True}, "max_clicks", id="clicks-bool"),
        pytest.param({"max_clicks": 2**63}, "max_clicks", id="clicks-2-63"),
        pytest.param({"max_clicks": 10**400}, "max_clicks", id="clicks-huge-int"),
        pytest.param({"redirect_type": 303}, "redirect_type", id="redirect-303"),
        pytest.param({"redirect_type": 200}, "redirect_type", id="redirect-200"),
        pytest.param({"redirect_type": "302"}, "redirect_type", id="redirect-string"),
        pytest.param({"expires_at": "tomorrow"}, "expires_at", id="expires-word"),
        pytest.param({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at", id="expires-past"),
        pytest.param({"expires_at": "2099-01-01T00:00:00"}, "expires_at", id="expires-no-timezone"),
        pytest.param({"expires_at": "9999-12-31T23:59:59Z"}, "expires_at", id="expires-year-9999"),
        pytest.param({"expires_at": "2099-02-30T00:00:00Z"}, "expires_at", id="expires-feb-30"),
        pytest.param({"owner_id": 1}, "owner_id", id="mass-assign-owner"),
        pytest.param({"click_count": 10**6}, "click_count", id="mass-assign-clicks"),
        pytest.param({"is_active": False}, "is_active", id="create-is-active"),
        pytest.param({"__proto__": {"admin": True}}, "__proto__", id="proto-pollution"),
    ],
)
def test_bad_field_on_create_is_400_invalid_input_naming_it(client, fields, field):
    response = post_json(client, {"url": "https://example.com/fields", **fields})
    assert_error(response, 400, "invalid_input", field=field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"is_active": "false"}, "is_active", id="is-active-string"),
        pytest.param({"is_active": 0}, "is_active", id="is-active-int"),
        pytest.param({"is_active": None}, "is_active", id="is-active-null"),
        pytest.param({"short_code": "other"}, "short_code", id="rename-code"),
        pytest.param({"owner_id": 2}, "owner_id", id="change-owner"),
        pytest.param({"url": 7}, "url", id="url-int"),
        pytest.param({"click_count": 0}, "click_count", id="reset-clicks"),
    ],
)
def test_bad_field_on_patch_is_400_invalid_input_naming_it(client, link, admin_headers, body, field):
    response = send(client, "PATCH", f"/urls/{LINK_CODE}", json=body, headers=admin_headers)
    assert_error(response, 400, "invalid_input", field=field)


# --- sizes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_a_body_larger_than_max_request_bytes_is_413_on_every_json_endpoint(
    client, link, admin_headers, settings, method, path
):
    body = {"url": "https://example.com/big", "name": "x", "pad": "x" * settings.max_request_bytes}
    response = send(client, method, path, json=body, headers=admin_headers)
    assert_error(response, 413, "payload_too_large")


def send_chunked(client, body: bytes):
    return send(
        client,
        "POST",
        "/shorten",
        input_stream=io.BytesIO(body),
        content_type=JSON,
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets it
    )


def test_a_small_chunked_body_without_content_length_is_read(client):
    response = send_chunked(client, b'{"url": "https://example.com/chunked"}')
    assert response.status_code == 201


def test_a_huge_chunked_body_without_content_length_is_413(client, settings):
    response = send_chunked(
        client, b'{"url": "https://example.com/", "pad": "' + b"x" * 4 * settings.max_request_bytes
    )
    assert_error(response, 413, "payload_too_large")


def test_a_chunked_body_is_not_cut_down_to_a_valid_prefix(client, settings):
    head = b'{"url": "https://example.com/chunked"}'
    body = head + b" " * (settings.max_request_bytes - len(head)) + b'{"url": "javascript:alert(1)"}' * 100
    response = send_chunked(client, body)
    assert_error(response, 413, "payload_too_large")


def test_a_huge_body_of_another_content_type_is_refused(client, settings):
    response = send(
        client, "POST", "/shorten", data="x" * (settings.max_request_bytes + 1), content_type="text/plain"
    )
    assert response.status_code in {413, 415}
    assert response.get_json()["code"] in {"payload_too_large", "unsupported_media_type"}


def test_a_body_of_exactly_max_request_bytes_is_accepted(client, settings):
    body = b'{"url": "https://example.com/edge"}'
    response = raw_json(client, body + b" " * (settings.max_request_bytes - len(body)))
    assert response.status_code == 201


def test_a_body_one_byte_over_max_request_bytes_is_413(client, settings):
    body = b'{"url": "https://example.com/edge"}'
    response = raw_json(client, body + b" " * (settings.max_request_bytes - len(body) + 1))
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("https://example.com/" + "a" * 2029, "maximum is 2048", id="2049-chars"),
        pytest.param("https://example.com/" + "a" * 10_000, "maximum is 2048", id="10000-chars"),
        pytest.param("https://example.com/" + "\u00e9" * 1200, "once encoded", id="grows-when-encoded"),
        pytest.param("https://" + "a" * 64 + ".com/", "valid domain", id="64-char-label"),
        pytest.param("https://" + "abcdefghi." * 30 + "com/", "valid domain", id="300-char-host"),
    ],
)
def test_huge_urls_are_400_invalid_url(client, url, message):
    assert_error(shorten(client, url), 400, "invalid_url", message=message)


def test_a_url_of_exactly_max_url_length_is_accepted(client, settings):
    url = "https://example.com/" + "a" * (settings.max_url_length - len("https://example.com/"))
    response = shorten(client, url)
    assert response.status_code == 201
    assert response.get_json()["original_url"] == url


# --- control characters, CRLF and NUL --------------------------------------------------------------

CONTROL_CHARACTERS = {
    "tab": "\t",
    "lf": "\n",
    "cr": "\r",
    "nul": "\x00",
    "bel": "\x07",
    "vt": "\x0b",
    "esc": "\x1b",
    "del": "\x7f",
    "c1-nel": "\x85",
    "c1-csi": "\x9b",
    "nbsp": "\u00a0",
    "line-separator": "\u2028",
    "ideographic-space": "\u3000",
    "bom": "\ufeff",
}


@pytest.mark.parametrize(
    "where", ["https://exa{}mple.com/", "https://example.com/a{}b", "https://example.com/?q={}"]
)
@pytest.mark.parametrize("char", CONTROL_CHARACTERS.values(), ids=CONTROL_CHARACTERS.keys())
def test_url_with_a_control_or_space_character_is_400_invalid_url(client, char, where):
    assert_error(shorten(client, where.format(char)), 400, "invalid_url", message="control characters")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://example.com/\r\nSet-Cookie: x=1", id="path"),
        pytest.param("https://example.com\r\nSet-Cookie: x=1/", id="host"),
        pytest.param("https://example.com/?a=1\r\nX-Injected: 1", id="query"),
        pytest.param("https://example.com/#\r\nX-Injected: 1", id="fragment"),
        pytest.param("\r\nhttps://example.com/", id="leading"),
    ],
)
def test_crlf_in_url_is_400_invalid_url(client, url):
    assert_error(shorten(client, url), 400, "invalid_url")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        pytest.param("/shorten", {"alias": "ab\r\nSet-Cookie:x=1"}, "alias", id="alias-crlf"),
        pytest.param("/shorten", {"alias": "abc\x00def"}, "alias", id="alias-nul"),
        pytest.param("/shorten", {"title": "t\r\nSet-Cookie: x=1"}, "title", id="title-crlf"),
        pytest.param("/shorten", {"title": "t\x00"}, "title", id="title-nul"),
        pytest.param("/shorten", {"title": "\x1b[31mred"}, "title", id="title-ansi-escape"),
        pytest.param("/users", {"name": "eve\r\nX-Injected: 1"}, "name", id="user-name-crlf"),
        pytest.param("/users", {"name": "eve\x00"}, "name", id="user-name-nul"),
        pytest.param("/keys", {"name": "key\r\nX-Injected: 1"}, "name", id="key-name-crlf"),
        pytest.param("/keys", {"name": "\x00"}, "name", id="key-name-nul"),
        pytest.param("/shorten", {"url\x00": "https://example.com/"}, "url\x00", id="field-name-nul"),
    ],
)
def test_crlf_and_nul_in_text_fields_are_400_invalid_input(client, admin_headers, path, body, field):
    if path == "/shorten" and "url\x00" not in body:
        body = {"url": "https://example.com/text", **body}
    response = post_json(client, body, path, headers=admin_headers)
    assert_error(response, 400, "invalid_input", field=field)


def test_crlf_in_a_patched_title_is_400_invalid_input(client, link, admin_headers):
    response = send(
        client, "PATCH", f"/urls/{LINK_CODE}", json={"title": "a\r\nX-Injected: 1"}, headers=admin_headers
    )
    assert_error(response, 400, "invalid_input", field="title")


HOSTILE_SEGMENTS = {
    "crlf": "abc%0d%0aSet-Cookie:x=1",
    "lf": "abc%0aX-Injected:1",
    "nul": "abc%00def",
    "sql-or": quote("' OR 1=1--"),
    "sql-drop": quote("1;DROP TABLE link"),
    "sql-quote": quote("admin'--"),
    "rtl-override": "%E2%80%AEabc",
    "fullwidth": "%EF%BC%A1%EF%BC%A2%EF%BC%A3",
    "accented": "caf%C3%A9",
    "emoji": "%F0%9F%98%80",
    "too-long": "a" * 65,
    "very-long": "a" * 10_000,
    "dot-dot": "..",
}


@pytest.mark.parametrize("template", ["/{}", "/urls/{}", "/urls/{}/stats"], ids=["redirect", "read", "stats"])
@pytest.mark.parametrize("segment", HOSTILE_SEGMENTS.values(), ids=HOSTILE_SEGMENTS.keys())
def test_hostile_code_in_the_path_is_404_not_found(client, link, template, segment):
    response = send(client, "GET", template.format(segment))
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
@pytest.mark.parametrize("segment", ["abc%0d%0aSet-Cookie:x=1", quote("' OR 1=1--"), "abc%00"])
def test_hostile_code_is_404_when_editing(client, admin_headers, method, segment):
    response = send(client, method, f"/urls/{segment}", json={"title": "x"}, headers=admin_headers)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("segment", ["abc%0d%0aSet-Cookie:x=1", "abc%00"])
def test_hostile_code_to_head_is_404_without_injected_headers(client, segment):
    response = send(client, "HEAD", f"/{segment}")
    assert response.status_code == 404 and response.get_data() == b""


@pytest.mark.parametrize(
    "key_id", ["1%0d%0a", quote("1 OR 1=1"), "-1", "1.5", "0x10", "99999999999999999999", "1e3"]
)
def test_hostile_key_id_is_404_not_found(client, admin_headers, key_id):
    assert_error(send(client, "DELETE", f"/keys/{key_id}", headers=admin_headers), 404, "not_found")


def test_a_percent_encoded_crlf_is_stored_encoded_and_redirects_without_splitting(client):
    url = "https://example.com/%0d%0aSet-Cookie:x=1"
    body = shorten(client, url).get_json()
    assert body["original_url"] == url
    response = send(client, "GET", f"/{body['short_code']}")
    assert response.status_code == 302
    assert response.headers["Location"] == url


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"Referer": "http://ex\x00ample.com/"}, id="referer-host"),
        pytest.param({"Referer": "https://example.org/\x00path"}, id="referer-path"),
        pytest.param({"User-Agent": "Mozilla/5.0\x00(X11; Linux x86_64)"}, id="user-agent"),
    ],
)
def test_a_nul_in_click_headers_neither_fails_the_redirect_nor_loses_clicks(client, app, link, header):
    other = make_link("https://example.com/other", code="Bystander1")
    assert send(client, "GET", f"/{LINK_CODE}", headers=header).status_code == 302
    assert send(client, "GET", "/Bystander1").status_code == 302
    app.extensions["clicks"].flush()
    assert Link.get_by_id(other.id).click_count == 1
    assert Link.get_by_id(link.id).click_count == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="plain"),
        pytest.param({"User-Agent": "x" * 100_000}, id="user-agent-100k"),
        pytest.param({"User-Agent": "Mozilla/5.0\x00\x1b[31m"}, id="user-agent-controls"),
        pytest.param({"Referer": "javascript:alert(1)"}, id="referer-javascript"),
        pytest.param({"Referer": "http://[::1"}, id="referer-broken-ipv6"),
        pytest.param({"Referer": "https://" + "a" * 10_000 + ".example/"}, id="referer-huge-host"),
    ],
)
def test_a_cached_redirect_answers_hostile_clients_like_the_first_one(client, app, link, headers):
    first = send(client, "GET", f"/{LINK_CODE}", headers=headers)
    second = send(client, "GET", f"/{LINK_CODE}", headers=headers)  # the cache knows the link now
    head = send(client, "HEAD", f"/{LINK_CODE}", headers=headers)
    for response in (first, second, head):
        assert response.status_code == 302
        assert response.headers["Location"] == LINK_TARGET
    app.extensions["clicks"].flush()
    assert Link.get_by_id(link.id).click_count == 2


@pytest.mark.parametrize(
    "suffix", ["/", "%00", "%0d%0a", "%20", "%2F", "/stats", ".", "?", "#x", "x", "%E2%80%8B"]
)
def test_a_cached_code_does_not_answer_for_other_paths(client, link, suffix):
    assert send(client, "GET", f"/{LINK_CODE}").status_code == 302  # now cached
    response = send(client, "GET", f"/{LINK_CODE}{suffix}")
    if suffix in {"?", "#x"}:  # not part of the path: the same link
        assert response.status_code == 302
    else:
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-API-Key": "shk_\x00abc"}, id="x-api-key-nul"),
        pytest.param({"Authorization": "Bearer shk_\x00abc"}, id="bearer-nul"),
        pytest.param({"X-API-Key": "' OR '1'='1"}, id="x-api-key-sql"),
        pytest.param({"Authorization": "Bearer ' OR 1=1--"}, id="bearer-sql"),
        pytest.param({"Authorization": "Bearer " + "A" * 10_000}, id="bearer-10k"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
        pytest.param({"Authorization": "Bearer"}, id="bearer-without-token"),
        pytest.param({"Authorization": "Bearer    "}, id="bearer-blank-token"),
        pytest.param({"Authorization": "Bearer\tshk_abc"}, id="bearer-tab"),
        pytest.param({"Authorization": "\u00e9t\u00e9 shk_abc"}, id="latin1-scheme"),
    ],
)
def test_hostile_api_keys_are_401_unauthorized(client, headers):
    response = send(client, "GET", "/keys", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "shk_" not in response.get_data(as_text=True)


# --- query strings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field", "admin"),
    [
        pytest.param("/urls?q=" + "a" * 201, "q", False, id="q-201"),
        pytest.param("/urls?q=" + "a" * 100_000, "q", False, id="q-100k"),
        pytest.param("/urls?q=a%0d%0aSet-Cookie:x", "q", False, id="q-crlf"),
        pytest.param("/urls?q=%00", "q", False, id="q-nul"),
        pytest.param("/urls?limit=" + "9" * 5000, "limit", False, id="limit-5000-digits"),
        pytest.param("/urls?limit=1e3", "limit", False, id="limit-exponent"),
        pytest.param("/urls?limit=0", "limit", False, id="limit-zero"),
        pytest.param("/urls?limit=-1", "limit", False, id="limit-negative"),
        pytest.param("/urls?limit=1;DROP%20TABLE%20link", "limit", False, id="limit-sql"),
        pytest.param("/urls?cursor=" + "A" * 65, "cursor", False, id="cursor-65"),
        pytest.param("/urls?cursor=%27%20OR%201=1--", "cursor", False, id="cursor-sql"),
        pytest.param("/urls?cursor=%0d%0a", "cursor", False, id="cursor-crlf"),
        pytest.param("/urls?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "cursor", False, id="cursor-overflow"),
        pytest.param("/urls?active=maybe", "active", False, id="active-word"),
        pytest.param("/urls?owner=1%20OR%201=1", "owner", True, id="owner-sql"),
        pytest.param("/urls?owner=99999999999999999999", "owner", True, id="owner-huge"),
        pytest.param("/keys?user_id=1%20OR%201=1", "user_id", True, id="user-id-sql"),
        pytest.param(f"/urls/{LINK_CODE}/stats?from=" + "9" * 10_000, "from", False, id="stats-from-long"),
        pytest.param(f"/urls/{LINK_CODE}/stats?bucket=day%0d%0aX:1", "bucket", False, id="stats-bucket-crlf"),
        pytest.param(f"/urls/{LINK_CODE}/stats?bucket=../../etc", "bucket", False, id="stats-bucket-path"),
        pytest.param(
            f"/urls/{LINK_CODE}/stats?from=0001-01-01T00:00:00Z", "from", False, id="stats-from-year-1"
        ),
        pytest.param(
            f"/urls/{LINK_CODE}/stats?from=2000-01-01T00:00:00Z&to=2030-01-01T00:00:00Z&bucket=hour",
            "bucket",
            False,
            id="stats-too-many-buckets",
        ),
        pytest.param("/stats?to=9999-12-31T23:59:59Z", "to", True, id="site-stats-to-year-9999"),
        pytest.param("/stats?limit=" + "1" * 1000, "limit", True, id="site-stats-limit-long"),
    ],
)
def test_hostile_query_parameters_are_400_invalid_input_naming_them(
    client, link, admin_headers, path, field, admin
):
    response = send(client, "GET", path, headers=admin_headers if admin else None)
    assert_error(response, 400, "invalid_input", field=field)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/urls?junk=" + "x" * 100_000, id="unknown-param-100k"),
        pytest.param("/urls?" + "a=1&" * 5000, id="5000-params"),
        pytest.param("/health?" + "x" * 100_000, id="health-100k"),
        pytest.param(f"/{LINK_CODE}?" + "x=y&" * 5000, id="redirect-5000-params"),
    ],
)
def test_overlong_query_strings_that_are_ignored_do_not_change_the_answer(client, link, path):
    response = send(client, "GET", path)
    assert response.status_code == (302 if path.startswith(f"/{LINK_CODE}") else 200)


@pytest.mark.parametrize("q", ["%", "_", "' OR 1=1--", "\\", "%' OR '1'='1", "*"])
def test_search_treats_sql_and_wildcards_as_literal_text(client, link, q):
    response = send(client, "GET", "/urls", query_string={"q": q})
    assert response.status_code == 200
    assert response.get_json() == []


def test_a_search_term_cannot_inject_into_the_link_header(client):
    title = 'a>; rel="evil", <https://evil.example/'
    for _ in range(2):
        assert shorten(client, "https://example.com/page", title=title).status_code == 201
    response = send(client, "GET", "/urls", query_string={"q": title, "limit": 1})
    assert response.status_code == 200 and len(response.get_json()) == 1
    header = response.headers["Link"]
    assert header.count("<") == 1 and header.count(">") == 1 and header.endswith('>; rel="next"')
    assert "evil.example" not in urlsplit(header[1:-13]).netloc


# --- unicode tricks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://example.com/\u202egnp.exe", id="rtl-override-path"),
        pytest.param("https://exa\u202emple.com/", id="rtl-override-host"),
        pytest.param("https://example.com/?q=\u202e", id="rtl-override-query"),
        pytest.param("https://example.com/\u200d", id="zero-width-joiner"),
        pytest.param("https://exa\u200cmple.com/", id="zero-width-non-joiner-host"),
        pytest.param("https://example.com/\u200b", id="zero-width-space"),
        pytest.param("https://example.com/\u2060", id="word-joiner"),
        pytest.param("https://exam\u00adple.com/", id="soft-hyphen-host"),
        pytest.param("https://example.com/\u061c", id="arabic-letter-mark"),
        pytest.param("https://example.com/\U000e0041", id="tag-character"),
    ],
)
def test_invisible_and_bidi_format_characters_in_urls_are_400_invalid_url(client, url):
    assert_error(shorten(client, url), 400, "invalid_url")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://\u0430\u0440\u0440\u04cf\u0435.com/", id="all-cyrillic-apple"),
        pytest.param("https://p\u0430ypal.com/", id="mixed-cyrillic-a"),
        pytest.param("https://\u0435x\u0430mple.com/", id="cyrillic-e-and-a"),
        pytest.param("https://g\u043e\u043egle.com/", id="cyrillic-o"),
        pytest.param("https://exa\u0301mple.com/", id="combining-acute"),
    ],
)
def test_homoglyph_hosts_are_stored_as_visible_punycode(client, url):
    response = shorten(client, url)
    assert response.status_code == 201
    host = urlsplit(response.get_json()["original_url"]).hostname
    assert host.isascii() and host.startswith("xn--")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "https://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com/", "https://example.com/", id="host"
        ),
        pytest.param("https://example\uff0ecom/", "https://example.com/", id="full-stop"),
        pytest.param("https://EXAMPLE.COM/", "https://example.com/", id="upper-case"),
        pytest.param("https://example.com/\uff41", "https://example.com/%EF%BD%81", id="path"),
        pytest.param("https://example.com/e\u0301", "https://example.com/e%CC%81", id="combining-path"),
        pytest.param("https://example.com/\U0001f600", "https://example.com/%F0%9F%98%80", id="emoji-path"),
    ],
)
def test_fullwidth_and_combining_characters_normalise_to_ascii(client, url, expected):
    response = shorten(client, url)
    assert response.status_code == 201
    assert response.get_json()["original_url"] == expected


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("\uff48\uff54\uff54\uff50\uff53://example.com/", id="fullwidth-scheme"),
        pytest.param("https\uff1a\uff0f\uff0fexample.com/", id="fullwidth-colon-slashes"),
        pytest.param("https://\u0301example.com/", id="leading-combining-mark"),
        pytest.param("https://\U0001f600.com/", id="emoji-host"),
        pytest.param("https://\u2764.example/", id="symbol-host"),
        pytest.param("https://xn--zz.example/", id="bogus-punycode"),
    ],
)
def test_unicode_tricks_that_make_no_valid_url_are_400_invalid_url(client, url):
    assert_error(shorten(client, url), 400, "invalid_url")


@pytest.mark.parametrize(
    "alias",
    [
        pytest.param("caf\u00e9", id="accented"),
        pytest.param("\uff41\uff42\uff43", id="fullwidth"),
        pytest.param("\u0430bc", id="cyrillic-a"),
        pytest.param("abc\u200d", id="zero-width-joiner"),
        pytest.param("\u202eabc", id="rtl-override"),
        pytest.param("ab\U0001f600", id="emoji"),
        pytest.param("abc def", id="space"),
        pytest.param("abc/def", id="slash"),
        pytest.param("abc.def", id="dot"),
        pytest.param("..", id="dot-dot"),
        pytest.param("%2e%2e", id="encoded-dot-dot"),
        pytest.param("' OR 1=1--", id="sql-or"),
        pytest.param("1;DROP TABLE link", id="sql-drop"),
        pytest.param('" OR ""="', id="sql-double-quote"),
        pytest.param("HeAlTh", id="reserved-mixed-case"),
        pytest.param("URLS", id="reserved-upper-case"),
        pytest.param("shorten", id="reserved"),
        pytest.param("static", id="reserved-static"),
    ],
)
def test_hostile_aliases_are_400_invalid_input(client, alias):
    assert_error(shorten(client, "https://example.com/a", alias=alias), 400, "invalid_input", field="alias")


@pytest.mark.parametrize("alias", ["1--DROP_TABLE-link", "--1", "health-check", "or_1_1"])
def test_aliases_that_only_look_hostile_work_end_to_end(client, alias):
    assert shorten(client, "https://example.com/aliased", alias=alias).status_code == 201
    response = send(client, "GET", f"/{alias}")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://example.com/aliased"


@pytest.mark.parametrize(
    "title",
    [
        "'; DROP TABLE link; --",
        "\u202eevil\u202c",
        "a\u200db",
        "\U0001f600 emoji",
        "<script>alert(1)</script>",
        "{{7*7}} ${7*7}",
    ],
)
def test_hostile_titles_are_stored_verbatim_as_data(client, title):
    response = shorten(client, "https://example.com/titled", title=title)
    assert response.status_code == 201
    code = response.get_json()["short_code"]
    assert send(client, "GET", f"/urls/{code}").get_json()["title"] == title
    assert send(client, "GET", "/urls").status_code == 200  # the table is still there


def test_a_sql_looking_user_name_is_stored_verbatim(client, admin_headers):
    name = "Robert'); DROP TABLE users;--"
    response = post_json(client, {"name": name}, "/users", headers=admin_headers)
    assert response.status_code == 201
    names = [user["name"] for user in send(client, "GET", "/users", headers=admin_headers).get_json()]
    assert name in names


# --- path traversal --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/%252e%252e/%252e%252e/etc/passwd",
        "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "/..\\..\\windows\\win.ini",
        "/static/../app/config.py",
        "/static/..%2fapp%2fconfig.py",
        "/static/%2e%2e/app/config.py",
        "/urls/..%2f..%2fetc%2fpasswd",
        "/urls/../health",
        "/./health",
        "//evil.example",
        "//evil.example/%2e%2e",
        "/%5cevil.example",
    ],
)
def test_path_traversal_is_404_not_found_and_reveals_nothing(client, path):
    response = send(client, "GET", path)
    assert_error(response, 404, "not_found")
    assert "Location" not in response.headers
    assert b"root:" not in response.data and b"DATABASE" not in response.data


# --- schemes and hosts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "JAVASCRIPT:alert(document.cookie)",
        "javascript://example.com/%0aalert(1)",
        "javascript:/*https://example.com*/alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "DaTa:text/html,x",
        "file:///etc/passwd",
        "file://localhost/etc/passwd",
        "FILE:///C:/Windows/win.ini",
        "vbscript:msgbox(1)",
        "VbScRiPt:msgbox(1)",
        "ftp://example.com/file",
        "sftp://example.com/",
        "ws://example.com/",
        "wss://example.com/",
        "mailto:someone@example.com",
        "tel:+15555550100",
        "gopher://example.com/",
        "ldap://example.com/",
        "blob:https://example.com/uuid",
        "about:blank",
        "chrome://settings",
        "view-source:https://example.com/",
        "intent://example.com#Intent;scheme=https;end",
        "//example.com/",
        "/relative/path",
        "?q=1",
        "#fragment",
        "https",
        "javascript&#58;alert(1)",
    ],
)
def test_non_http_schemes_are_400_invalid_url(client, url):
    assert_error(shorten(client, url), 400, "invalid_url", message="http:// or https://")


@pytest.mark.parametrize(
    "url",
    [
        " javascript:alert(1)",
        "\x01javascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "\u200bjavascript:alert(1)",
    ],
)
def test_schemes_hidden_behind_whitespace_or_controls_are_400_invalid_url(client, url):
    assert_error(shorten(client, url), 400, "invalid_url")


@pytest.mark.parametrize(
    "url",
    [
        "http:example.com",
        "https:/example.com",
        "http:\\\\example.com",
        "https:javascript:alert(1)",
        "http://javascript:alert(1)",
        "https://:443/",
        "https://example.com:65536/",
        "https://example.com:-1/",
        "https://example.com:+443/",
        "https://example.com:\uff18\uff10/",
        "https://example.com:80:80/",
        "https://exa_mple..com/",
        "https://-example.com/",
    ],
)
def test_urls_without_a_usable_host_or_port_are_400_invalid_url(client, url):
    assert_error(shorten(client, url), 400, "invalid_url")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://[abc]/", id="not-an-address"),
        pytest.param("http://[93.184.216.34]/", id="bracketed-ipv4"),
        pytest.param("http://[2606:4700::1%]/", id="empty-zone-id"),
        pytest.param("http://[2606:4700::1", id="unclosed-bracket"),
        pytest.param("http://]/", id="lone-closing-bracket"),
        pytest.param("http://exa]mple.com/", id="bracket-in-name"),
        pytest.param("http://[2606:4700::1]evil.example/", id="text-after-bracket"),
        pytest.param("http://[v1.example.com]/", id="ipvfuture-becomes-a-name"),
        pytest.param("http://[2606:4700::1%\U0001f600]/", id="emoji-zone-id"),
        pytest.param("http://[2606:4700::1%\u00fc]/", id="latin1-zone-id"),
        pytest.param("http://[2606:4700::1%0d%0a]/", id="encoded-crlf-zone-id"),
    ],
)
def test_malformed_bracketed_hosts_are_400_invalid_url(client, url):
    assert_error(shorten(client, url), 400, "invalid_url")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://example.com./", id="ascii-full-stop"),
        pytest.param("https://example.com\u3002/", id="ideographic-full-stop"),
        pytest.param("https://example.com\uff0e/", id="fullwidth-full-stop"),
        pytest.param("https://example.com\uff61/", id="halfwidth-ideographic-full-stop"),
        pytest.param("https://example.com.\ufe00/", id="variation-selector-label"),
        pytest.param("https://example.com.\u034f/", id="grapheme-joiner-label"),
    ],
)
def test_a_trailing_dot_in_any_script_is_dropped_from_the_host(client, url):
    response = shorten(client, url)
    assert response.status_code == 201
    assert response.get_json()["original_url"] == "https://example.com/"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://sho.rt./abc", id="ascii-full-stop"),
        pytest.param("https://sho.rt\u3002/abc", id="ideographic-full-stop"),
        pytest.param("https://SHO.RT\uff0e:443/abc", id="fullwidth-full-stop"),
        pytest.param("https://sho.rt.\ufe0f/abc", id="variation-selector-label"),
    ],
)
def test_a_link_to_this_service_is_refused_whatever_its_trailing_dot(make_client, url):
    client = make_client(base_url="https://sho.rt")
    assert_error(shorten(client, url), 400, "invalid_url", message="this shortener")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        pytest.param("http://127.0.0.1\u3002/", "127.0.0.1", id="loopback-ideographic-dot"),
        pytest.param("http://169.254.169.254.\ufe00/", "169.254.169.254", id="metadata-ignored-label"),
        # (port 8080: the test client itself answers on http://localhost/, refused as "this shortener")
        pytest.param("http://localhost\uff0e:8080/", "'localhost'", id="localhost-fullwidth-dot"),
        pytest.param("http://printer.local\u3002/", "'printer.local'", id="local-name-ideographic-dot"),
        pytest.param("http://2130706433\uff61/", "127.0.0.1", id="decimal-ip-halfwidth-dot"),
    ],
)
def test_private_targets_spelt_with_a_mapped_trailing_dot_are_400_invalid_url(client, url, host):
    # The dot is dropped after the UTS 46 mapping, so the policy judges the host it really is.
    body = assert_error(shorten(client, url), 400, "invalid_url", message="public")
    assert f"url host {host} is" in body["error"], body


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("http://user:pass@example.com/", "credentials", id="user-password"),
        pytest.param("https://example.com@evil.example/", "credentials", id="host-as-user"),
        pytest.param("http://example.com\\@evil.example/", "credentials", id="backslash-user"),
        pytest.param("http://127.0.0.1/", "not a public internet address", id="loopback"),
        pytest.param("http://[::1]/", "not a public internet address", id="ipv6-loopback"),
        pytest.param("http://169.254.169.254/latest/meta-data/", "not a public", id="link-local-metadata"),
        pytest.param("http://10.0.0.1/", "not a public internet address", id="private-10"),
        pytest.param("http://0x7f000001/", "not a public internet address", id="hex-loopback"),
        pytest.param("http://2130706433/", "not a public internet address", id="decimal-loopback"),
        pytest.param("http://[::ffff:127.0.0.1]/", "not a public internet address", id="v4-mapped-loopback"),
        pytest.param("http://localhost:8080/", "local or private name", id="localhost"),
        pytest.param("http://intranet/", "local or private name", id="single-label"),
        pytest.param("http://printer.local/", "local or private name", id="local-suffix"),
        pytest.param("http://[2606:4700::1%25eth0]/", "IPv6 address", id="zone-id"),
    ],
)
def test_private_targets_and_credentials_are_400_invalid_url(client, url, message):
    # ALLOW_PRIVATE_TARGETS is off in the test settings.
    assert_error(shorten(client, url), 400, "invalid_url", message=message)


# --- every method on every route -------------------------------------------------------------------

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "FOO"]

# (anonymous status, admin status) of each endpoint for the methods it serves; HEAD answers as GET.
EXPECTED = {
    "static": {"GET": (200, 200)},  # the web page's style sheet (filename below)
    "ops.health": {"GET": (200, 200)},
    "ops.livez": {"GET": (200, 200)},
    "metrics.metrics": {"GET": (401, 200)},
    "links.create": {"POST": (201, 201)},
    "links.list_urls": {"GET": (200, 200)},
    "links.read": {"GET": (200, 200)},
    "links.update": {"PATCH": (401, 200)},
    "links.delete": {"DELETE": (401, 204)},
    "keys.create": {"POST": (401, 201)},
    "keys.list_keys": {"GET": (401, 200)},
    "keys.revoke": {"DELETE": (401, 204)},
    "users.create": {"POST": (401, 201)},
    "users.list_users": {"GET": (401, 200)},
    "stats.link_stats": {"GET": (200, 200)},
    "stats.site_stats": {"GET": (401, 200)},
    "qr.qr_code": {"GET": (200, 200)},
    "redirect.follow": {"GET": (302, 302)},
    "web.index": {"GET": (200, 200)},
    "web.link_page": {"GET": (200, 200)},
    "docs.openapi_json": {"GET": (200, 200)},
    "docs.page": {"GET": (200, 200)},
    "docs.init": {"GET": (200, 200)},
    "docs.asset": {"GET": (404, 404)},  # "site.css" is not one of Swagger UI's files
}
BODIES = {
    "links.create": {"url": "https://example.com/matrix"},
    "links.update": {"title": "matrix"},
    "keys.create": {"name": "matrix"},
    "users.create": {"name": "matrix-user"},
}
CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}


def _routes() -> list[tuple[str, dict[str, str]]]:
    """Every route of the app: its rule and which endpoint serves each method on it.

    Read from a throwaway app (in-memory database, never connected) because parametrization
    happens at collection, before the test app exists; the test checks the real app has the rule.
    """
    original = db.obj
    try:
        routes: dict[str, dict[str, str]] = {}
        for rule in create_app(
            Settings(database_url="sqlite:///:memory:", click_flush_interval=0)
        ).url_map.iter_rules():
            for method in rule.methods or ():
                routes.setdefault(rule.rule, {})[method] = rule.endpoint
        return sorted(routes.items())
    finally:
        db.initialize(original)


ROUTES = _routes()


def _path(rule: str, values: dict[str, object]) -> str:
    """`rule` with real-looking values in its placeholders (`<int(max=...):key_id>` and the like)."""

    def value(match: re.Match) -> str:
        converter, name = match.group(1) or "", match.group(2)
        if name in values:
            return str(values[name])
        return "1" if converter.startswith("int") else "abc1234"

    return re.sub(r"<(?:([^<>:]+):)?(\w+)>", value, rule)


def test_the_route_matrix_has_expectations_for_every_endpoint(app):
    # A new route must say here what each of its methods answers, or the matrix would only check
    # the invariants for it.
    assert {rule.endpoint for rule in app.url_map.iter_rules()} <= set(EXPECTED)


@pytest.mark.parametrize("as_admin", [False, True], ids=["anonymous", "admin"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("rule", "endpoints"), ROUTES, ids=[rule for rule, _ in ROUTES])
def test_every_method_on_every_route_answers_deliberately(
    app, client, link, rule, endpoints, method, as_admin
):
    assert rule in {r.rule for r in app.url_map.iter_rules()}
    admin = make_user("matrix-admin", role="admin")
    spare_key, _ = create_key(admin.id, name="spare")
    headers = auth(make_key(admin)) if as_admin else {}
    path = _path(rule, {"code": link.code, "key_id": spare_key.id, "filename": "site.css"})
    endpoint = endpoints.get("GET" if method == "HEAD" else method)
    body = BODIES.get(endpoint) if endpoint else None

    response = send(client, method, path, headers=headers, json=body)

    status = response.status_code
    if method == "OPTIONS":
        assert status == 200
        assert set(response.headers["Allow"].split(", ")) == set(endpoints)
    elif endpoint is None:  # the route exists, the method does not: 405 naming the allowed ones
        assert status == 405
        assert set(response.headers["Allow"].split(", ")) == set(endpoints)
        if method != "HEAD":
            assert response.get_json()["code"] == "method_not_allowed"
    elif endpoint in EXPECTED:
        method_key = "GET" if method == "HEAD" else method
        assert status == EXPECTED[endpoint][method_key][as_admin], response.get_data()[:300]
        if method == "HEAD":
            assert response.get_data() == b""
        elif status in CODES:
            assert response.get_json()["code"] == CODES[status]
        if status == 302:
            assert response.headers["Location"] == LINK_TARGET


@pytest.mark.parametrize("method", ["PUT", "TRACE", "FOO", "PROPFIND", "CONNECT"])
def test_unknown_and_unsupported_methods_are_405_json(client, method):
    response = send(client, method, "/shorten")
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


# --- the service survived --------------------------------------------------------------------------


def test_health_still_answers_200_after_the_hostile_battery(client):
    response = send(client, "GET", "/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
