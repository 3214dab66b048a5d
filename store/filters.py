"""Equality filters on top-level fields of record data, compiled to SQL for each backend.

Both backends follow JSON's types, not SQL's: `True` never equals `1`, `"1"` never equals `1`,
numbers compare by value (`1 == 1.0`), and `None` matches only an explicit JSON `null` (a missing
field does not match). Only records whose data is a JSON object are ever returned.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, func, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from store.errors import StoreError

Scalar = str | int | float | bool | None

FILTER_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT64 = range(-(2**63), 2**63)


def check_filters(filters: Mapping[str, Any]) -> dict[str, Scalar]:
    """Return `filters` as a dict after checking every key and value; raise StoreError otherwise."""
    if not isinstance(filters, Mapping):
        raise StoreError(
            f"filters must be a mapping of field to value (got {type(filters).__name__})"
        )
    for key, value in filters.items():
        if not isinstance(key, str) or not FILTER_KEY.fullmatch(key):
            raise StoreError(
                f"filter field {key!r} is not allowed: use a top-level field name"
                " matching [A-Za-z_][A-Za-z0-9_]*"
            )
        _check_scalar(key, value)
    return dict(filters)


def _check_scalar(key: str, value: Any) -> None:
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        # SQLite integers are 64-bit; a larger bound value would fail inside the driver.
        if value not in _INT64:
            raise StoreError(f"filter {key}: integer {value} is out of the 64-bit range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StoreError(f"filter {key}: {value} is not a JSON number")
        return
    raise StoreError(
        f"filter {key}: value must be a string, number, boolean or null"
        f" (got {type(value).__name__})"
    )


def data_matches(column: Any, filters: dict[str, Scalar], dialect: str) -> ColumnElement[bool]:
    """A WHERE clause: `column` holds a JSON object whose fields equal every filter."""
    if dialect == "postgresql":
        clauses = [func.jsonb_typeof(column) == "object"]
        if filters:
            # jsonb containment already follows JSON types and numeric equality; with scalar values
            # at the top level it means exactly "these fields have these values". The GIN index on
            # `data` (jsonb_path_ops) serves it.
            clauses.append(type_coerce(column, JSONB).contains(filters))
        return and_(*clauses)
    if dialect == "sqlite":
        clauses = [func.json_type(column) == "object"]
        clauses += [_sqlite_field_equals(column, key, value) for key, value in filters.items()]
        return and_(*clauses)
    raise StoreError(f"record filters are not implemented for the {dialect!r} database")


def _sqlite_field_equals(column: Any, key: str, value: Scalar) -> ColumnElement[bool]:
    # json_extract() alone maps true to 1 and "1" to '1', so SQL's loose comparisons would mix
    # types; json_type() pins the JSON type first. The key is safe inside the path: FILTER_KEY.
    path = f"$.{key}"
    json_type = func.json_type(column, path)
    if value is None:
        return json_type == "null"
    if isinstance(value, bool):
        return json_type == ("true" if value else "false")
    extracted = func.json_extract(column, path)
    if isinstance(value, str):
        return and_(json_type == "text", extracted == value)
    # SQLite compares INTEGER and REAL numerically, so 1 matches 1.0.
    return and_(json_type.in_(("integer", "real")), extracted == value)
