"""Peewee models, one module per table."""

from app.models.link import Link

ALL_MODELS = (Link,)

__all__ = ["ALL_MODELS", "Link"]
