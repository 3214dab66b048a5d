"""The worker: runs every heartbeat workflow and activity. `python worker.py` or `heartbeats worker`.

Connection settings come from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE or Temporal's config
profiles (client/connection.py); the database from HEARTBEATS_DATABASE_URL. SIGINT/SIGTERM
shut it down gracefully: polling stops, in-flight activities get a grace period to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.heartbeat_activities import HeartbeatActivities
from skills.registry import SkillRegistry, default_registry
from workflows.contract import TASK_QUEUE
from workflows.heartbeat import HeartbeatWorkflow
from workflows.vision import VisionWorkflow

log = logging.getLogger("heartbeats.worker")

WORKFLOWS = [HeartbeatWorkflow, VisionWorkflow]
# Pure modules the workflows import: loaded once outside the sandbox (deterministic code; their
# zoneinfo objects must be real ones, not the sandbox's restricted proxies).
PASSTHROUGH_MODULES = ("pydantic", "pydantic_core", "croniter", "dateutil", "zoneinfo", "manifest",
                       "schedule", "workflows.contract", "activities.contract", "providers.contract")


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_worker(client: Client, activities: HeartbeatActivities, *, task_queue: str = TASK_QUEUE) -> Worker:
    """A worker for every heartbeat workflow and activity on `task_queue`."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities.all(),
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(
    client: Client,
    *,
    stop: asyncio.Event,
    skills: SkillRegistry | None = None,
    task_queue: str = TASK_QUEUE,
) -> None:
    """Run until `stop` is set, then shut down gracefully."""
    from store import open_store

    store = await open_store()
    try:
        worker = build_worker(client, HeartbeatActivities(store, skills or default_registry()), task_queue=task_queue)
        async with worker:
            log.info("worker polling task queue %r on namespace %r", task_queue, client.namespace)
            await stop.wait()
            log.info("shutting down")
    finally:
        await store.close()


async def serve(profile: str | None = None) -> None:
    """Connect, run the worker, stop on SIGINT/SIGTERM."""
    from client.connection import connect

    client = await connect(profile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"worker running: task queue {TASK_QUEUE!r}, Temporal {client.service_client.config.target_host}"
          f" namespace {client.namespace!r}; Ctrl-C to stop", flush=True)
    await run_worker(client, stop=stop)


def main() -> None:
    # Logging is configured once, here at the entry point.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve())


if __name__ == "__main__":
    main()
