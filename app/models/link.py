"""A short link: a code that redirects to a target URL, with its lifecycle."""

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from app.db import BaseModel, UTCDateTimeField, utcnow
from app.models.user import User

MAX_CODE_LENGTH = 64


class Link(BaseModel):
    """One short code and the URL it redirects to.

    A deleted link keeps its row (as a tombstone without target or title) so that its code is never
    handed out again.
    """

    id = BigAutoField()
    code = CharField(max_length=MAX_CODE_LENGTH, unique=True)
    target_url = TextField()
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)
    # No index of its own: (owner, id) below serves every lookup by owner (migration 0005).
    owner = ForeignKeyField(User, null=True, backref="links", on_delete="SET NULL", index=False)
    title = CharField(max_length=200, null=True)
    expires_at = UTCDateTimeField(null=True)
    max_clicks = BigIntegerField(null=True)
    redirect_type = IntegerField(null=True)
    is_active = BooleanField(default=True)
    click_count = BigIntegerField(default=0)  # every recorded click, bots included
    human_click_count = BigIntegerField(default=0)  # what max_clicks counts
    deleted_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("owner", "id"), False),)
