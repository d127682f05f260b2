"""Cheaper writes on the two hot write paths, measured in docs/PERFORMANCE.md.

- PostgreSQL: the click tables (`click`, `click_rollup`, `daily_visitor`) lose their foreign keys
  to `link`. Each key checked every inserted row on its own (a query and a row lock on the link per
  click, twice per click: ~40% of the database's work per click). The click flush now drops the
  clicks of links that no longer exist once per batch (`services.clicks`), and a statement trigger
  keeps `ON DELETE CASCADE`: deleting links deletes their clicks, rollups and visitors. SQLite keeps
  its foreign keys (nothing there is hot enough to matter).
- PostgreSQL: the change trigger stays quiet for a new row whose code the inserting transaction
  named in the setting `shortener.unannounced_code`. A NOTIFY takes a cluster-wide lock until its
  transaction's commit is flushed, so with one per insert every create in every process committed
  one after the other, fsync included. The service's own creates name their code and announce it
  themselves after the commit, batched (`services.links`, `services.link_events`); every other
  writer (a DBA, an import in a transaction) is announced by the trigger as before.
- Both databases: the index on `link.owner_id` goes; `(owner_id, id)` serves every lookup by owner
  (and the owner's `ON DELETE SET NULL`), and each new link had to update both.
"""

from peewee import PostgresqlDatabase

CLICK_TABLES = ("click", "click_rollup", "daily_visitor")
UNANNOUNCED_SETTING = "shortener.unannounced_code"  # app.services.links.UNANNOUNCED_SETTING


def up(migrator, db):
    db.execute_sql("DROP INDEX IF EXISTS link_owner_id")
    if not isinstance(db, PostgresqlDatabase):
        return
    for table in CLICK_TABLES:
        db.execute_sql(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_link_id_fkey")
    deletes = "\n".join(
        f"DELETE FROM {table} WHERE link_id IN (SELECT id FROM gone);"  # noqa: S608 (constants)
        for table in CLICK_TABLES
    )
    db.execute_sql(
        f"""
        CREATE FUNCTION shortener_link_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {deletes}
            RETURN NULL;
        END $$
        """
    )
    db.execute_sql(
        "CREATE TRIGGER link_deleted_clicks AFTER DELETE ON link REFERENCING OLD TABLE AS gone "
        "FOR EACH STATEMENT EXECUTE FUNCTION shortener_link_deleted()"
    )
    db.execute_sql("DROP TRIGGER link_changed_insert_delete ON link")
    db.execute_sql(
        "CREATE TRIGGER link_changed_delete AFTER DELETE ON link "
        "FOR EACH ROW EXECUTE FUNCTION shortener_link_changed()"
    )
    db.execute_sql(
        "CREATE TRIGGER link_changed_insert AFTER INSERT ON link FOR EACH ROW "
        f"WHEN (current_setting('{UNANNOUNCED_SETTING}', true) IS DISTINCT FROM NEW.code) "
        "EXECUTE FUNCTION shortener_link_changed()"
    )


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("DROP TRIGGER link_changed_insert ON link")
        db.execute_sql("DROP TRIGGER link_changed_delete ON link")
        db.execute_sql(
            "CREATE TRIGGER link_changed_insert_delete AFTER INSERT OR DELETE ON link "
            "FOR EACH ROW EXECUTE FUNCTION shortener_link_changed()"
        )
        db.execute_sql("DROP TRIGGER link_deleted_clicks ON link")
        db.execute_sql("DROP FUNCTION shortener_link_deleted()")
        for table in CLICK_TABLES:
            db.execute_sql(
                f"DELETE FROM {table} AS t WHERE NOT EXISTS (SELECT 1 FROM link WHERE link.id = t.link_id)"  # noqa: S608
            )
            # Checks every existing row; writes to link and the click tables wait meanwhile.
            db.execute_sql(
                f"ALTER TABLE {table} ADD CONSTRAINT {table}_link_id_fkey FOREIGN KEY (link_id) "
                "REFERENCES link (id) ON DELETE CASCADE"
            )
    db.execute_sql("CREATE INDEX IF NOT EXISTS link_owner_id ON link (owner_id)")
