"""The HTTP server's settings, from the environment, checked before the server starts.

    HEARTBEATS_API_TOKEN              the bearer token (unset: generated once, kept in the token file)
    HEARTBEATS_API_TOKEN_FILE         where a generated token is kept (default .data/api-token)
    HEARTBEATS_API_RATE_PER_SECOND    requests per second per (tenant, app) (default 100)
    HEARTBEATS_API_RATE_BURST         requests one app may send at once before the rate applies (default 200)
    HEARTBEATS_API_HANDLER_RATE_PER_SECOND  chat and inbound messages per second per agent (default 2)
    HEARTBEATS_API_HANDLER_RATE_BURST       chat and inbound messages one agent may get at once (default 20)
    HEARTBEATS_API_CHAT_WAIT_SECONDS  how long a chat request waits for the reply before 504 (default 60)
    HEARTBEATS_API_TEMPORAL_UI_URL    the Temporal web UI the dashboard links each workflow to
                                      (default http://127.0.0.1:8233, the local server's)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.errors import ConfigurationError
from contract.handlers import DEFAULT_CHAT_WAIT_SECONDS

# Beside the store's default SQLite file (.data/heartbeats.db).
DEFAULT_TOKEN_FILE = Path(".data") / "api-token"
# Request bodies above this are refused (413) before any handler runs.
MAX_BODY_BYTES = 256 * 1024


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEARTBEATS_API_", extra="ignore")

    token: SecretStr | None = None
    token_file: Path = DEFAULT_TOKEN_FILE
    rate_per_second: float = Field(default=100.0, gt=0)
    rate_burst: int = Field(default=200, ge=1)
    # Each chat or inbound message is an LLM turn: a tighter allowance per agent, on top of the app's.
    handler_rate_per_second: float = Field(default=2.0, gt=0)
    handler_rate_burst: int = Field(default=20, ge=1)
    chat_wait_seconds: float = Field(default=DEFAULT_CHAT_WAIT_SECONDS, ge=1, le=600)
    temporal_ui_url: str = Field(default="http://127.0.0.1:8233", pattern=r"^https?://[^\s\"'<>]+$")

    @field_validator("token")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # `HEARTBEATS_API_TOKEN=` means "not set", not "the empty token".
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())


def load_settings(**overrides: object) -> ApiSettings:
    """The settings from the environment, `overrides` (not None) winning; ConfigurationError naming
    the variable when one is invalid."""
    try:
        return ApiSettings(**{name: value for name, value in overrides.items() if value is not None})
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else "?"
        raise ConfigurationError(f"HEARTBEATS_API_{field.upper()}: {problem['msg']}") from None
