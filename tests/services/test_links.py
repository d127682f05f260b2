"""Link rules: collision retry, committed creation, cursors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app.errors import CodeSpaceExhausted, InvalidInput, LinkNotFound
from app.models import Link
from app.services import links
from tests.factories import make_link


def test_create_link_retries_when_code_is_taken(settings, monkeypatch):
    make_link(code="taken77")
    draws = iter(["taken77", "taken77", "fresh77"])
    monkeypatch.setattr(links, "generate_code", lambda length: next(draws))
    link = links.create_link("https://example.com", settings)
    assert link.code == "fresh77"
    assert Link.select().where(Link.code == "taken77").count() == 1


def test_create_link_gives_up_after_bounded_attempts(settings, monkeypatch):
    make_link(code="taken77")
    calls = []
    monkeypatch.setattr(links, "generate_code", lambda length: calls.append(1) or "taken77")
    with pytest.raises(CodeSpaceExhausted):
        links.create_link("https://example.com", replace(settings, code_attempts=3))
    assert len(calls) == 3


def test_create_link_uses_given_time_in_utc(settings):
    now = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    link = links.create_link("https://example.com", settings, now=now)
    assert Link.get_by_id(link.id).created_at == now


def test_create_link_uses_configured_code_length(settings):
    assert len(links.create_link("https://example.com", replace(settings, code_length=12)).code) == 12


def test_resolve_target_of_unknown_code_raises(settings):
    with pytest.raises(LinkNotFound):
        links.resolve_target("nothere")


def test_cursor_round_trips():
    assert links.decode_cursor(links.encode_cursor(123456789)) == 123456789


def test_list_links_rejects_out_of_range_limit():
    with pytest.raises(InvalidInput):
        links.list_links(0)
    with pytest.raises(InvalidInput):
        links.list_links(links.MAX_PAGE_SIZE + 1)
