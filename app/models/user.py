"""People (or systems) that own links and API keys."""

from peewee import BigAutoField, CharField

from app.db import BaseModel, UTCDateTimeField, utcnow

ROLES = ("admin", "user")


class User(BaseModel):
    """An account; `role` is `admin` (everything) or `user` (own links and keys)."""

    id = BigAutoField()
    name = CharField(max_length=100, unique=True)
    role = CharField(max_length=16, default="user")
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "app_user"  # "user" is a reserved word in PostgreSQL
