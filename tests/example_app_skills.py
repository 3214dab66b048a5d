"""The `x_api` skill of docs/skills.md, loadable with HEARTBEATS_SKILL_MODULES=example_app_skills.

Same shape as the documented example, with the network replaced by the app's kv so tests run
offline: mentions are read from kv keys `mention:{id}`, posts are written to kv keys `x_post:{key}`.
"""

from __future__ import annotations

from typing import Any

from skills import Skill, SkillContext, ToolSpec


async def search_mentions(ctx: SkillContext, args: dict[str, Any]) -> list[dict[str, Any]]:
    # LOW: reads only. As a heartbeat pre-filter, an empty list means "nothing to do".
    entries = await ctx.store.kv.list(tenant=ctx.tenant, app=ctx.app, prefix="mention:", include_values=True,
                                      limit=args.get("limit", 20))
    items = [entry.to_json() for entry in entries]
    query = args["query"].lower()
    return [item["value"] for item in items
            if isinstance(item["value"], dict) and query in str(item["value"].get("text", "")).lower()]


async def post(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    # HIGH: an effect outside the platform. Keyed on the call's idempotency key: a retried call
    # finds its post and does not post twice.
    if not ctx.idempotency_key:
        raise ValueError("x_api.post needs an idempotency key")
    key = f"x_post:{ctx.idempotency_key}"
    existing = await ctx.store.kv.get(tenant=ctx.tenant, app=ctx.app, key=key)
    if existing is None:
        await ctx.store.kv.set(tenant=ctx.tenant, app=ctx.app, key=key, value={"text": args["text"]})
    return {"posted": True, "duplicate": existing is not None}


def skills() -> list[Skill]:
    return [
        Skill(
            name="x_api",
            description="The org's X (Twitter) account.",
            tools={
                "search_mentions": ToolSpec(
                    name="search_mentions",
                    risk="LOW",
                    description="Recent mentions of the account whose text contains `query`.",
                    parameters={
                        "type": "object",
                        "properties": {
                            "query": {"type": "string"},
                            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                        "required": ["query"],
                        "additionalProperties": False,
                    },
                    handler=search_mentions,
                ),
                "post": ToolSpec(
                    name="post",
                    risk="HIGH",
                    description="Publish a post (at most 280 characters).",
                    parameters={
                        "type": "object",
                        "properties": {"text": {"type": "string", "maxLength": 280}},
                        "required": ["text"],
                        "additionalProperties": False,
                    },
                    handler=post,
                ),
            },
        )
    ]
