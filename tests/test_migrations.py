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


def test_upgrade_on_fresh_database_applies_all_then_nothing(tmp_path):
    fresh = SqliteDatabase(str(tmp_path / "fresh.sqlite3"))
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
