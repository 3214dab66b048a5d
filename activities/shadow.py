"""Whether a run is a shadow run, and the case its proposals belong to.

A heartbeat's or task's run is in shadow when its `shadow_mode` (else its agent's) is true and an
operator has not promoted it for this tenant. Its case: a heartbeat tick is its own case
(`tick:{tick_id}`); a task run of one case is that case; a run of several cases is recorded under
`run:{tick_id}` and not compared (give each case its own run to compare it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contract.messages import TickRef
from contract.shadow import HEARTBEAT_CASE_PREFIX
from store.installed import installed_app
from store.store import Areas


@dataclass(frozen=True)
class ShadowRun:
    case_key: str
    compare: dict[str, list[str]] = field(default_factory=dict)


async def shadow_run(store: Areas, tick: TickRef, *, case_keys: list[str],
                     definition: str | None = None) -> ShadowRun | None:
    """The run's shadow state: None when it runs live."""
    installed = await installed_app(store, tenant=tick.tenant, app=tick.app, manifest_hash=definition)
    agent = installed.agent(tick.agent) if installed is not None else None
    kind = tick.heartbeat_id.partition(":")[0]
    routine = agent.routine(kind, tick.slug) if agent is not None else None
    if agent is None or routine is None:
        return None  # runtime tasks, chats, inbound messages and vision passes always run live
    on = routine.shadow_mode if routine.shadow_mode is not None else agent.shadow_mode
    if not on or await store.shadow.promoted(tenant=tick.tenant, workflow_id=tick.heartbeat_id):
        return None
    if kind == "heartbeat":
        case = f"{HEARTBEAT_CASE_PREFIX}{tick.tick_id}"
    else:
        case = case_keys[0] if len(case_keys) == 1 else f"run:{tick.tick_id}"
    return ShadowRun(case_key=case, compare=dict(routine.shadow.compare) if routine.shadow else {})
