"""Peewee models, one module per table."""

from app.models.api_key import ApiKey
from app.models.click import Click, ClickRollup, DailyVisitor, VisitorSalt
from app.models.link import Link
from app.models.user import User

ALL_MODELS = (User, ApiKey, Link, Click, ClickRollup, DailyVisitor, VisitorSalt)

__all__ = ["ALL_MODELS", "ApiKey", "Click", "ClickRollup", "DailyVisitor", "Link", "User", "VisitorSalt"]
