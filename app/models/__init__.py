"""Peewee models, one module per table."""

from app.models.api_key import ApiKey
from app.models.link import Link
from app.models.user import User

ALL_MODELS = (User, ApiKey, Link)

__all__ = ["ALL_MODELS", "ApiKey", "Link", "User"]
