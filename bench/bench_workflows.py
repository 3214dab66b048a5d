"""Workflows of the peer schedulers in bench/run.py (imported by the worker's sandbox by module name).

`ScheduledTickWorkflow` is one tick as a short workflow: it runs the same pre-filter local activity as
HeartbeatWorkflow's tick and ends. A Temporal Schedule starts it (its due time is the schedule's
`TemporalScheduledStartTime` search attribute) or the 15-second poller starts it (due time passed in).
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from contract.heartbeat import HeartbeatConfig
    from contract.messages import PrefilterRequest, PrefilterResult, TickRef
    from contract.names import PREFILTER
    from workflows.heartbeat import STORE_ACTIVITY

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@workflow.defn(name="BenchScheduledTick")
class ScheduledTickWorkflow:
    @workflow.run
    async def run(self, config: HeartbeatConfig, due: datetime | None = None) -> None:
        at = due or workflow.info().typed_search_attributes.get(SCHEDULED_START) or workflow.now()
        spec = config.heartbeat
        tick = TickRef(heartbeat_id=config.workflow_id, tenant=config.tenant, app=config.app, agent=config.agent,
                       slug=spec.slug, tick_id=f"{workflow.info().run_id}/1", at=at, trigger="schedule")
        await workflow.execute_local_activity(
            PREFILTER,
            PrefilterRequest(tick=tick, skill=spec.skill, tool=spec.tool, params=spec.params,
                             invoke_always=spec.invoke_always),
            result_type=PrefilterResult,
            **STORE_ACTIVITY,
        )
