"""Click analytics: raw click events, hourly rollups, daily visitors and the daily visitor salt."""

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    DateField,
    ForeignKeyField,
)

from app.db import BaseModel, UTCDateTimeField
from app.models.link import Link


class Click(BaseModel):
    """One redirect answered with a 3xx. No IP address is stored, only a daily-salted visitor hash."""

    id = BigAutoField()
    link = ForeignKeyField(Link, on_delete="CASCADE", index=False)
    clicked_at = UTCDateTimeField()
    referrer_host = CharField(max_length=255, default="")
    browser = CharField(max_length=64, default="")
    os = CharField(max_length=64, default="")
    device = CharField(max_length=16, default="")
    is_bot = BooleanField(default=False)
    visitor_hash = CharField(max_length=32)

    class Meta:
        indexes = ((("link", "clicked_at"), False),)


class ClickRollup(BaseModel):
    """Clicks per link, hour and dimension values: what the stats read instead of raw clicks."""

    link = ForeignKeyField(Link, on_delete="CASCADE", index=False)
    hour = UTCDateTimeField()
    referrer_host = CharField(max_length=255, default="")
    browser = CharField(max_length=64, default="")
    os = CharField(max_length=64, default="")
    device = CharField(max_length=16, default="")
    is_bot = BooleanField(default=False)
    clicks = BigIntegerField(default=0)

    class Meta:
        primary_key = CompositeKey("link", "hour", "referrer_host", "browser", "os", "device", "is_bot")
        indexes = ((("hour",), False),)  # site-wide stats over a window


class DailyVisitor(BaseModel):
    """One row per link, UTC day and visitor hash: unique visitors without any IP address."""

    link = ForeignKeyField(Link, on_delete="CASCADE", index=False)
    day = DateField()
    visitor_hash = CharField(max_length=32)

    class Meta:
        primary_key = CompositeKey("link", "day", "visitor_hash")
        indexes = ((("day",), False),)  # site-wide unique visitors over a window


class VisitorSalt(BaseModel):
    """The secret salt of one UTC day, shared by every process; deleted after two days."""

    day = DateField(primary_key=True)
    salt = CharField(max_length=64)
