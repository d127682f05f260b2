"""A short link: a code that redirects to a target URL."""

from peewee import BigAutoField, CharField, TextField

from app.db import BaseModel, UTCDateTimeField, utcnow

MAX_CODE_LENGTH = 64


class Link(BaseModel):
    """One short code and the URL it redirects to."""

    id = BigAutoField()
    code = CharField(max_length=MAX_CODE_LENGTH, unique=True)
    target_url = TextField()
    created_at = UTCDateTimeField(default=utcnow)
