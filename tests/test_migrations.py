"""Schema migrations: the migrated schema matches the models; upgrades are idempotent."""

from __future__ import annotations

from peewee import SqliteDatabase
from playhouse.schema_diff import diff_models

from app import migrate
from app.db import db
from app.models import ALL_MODELS


def test_migrated_schema_matches_models():
    assert not diff_models(db.obj, list(ALL_MODELS))


def test_migrated_columns_match_model_nullability():
    for model in ALL_MODELS:
        columns = {c.name: c for c in db.obj.get_columns(model._meta.table_name)}
        assert set(columns) == {f.column_name for f in model._meta.sorted_fields}
        for field in model._meta.sorted_fields:
            assert columns[field.column_name].null == field.null, field.name


def test_no_migration_is_pending_after_upgrade():
    assert migrate.pending(db.obj) == []


def test_upgrade_on_fresh_database_applies_all_then_nothing(scratch_database):
    fresh = scratch_database
    names = [m.name for m in migrate.runner(fresh).migrations()]
    assert migrate.upgrade(fresh) == names
    assert migrate.upgrade(fresh) == []
    assert "link" in fresh.get_tables()


def test_cli_status_and_upgrade_report_up_to_date(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).output.strip() == "schema is up to date"
    result = runner.invoke(args=["db", "status"])
    assert result.exit_code == 0 and "up to date" in result.output


def test_cli_status_exits_1_with_pending_migrations(app, tmp_path, monkeypatch):
    fresh = SqliteDatabase(str(tmp_path / "pending.sqlite3"))
    monkeypatch.setattr(db, "obj", fresh)
    result = app.test_cli_runner().invoke(args=["db", "status"])
    assert result.exit_code == 1 and "pending: 0001_create_link" in result.output


NOTIFY = "0004_link_change_notify"
LIGHTER = "0005_lighter_writes"


def test_upgrade_from_first_schema_keeps_existing_links(scratch_database):
    old = scratch_database
    runner = migrate.runner(old)
    with old.connection_context():
        runner.up(target="0001_create_link")
        old.execute_sql(
            "INSERT INTO link (code, target_url, created_at) VALUES "
            "('keepme1', 'https://example.com/kept', '2025-01-01 00:00:00.000000+00:00')"
        )
        assert migrate.upgrade(old) == ["0002_link_management", "0003_click_analytics", NOTIFY, LIGHTER]
        row = old.execute_sql(
            "SELECT code, target_url, created_at, updated_at, is_active, click_count, human_click_count, "
            "owner_id, deleted_at FROM link"
        ).fetchone()
    assert row[:2] == ("keepme1", "https://example.com/kept")
    assert row[3] == row[2]  # updated_at back-filled from created_at
    assert tuple(row[4:]) in {(1, 0, 0, None, None), (True, 0, 0, None, None)}


def test_click_analytics_upgrade_counts_earlier_clicks_as_human(scratch_database):
    database = scratch_database
    with database.connection_context():
        migrate.runner(database).up(target="0002_link_management")
        database.execute_sql(
            "INSERT INTO link (code, target_url, created_at, updated_at, is_active, click_count) VALUES "
            "('counted', 'https://example.com', '2025-01-01 00:00:00+00:00', '2025-01-01 00:00:00+00:00', "
            "true, 7)"
        )
        assert migrate.upgrade(database) == ["0003_click_analytics", NOTIFY, LIGHTER]
        assert database.execute_sql("SELECT human_click_count FROM link").fetchone()[0] == 7


def test_migrations_revert_cleanly_one_by_one(scratch_database):
    database = scratch_database
    with database.connection_context():
        migrate.upgrade(database)
        runner = migrate.runner(database)
        assert "link_owner_id" not in {index.name for index in database.get_indexes("link")}
        assert runner.down() == [LIGHTER]
        assert "link_owner_id" in {index.name for index in database.get_indexes("link")}
        assert all(database.get_foreign_keys(table) for table in ("click", "click_rollup", "daily_visitor"))
        assert runner.down() == [NOTIFY]
        assert runner.down() == ["0003_click_analytics"]
        assert not {"click", "click_rollup", "daily_visitor", "visitor_salt"} & set(database.get_tables())
        assert "human_click_count" not in {c.name for c in database.get_columns("link")}
        assert runner.down() == ["0002_link_management"]
        assert "app_user" not in database.get_tables()
        assert {c.name for c in database.get_columns("link")} == {"id", "code", "target_url", "created_at"}
        assert migrate.upgrade(database) == ["0002_link_management", "0003_click_analytics", NOTIFY, LIGHTER]
