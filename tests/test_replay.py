"""Replay every recorded workflow history under tests/histories/ against today's workflow code.

A change to workflow code that would break running workflows (non-determinism) fails here.
Histories are recorded by `python -m tests.record_histories` and `python -m tests.record_agent_histories`
(see those files for the scenarios).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadConverter
from temporalio.worker import Replayer

from contract.names import AGENT_STEP, LLM_TASK_QUEUE, TASK_QUEUE, TOOL_CALL
from worker import WORKFLOWS, workflow_runner

HISTORIES_DIR = Path(__file__).parent / "histories"
HISTORIES = sorted(HISTORIES_DIR.glob("*.json"))


def test_histories_are_recorded():
    names = {path.stem for path in HISTORIES}
    # Every workflow type: HeartbeatWorkflow through several ticks, a failure, run-now, reconfigure,
    # pause and continue-as-new (tests/record_histories.py), and through the durable agent turn with a
    # tool call and an escalation; VisionWorkflow's assess → plan → act pass
    # (tests/record_agent_histories.py). `.v2`: recorded after a reconfigure began to take effect
    # from the next due time and vision phases became durable turns that run tools.
    recorded = {"heartbeat_run_1", "heartbeat_run_2", "heartbeat_agent_turn", "vision_pass"}
    # Each generation of the workflow code recorded the same scenarios; all of them must replay.
    assert recorded | {f"{name}.v2" for name in recorded} <= names
    # `.v3`: the agent turn and the vision pass after model calls moved to the LLM task queue.
    assert {"heartbeat_agent_turn.v3", "vision_pass.v3"} <= names
    # TaskWorkflow through its five kinds of trigger, a duplicate, a forced run, failures, reconfigure,
    # pause and continue-as-new (tests/record_task_histories.py).
    assert {"task_run_1", "task_run_2"} <= names
    # JobWorkflow (a runtime task) through runs, pause, resume, run-now and a cancel (tests/record_job_histories.py).
    assert "job_run" in names
    # ChatWorkflow through two messages and a repeated message id, cancelled; InboundWorkflow handling
    # one message (tests/record_handler_histories.py, on a dev server: update-with-start).
    assert {"chat_run", "inbound_run"} <= names
    # A TaskWorkflow in shadow mode: a proposal, a LOW tool run, the shadow summaries
    # (tests/record_shadow_histories.py).
    assert "task_shadow_run" in names
    # MachineWorkflow: a manual transition refused then fired, compensation after a failure for good,
    # a fan-out and a retry of the failed transition (tests/record_machine_histories.py).
    assert {"machine_approval_run", "machine_saga_run", "machine_retry_run"} <= names
    types = {WorkflowHistory.from_json(p.stem, p.read_text()).events[0]
             .workflow_execution_started_event_attributes.workflow_type.name for p in HISTORIES}
    assert types >= {workflow.__temporal_workflow_definition.name for workflow in WORKFLOWS}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=workflow_runner(sandboxed=True))
    await replayer.replay_workflow(history)


@pytest.mark.parametrize(("name", "queue"), [("heartbeat_agent_turn.v2", TASK_QUEUE), ("vision_pass.v2", TASK_QUEUE),
                                             ("heartbeat_agent_turn.v3", LLM_TASK_QUEUE),
                                             ("vision_pass.v3", LLM_TASK_QUEUE)])
def test_model_calls_went_to_the_llm_queue_from_v3_on(name: str, queue: str):
    """Runs from before the split scheduled agent steps on the workflow's queue, and replaying them
    does so again (test_history_replays); newer runs record the patch marker and the LLM queue."""
    history = WorkflowHistory.from_json(name, (HISTORIES_DIR / f"{name}.json").read_text())
    scheduled = [event.activity_task_scheduled_event_attributes for event in history.events
                 if event.HasField("activity_task_scheduled_event_attributes")]
    queues = {(attributes.activity_type.name, attributes.task_queue.name) for attributes in scheduled}
    assert (AGENT_STEP, queue) in queues
    assert {activity for activity, on in queues if on == LLM_TASK_QUEUE} <= {AGENT_STEP}  # records__query stays
    assert {(TOOL_CALL, TASK_QUEUE)} <= queues
    markers = [event.marker_recorded_event_attributes for event in history.events
               if event.HasField("marker_recorded_event_attributes")]
    patched = any(b"llm-calls-on-their-own-task-queue" in payload.data for marker in markers
                  for details in marker.details.values() for payload in details.payloads)
    assert patched is (queue == LLM_TASK_QUEUE)


DOCS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


def documented_summaries() -> list[tuple[str, re.Pattern[str]]]:
    """The summaries docs/operations.md lists, each as a pattern (`<...>` stands for any value)."""
    text = DOCS.read_text().split("<!-- summaries -->")[1].split("<!-- /summaries -->")[0]
    forms = re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE)
    return [(form, re.compile("".join(".+" if part.startswith("<") else re.escape(part)
                                      for part in re.split(r"(<[^>]+>)", form)))) for form in forms]


def recorded_summaries() -> set[str]:
    """Every timer and activity summary in the histories today's code recorded (`.v2`, `.v3`, and the tasks')."""
    converter = PayloadConverter.default
    found: set[str] = set()
    for path in HISTORIES:
        if not (path.stem.endswith((".v2", ".v3")) or path.stem.startswith(("task_", "job_", "chat_", "inbound_", "machine_"))):
            continue
        for event in WorkflowHistory.from_json(path.stem, path.read_text()).events:
            if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
                found.add(converter.from_payloads([event.user_metadata.summary])[0])
    return found


def test_the_documented_summaries_are_the_ones_the_workflows_set():
    forms = documented_summaries()
    recorded = recorded_summaries()
    undocumented = [summary for summary in recorded if not any(p.fullmatch(summary) for _, p in forms)]
    assert undocumented == [], "summaries the workflows set that docs/operations.md does not list"
    unseen = [form for form, pattern in forms if not any(pattern.fullmatch(summary) for summary in recorded)]
    assert unseen == [], "summaries docs/operations.md lists that no recorded history shows"
