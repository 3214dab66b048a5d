"""The manifest's JSON Schema, for editors (completion, inline errors) and other tools."""

from __future__ import annotations

import json
from typing import Any

from manifest.app import AppManifest
from manifest.models import MAX_INTERVAL_MINUTES

SCHEMA_ID = "https://agent-heartbeats.dev/manifest.schema.json"


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema of the manifest, the shorthand forms (cron:, cooldown_minutes:, "HH:MM-HH:MM") included."""
    schema = AppManifest.model_json_schema(mode="validation")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
    heartbeat = schema["$defs"]["HeartbeatSpec"]["properties"]
    # The loader accepts these and normalises them; editors must not flag them.
    heartbeat["cron"] = {"type": "string", "description": "Shorthand: cron: EXPR means schedule_type cron."}
    heartbeat["cooldown_minutes"] = {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_INTERVAL_MINUTES,
        "description": "Shorthand for cooldown_seconds = 60 * cooldown_minutes.",
    }
    for window in ("active_hours", "business_hours"):
        heartbeat[window] = _window_or_shorthand(heartbeat[window])
    task = schema["$defs"]["TaskSpec"]["properties"]
    task["cooldown_minutes"] = heartbeat["cooldown_minutes"]
    task["active_hours"] = _window_or_shorthand(task["active_hours"])
    schedule_trigger = schema["$defs"]["ScheduleTrigger"]["properties"]
    schedule_trigger["cron"] = {"type": "string", "description": "Shorthand for cron_expression."}
    poll = schema["$defs"]["HeartbeatTrigger"]["properties"]
    poll["business_hours"] = _window_or_shorthand(poll["business_hours"])
    return schema


def _window_or_shorthand(field: dict[str, Any]) -> dict[str, Any]:
    """An optional window field that also takes the "HH:MM-HH:MM" string the loader accepts."""
    return {
        "anyOf": [
            {"$ref": "#/$defs/Window"},
            {"type": "string", "pattern": r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$",
             "description": 'Shorthand "HH:MM-HH:MM" in the tenant\'s timezone.'},
            {"type": "null"},
        ],
        "default": None,
        "description": field.get("description", ""),
    }


def manifest_json_schema_text() -> str:
    """The schema as the text kept in manifest.schema.json."""
    return json.dumps(manifest_json_schema(), indent=2, sort_keys=False) + "\n"
