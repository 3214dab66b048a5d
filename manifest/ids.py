"""Identifier rules shared by tenants, apps, agents and heartbeat slugs.

Workflow IDs are `heartbeat:{tenant}:{app}:{agent}:{slug}`, so every part must be free of `:`,
lowercase and letter-first: the ID stays unambiguous and easy to type in a shell.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 63
ID_PATTERN = re.compile(r"[a-z][a-z0-9_-]*")


def id_problem(value: object) -> str | None:
    """Why `value` is not a valid identifier, or None when it is."""
    if not isinstance(value, str):
        return f"must be a string (got {value!r})"
    if not value:
        return "must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters (got {len(value)})"
    if not ID_PATTERN.fullmatch(value):
        return (
            "must be lowercase letters, digits, '_' or '-', starting with a letter"
            f" (got {value!r})"
        )
    return None


WORKFLOW_ID_PREFIX = "heartbeat"


def parse_workflow_id(value: str) -> tuple[str, str, str, str]:
    """(tenant, app, agent, slug) of a heartbeat workflow ID; ValueError if it is not one."""
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 5 or parts[0] != WORKFLOW_ID_PREFIX or any(id_problem(p) for p in parts[1:]):
        raise ValueError(
            f"not a heartbeat workflow ID: {value!r} (expected heartbeat:TENANT:APP:AGENT:SLUG)"
        )
    return parts[1], parts[2], parts[3], parts[4]
