"""Property-based tests (hypothesis) of URL normalisation and short-code handling.

`normalize_url` raises nothing but InvalidUrl on any text (lone surrogates, malformed brackets and
IPv6 zone ids included) and its output is ASCII http(s) without whitespace, within the length limit,
idempotent, with a host that round-trips through IDNA; a URL to this service is refused however it is
spelt (trailing dots in any script included); an IPv6 literal is never rewritten into another host.
Short codes: generated codes are well formed, never a reserved word, and the code pattern, the router
and storage agree. Inputs that once failed are pinned as `@example`s, which run first.
"""

from __future__ import annotations

import ipaddress
import re
import string
from unittest import mock
from urllib.parse import urlsplit

import idna
import pytest
from hypothesis import HealthCheck, assume, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from app.api.redirect import CodeConverter
from app.config import Settings
from app.errors import InvalidInput, InvalidUrl
from app.models.link import MAX_CODE_LENGTH
from app.services import codes, links
from app.services.codes import ALPHABET, CODE_CHARS, RESERVED_CODES, generate_code, is_well_formed
from app.services.urls import netloc_key, normalize_url

MAX_URL_LENGTH = 2048
WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")

# Modest budgets: the whole file runs in a few seconds. No example database (nothing written to disk).
fast = hypothesis_settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
thorough = hypothesis_settings(fast, max_examples=150)


def normalize(raw: str, max_length: int = MAX_URL_LENGTH, **kwargs) -> str:
    return normalize_url(raw, max_length=max_length, **kwargs)


def normalized_or_none(raw: str, max_length: int = MAX_URL_LENGTH) -> str | None:
    try:
        return normalize(raw, max_length)
    except InvalidUrl:
        return None


# --- strategies ------------------------------------------------------------------------------------

# Any text, lone surrogates and brackets included.
any_text = st.text(st.characters(), max_size=80)
# Characters that are fine in a URL, a few that need percent-encoding, and percent signs.
safe_chars = st.sampled_from(
    list(string.ascii_letters + string.digits + "-._~:/?#@!$&'()*+,;=%éßü日😀\u0301")
)
# ...and hostile ones: spaces, controls, invisible and bidi characters, backslashes, anything.
hostile_chars = st.one_of(
    st.sampled_from(list(" \t\n\r\x00\x7f\x85\u00a0\u200b\u202e\ufeff\\")),
    st.characters(),
)
safe_part = st.text(safe_chars, max_size=20)
hostile_part = st.text(st.one_of(safe_chars, hostile_chars), max_size=20)
ascii_label = st.text(st.sampled_from(string.ascii_lowercase + string.digits + "-"), min_size=1, max_size=12)
unicode_label = st.text(st.characters(categories=["Ll", "Lu", "Lo", "Nd", "Mn"]), min_size=1, max_size=8)
label = st.one_of(ascii_label, ascii_label, unicode_label, ascii_label.map(lambda text: "xn--" + text))
domain = st.lists(label, min_size=2, max_size=4).map(".".join)
public_ipv4 = st.ip_addresses(v=4).filter(lambda address: address.is_global).map(str)
public_ipv6 = st.ip_addresses(v=6).filter(lambda address: address.is_global).map(lambda a: f"[{a}]")
host = st.one_of(
    domain, domain, domain.map(str.upper), domain.map(lambda name: name + "."), public_ipv4, public_ipv6
)
good_scheme = st.sampled_from(["http", "https", "HTTP", "hTtPs"])
bad_scheme = st.sampled_from(["ftp", "javascript", "file", "data", "", "http+x", "https "])
port = st.one_of(
    st.just(""),
    st.integers(min_value=1, max_value=65_535).map(lambda number: f":{number}"),
    st.sampled_from([":", ":80", ":443", ":080", ":0443"]),
)
bad_port = st.sampled_from([":-1", ":+80", ":x", ":80:80", ":65536", ":99999999999999999999"])


@st.composite
def url_like(draw: st.DrawFn, *, hostile: bool = True) -> str:
    """Well-formed URLs in many spellings; if `hostile`, any component may be replaced by a bad one."""

    def part(good: st.SearchStrategy[str], bad: st.SearchStrategy[str]) -> str:
        # About one in ten is bad (not 0: hypothesis favours the bounds of a range).
        return draw(bad if hostile and draw(st.integers(0, 9)) == 7 else good)

    scheme = part(good_scheme, bad_scheme)
    separator = part(st.just("://"), st.sampled_from([":", ":/", ":///", "//", ":\\\\"]))
    netloc = part(host, hostile_part) + part(port, bad_port)
    path = part(safe_part, hostile_part)
    query = part(st.one_of(st.just(""), safe_part.map(lambda text: "?" + text)), hostile_part)
    fragment = part(st.one_of(st.just(""), safe_part.map(lambda text: "#" + text)), hostile_part)
    return f"{scheme}{separator}{netloc}/{path}{query}{fragment}"


candidates = st.one_of(url_like(hostile=False), url_like(), any_text)


# --- normalize_url ---------------------------------------------------------------------------------


@fast
@given(raw=any_text)
@example(raw="")
@example(raw="http://")
@example(raw="https://example.com:99999/")
@example(raw="http://[/")
@example(raw="http://a.com/\ud800")
def test_arbitrary_text_raises_nothing_but_invalid_url(raw):
    normalized_or_none(raw)


@thorough
@given(raw=url_like())
def test_url_like_text_raises_nothing_but_invalid_url(raw):
    normalized_or_none(raw)


@fast
@given(raw=candidates, max_length=st.integers(min_value=32, max_value=MAX_URL_LENGTH))
@example(raw="HTTPS://Example.COM:443/ä b", max_length=2048)
@example(raw="https://bücher.example/straße?q=ü#ö", max_length=48)
def test_a_normalised_url_is_ascii_http_without_whitespace_within_max_length(raw, max_length):
    url = normalized_or_none(raw, max_length)
    if url is None:
        return
    assert url.isascii(), url
    assert not WHITESPACE_OR_CONTROL.search(url), url
    assert url.startswith(("http://", "https://")), url
    assert len(url) <= max_length
    assert urlsplit(url).hostname


@thorough
@given(raw=candidates)
@example(raw="HTTP://EXAMPLE.COM.:80/a%2fb/../c?x=%zz#%")
@example(raw="https://münchen.de/ü")
@example(raw="http://0x7f.1.example/")
@example(raw="https://a.com\u3002/")
@example(raw="https://a.com.\ufe00/")
def test_normalisation_is_idempotent(raw):
    url = normalized_or_none(raw)
    if url is None:
        return
    assert normalize(url) == url


@thorough
@given(raw=candidates)
@example(raw="https://Bücher.Example./")
@example(raw="https://xn--bcher-kva.example/")
def test_the_normalised_host_round_trips_through_idna(raw):
    url = normalized_or_none(raw)
    if url is None:
        return
    hostname = urlsplit(url).hostname
    try:
        ipaddress.ip_address(hostname)
        return  # an IP literal, not a domain name
    except ValueError:
        pass
    assert idna.encode(idna.decode(hostname), uts46=True).decode("ascii") == hostname


@fast
@given(raw=url_like())
@example(raw="https://EXAMPLE.com.:443/x")
@example(raw="http://bücher.example:80/")
@example(raw="https://sho.rt\uff0e/x")
def test_a_url_to_our_own_address_is_refused_however_it_is_spelt(raw):
    url = normalized_or_none(raw)
    if url is None:
        return
    parts = urlsplit(url)
    own = frozenset({netloc_key(parts.hostname, parts.port, parts.scheme)})
    for spelling in {raw, url}:
        with pytest.raises(InvalidUrl):
            normalize(spelling, own_netlocs=own)


@fast
@given(scheme=st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzJSVBAT+.-"), min_size=1, max_size=12))
@example(scheme="JaVaScRiPt")
@example(scheme="vbscript")
def test_only_http_and_https_schemes_survive(scheme):
    url = normalized_or_none(f"{scheme}://example.com/")
    assert (url is not None) == (scheme.lower() in {"http", "https"})


# --- trailing dots, surrogates, brackets and zone ids ----------------------------------------------


# Valid ASCII host names (letter-digit-hyphen labels, an alphabetic top-level label).
ascii_domain = st.builds(
    "{}.{}".format,
    st.lists(
        st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True), min_size=1, max_size=3
    ).map(".".join),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
mapped_dot = st.sampled_from(["\u3002", "\uff0e", "\uff61", ".\ufe00", ".\u034f", ".\U000e0100", ".\u180b"])


@fast
@given(name=ascii_domain, dot=mapped_dot)
@example(name="a.com", dot="\u3002")
def test_normalisation_is_idempotent_when_the_host_ends_in_a_mapped_dot(name, dot):
    url = normalized_or_none(f"https://{name}{dot}/")
    assert url is None or normalize(url) == url, url
    assert url == normalized_or_none(f"https://{name}/"), url  # the dot is dropped, nothing else


@fast
@given(name=ascii_domain, dot=mapped_dot)
@example(name="sho.rt", dot="\u3002")
def test_own_address_is_refused_when_the_host_ends_in_a_mapped_dot(name, dot):
    url = normalized_or_none(f"https://{name}/")
    assume(url is not None)
    own = frozenset({netloc_key(urlsplit(url).hostname, None, "https")})
    with pytest.raises(InvalidUrl):
        normalize(f"https://{name}{dot}/", own_netlocs=own)


@fast
@given(
    raw=st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3).map(lambda s: "http://a.com/" + s)
)
@example(raw="http://a.com/\ud800")
def test_lone_surrogates_are_invalid_url(raw):
    with pytest.raises(InvalidUrl):
        normalize(raw)


@fast
@given(inside=st.text(st.sampled_from("0123456789abcdef:.%v[]"), max_size=12))
@example(inside="[")
def test_bracketed_hosts_raise_nothing_but_invalid_url(inside):
    normalized_or_none(f"http://{inside}/")


@fast
@given(
    zone=st.text(
        st.characters(min_codepoint=0xA1, exclude_categories=["Cs", "Z", "C"]), min_size=1, max_size=4
    )
)
@example(zone="\u00a1")
def test_a_normalised_ipv6_url_is_ascii_whatever_its_zone_id(zone):
    url = normalized_or_none(f"http://[2606:4700::1%{zone}]/")
    assert url is None or url.isascii(), url


@fast
@given(junk=ascii_label)
@example(junk="a")
def test_text_after_an_ipv6_literal_is_refused(junk):
    with pytest.raises(InvalidUrl):
        normalize(f"http://[2606:4700::1]{junk}/")


@fast
@given(name=domain.filter(lambda name: name.isascii()))
@example(name="a.com")
def test_a_bracketed_ipvfuture_literal_is_never_turned_into_a_domain_name(name):
    url = normalized_or_none(f"http://[v1.{name}]/")
    assert url is None or urlsplit(url).netloc.startswith("["), url


# --- short codes -----------------------------------------------------------------------------------

ROUTER = Map([Rule("/<code:code>", endpoint="follow")], converters={"code": CodeConverter}).bind("sho.rt")
code_like = st.one_of(
    st.text(st.sampled_from(CODE_CHARS), min_size=0, max_size=MAX_CODE_LENGTH + 2),
    st.text(st.sampled_from(CODE_CHARS + "./ \n\x00é%?#+~"), max_size=12),
    st.sampled_from(sorted(RESERVED_CODES)).flatmap(
        lambda word: st.sampled_from([word, word.upper(), word.title(), word + "s", word + "-x", "x" + word])
    ),
)


def routed_code(code: str) -> str | None:
    """The code the redirect route extracts from /<code>, or None when it does not match."""
    try:
        endpoint, arguments = ROUTER.match("/" + code)
    except (NotFound, MethodNotAllowed):
        return None
    assert endpoint == "follow"
    return arguments["code"]


@fast
@given(length=st.integers(min_value=1, max_value=MAX_CODE_LENGTH))
def test_generated_codes_are_well_formed_and_routed_to_the_redirect(length):
    code = generate_code(length)
    assert len(code) == length
    assert set(code) <= set(ALPHABET)
    assert code.lower() not in RESERVED_CODES
    assert is_well_formed(code)
    assert routed_code(code) == code


@fast
@given(
    word=st.sampled_from(sorted(RESERVED_CODES)).flatmap(
        lambda word: st.tuples(*(st.sampled_from([ch.lower(), ch.upper()]) for ch in word)).map("".join)
    ),
    fallback=st.data(),
)
def test_generate_code_never_hands_out_a_reserved_word_in_any_case(word, fallback):
    replacement = fallback.draw(st.text(st.sampled_from(ALPHABET), min_size=len(word), max_size=len(word)))
    # generate_code writes one draw in base 62, its lowest digit first
    drawn = [
        sum(ALPHABET.index(ch) * len(ALPHABET) ** i for i, ch in enumerate(text))
        for text in (word, replacement)
    ]
    draws = iter([*drawn, 0])
    with mock.patch.object(codes, "randbelow", lambda limit: next(draws)):
        code = generate_code(len(word))
    assert code.lower() not in RESERVED_CODES
    assert code == (replacement if replacement.lower() not in RESERVED_CODES else ALPHABET[0] * len(word))


@thorough
@given(code=code_like)
@example(code="")
@example(code="a" * MAX_CODE_LENGTH)
@example(code="a" * (MAX_CODE_LENGTH + 1))
@example(code="health")
@example(code="Health")
@example(code="healthy")
@example(code="urls-")
@example(code="abc\n")
def test_the_code_pattern_accepts_exactly_the_codes_that_can_be_stored(code):
    expected = (
        1 <= len(code) <= MAX_CODE_LENGTH and set(code) <= set(CODE_CHARS) and code not in RESERVED_CODES
    )
    assert is_well_formed(code) == expected
    assert (routed_code(code) == code) == expected


def test_the_app_router_uses_the_same_code_pattern(app):
    converter = app.url_map.converters["code"]
    assert converter.regex == CodeConverter.regex == codes.CODE_PATTERN


def test_every_route_of_the_app_is_a_reserved_code(app):
    # A code equal to a route's first segment would be shadowed by that route (or shadow it).
    first_segments = {
        rule.rule.strip("/").split("/")[0]
        for rule in app.url_map.iter_rules()
        if not rule.rule.startswith("/<") and rule.rule != "/"  # the home page has no segment
    }
    could_be_codes = {segment for segment in first_segments if re.fullmatch(r"[A-Za-z0-9_-]+", segment)}
    assert could_be_codes <= RESERVED_CODES  # ("openapi.json" cannot be a code: "." is not allowed)


@fast
@given(
    alias=st.sampled_from(sorted(RESERVED_CODES)).flatmap(
        lambda word: st.tuples(*(st.sampled_from([ch.lower(), ch.upper()]) for ch in word)).map("".join)
    )
)
def test_no_case_variant_of_a_reserved_word_can_become_an_alias(alias):
    settings = Settings(database_url="sqlite:///:memory:")
    with pytest.raises(InvalidInput, match="reserved"):
        links.create_link(links.NewLink(url="https://example.com/", alias=alias), settings)
