"""The store's exceptions, part of the project's error hierarchy (contract.errors)."""

from __future__ import annotations

from contract.errors import ConfigurationError, InvalidInput, NotFound


class StoreError(InvalidInput):
    """A request the store refuses; the message says what to fix."""


class DatabaseUrlError(StoreError, ConfigurationError):
    """The database URL is missing a supported scheme or cannot be parsed."""


class NotFoundError(StoreError, NotFound):
    """A row the request depends on does not exist for this tenant."""
