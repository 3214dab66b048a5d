"""One LLM call of an agent turn (the AGENT_STEP activity's logic).

The workflow keeps only the turn's own messages (tool calls and results) in history. Everything
else the model sees is assembled here, per call: the agent's system prompt and tools from the
installed manifest, the conversation so far (dedicated or main mode, bounded by a token window),
the heartbeat's prompt with the pre-filter rows as structured context, and the tenant's provider
and model for the tier. Keys never leave this process: the provider SDKs read them from the env.
"""

from __future__ import annotations

import json

from contract.llm import ChatMessage, LlmRequest, LlmResponse
from contract.messages import (
    MAX_PREFILTER_BYTES,
    MAX_TOKENS_PER_CALL,
    MAX_TURN_MESSAGE_CHARS,
    AgentStepRequest,
)
from manifest.models import AppManifest
from skills.registry import SkillRegistry
from store.store import Store

# The conversation history given to the model in dedicated/main mode: newest messages first
# until about this many tokens (4 characters a token), so a long-lived thread has a fixed cost.
HISTORY_TOKEN_WINDOW = 4_000
HISTORY_MAX_MESSAGES = 40

HEARTBEAT_PROTOCOL = """\
This is a scheduled heartbeat tick, not a user message. Work through the records below and use
your tools where needed. If there is nothing to do, reply with exactly HEARTBEAT_OK. If the
situation needs deeper re-planning than a routine tick should decide, include <escalate-to-vision/>."""


async def run_agent_step(store: Store, skills: SkillRegistry, request: AgentStepRequest) -> LlmResponse:
    from providers import complete
    from providers.routing import resolve_for_tenant

    tick = request.tick
    tenant = await store.tenants.get(tenant=tick.tenant)
    provider, model = resolve_for_tenant(tenant, request.model_tier)
    system_prompt, tool_skills = await _agent(store, tick.tenant, tick.app, tick.agent)
    history = await _history(store, request)
    messages = [*history, ChatMessage(role="user", content=tick_message(request)),
                *(ChatMessage.model_validate(m) for m in request.turn)]
    llm_request = LlmRequest(
        provider=provider,
        model=model,
        system="\n\n".join(part for part in (system_prompt, HEARTBEAT_PROTOCOL) if part),
        messages=messages,
        tools=skills.tool_defs(tool_skills),
        max_tokens=MAX_TOKENS_PER_CALL,
    )
    response = await complete(llm_request)
    return response.model_copy(update={"text": response.text[:MAX_TURN_MESSAGE_CHARS]})


def tick_message(request: AgentStepRequest) -> str:
    """The heartbeat's prompt and its pre-filter rows, as the turn's user message."""
    rows = json.dumps(request.rows, ensure_ascii=False, default=str, indent=1)
    note = f" (more matched; only the first {len(request.rows)} fit the {MAX_PREFILTER_BYTES // 1024} KiB cap)" \
        if request.truncated else ""
    prompt = request.prompt or "Review the records and act on them."
    return f"{prompt}\n\nPre-filter records: {len(request.rows)}{note}\n```json\n{rows}\n```"


async def _agent(store: Store, tenant: str, app: str, agent: str) -> tuple[str, list[str]]:
    """The agent's system prompt and tool skills, from the installed manifest."""
    installed = await store.apps.get(tenant=tenant, app=app)
    if installed is None:
        return "", []
    manifest = AppManifest.model_validate(installed.manifest)
    for spec in manifest.agents:
        if spec.id == agent:
            return spec.system_prompt, list(spec.tools)
    return "", []


async def _history(store: Store, request: AgentStepRequest) -> list[ChatMessage]:
    """The conversation so far (dedicated/main mode), newest first within the token window."""
    if request.conversation_mode == "isolated":
        return []
    tick = request.tick
    conversation = await store.conversations.id_for(tenant=tick.tenant, app=tick.app, agent=tick.agent,
                                               mode=request.conversation_mode)
    stored = await store.conversations.messages(tenant=tick.tenant, conversation_id=conversation, limit=HISTORY_MAX_MESSAGES)
    kept: list[ChatMessage] = []
    budget = HISTORY_TOKEN_WINDOW * 4
    for message in reversed(stored):
        content = message.content
        if len(content) > budget:
            break
        budget -= len(content)
        role = "assistant" if message.role == "assistant" else "user"
        kept.append(ChatMessage(role=role, content=content))
    return _alternating(list(reversed(kept)))


EARLIER_TICK = "(an earlier heartbeat tick)"


def _alternating(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Providers want user/assistant turns to alternate, starting with the user.

    A dedicated thread holds the agent's earlier heartbeat replies only; each gets a short user
    turn in front of it, and runs of one role are merged.
    """
    merged: list[ChatMessage] = []
    for message in messages:
        if message.role == "assistant" and (not merged or merged[-1].role == "assistant"):
            merged.append(ChatMessage(role="user", content=EARLIER_TICK))
        if merged and merged[-1].role == message.role:
            merged[-1] = ChatMessage(role=message.role, content=f"{merged[-1].content}\n\n{message.content}")
        else:
            merged.append(message)
    while merged and merged[0].role != "user":
        merged.pop(0)
    # The tick message that follows is a user message: end on an assistant turn.
    if merged and merged[-1].role == "user":
        merged.pop()
    return merged
