"""Users, API keys, and the link lifecycle columns (owner, title, expiry, limits, state)."""

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
)


class TimestampTZ(DateTimeField):
    field_type = "TIMESTAMPTZ"


def up(migrator, db):
    class User(Model):  # frozen copies: later model changes must not alter this migration
        id = BigAutoField()
        name = CharField(max_length=100, unique=True)
        role = CharField(max_length=16, default="user")
        created_at = TimestampTZ()

        class Meta:
            database = db
            table_name = "app_user"

    class ApiKey(Model):
        id = BigAutoField()
        user = ForeignKeyField(User, on_delete="CASCADE")
        name = CharField(max_length=100, default="")
        prefix = CharField(max_length=16)
        key_hash = CharField(max_length=64, unique=True)
        created_at = TimestampTZ()
        expires_at = TimestampTZ(null=True)
        revoked_at = TimestampTZ(null=True)
        last_used_at = TimestampTZ(null=True)

        class Meta:
            database = db
            table_name = "api_key"

    db.create_tables([User, ApiKey])
    migrator.migrate(
        migrator.add_column("link", "updated_at", TimestampTZ(null=True)),
        migrator.add_column(
            "link", "owner_id", ForeignKeyField(User, null=True, field=User.id, on_delete="SET NULL")
        ),
        migrator.add_column("link", "title", CharField(max_length=200, null=True)),
        migrator.add_column("link", "expires_at", TimestampTZ(null=True)),
        migrator.add_column("link", "max_clicks", BigIntegerField(null=True)),
        migrator.add_column("link", "redirect_type", IntegerField(null=True)),
        migrator.add_column("link", "is_active", BooleanField(default=True)),
        migrator.add_column("link", "click_count", BigIntegerField(default=0)),
        migrator.add_column("link", "deleted_at", TimestampTZ(null=True)),
    )
    db.execute_sql("UPDATE link SET updated_at = created_at")
    migrator.migrate(
        migrator.add_not_null("link", "updated_at"),
        migrator.add_index("link", ("owner_id", "id"), False),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index("link", "link_owner_id_id"),
        migrator.drop_index("link", "link_owner_id"),
        *[
            migrator.drop_column("link", column)
            for column in (
                "updated_at",
                "owner_id",
                "title",
                "expires_at",
                "max_clicks",
                "redirect_type",
                "is_active",
                "click_count",
                "deleted_at",
            )
        ],
    )
    db.execute_sql("DROP TABLE api_key")
    db.execute_sql("DROP TABLE app_user")
