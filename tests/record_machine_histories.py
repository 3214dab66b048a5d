"""Record the state-machine histories tests/test_replay.py replays: `python -m tests.record_machine_histories`.

On the time-skipping server with the test tools (tests/machine_skills.py), three runs of its app:

- machine_approval_run: a transition into `waiting`, a manual transition refused for its payload,
  then fired (an Update with a tool call), then the last transition to `end`;
- machine_saga_run: two calls with `compensate`, a failure for good, the compensations last first;
- machine_retry_run: a fan-out of 6 items (limit 4) then a failing call; `retry` resumes it.

Written to tests/histories/. Re-record only on purpose, under a new suffix: every earlier
recording must keep replaying.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from client.install import manifest_json
from client.machines import prepare_run
from contract.machine import MachineView, TransitionRequest
from contract.names import QUERY_MACHINE, TASK_QUEUE, UPDATE_RETRY, UPDATE_TRANSITION
from manifest.loader import parse_manifest
from runtime.workflows import machine_summary
from store import open_store
from tests import machine_skills
from tests.temporal_env import running_worker, time_skipping_env
from workflows.machine import MachineWorkflow

OUT = Path(__file__).parent / "histories"
RETRYING = """
  - name: retrying
    type: stateMachine
    transitions:
      - name: convert_then_publish
        from: start
        to: end
        retry: {max_attempts: 1}
        call:
          - foreach: ${ context.variables.FILES }
            limit: 4
            tool: slow
            arguments: {file: "${ ITEM }"}
            as: CONVERTED
          - tool: gate
"""


async def until(handle: WorkflowHandle, status: str) -> None:
    for _ in range(400):
        if (await handle.query(QUERY_MACHINE, result_type=MachineView)).status == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never became {status}")


async def record() -> None:
    machine_skills.reset()
    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite:///{folder}/h.db")
        await store.tenants.upsert(tenant="acme", timezone="Europe/Berlin")
        manifest = parse_manifest(machine_skills.FLOWS + RETRYING)
        await store.apps.record(tenant="acme", app="flows", name="flows", version="1",
                                manifest=manifest_json(manifest), manifest_hash="sha256:recorded")
        async with time_skipping_env() as env, running_worker(env.client, store, skills=machine_skills.registry()):

            async def start(workflow: str, key: str, **variables) -> WorkflowHandle:
                input = await prepare_run(store, tenant="acme", app="flows", workflow=workflow, key=key,
                                          variables=variables)
                return await env.client.start_workflow(MachineWorkflow.run, input, id=input.workflow_id,
                                                       task_queue=TASK_QUEUE, static_summary=machine_summary(input))

            approval = await start("approval", "recorded")
            await until(approval, "waiting")
            with contextlib.suppress(WorkflowUpdateFailedError):
                await approval.execute_update(UPDATE_TRANSITION, TransitionRequest(
                    transition="process_user_approval", payload={"approved": "yes"}), result_type=MachineView)
            await approval.execute_update(UPDATE_TRANSITION, TransitionRequest(
                transition="process_user_approval", payload={"approved": True, "note": "fine"}),
                result_type=MachineView)
            await approval.result()

            saga = await start("saga", "recorded")
            await saga.result()

            machine_skills.GATE["open"] = False
            retrying = await start("retrying", "recorded", FILES=[f"f{n}" for n in range(6)])
            await until(retrying, "failed")
            machine_skills.GATE["open"] = True
            await retrying.execute_update(UPDATE_RETRY, result_type=MachineView)
            await retrying.result()

            for name, handle in (("machine_approval_run", approval), ("machine_saga_run", saga),
                                 ("machine_retry_run", retrying)):
                history = await handle.fetch_history()
                (OUT / f"{name}.json").write_text(history.to_json())
                print(f"wrote {name}: {len(history.events)} events")
        await store.close()


if __name__ == "__main__":
    asyncio.run(record())
