"""Create the link table."""

from peewee import BigAutoField, CharField, DateTimeField, Model, TextField


class TimestampTZ(DateTimeField):
    field_type = "TIMESTAMPTZ"


def up(migrator, db):
    class Link(Model):  # frozen copy: later model changes must not alter this migration
        id = BigAutoField()
        code = CharField(max_length=64, unique=True)
        target_url = TextField()
        created_at = TimestampTZ()

        class Meta:
            database = db
            table_name = "link"

    db.create_tables([Link])


def down(migrator, db):
    db.execute_sql("DROP TABLE link")
