"""Store results in their JSON form (what the CLI prints and tools return), for comparing with literals."""

from __future__ import annotations

from typing import Any


def jsonable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value.to_json() if hasattr(value, "to_json") else value
