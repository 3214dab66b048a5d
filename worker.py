"""The worker: runs every heartbeat workflow and activity. `python worker.py` or `heartbeats worker`.

Connection settings come from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE or Temporal's config
profiles (runtime/connection.py); the database from HEARTBEATS_DATABASE_URL; tuning from
HEARTBEATS_WORKFLOW_SANDBOX and HEARTBEATS_MAX_CACHED_WORKFLOWS (WorkerSettings). SIGINT/SIGTERM
shut it down gracefully: polling stops, in-flight activities get a grace period to finish.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.heartbeat_activities import HeartbeatActivities
from contract.errors import ConfigurationError, HeartbeatsError
from contract.names import TASK_QUEUE
from skills.catalog import default_registry
from skills.registry import SkillRegistry
from workflows.chat import ChatWorkflow
from workflows.heartbeat import HeartbeatWorkflow
from workflows.inbound import InboundWorkflow
from workflows.job import JobWorkflow
from workflows.machine import MachineWorkflow
from workflows.task import TaskWorkflow
from workflows.vision import VisionWorkflow

log = logging.getLogger("heartbeats.worker")

WORKFLOWS = [HeartbeatWorkflow, TaskWorkflow, JobWorkflow, VisionWorkflow, ChatWorkflow, InboundWorkflow,
             MachineWorkflow]
# Pure modules the workflows import: loaded once outside the sandbox (deterministic code; their
# zoneinfo objects must be real ones, not the sandbox's restricted proxies).
PASSTHROUGH_MODULES = ("pydantic", "pydantic_core", "croniter", "dateutil", "zoneinfo", "manifest",
                       "schedule", "reply", "commitments", "contract", "celpy", "lark", "jsonschema",
                       "jsonschema_specifications", "referencing", "rpds")


# Heartbeats are long-lived and tick every few minutes: a worker should keep every one it serves
# cached, since a cache miss replays the whole run's history (up to ~3,000 events). The SDK
# default is 1,000; each cached heartbeat costs ~50 KiB (docs/performance.md).
DEFAULT_MAX_CACHED_WORKFLOWS = 10_000


@dataclass(frozen=True)
class WorkerSettings:
    """Worker tuning, from the environment (HEARTBEATS_WORKFLOW_SANDBOX, HEARTBEATS_MAX_CACHED_WORKFLOWS).

    The sandbox is off by default in production: the workflow code is the product's own (apps supply
    manifests and skills, never workflow code), and CI runs every workflow test and the replay of
    the recorded histories in the sandbox, which is where it catches non-determinism. Off, a new
    workflow instance costs ~4 ms of CPU and ~50 KiB instead of ~11 ms and ~125 KiB.
    """

    sandboxed: bool = False
    max_cached_workflows: int = DEFAULT_MAX_CACHED_WORKFLOWS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if environ is None else environ
        sandbox = env.get("HEARTBEATS_WORKFLOW_SANDBOX", "off").strip().lower()
        if sandbox not in ("on", "off", "1", "0", "true", "false"):
            raise ConfigurationError(f"HEARTBEATS_WORKFLOW_SANDBOX: expected on or off (got {sandbox!r})")
        cached = env.get("HEARTBEATS_MAX_CACHED_WORKFLOWS", str(DEFAULT_MAX_CACHED_WORKFLOWS)).strip()
        if not cached.isdigit() or int(cached) < 2:
            raise ConfigurationError(f"HEARTBEATS_MAX_CACHED_WORKFLOWS: expected a whole number >= 2 (got {cached!r})")
        return cls(sandboxed=sandbox in ("on", "1", "true"), max_cached_workflows=int(cached))


def workflow_runner(sandboxed: bool) -> WorkflowRunner:
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_worker(client: Client, activities: HeartbeatActivities, *, task_queue: str = TASK_QUEUE,
                 settings: WorkerSettings = WorkerSettings(), extra_workflows: Sequence[type] = ()) -> Worker:
    """A worker for every heartbeat workflow and activity on `task_queue`."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[*WORKFLOWS, *extra_workflows],
        activities=activities.all(),
        workflow_runner=workflow_runner(settings.sandboxed),
        max_cached_workflows=settings.max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(
    client: Client,
    *,
    stop: asyncio.Event,
    skills: SkillRegistry | None = None,
    task_queue: str = TASK_QUEUE,
    settings: WorkerSettings | None = None,
) -> None:
    """Run until `stop` is set, then shut down gracefully."""
    from store import open_store

    settings = settings or WorkerSettings.from_env()
    store = await open_store()
    try:
        worker = build_worker(client, HeartbeatActivities(store, skills or default_registry()), task_queue=task_queue,
                              settings=settings)
        async with worker:
            log.info("worker polling task queue %r on namespace %r (sandbox %s, cache %d workflows)", task_queue,
                     client.namespace, "on" if settings.sandboxed else "off", settings.max_cached_workflows)
            await stop.wait()
            log.info("shutting down")
    finally:
        await store.close()


async def serve(profile: str | None = None) -> None:
    """Connect, run the worker, stop on SIGINT/SIGTERM."""
    from runtime.connection import connect

    settings = WorkerSettings.from_env()  # a bad setting fails before anything connects
    client = await connect(profile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"worker running: task queue {TASK_QUEUE!r}, Temporal {client.service_client.config.target_host}"
          f" namespace {client.namespace!r}; Ctrl-C to stop", flush=True)
    await run_worker(client, stop=stop, settings=settings)


def run_until_stopped() -> None:
    """Run the worker until SIGINT/SIGTERM, on a Temporal runtime of its own: its threads end
    before the interpreter does, so the exit is clean (see runtime.connection.own_runtime)."""
    from runtime.connection import own_runtime

    with own_runtime():
        asyncio.run(serve())


def main() -> None:
    # Logging is configured once, here at the entry point.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_until_stopped()
    except HeartbeatsError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
