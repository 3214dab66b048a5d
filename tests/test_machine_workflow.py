"""MachineWorkflow on the time-skipping test server, with the real activities, store and test tools.

The app below holds the spec's document-processing example and one workflow per behaviour: a
tool's nextPlace among several `to`, a manual transition with a payload schema and a deadline,
fan-out with a limit, compensation, and retry from the failed transition.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from client.checks import check_manifests
from client.install import manifest_json
from client.machines import prepare_run
from contract.machine import MachineView, TransitionRequest
from contract.names import QUERY_MACHINE, TASK_QUEUE, UPDATE_RETRY, UPDATE_TRANSITION
from manifest.loader import parse_manifest
from store import Store, open_store
from tests import machine_skills
from tests.machine_skills import FLOWS as MANIFEST
from tests.temporal_env import running_worker, time_skipping_env
from workflows.machine import MachineWorkflow

TENANT, APP = "acme", "flows"



@pytest.fixture
async def store(tmp_path):
    opened = await open_store(f"sqlite:///{tmp_path / 'heartbeats.db'}")
    await opened.tenants.upsert(tenant=TENANT, timezone="Europe/Berlin")
    await install(opened, MANIFEST)
    yield opened
    await opened.close()


async def install(store: Store, text: str, version: str = "1") -> None:
    manifest = parse_manifest(text)
    await store.apps.record(tenant=TENANT, app=APP, name=APP, version=version, manifest=manifest_json(manifest),
                            manifest_hash=f"sha256:test-{version}")


@pytest.fixture
async def env(store):
    machine_skills.reset()
    async with time_skipping_env() as environment:
        async with running_worker(environment.client, store, skills=machine_skills.registry()):
            yield environment


async def start(client: Client, store: Store, workflow: str, key: str, **variables) -> WorkflowHandle:
    input = await prepare_run(store, tenant=TENANT, app=APP, workflow=workflow, key=key, variables=variables)
    return await client.start_workflow(MachineWorkflow.run, input, id=input.workflow_id, task_queue=TASK_QUEUE)


async def view(handle: WorkflowHandle) -> MachineView:
    return await handle.query(QUERY_MACHINE, result_type=MachineView)


async def until(handle: WorkflowHandle, *statuses: str) -> MachineView:
    for _ in range(200):
        found = await view(handle)
        if found.status in statuses:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never reached {statuses}: {found.status} at {found.place}")


def calls(tool: str) -> list[dict]:
    return [args for name, args in machine_skills.CALLS if name == tool]


def test_the_manifest_validates_with_its_tools_registered(tmp_path: Path):
    path = tmp_path / "flows.yaml"
    path.write_text(MANIFEST)
    _, problems = check_manifests([path], machine_skills.registry())
    assert problems == []


async def test_the_document_processing_example_runs_start_to_end(env, store):
    handle = await start(env.client, store, "document_processor_workflow", "doc1", SOURCE_DOCUMENT="q3.pdf")
    result = await handle.result()
    assert result.status == "completed" and result.place == "end"
    assert calls("data_extraction_tool") == [{"source": "q3.pdf"}]
    extracted = {"text": "text of q3.pdf", "pages": 3}
    assert calls("debug_tool") == [{"log": extracted}]
    assert calls("data_transformation_tool") == [{"data": extracted}]
    assert result.variables["EXTRACTED_DATA"] == extracted
    assert [(s.transition, s.source, s.target) for s in result.steps] == [
        ("extract_data", "start", "data_extracted"), ("transform_data", "data_extracted", "end")]


@pytest.mark.parametrize("pick, place", [("large", "large"), ("", "small")])
async def test_next_place_picks_among_to_and_without_one_the_first_target(env, store, pick, place):
    handle = await start(env.client, store, "pick", f"p{pick or 'none'}", PICK=pick)
    result = await handle.result()
    assert result.status == "completed"
    assert [s.target for s in result.steps] == [place, "end"]


async def test_a_next_place_outside_to_goes_to_on_error(env, store):
    handle = await start(env.client, store, "pick", "poutside", PICK="end")
    result = await handle.result()
    assert [(s.transition, s.target, s.outcome) for s in result.steps] == [
        ("classify", "rejected", "error"), ("rejected_done", "end", "ok")]
    assert "nextPlace 'end' is not among classify's to: small, large" in result.steps[0].error


async def test_a_manual_transition_refuses_a_bad_payload_with_nothing_changed_then_takes_a_good_one(env, store):
    handle = await start(env.client, store, "approval", "a1")
    waiting = await until(handle, "waiting")
    assert waiting.place == "waiting_for_approval"
    assert [option.transition for option in waiting.waiting_for] == ["process_user_approval"]
    before = await handle.fetch_history()
    for bad in ({"approved": "yes"}, {"note": "no decision"}, {"approved": True, "extra": 1}):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(UPDATE_TRANSITION, TransitionRequest(transition="process_user_approval",
                                                                            payload=bad), result_type=MachineView)
        assert "payload refused" in str(refused.value.cause)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(UPDATE_TRANSITION, TransitionRequest(transition="finish", payload={}),
                                    result_type=MachineView)
    after = await handle.fetch_history()
    # A refused update leaves no trace: no update accepted, nothing scheduled (this test server
    # records the workflow tasks that ran the validators; a current server drops them too).
    added = {EventType.Name(event.event_type) for event in after.events[len(before.events):]}
    assert added <= {"EVENT_TYPE_WORKFLOW_TASK_SCHEDULED", "EVENT_TYPE_WORKFLOW_TASK_STARTED",
                     "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"}, added
    assert (await view(handle)).status == "waiting" and calls("approval_processor") == []
    moved = await handle.execute_update(
        UPDATE_TRANSITION, TransitionRequest(transition="process_user_approval", payload={"approved": True}),
        result_type=MachineView)
    assert moved.place in ("approved", "end")
    result = await handle.result()
    assert result.status == "completed" and result.variables["DECISION"] == {"approved": True}
    assert [s.transition for s in result.steps] == ["prepare", "process_user_approval", "finish"]
    assert result.steps[1].manual


async def test_a_deadline_moves_the_waiting_run(env, store):
    handle = await start(env.client, store, "approval", "a2")
    await until(handle, "waiting")
    await env.sleep(timedelta(hours=49))
    result = await handle.result()
    assert [(s.transition, s.target, s.outcome) for s in result.steps] == [
        ("prepare", "waiting_for_approval", "ok"), ("process_user_approval", "expired", "deadline"),
        ("expire", "end", "ok")]
    assert calls("approval_processor") == []


async def test_an_update_after_the_deadline_moved_the_run_is_refused_and_nothing_is_applied_twice(env, store):
    handle = await start(env.client, store, "escalation", "e1")
    await until(handle, "waiting")
    await env.sleep(timedelta(hours=2))
    moved = await until(handle, "waiting")
    assert moved.place == "escalated"
    assert [(s.transition, s.target, s.outcome) for s in moved.steps][-1] == ("approve", "escalated", "deadline")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(UPDATE_TRANSITION, TransitionRequest(transition="approve", payload={}),
                                    result_type=MachineView)
    assert "no manual transition 'approve' leaves 'escalated'" in str(refused.value.cause)
    done = await handle.execute_update(UPDATE_TRANSITION, TransitionRequest(transition="decide", payload={}),
                                       result_type=MachineView)
    assert done.place == "end"
    result = await handle.result()
    assert [s.transition for s in result.steps] == ["open", "approve", "decide"]


async def test_a_long_run_continues_as_new_carrying_its_place_and_variables(env, store):
    handle = await start(env.client, store, "loop", "l1")
    result = await handle.result()
    assert result.status == "completed" and result.variables["N"] == {"n": 210}
    assert result.steps_total == 211 and len(result.steps) == 100  # the last 100 kept
    first_run = await env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id).fetch_history()
    assert first_run.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert len(calls("count")) == 210  # no call repeated across the new run


async def test_fan_out_of_twenty_items_runs_at_most_four_at_once_and_fans_in_in_order(env, store):
    files = [f"f{n:02d}" for n in range(20)]
    handle = await start(env.client, store, "fanout", "f1", FILES=files)
    result = await handle.result()
    assert result.status == "completed"
    assert [item["file"] for item in result.variables["CONVERTED"]] == files
    assert len(calls("slow")) == 20
    assert machine_skills.IN_FLIGHT["max"] == 4


async def test_a_failure_for_good_runs_the_compensations_last_first(env, store):
    handle = await start(env.client, store, "saga", "s1")
    result = await handle.result()
    assert result.status == "compensated"
    order = [(name, args.get("what")) for name, args in machine_skills.CALLS]
    assert order == [("reserve", "flight"), ("reserve", "hotel"), ("charge", None),
                     ("release", "hotel"), ("release", "flight")]
    assert calls("release") == [{"what": "hotel", "id": "hotel-1"}, {"what": "flight", "id": "flight-1"}]
    assert "card declined" in result.error["message"]


async def test_retry_resumes_the_failed_transition_without_repeating_completed_calls(env, store):
    machine_skills.GATE["open"] = False
    handle = await start(env.client, store, "resumable", "r1")
    failed = await until(handle, "failed")
    assert failed.place == "start" and failed.failed_transition == "work"
    assert "the gate is closed" in failed.error["message"]
    assert len(calls("count")) == 1 and len(calls("gate")) == 1
    machine_skills.GATE["open"] = True
    await handle.execute_update(UPDATE_RETRY, result_type=MachineView)
    result = await handle.result()
    assert result.status == "completed"
    assert len(calls("count")) == 1 and len(calls("gate")) == 2
    assert result.variables["FIRST"] == {"n": 1}


async def test_a_reinstall_mid_run_leaves_the_running_run_on_its_pinned_definition(env, store):
    handle = await start(env.client, store, "approval", "a3")
    await until(handle, "waiting")
    pinned = (await view(handle)).definition_hash
    # Version 2 renames the place the approval leads to; the running run keeps version 1's graph.
    await install(store, MANIFEST.replace("to: approved", "to: approved_v2").replace("from: approved,",
                                                                                     "from: approved_v2,"), "2")
    newer = await prepare_run(store, tenant=TENANT, app=APP, workflow="approval", key="a4")
    assert newer.definition_hash != pinned
    await handle.execute_update(
        UPDATE_TRANSITION, TransitionRequest(transition="process_user_approval", payload={"approved": False}),
        result_type=MachineView)
    result = await handle.result()
    assert result.definition_hash == pinned
    assert [s.target for s in result.steps] == ["waiting_for_approval", "approved", "end"]
