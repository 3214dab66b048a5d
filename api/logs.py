"""The server's logging: uvicorn's usual lines, with tokens in query strings redacted.

The dashboard's login link carries the token in its query string (`/login?token=...`), and
uvicorn's access log writes every request line. Both of uvicorn's handlers pass each record
through `RedactTokens` first, so no log line ever holds a token.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

# `token=...` as a query parameter, up to the next parameter, space or quote.
_TOKEN_IN_QUERY = re.compile(r"([?&;]token=)[^&;\s\"']*", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _TOKEN_IN_QUERY.sub(rf"\g<1>{REDACTED}", text)


class RedactTokens(logging.Filter):
    """Rewrites `token=` query values in a record's message and arguments; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: redact(value) if isinstance(value, str) else value for key, value in record.args.items()}
        return True


def log_config(*, access_log: bool = True) -> dict[str, Any]:
    """uvicorn's logging configuration with the redacting filter on each of its handlers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": RedactTokens}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_tokens"]
    if not access_log:
        config["loggers"]["uvicorn.access"]["level"] = "WARNING"
    return config
