"""The single-activity agent turn of workflows that started a tick before the durable turn existed.

`HeartbeatWorkflow` now runs each LLM call and tool call as its own activity (activities/turn.py,
behind `workflow.patched("durable-agent-turn")`). A workflow replaying a tick recorded earlier still
schedules AGENT_TURN, so the worker keeps serving it: the deterministic offline agent of
providers/offline.py, named `offline` in every receipt.
"""

from __future__ import annotations

import json

from contract.messages import MAX_REPLY_CHARS, AgentReply, AgentTurnRequest
from providers.offline import estimate_tokens, offline_model, offline_text

OFFLINE_PROVIDER = "offline"


def offline_reply(request: AgentTurnRequest) -> AgentReply:
    """The offline agent's deterministic reply to one tick."""
    text = offline_text(request.rows, truncated=request.truncated)[:MAX_REPLY_CHARS]
    rows = json.dumps(request.rows, ensure_ascii=False, separators=(",", ":"), default=str)
    return AgentReply(
        text=text,
        provider=OFFLINE_PROVIDER,
        model=offline_model(request.model_tier),
        # Estimates, not counts: about four characters per token. No tokenizer runs offline.
        tokens_in=estimate_tokens(request.prompt) + estimate_tokens(rows),
        tokens_out=estimate_tokens(text),
    )
