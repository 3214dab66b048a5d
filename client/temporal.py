"""The Temporal side of the client library: visibility queries, starting, signalling, cancelling,
describing and querying the platform's workflows, shared by install/sync and operations.

Refusals from the server become the project's errors (`temporal_errors`), so callers (the CLI,
the HTTP API) turn them into messages and status codes without knowing gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from contract.errors import Conflict, HeartbeatsError, InvalidInput, NotFound, Unavailable
from contract.heartbeat import FAILING_THRESHOLD, HeartbeatStatusView
from contract.names import (
    CHAT_WORKFLOW,
    HEARTBEAT_WORKFLOW,
    INBOUND_WORKFLOW,
    JOB_WORKFLOW,
    MACHINE_WORKFLOW,
    QUERY_STATUS,
    TASK_WORKFLOW,
    VISION_ID_PREFIX,
    VISION_WORKFLOW,
    parse_entity_workflow_id,
)
from contract.search_attributes import SA_FAILURE_COUNT, SA_STATUS
from runtime.workflows import cancel_if_running

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecution, WorkflowExecutionDescription

# Temporal calls in flight at once: enough for 10,000 heartbeats in seconds, gentle on a dev server.
CONCURRENCY = 32
# A status query waits for a worker to answer it; without one, give up after this long and show
# what the search attributes say instead.
QUERY_TIMEOUT = timedelta(seconds=5)
QUERY_GRACE_SECONDS = 1.0  # a status query is cut off locally this long after QUERY_TIMEOUT (StatusReader)


@contextlib.contextmanager
def temporal_errors() -> Iterator[None]:
    """Temporal's refusals as the project's errors (one line each; nothing of gRPC leaks out)."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        yield
    except RPCError as exc:
        message = f"Temporal refused the request: {exc.message or exc.status.name}"
        kind: type[HeartbeatsError] = {
            RPCStatusCode.NOT_FOUND: NotFound,
            RPCStatusCode.INVALID_ARGUMENT: InvalidInput,
            RPCStatusCode.ALREADY_EXISTS: Conflict,
            RPCStatusCode.FAILED_PRECONDITION: Conflict,
        }.get(exc.status, Unavailable)
        raise kind(message) from None


# ------------------------------------------------------------------------------------ visibility


def entities_query(tenant: str | None = None, *conditions: str, app: str | None = None) -> str:
    """Visibility query of running heartbeat, task and runtime-task workflows, optionally of one
    tenant and app.

    Ids are `[a-z][a-z0-9_-]*`: nothing to escape.
    """
    parts = [f'WorkflowType IN ("{HEARTBEAT_WORKFLOW}", "{TASK_WORKFLOW}", "{JOB_WORKFLOW}")',
             'ExecutionStatus="Running"']
    if tenant is not None:
        parts.append(f'HeartbeatTenant="{tenant}"')
    if app is not None:
        parts.append(f'HeartbeatApp="{app}"')
    parts.extend(conditions)
    return " AND ".join(parts)


def failing_query(tenant: str | None = None) -> str:
    return entities_query(tenant, 'HeartbeatStatus="active"', f"HeartbeatFailureCount >= {FAILING_THRESHOLD}")


def disabled_query(tenant: str | None = None) -> str:
    return entities_query(tenant, 'HeartbeatStatus="disabled"')


def app_runs_query(tenant: str, app: str) -> str:
    """Visibility query of an app's running chats, inbound messages and state-machine runs (by their
    owner attributes)."""
    return (f'WorkflowType IN ("{CHAT_WORKFLOW}", "{INBOUND_WORKFLOW}", "{MACHINE_WORKFLOW}")'
            f' AND ExecutionStatus="Running"'
            f' AND HeartbeatTenant="{tenant}" AND HeartbeatApp="{app}"')


def vision_query(tenant: str, app: str) -> str:
    """Visibility query of an app's running vision loops (by ID prefix: they carry no attributes)."""
    return (f'WorkflowType="{VISION_WORKFLOW}" AND ExecutionStatus="Running"'
            f' AND WorkflowId STARTS_WITH "{VISION_ID_PREFIX}:{tenant}:{app}:"')


async def running_ids(client: Client, query: str) -> set[str]:
    return {execution.id async for execution in client.list_workflows(query)}


async def entity_executions(client: Client, query: str) -> list[WorkflowExecution]:
    """The executions a query lists that have well-formed heartbeat or task IDs (someone may have
    started a stray workflow of the type)."""
    found = [execution async for execution in client.list_workflows(query)]
    return [execution for execution in found if is_entity_id(execution.id)]


def is_entity_id(value: str) -> bool:
    try:
        parse_entity_workflow_id(value)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------ writes


async def cancel_workflow(client: Client, workflow_id: str) -> bool:
    """Request cancellation of the workflow; False when there is no open one (that is fine)."""
    return await cancel_if_running(client, workflow_id)


async def is_running(client: Client, workflow_id: str) -> bool:
    """Whether the workflow's latest run is open (describe: not subject to visibility lag)."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.status == WorkflowExecutionStatus.RUNNING


# ------------------------------------------------------------------------------------ one heartbeat


def not_running(workflow_id: str, state: str = "closed") -> Conflict:
    return Conflict(f"workflow {workflow_id} is not running (it is {state}: uninstalled, or removed"
                    " from its manifest); install its app again to start it")


def no_such_heartbeat(workflow_id: str) -> NotFound:
    return NotFound(f"no heartbeat or task workflow {workflow_id} (see `heartbeats list`)")


async def describe_running(client: Client, workflow_id: str) -> WorkflowExecutionDescription:
    """The workflow's description; NotFound when there is none, Conflict when it is not running."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise no_such_heartbeat(workflow_id) from None
        raise
    if described.status != WorkflowExecutionStatus.RUNNING:
        raise not_running(workflow_id, described.status.name.lower() if described.status else "closed")
    return described


async def signal_running(client: Client, workflow_id: str, signal: str, *args: Any) -> None:
    """Send a signal to a running heartbeat or task; NotFound / Conflict when there is none."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.get_workflow_handle(workflow_id).signal(signal, *args)  # type: ignore[call-overload]
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        if "completed" in exc.message.lower():
            raise not_running(workflow_id) from None
        raise no_such_heartbeat(workflow_id) from None


def view_from_search_attributes(workflow_id: str, attributes: Any) -> HeartbeatStatusView:
    """The status view as far as visibility knows it (no times: those only the workflow knows)."""
    _, tenant, app, agent, slug = parse_entity_workflow_id(workflow_id)
    return HeartbeatStatusView(
        id=workflow_id, tenant=tenant, app=app, agent=agent, slug=slug,
        status=attributes.get(SA_STATUS) or "active", failure_count=attributes.get(SA_FAILURE_COUNT) or 0,
        next_run=None, last_run=None, last_heartbeat_ok_at=None,
    )


class StatusReader:
    """Status queries, concurrently and bounded; falls back to search attributes when unanswered.

    After the first query that times out, the rest are not attempted: they would each wait
    QUERY_TIMEOUT for the same answer. A query times out when no worker polls, and also when the
    workflow's first task has not run yet (the server holds the query until it has: for minutes after
    an install of thousands, docs/performance.md). The SDK reports its own deadline as CANCELLED
    ("Timeout expired"), the server's as DEADLINE_EXCEEDED; a query is also cut off locally just
    after its timeout. With a `budget` (a page of the dashboard), every query ends within that long
    of the first one's start, so a page waits about one budget at most, not one per wave of queries.
    """

    def __init__(self, client: Client, *, limit: int = CONCURRENCY, budget: timedelta | None = None) -> None:
        self._client = client
        self._semaphore = asyncio.Semaphore(limit)
        self._budget = budget
        self._deadline: float | None = None  # loop time; set when the first query starts
        self.unanswered = 0
        self._no_worker = False

    def _timeout(self) -> float:
        """Seconds the next query may take: QUERY_TIMEOUT, or what is left of the budget."""
        timeout = QUERY_TIMEOUT.total_seconds()
        if self._budget is None:
            return timeout
        now = asyncio.get_running_loop().time()
        if self._deadline is None:
            self._deadline = now + self._budget.total_seconds()
        return min(timeout, self._deadline - now)

    async def query(self, workflow_id: str) -> HeartbeatStatusView | None:
        """The `status` query's answer, or None when it could not be had."""
        from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
        from temporalio.service import RPCError, RPCStatusCode

        if self._no_worker:
            return None
        async with self._semaphore:
            timeout = self._timeout()
            if self._no_worker or timeout <= 0:
                self._no_worker = True
                return None
            try:
                return await asyncio.wait_for(
                    self._client.get_workflow_handle(workflow_id).query(
                        QUERY_STATUS, result_type=HeartbeatStatusView, rpc_timeout=timedelta(seconds=timeout)
                    ),
                    timeout + QUERY_GRACE_SECONDS,
                )
            except TimeoutError:
                self._no_worker = True
                return None
            except RPCError as exc:
                # CANCELLED: the SDK's own rpc_timeout ("Timeout expired"); DEADLINE_EXCEEDED: the
                # server's; FAILED_PRECONDITION: no poller seen on the task queue recently.
                if exc.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED,
                                  RPCStatusCode.FAILED_PRECONDITION):
                    self._no_worker = True
                return None
            except (WorkflowQueryFailedError, WorkflowQueryRejectedError):
                return None

    async def view(self, execution: WorkflowExecution) -> HeartbeatStatusView:
        answered = await self.query(execution.id)
        if answered is None:
            self.unanswered += 1
            return view_from_search_attributes(execution.id, execution.typed_search_attributes)
        return answered

    async def views(self, executions: Sequence[WorkflowExecution]) -> list[HeartbeatStatusView]:
        views = await asyncio.gather(*(self.view(execution) for execution in executions))
        return sorted(views, key=lambda view: view.id)
