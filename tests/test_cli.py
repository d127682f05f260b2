"""Flask CLI commands and the INITIAL_API_KEY bootstrap."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.bootstrap import prepare_database
from app.db import db
from app.errors import InvalidInput
from app.models import ApiKey, User
from app.services.api_keys import authenticate, hash_key
from app.services.users import ensure_initial_admin
from tests.factories import make_user


def test_create_admin_prints_a_working_admin_key(app):
    result = app.test_cli_runner().invoke(args=["create-admin", "ops"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    principal = authenticate(secret)
    assert principal.is_admin and User.get_by_id(principal.user_id).name == "ops"


def test_create_user_then_issue_key(app):
    runner = app.test_cli_runner()
    assert "created" in runner.invoke(args=["create-user", "dana"]).output
    secret = runner.invoke(args=["issue-key", "dana"]).output.strip()
    principal = authenticate(secret)
    assert not principal.is_admin and User.get_by_id(principal.user_id).name == "dana"


def test_issue_key_for_unknown_user_fails(app):
    result = app.test_cli_runner().invoke(args=["issue-key", "nobody"])
    assert result.exit_code != 0 and "no user named 'nobody'" in result.output


def test_initial_api_key_creates_an_admin_once():
    raw = "k" * 40
    assert ensure_initial_admin(raw) is True
    assert ensure_initial_admin(raw) is False
    assert authenticate(raw).is_admin
    assert ApiKey.select().where(ApiKey.key_hash == hash_key(raw)).count() == 1


def test_initial_api_key_must_be_long():
    with pytest.raises(InvalidInput):
        ensure_initial_admin("short")


def test_initial_api_key_is_not_attached_to_a_non_admin_named_admin():
    make_user("admin", role="user")
    with pytest.raises(InvalidInput):
        ensure_initial_admin("k" * 40)


def test_prepare_database_migrates_and_installs_initial_key(settings, tmp_path):
    original = db.obj
    fresh = replace(settings, database_url=f"sqlite:///{tmp_path / 'boot.sqlite3'}", initial_api_key="z" * 40)
    try:
        assert prepare_database(fresh) == [
            "0001_create_link",
            "0002_link_management",
            "0003_click_analytics",
            "0004_link_change_notify",
            "0005_lighter_writes",
        ]
        assert prepare_database(fresh) == []
        with db.connection_context():
            assert authenticate("z" * 40).is_admin
    finally:
        db.initialize(original)


def test_prune_clicks_deletes_old_raw_clicks_and_keeps_stats(app):
    from datetime import UTC, datetime, timedelta

    from app.models import Click, ClickRollup
    from tests.factories import make_link

    link = make_link()
    recorder = app.extensions["clicks"]
    now = datetime.now(UTC)
    for age in (100, 95, 1):
        recorder.record(link.id, user_agent="Mozilla/5.0 Firefox/120.0", now=now - timedelta(days=age))
    recorder.flush()
    result = app.test_cli_runner().invoke(args=["prune-clicks", "--days", "90"])
    assert result.exit_code == 0 and "deleted 2 raw clicks" in result.output
    assert Click.select().where(Click.link == link.id).count() == 1
    assert sum(r.clicks for r in ClickRollup.select().where(ClickRollup.link == link.id)) == 3


def test_prune_clicks_works_in_batches(app):
    from datetime import UTC, datetime, timedelta

    from app.models import Click
    from app.services.clicks import prune_clicks
    from tests.factories import make_link

    link = make_link()
    recorder = app.extensions["clicks"]
    for _ in range(5):
        recorder.record(link.id, user_agent="x", now=datetime.now(UTC) - timedelta(days=10))
    recorder.flush()
    assert prune_clicks(datetime.now(UTC), batch=2) == 5
    assert Click.select().where(Click.link == link.id).count() == 0
