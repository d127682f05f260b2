"""API keys: a secret shown once, stored only as its SHA-256 digest."""

from peewee import BigAutoField, CharField, ForeignKeyField

from app.db import BaseModel, UTCDateTimeField, utcnow
from app.models.user import User


class ApiKey(BaseModel):
    """One key of a user; `prefix` is the non-secret start shown in listings."""

    id = BigAutoField()
    user = ForeignKeyField(User, backref="api_keys", on_delete="CASCADE")
    name = CharField(max_length=100, default="")
    prefix = CharField(max_length=16)
    key_hash = CharField(max_length=64, unique=True)
    created_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField(null=True)
    revoked_at = UTCDateTimeField(null=True)
    last_used_at = UTCDateTimeField(null=True)
