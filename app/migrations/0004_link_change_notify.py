"""PostgreSQL: announce every change that affects a redirect on channel `shortener_link_changed`.

Every process listens (`app/services/link_events.py`) and drops the code from its redirect cache.
The trigger fires for any writer (API, CLI, a DBA's UPDATE), and NOTIFY is delivered only when the
transaction commits. Click counter updates do not fire it: they would invalidate every popular link
on every flush. `TRUNCATE` sends nothing (restart the service after one). SQLite has no
notifications; its caches rely on their TTL.
"""

from peewee import PostgresqlDatabase

CHANNEL = "shortener_link_changed"
REDIRECT_COLUMNS = (
    "code",
    "target_url",
    "redirect_type",
    "is_active",
    "expires_at",
    "max_clicks",
    "deleted_at",
)


def up(migrator, db):
    if not isinstance(db, PostgresqlDatabase):
        return
    db.execute_sql(
        f"""
        CREATE FUNCTION shortener_link_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                PERFORM pg_notify('{CHANNEL}', OLD.code);
            END IF;
            IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.code IS DISTINCT FROM OLD.code) THEN
                PERFORM pg_notify('{CHANNEL}', NEW.code);  -- a new code, or a renamed one
            END IF;
            RETURN NULL;
        END $$
        """
    )
    changed = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in REDIRECT_COLUMNS)
    db.execute_sql(
        "CREATE TRIGGER link_changed_insert_delete AFTER INSERT OR DELETE ON link "
        "FOR EACH ROW EXECUTE FUNCTION shortener_link_changed()"
    )
    db.execute_sql(
        f"CREATE TRIGGER link_changed_update AFTER UPDATE ON link FOR EACH ROW WHEN ({changed}) "
        "EXECUTE FUNCTION shortener_link_changed()"
    )


def down(migrator, db):
    if not isinstance(db, PostgresqlDatabase):
        return
    db.execute_sql("DROP TRIGGER link_changed_update ON link")
    db.execute_sql("DROP TRIGGER link_changed_insert_delete ON link")
    db.execute_sql("DROP FUNCTION shortener_link_changed()")
