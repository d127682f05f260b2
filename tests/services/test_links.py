"""Link rules: collision retry, aliases, lifecycle states, redirects and click limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.errors import AliasTaken, CodeSpaceExhausted, InvalidInput, LinkGone, LinkNotFound, Unauthorized
from app.models import Link
from app.services import links
from app.services.clicks import ClickRecorder
from app.services.link_cache import LinkCache
from app.services.links import NewLink
from tests.factories import make_link

NOW = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def new(url: str = "https://example.com", **fields) -> NewLink:
    return NewLink(url=url, **fields)


def test_create_link_retries_when_code_is_taken(settings, monkeypatch):
    make_link(code="taken77")
    draws = iter(["taken77", "taken77", "fresh77"])
    monkeypatch.setattr(links, "generate_code", lambda length: next(draws))
    assert links.create_link(new(), settings).code == "fresh77"
    assert Link.select().where(Link.code == "taken77").count() == 1


def test_create_link_gives_up_after_bounded_attempts(settings, monkeypatch):
    make_link(code="taken77")
    calls = []
    monkeypatch.setattr(links, "generate_code", lambda length: calls.append(1) or "taken77")
    with pytest.raises(CodeSpaceExhausted):
        links.create_link(new(), replace(settings, code_attempts=3))
    assert len(calls) == 3


def test_create_link_uses_given_time_in_utc(settings):
    link = links.create_link(new(), settings, now=NOW)
    stored = Link.get_by_id(link.id)
    assert stored.created_at == NOW and stored.updated_at == NOW


def test_create_link_uses_configured_code_length(settings):
    assert len(links.create_link(new(), replace(settings, code_length=12)).code) == 12


def test_create_link_never_reuses_a_deleted_code_as_alias(settings, admin):
    link = links.create_link(new(alias="gone-soon"), settings, principal=admin)
    links.delete_link(link.code, admin)
    with pytest.raises(AliasTaken):
        links.create_link(new(alias="gone-soon"), settings, principal=admin)


def test_create_link_never_generates_a_deleted_code(settings, admin, monkeypatch):
    first = links.create_link(new(), settings, principal=admin)
    links.delete_link(first.code, admin)
    draws = iter([first.code, "brandnew"])
    monkeypatch.setattr(links, "generate_code", lambda length: next(draws))
    assert links.create_link(new(), settings).code == "brandnew"


@pytest.mark.parametrize("alias", ["health", "URLS", "Shorten", "api", "docs", "metrics", "static", "keys"])
def test_create_link_refuses_reserved_aliases(settings, alias):
    with pytest.raises(InvalidInput) as raised:
        links.create_link(new(alias=alias), settings)
    assert raised.value.extra["fields"] == {"alias": f"alias {alias!r} is reserved; choose another one"}


def test_create_link_refuses_expiry_in_the_past(settings):
    with pytest.raises(InvalidInput) as raised:
        links.create_link(new(expires_at=NOW), settings, now=NOW)
    assert "expires_at" in raised.value.extra["fields"]


def test_create_link_anonymously_refused_when_disabled(settings):
    with pytest.raises(Unauthorized):
        links.create_link(new(), replace(settings, anonymous_shorten=False))


def redirect(code: str, settings, clicks: ClickRecorder | None = None, now: datetime = NOW):
    cache = LinkCache(maxsize=0)  # uncached: these tests change rows behind the service's back
    return links.resolve_for_redirect(
        code, settings, clicks or ClickRecorder(background=False), cache, now=now
    )


def test_redirect_uses_the_links_own_redirect_type(settings):
    link = links.create_link(new(redirect_type=308), settings)
    assert redirect(link.code, settings).status == 308


def test_redirect_of_unknown_code_is_not_found(settings):
    with pytest.raises(LinkNotFound):
        redirect("nothere", settings)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"is_active": False}, "no longer active"),
        ({"expires_at": NOW}, "expired"),
        ({"expires_at": NOW - timedelta(seconds=1)}, "expired"),
        ({"max_clicks": 3, "human_click_count": 3}, "click limit"),
        ({"deleted_at": NOW, "target_url": ""}, "no longer active"),
    ],
)
def test_redirect_of_dead_link_is_gone(settings, fields, message):
    link = make_link()
    Link.update(**fields).where(Link.id == link.id).execute()
    with pytest.raises(LinkGone, match=message):
        redirect(link.code, settings)


def test_redirect_just_before_expiry_still_works(settings):
    link = make_link()
    Link.update(expires_at=NOW + timedelta(microseconds=1)).where(Link.id == link.id).execute()
    assert redirect(link.code, settings).url == link.target_url


def test_max_clicks_counts_clicks_still_in_the_buffer(settings):
    link = links.create_link(new(max_clicks=2), settings)
    clicks = ClickRecorder(background=False)
    for _ in range(2):
        clicks.record(redirect(link.code, settings, clicks).link_id, user_agent="Mozilla/5.0 Firefox/120.0")
    with pytest.raises(LinkGone, match="click limit"):
        redirect(link.code, settings, clicks)
    assert clicks.flush() == 2
    assert Link.get_by_id(link.id).human_click_count == 2
    with pytest.raises(LinkGone):
        redirect(link.code, settings, clicks)


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, "active"),
        ({"is_active": False}, "inactive"),
        ({"expires_at": NOW}, "expired"),
        ({"max_clicks": 1, "human_click_count": 1}, "exhausted"),
    ],
)
def test_link_state_names_why_a_link_does_not_redirect(fields, state):
    link = make_link(**fields)
    assert links.link_state(Link.get_by_id(link.id), NOW) == state


def test_cursor_round_trips():
    assert links.decode_cursor(links.encode_cursor(123456789)) == 123456789


def test_list_links_rejects_out_of_range_limit(settings):
    for limit in (0, links.MAX_PAGE_SIZE + 1):
        with pytest.raises(InvalidInput):
            links.list_links(None, settings, limit=limit)
