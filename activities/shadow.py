"""Whether a run is a shadow run, and the case its proposals belong to.

A heartbeat's or task's run is in shadow when its `shadow_mode` (else its agent's) is true and an
operator has not promoted it for this tenant: the run's first LLM step decides (agent_step, from the
agent definition the turn is pinned to), and the turn carries the answer to its completion
(`AgentReply.shadow`). Its case: a heartbeat tick is its own case (`tick:{tick_id}`); a task run of
one case is that case; a run of several cases is recorded under `run:{tick_id}` and not compared
(give each case its own run to compare it).
"""

from __future__ import annotations

from contract.messages import TickRef
from contract.names import MACHINE_ID_PREFIX
from contract.shadow import HEARTBEAT_CASE_PREFIX
from manifest.app import AgentSpec
from store.store import Areas


async def in_shadow(store: Areas, tick: TickRef, agent: AgentSpec | None) -> bool:
    """Whether the tick's heartbeat or task runs in shadow (runtime tasks, chats, inbound messages
    and vision passes always run live; a workflow's agent step follows the agent's `shadow_mode`)."""
    kind = tick.heartbeat_id.partition(":")[0]
    if kind == MACHINE_ID_PREFIX:  # an agent step of a workflow run: the agent's own shadow_mode
        return agent is not None and agent.shadow_mode
    routine = agent.routine(kind, tick.slug) if agent is not None else None
    if agent is None or routine is None:
        return False
    on = routine.shadow_mode if routine.shadow_mode is not None else agent.shadow_mode
    return bool(on) and not await store.shadow.promoted(tenant=tick.tenant, workflow_id=tick.heartbeat_id)


def shadow_case(tick: TickRef, case_keys: list[str]) -> str:
    """The case a shadow run's proposals belong to (see the module docstring)."""
    if tick.heartbeat_id.startswith("heartbeat:"):
        return f"{HEARTBEAT_CASE_PREFIX}{tick.tick_id}"
    return case_keys[0] if len(case_keys) == 1 else f"run:{tick.tick_id}"
