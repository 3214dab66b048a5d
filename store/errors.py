"""The store's exceptions: one small hierarchy of ValueErrors (callers catch input mistakes)."""

from __future__ import annotations


class StoreError(ValueError):
    """A request the store refuses; the message says what to fix."""


class DatabaseUrlError(StoreError):
    """The database URL is missing a supported scheme or cannot be parsed."""


class NotFoundError(StoreError):
    """A row the request depends on does not exist for this tenant."""
