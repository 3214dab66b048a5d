"""Starting and signalling the platform's workflows (heartbeats, tasks, runtime tasks, chats, inbound
messages), for every process that does: the sync client, the ingress, the event handlers and the
skills (through contract.ports).

Every start carries the six search attributes and a static summary, so `temporal workflow list`
and the web UI show what each workflow is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from contract.handlers import ChatAnswer, ChatConfig, ChatInput, InboundInput, IncomingChat
from contract.heartbeat import HeartbeatConfig, HeartbeatInput
from contract.job import JobConfig, JobInput
from contract.machine import MachineInput
from contract.names import (
    CHAT_WORKFLOW,
    HEARTBEAT_WORKFLOW,
    INBOUND_WORKFLOW,
    JOB_WORKFLOW,
    MACHINE_WORKFLOW,
    SIGNAL_A2A,
    SIGNAL_RECONFIGURE,
    TASK_QUEUE,
    TASK_WORKFLOW,
    UPDATE_CHAT,
)
from contract.search_attributes import (
    SA_AGENT,
    SA_APP,
    SA_FAILURE_COUNT,
    SA_MACHINE,
    SA_MACHINE_PLACE,
    SA_MACHINE_STATUS,
    SA_SLUG,
    SA_STATUS,
    SA_TENANT,
)
from contract.task import DelegatedCase, EntityConfig, TaskConfig, TaskInput
from schedule import describe_schedule, describe_triggers

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowUpdateHandle


def search_attributes(config: EntityConfig | JobConfig) -> Any:
    """All six entity search attributes, set at start (the workflow upserts status and count).
    Heartbeats, tasks and runtime tasks carry the same ones; the workflow type tells them apart."""
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    return TypedSearchAttributes([
        SearchAttributePair(SA_TENANT, config.tenant),
        SearchAttributePair(SA_APP, config.app),
        SearchAttributePair(SA_AGENT, config.agent),
        SearchAttributePair(SA_SLUG, config.slug),
        SearchAttributePair(SA_STATUS, "active"),
        SearchAttributePair(SA_FAILURE_COUNT, 0),
    ])


def static_summary(config: EntityConfig | JobConfig) -> str:
    """The workflow's summary in the web UI: `marketing/cmo/hourly_kpi: every 60 min, ...`, a task's
    triggers, or a runtime task's timing."""
    if isinstance(config, HeartbeatConfig):
        described = describe_schedule(config.heartbeat)
    elif isinstance(config, TaskConfig):
        described = describe_triggers(config.task)
    else:
        described = f"runtime task, {config.timing.describe()}"
    return f"{config.app}/{config.agent}/{config.slug}: {described}"


async def start_or_reconfigure(client: Client, config: EntityConfig, *, start_signal: str = SIGNAL_RECONFIGURE,
                               start_signal_args: Sequence[Any] | None = None) -> None:
    """Signal-with-start: starts the heartbeat's or task's workflow, or signals the running one
    (by default `reconfigure` with the config: a changed config applies in place)."""
    from temporalio.common import WorkflowIDReusePolicy

    heartbeat = isinstance(config, HeartbeatConfig)
    await client.start_workflow(
        HEARTBEAT_WORKFLOW if heartbeat else TASK_WORKFLOW,
        HeartbeatInput(config=config) if heartbeat else TaskInput(config=config),  # type: ignore[arg-type]
        id=config.workflow_id,
        task_queue=TASK_QUEUE,
        start_signal=start_signal,
        start_signal_args=[config] if start_signal_args is None else list(start_signal_args),
        search_attributes=search_attributes(config),
        static_summary=static_summary(config),
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


async def start_job(client: Client, config: JobConfig) -> None:
    """Start the runtime task's workflow; a start of an ID already running changes nothing (a
    retried activity or request starts it once)."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

    await client.start_workflow(
        JOB_WORKFLOW, JobInput(config=config), id=config.workflow_id, task_queue=TASK_QUEUE,
        search_attributes=search_attributes(config), static_summary=static_summary(config),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A cancelled key may be created again: a new run under the same ID.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


def _owner_attributes(tenant: str, app: str, agent: str, slug: str) -> Any:
    """An event handler's search attributes: whose it is (an uninstall finds it by tenant and app)."""
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    return TypedSearchAttributes([SearchAttributePair(SA_TENANT, tenant), SearchAttributePair(SA_APP, app),
                                  SearchAttributePair(SA_AGENT, agent), SearchAttributePair(SA_SLUG, slug)])


async def send_chat(client: Client, config: ChatConfig, message: IncomingChat) -> WorkflowUpdateHandle[ChatAnswer]:
    """Update-with-start: the message goes to the agent's chat workflow (started if it is not
    running); returns once a worker accepted it. The message id is the update ID: sent twice to
    the same run, it is answered once."""
    from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateStage
    from temporalio.common import WorkflowIDConflictPolicy

    start = WithStartWorkflowOperation(
        CHAT_WORKFLOW, ChatInput(config=config), id=config.workflow_id, task_queue=TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=_owner_attributes(config.tenant, config.app, config.agent, "main"),
        static_summary=f"{config.app}/{config.agent}: chat in the main conversation")
    return await client.start_update_with_start_workflow(
        UPDATE_CHAT, message, start_workflow_operation=start, wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        id=message.id, result_type=ChatAnswer)


async def start_inbound(client: Client, input: InboundInput) -> bool:
    """Start the inbound message's workflow; False when its ID already exists, running or closed
    (that message is being or was handled: nothing starts)."""
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    try:
        # The default conflict policy refuses a running duplicate; REJECT_DUPLICATE a closed one.
        await client.start_workflow(
            INBOUND_WORKFLOW, input, id=input.workflow_id, task_queue=TASK_QUEUE,
            search_attributes=_owner_attributes(input.tenant, input.app, input.agent,
                                                input.workflow_id.rsplit(":", 1)[1]),
            static_summary=f"{input.app}/{input.agent}: inbound from {input.message.from_}",
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError:
        return False
    return True


async def start_machine(client: Client, input: MachineInput) -> None:
    """Start one run of a state-machine workflow. Its key names one run for good: a second start of
    the same ID is refused (WorkflowAlreadyStartedError), whether or not the first has ended."""
    from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy

    await client.start_workflow(
        MACHINE_WORKFLOW, input, id=input.workflow_id, task_queue=TASK_QUEUE,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(SA_TENANT, input.tenant), SearchAttributePair(SA_APP, input.app),
            SearchAttributePair(SA_MACHINE, input.workflow), SearchAttributePair(SA_MACHINE_STATUS, "pending"),
            SearchAttributePair(SA_MACHINE_PLACE, input.state.place)]),
        static_summary=machine_summary(input),
    )


def machine_summary(input: MachineInput) -> str:
    """A run's summary in the web UI: `docs/review run r1 (sha256:3f2a…)`, the definition it is pinned to."""
    return f"{input.app}/{input.workflow} run {input.key} ({input.definition_hash[:19]}…)"


async def cancel_if_running(client: Client, workflow_id: str) -> bool:
    """Request cancellation of the workflow; False when there is no open one (that is fine)."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    handle = client.get_workflow_handle(workflow_id)
    try:
        # The server accepts a cancel request for a workflow that has already closed (only a
        # never-seen ID is NOT_FOUND), so ask first: an ended workflow must not count as cancelled.
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return False
        await handle.cancel()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


class TemporalWorkflows:
    """contract.ports.Workflows over a Temporal client (in a tool call: the worker's own)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def start_job(self, config: JobConfig) -> None:
        await start_job(self._client, config)

    async def cancel(self, workflow_id: str) -> bool:
        return await cancel_if_running(self._client, workflow_id)

    async def start_machine(self, input: MachineInput) -> bool:
        from temporalio.exceptions import WorkflowAlreadyStartedError

        try:
            await start_machine(self._client, input)
        except WorkflowAlreadyStartedError:
            return False
        return True

    async def delegate(self, config: TaskConfig, case: DelegatedCase) -> None:
        await start_or_reconfigure(self._client, config, start_signal=SIGNAL_A2A, start_signal_args=[case])
