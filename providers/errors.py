"""SDK exceptions -> ApplicationError with a stable type, and the redaction that keeps keys out of them.

Classification (the SDKs retry nothing: every client has max_retries=0, Temporal owns retries):

- 401, 403                      -> ProviderAuthError, non-retryable
- 408, 409, 429, 5xx (incl. 529) -> ProviderUnavailable, retryable, next_retry_delay from
                                   `retry-after-ms` / `retry-after` (seconds or HTTP date), capped
- any other 4xx (400, 404, 413, 422, ...) -> ProviderBadRequest, non-retryable
- timeouts, connection errors, a malformed response body -> ProviderUnavailable, retryable

Non-retryable failures end the tick as `failed` and count toward the five-failure disable;
retryable ones are retried by the activity's retry policy first.
"""

from __future__ import annotations

import email.utils
import math
import os
import re
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio.exceptions import ApplicationError

from contract.llm import (
    ERROR_PROVIDER_AUTH,
    ERROR_PROVIDER_BAD_REQUEST,
    ERROR_PROVIDER_NOT_CONFIGURED,
    ERROR_PROVIDER_UNAVAILABLE,
)

MAX_RETRY_AFTER_SECONDS = 120.0  # a server asking for longer gets this; the retry policy backs off after
MAX_ERROR_MESSAGE_CHARS = 500
RETRYABLE_STATUSES = frozenset({408, 409, 429})
AUTH_STATUSES = frozenset({401, 403})

# Variables whose values must never appear in an error message.
_SECRET_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "OPENAI_ADMIN_KEY")
# Key-shaped tokens (sk-..., sk-ant-..., sk-proj-..., masked "sk-abc***xyz"), whatever their source:
# OpenAI's 401 body quotes part of the key it was given.
_KEY_SHAPED = re.compile(r"\bsk-[A-Za-z0-9_\-*.]{3,}")
_BEARER = re.compile(r"(?i)(bearer\s+|x-api-key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+")
REDACTED = "[redacted]"


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every given secret, every key in the environment and every key-shaped token removed."""
    values = {s for s in secrets if s} | {v for name in _SECRET_VARS if (v := os.environ.get(name, "").strip())}
    for value in sorted(values, key=len, reverse=True):  # longest first: a key containing another
        if len(value) >= 4:
            text = text.replace(value, REDACTED)
    text = _KEY_SHAPED.sub(REDACTED, text)
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date), or None.

    Non-positive, unparsable and non-finite values give None; large ones are capped at
    MAX_RETRY_AFTER_SECONDS.
    """
    if not headers:
        return None
    delay: float | None = None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            delay = float(value) / divisor
            break
        except ValueError:
            if name == "retry-after":
                delay = _http_date_delay(value, now=now)
    if delay is None or math.isnan(delay) or delay <= 0:
        return None
    return min(delay, MAX_RETRY_AFTER_SECONDS)


def _http_date_delay(value: str, *, now: float | None) -> float | None:
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return float(email.utils.mktime_tz(parsed) - (time.time() if now is None else now))
    except (TypeError, ValueError, OverflowError):
        return None


def status_error(
    provider: str, *, status: int, api_message: str | None, headers: Mapping[str, str] | None, key: str | None
) -> ApplicationError:
    """The ApplicationError for an HTTP error status from `provider`."""
    detail = redact(" ".join((api_message or "").split()), key)[:MAX_ERROR_MESSAGE_CHARS]
    message = f"{provider} answered HTTP {status}" + (f": {detail}" if detail else "")
    details = {"provider": provider, "status": status}
    if status in AUTH_STATUSES:
        hint = " (check the API key)" if status == 401 else " (the key may lack access to this model)"
        return ApplicationError(message + hint, details, type=ERROR_PROVIDER_AUTH, non_retryable=True)
    if status in RETRYABLE_STATUSES or status >= 500:
        delay = parse_retry_after(headers)
        return ApplicationError(
            message,
            details,
            type=ERROR_PROVIDER_UNAVAILABLE,
            next_retry_delay=None if delay is None else timedelta(seconds=delay),
        )
    return ApplicationError(message, details, type=ERROR_PROVIDER_BAD_REQUEST, non_retryable=True)


def unavailable(provider: str, what: str) -> ApplicationError:
    """A retryable failure that had no HTTP status (timeout, connection, malformed response)."""
    return ApplicationError(
        f"{provider}: {redact(what)[:MAX_ERROR_MESSAGE_CHARS]}",
        {"provider": provider},
        type=ERROR_PROVIDER_UNAVAILABLE,
    )


def not_configured(provider: str, what: str) -> ApplicationError:
    return ApplicationError(
        f"{provider}: {redact(what)[:MAX_ERROR_MESSAGE_CHARS]}",
        {"provider": provider},
        type=ERROR_PROVIDER_NOT_CONFIGURED,
        non_retryable=True,
    )


def api_error_message(body: Any) -> str | None:
    """The human-readable message of an error body in either wire format.

    Anthropic: {"type": "error", "error": {"type", "message"}}; OpenAI: {"error": {"message", ...}}
    (the OpenAI SDK hands over the inner object). Non-JSON bodies come as text.
    """
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(inner, str):
            return inner
        return None
    if isinstance(body, str):
        return body
    return None


def map_sdk_error(provider: str, exc: Exception, sdk: Any, *, key: str | None) -> ApplicationError | None:
    """The ApplicationError for an exception of the `anthropic` or `openai` module `sdk`, else None.

    Both SDKs share the class names used here. Order matters: APITimeoutError is an
    APIConnectionError, and APIResponseValidationError is neither a status nor a connection error.
    """
    if isinstance(exc, sdk.APIStatusError):
        response = getattr(exc, "response", None)
        headers = response.headers if response is not None else None  # case-insensitive mapping
        return status_error(
            provider, status=exc.status_code, api_message=api_error_message(exc.body), headers=headers, key=key
        )
    if isinstance(exc, sdk.APITimeoutError):
        return unavailable(provider, "the request timed out")
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__
        reason = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        return unavailable(provider, f"could not connect to the API{reason}")
    if isinstance(exc, sdk.APIResponseValidationError):
        return unavailable(provider, f"the API answered with a malformed body (HTTP {exc.status_code})")
    return None
