"""One tool call of the agent turn (the TOOL_CALL activity's logic), and which skills an agent may use.

    allowed = await allowed_skills_for(store, tick.tenant, tick.app, tick.agent, definition=request.definition)
    result = await run_tool_call(store, skills, request, allowed_skills=allowed, now=datetime.now(UTC))

The model names a tool "{skill}__{tool}". What the model got wrong is its to fix, not a tick failure:
an unknown or malformed name, a skill the agent's manifest does not list in `tools`, arguments its
schema refuses, a handler raising an ordinary exception (or the store refusing a value) all come back
as `ToolResult(is_error=True)` with a message saying what to change, and the turn goes on.

What is wrong with the machinery propagates instead, so Temporal retries the activity: database and
connection faults (SQLAlchemy DBAPIError, the pool's TimeoutError, OSError) and ApplicationErrors
(e.g. a provider's 429 inside team.delegate is retryable; its 401 is not, and fails the tick).

Every call runs with a SkillContext scoped to the tick's tenant, app and agent, carrying the request's
idempotency key: a side-effecting tool retried with the same key does its effect once (see
skills.builtin). Results are JSON, capped at MAX_TOOL_RESULT_CHARS (a cut result says so).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.prefilter import INFRASTRUCTURE_ERRORS
from activities.shadow import in_shadow, shadow_case
from contract.llm import TOOL_NAME_SEPARATOR, tool_name
from contract.messages import MAX_TOOL_RESULT_CHARS, ToolCallRequest, ToolResult
from contract.ports import Workflows
from contract.shadow import ShadowAction, not_executed
from skills.registry import (
    InvalidArgumentsError,
    SkillContext,
    SkillError,
    SkillRegistry,
    check_arguments,
)
from store.errors import StoreError
from store.installed import installed_app
from store.store import Store

logger = logging.getLogger(__name__)

MAX_TOOL_ERROR_CHARS = 1_000


async def allowed_skills_for(
    store: Store, tenant: str, app: str, agent: str, *, definition: str | None = None
) -> list[str]:
    """The skills the agent lists in `tools` in the app as installed for the tenant (in the version
    `definition`, the manifest hash a turn is pinned to, when given); [] when the app is not
    installed for the tenant or has no such agent (then every tool call is refused)."""
    installed = await installed_app(store, tenant=tenant, app=app, manifest_hash=definition)
    spec = installed.agent(agent) if installed is not None else None
    return list(spec.tools) if spec is not None else []


async def run_tool_call(
    store: Store,
    skills: SkillRegistry,
    request: ToolCallRequest,
    *,
    allowed_skills: list[str],
    now: datetime,
    workflows: Workflows | None = None,
) -> ToolResult:
    """Run the tool the model asked for; an error result (not an exception) for the model's mistakes."""
    tick = request.tick
    skill_name, sep, tool_key = request.name.partition(TOOL_NAME_SEPARATOR)
    if not sep or not skill_name or not tool_key:
        return _error(
            f"{request.name!r} is not a tool name: tools are named skill__tool, e.g. records__query."
            f" Yours: {_offered(skills, allowed_skills)}"
        )
    if skill_name not in allowed_skills:
        return _error(
            f"tool {request.name!r} is not available to agent {tick.agent!r}: its skills are"
            f" {', '.join(allowed_skills) or 'none'}. Yours: {_offered(skills, allowed_skills)}"
        )
    try:
        spec = skills.tool(skill_name, tool_key)
    except SkillError as exc:
        return _error(f"{exc}. Yours: {_offered(skills, allowed_skills)}")
    try:
        args = check_arguments(spec, dict(request.arguments))
    except InvalidArgumentsError as exc:
        return _error(f"invalid arguments for {request.name}: {exc}")

    if spec.risk != "LOW":
        installed = await installed_app(store, tenant=tick.tenant, app=tick.app, manifest_hash=request.definition)
        if await in_shadow(store, tick, installed.agent(tick.agent) if installed is not None else None):
            return await _propose(store, request, shadow_case(tick, request.case_keys), f"{skill_name}.{tool_key}",
                                  args)

    ctx = SkillContext.for_tick(store, tick, now=now, idempotency_key=request.idempotency_key,
                                definition=request.definition, workflows=workflows)
    try:
        result = await spec.handler(ctx, args)
    except (ApplicationError, *INFRASTRUCTURE_ERRORS):
        raise  # retryable faults of the machinery, or errors that already carry their own type
    except StoreError as exc:
        return _error(f"{skill_name}.{tool_key} refused: {exc}")
    except Exception as exc:
        logger.info("%s: tool %s.%s failed: %s: %s", tick.heartbeat_id, skill_name, tool_key,
                    type(exc).__name__, exc)
        return _error(f"{skill_name}.{tool_key} failed: {type(exc).__name__}: {exc}")

    try:
        content = json.dumps(result, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return _error(f"{skill_name}.{tool_key} returned a result that is not JSON: {exc}")
    logger.info("%s: tool %s.%s (%s) ok, %d chars", tick.heartbeat_id, skill_name, tool_key, spec.risk, len(content))
    return ToolResult(content=cap_result(content))


async def _propose(store: Store, request: ToolCallRequest, case: str, tool: str, args: dict[str, Any]) -> ToolResult:
    """A shadow run's non-LOW call: recorded as the case's proposal, never executed. The model is
    told so, or, when a human already decided the case, what they decided."""
    tick = request.tick
    await store.shadow.propose(tenant=tick.tenant, workflow_id=tick.heartbeat_id, case_key=case,
                               tick_id=tick.tick_id, call_key=request.idempotency_key, tool=tool, arguments=args)
    decided = await store.shadow.decision(tenant=tick.tenant, workflow_id=tick.heartbeat_id, case_key=case)
    actions = None if decided is None else [ShadowAction.model_validate(action) for action in decided]
    logger.info("%s: shadow: %s proposed for case %s, not executed", tick.heartbeat_id, tool, case)
    return ToolResult(content=cap_result(json.dumps(not_executed(tool, actions), ensure_ascii=False)))


def cap_result(content: str, limit: int = MAX_TOOL_RESULT_CHARS) -> str:
    """`content` when it fits in `limit` characters; else its start and a note saying it was cut."""
    if len(content) <= limit:
        return content
    note = f"\n[truncated: the result has {len(content)} characters; the first {{kept}} are shown]"
    kept = limit - len(note.format(kept=limit))
    return content[:kept] + note.format(kept=kept)


def _offered(skills: SkillRegistry, allowed_skills: list[str]) -> str:
    names = [
        tool_name(name, tool)
        for name in allowed_skills
        if name in skills
        for tool in sorted(skills.get(name).tools)
    ]
    return ", ".join(names) or "none"


def _error(message: str) -> ToolResult:
    if len(message) > MAX_TOOL_ERROR_CHARS:
        message = message[: MAX_TOOL_ERROR_CHARS - 1] + "…"
    return ToolResult(content=f"error: {message}", is_error=True)
