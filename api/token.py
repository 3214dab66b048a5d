"""The API token: from HEARTBEATS_API_TOKEN, or generated at first start and kept in a file only its
owner can read (mode 0600), so later starts reuse it."""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from api.settings import ApiSettings
from contract.errors import ConfigurationError

TOKEN_BYTES = 32  # token_urlsafe(32): 43 characters, 256 bits


class TokenSource(StrEnum):
    ENVIRONMENT = "environment"  # HEARTBEATS_API_TOKEN
    FILE = "file"                # generated at an earlier start
    GENERATED = "generated"      # generated now: shown to the operator once


@dataclass(frozen=True)
class ApiToken:
    value: str
    source: TokenSource
    path: Path | None  # the token file, unless the token came from the environment

    def matches(self, given: str | None) -> bool:
        """Whether `given` is this token; constant time, so timing tells nothing about it."""
        return given is not None and hmac.compare_digest(given.encode(), self.value.encode())

    def __repr__(self) -> str:  # never print the value by accident
        return f"ApiToken(source={self.source.value!r}, path={self.path!r})"


def resolve_token(settings: ApiSettings) -> ApiToken:
    """The environment's token, else the token file's, else a new one written to the token file."""
    if settings.token is not None:
        return ApiToken(settings.token.get_secret_value(), TokenSource.ENVIRONMENT, None)
    path = settings.token_file
    existing = _read_token_file(path)
    if existing is not None:
        return ApiToken(existing, TokenSource.FILE, path)
    value, generated = _write_new_token(path)
    return ApiToken(value, TokenSource.GENERATED if generated else TokenSource.FILE, path)


def _read_token_file(path: Path) -> str | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the API token file {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        # As ssh does with keys: a token others can read is no secret.
        raise ConfigurationError(
            f"the API token file {path} is readable by others (mode {stat.S_IMODE(info.st_mode):04o});"
            f" run: chmod 600 {path}")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the API token file {path}: {exc}") from None
    if not value:
        raise ConfigurationError(f"the API token file {path} is empty; delete it to have a new token generated")
    return value


def _write_new_token(path: Path) -> tuple[str, bool]:
    """Write a new token to `path`: (it, True); when another process wrote one first, (theirs, False)."""
    value = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name, then linked into place: `link` fails when the file
        # exists, so two first starts at once agree on one token and nobody reads a half-written file.
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, (value + "\n").encode())
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            existing = _read_token_file(path)
            if existing is None:  # pragma: no cover - deleted again in between
                raise
            return existing, False
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the API token file {path}: {exc.strerror or exc}") from None
    return value, True
