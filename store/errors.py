"""The store's exceptions, part of the project's error hierarchy (contract.errors)."""

from __future__ import annotations

from contract.errors import ConfigurationError, Conflict, InvalidInput, NotFound


class StoreError(InvalidInput):
    """A request the store refuses; the message says what to fix."""


class DatabaseUrlError(StoreError, ConfigurationError):
    """The database URL is missing a supported scheme or cannot be parsed."""


class NotFoundError(StoreError, NotFound):
    """A row the request depends on does not exist for this tenant."""


class VersionConflict(Conflict):
    """A versioned write found another latest version than the one it was based on: someone else
    wrote in between. Read again and retry."""

    def __init__(self, message: str, *, latest: int) -> None:
        super().__init__(message)
        self.latest = latest
