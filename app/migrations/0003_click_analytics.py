"""Click analytics: raw clicks, hourly rollups, daily visitors, visitor salts, human click counter."""

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    DateField,
    DateTimeField,
    ForeignKeyField,
    Model,
)


class TimestampTZ(DateTimeField):
    field_type = "TIMESTAMPTZ"


def up(migrator, db):
    class Link(Model):  # frozen stub: only what the foreign keys need
        id = BigAutoField()

        class Meta:
            database = db
            table_name = "link"

    class Click(Model):
        id = BigAutoField()
        link = ForeignKeyField(Link, on_delete="CASCADE", index=False)
        clicked_at = TimestampTZ()
        referrer_host = CharField(max_length=255, default="")
        browser = CharField(max_length=64, default="")
        os = CharField(max_length=64, default="")
        device = CharField(max_length=16, default="")
        is_bot = BooleanField(default=False)
        visitor_hash = CharField(max_length=32)

        class Meta:
            database = db
            table_name = "click"
            indexes = ((("link", "clicked_at"), False),)

    class ClickRollup(Model):
        link = ForeignKeyField(Link, on_delete="CASCADE", index=False)
        hour = TimestampTZ()
        referrer_host = CharField(max_length=255, default="")
        browser = CharField(max_length=64, default="")
        os = CharField(max_length=64, default="")
        device = CharField(max_length=16, default="")
        is_bot = BooleanField(default=False)
        clicks = BigIntegerField(default=0)

        class Meta:
            database = db
            table_name = "click_rollup"
            primary_key = CompositeKey("link", "hour", "referrer_host", "browser", "os", "device", "is_bot")
            indexes = ((("hour",), False),)

    class DailyVisitor(Model):
        link = ForeignKeyField(Link, on_delete="CASCADE", index=False)
        day = DateField()
        visitor_hash = CharField(max_length=32)

        class Meta:
            database = db
            table_name = "daily_visitor"
            primary_key = CompositeKey("link", "day", "visitor_hash")
            indexes = ((("day",), False),)

    class VisitorSalt(Model):
        day = DateField(primary_key=True)
        salt = CharField(max_length=64)

        class Meta:
            database = db
            table_name = "visitor_salt"

    db.create_tables([Click, ClickRollup, DailyVisitor, VisitorSalt])
    migrator.migrate(migrator.add_column("link", "human_click_count", BigIntegerField(default=0)))
    # Clicks counted before this migration cannot be told apart: count them as human.
    db.execute_sql("UPDATE link SET human_click_count = click_count")


def down(migrator, db):
    migrator.migrate(migrator.drop_column("link", "human_click_count"))
    for table in ("visitor_salt", "daily_visitor", "click_rollup", "click"):
        db.execute_sql(f"DROP TABLE {table}")
