"""Database settings: where the store lives, read from the environment and checked up front.

`HEARTBEATS_DATABASE_URL` accepts the plain URLs people copy around (`sqlite:///path`,
`postgresql://...`, `postgres://...`); they are rewritten to the async drivers the store uses.
Anything else is refused rather than guessed at (fail closed).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from store.errors import DatabaseUrlError

DEFAULT_SQLITE_PATH = Path(".data") / "heartbeats.db"

# Plain scheme (what users type) -> the async driver the store runs on.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def normalize_database_url(url: str) -> str:
    """Return `url` rewritten for an async driver; raise DatabaseUrlError for anything unsupported.

    >>> normalize_database_url("sqlite:///x.db")
    'sqlite+aiosqlite:///x.db'
    >>> normalize_database_url("postgres://u@h/db")
    'postgresql+asyncpg://u@h/db'
    """
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise DatabaseUrlError(
            f"database URL {_redact(text)!r} has no scheme;"
            " use sqlite:///path/to/file.db or postgresql://user@host/db"
        )
    driver = _ASYNC_DRIVERS.get(scheme.lower())
    if driver is None:
        supported = ", ".join(sorted({s.split("+")[0] for s in _ASYNC_DRIVERS}))
        raise DatabaseUrlError(
            f"unsupported database URL scheme {scheme!r} (supported: {supported});"
            " use sqlite:///path/to/file.db or postgresql://user@host/db"
        )
    normalized = f"{driver}://{rest}"
    try:
        make_url(normalized)
    except ArgumentError as exc:
        raise DatabaseUrlError(f"cannot parse database URL {_redact(text)!r}: {exc}") from None
    return normalized


def default_database_url() -> str:
    """The SQLite file `.data/heartbeats.db` under the current working directory."""
    return f"sqlite+aiosqlite:///{(Path.cwd() / DEFAULT_SQLITE_PATH).as_posix()}"


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL, or None for PostgreSQL and in-memory SQLite."""
    parsed: URL = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


class DatabaseSettings(BaseSettings):
    """Where the store lives. `database_url` is always an async-driver URL once validated."""

    model_config = SettingsConfigDict(env_prefix="HEARTBEATS_", extra="ignore")

    database_url: str | None = None

    @field_validator("database_url")
    @classmethod
    def _supported_url(cls, value: str | None) -> str | None:
        # Empty means "not set": fall back to the default file rather than fail on `VAR=`.
        if value is None or not value.strip():
            return None
        return normalize_database_url(value)

    def resolved_url(self) -> str:
        """The configured URL, or the default SQLite file (resolved against the cwd now)."""
        return self.database_url or default_database_url()


def resolve_database_url(url: str | None = None) -> str:
    """An explicit `url` wins; otherwise HEARTBEATS_DATABASE_URL; otherwise the default file."""
    if url is not None:
        return normalize_database_url(url)
    try:
        settings = DatabaseSettings()
    except ValidationError as exc:
        # Surface the validator's own message, not pydantic's multi-line report.
        message = exc.errors()[0].get("ctx", {}).get("error") or exc.errors()[0]["msg"]
        raise DatabaseUrlError(f"HEARTBEATS_DATABASE_URL: {message}") from None
    return settings.resolved_url()


def _redact(url: str) -> str:
    """Hide a password before a URL goes into an error message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url
