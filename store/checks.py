"""Input checks every data-access method runs before SQL, so callers get one clear StoreError
naming the field instead of a driver error (and both backends refuse the same values)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from manifest.ids import id_problem
from store.errors import StoreError

MAX_KEY_LENGTH = 512


def check_id(value: object, what: str) -> str:
    problem = id_problem(value)
    if problem:
        raise StoreError(f"{what} {problem}")
    return value  # type: ignore[return-value]


def check_ids(**ids: str) -> None:
    """Each keyword is an id named by it: check_ids(tenant=..., app=...)."""
    for what, value in ids.items():
        check_id(value, f"{what} id")


def agent_columns(*, tenant: str, app: str, agent: str) -> dict[str, str]:
    """The checked owner columns of a row that belongs to one agent of an app of a tenant."""
    check_ids(tenant=tenant, app=app, agent=agent)
    return {"tenant_id": tenant, "app_id": app, "agent_id": agent}


def check_timezone(name: object) -> str:
    if isinstance(name, str) and name.strip():
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise StoreError(f"unknown timezone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'")


def check_choice(value: object, allowed: Iterable[str], what: str) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise StoreError(f"{what} must be one of {', '.join(sorted(allowed))} (got {value!r})")
    return value  # type: ignore[return-value]


def check_text(value: object, what: str, *, max_length: int | None = None, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise StoreError(f"{what} must be a string (got {type(value).__name__})")
    if not allow_empty and not value.strip():
        raise StoreError(f"{what} must not be empty")
    if max_length is not None and len(value) > max_length:
        raise StoreError(f"{what} must be at most {max_length} characters (got {len(value)})")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL; refuse it on every backend alike
        raise StoreError(f"{what} must not contain NUL characters")
    return value


def optional_text(value: object, what: str, *, max_length: int | None = None) -> str | None:
    return None if value is None else check_text(value, what, max_length=max_length, allow_empty=True)


def check_key(key: object) -> str:
    return check_text(key, "key", max_length=MAX_KEY_LENGTH)


def check_json(value: Any, what: str) -> Any:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} is not JSON-serialisable: {exc}") from None
    if "\\u0000" in text:  # PostgreSQL jsonb cannot hold NUL; refuse it on every backend alike
        raise StoreError(f"{what} must not contain NUL characters")
    return value


def check_aware(value: datetime | None, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise StoreError(f"{what} must be a datetime (got {type(value).__name__})")
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{what} must be timezone-aware (got naive {value.isoformat()})")
    return value


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise StoreError(f"limit must be a positive integer (got {limit!r})")
    return limit


def check_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StoreError(f"{what} must be a non-negative integer (got {value!r})")
    return value


def check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise StoreError(f"{what} must be true or false (got {value!r})")
    return value


def check_int_ids(ids: object, what: str) -> list[int]:
    if not isinstance(ids, list | tuple) or any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
        raise StoreError(f"{what} must be a list of integers (got {ids!r})")
    return sorted(set(ids))
