"""The worker: runs the heartbeat workflows and activities. `python worker.py` or `heartbeats worker`.

Two task queues (contract.names): `heartbeats` carries the workflow tasks and every activity but the
model calls, which go to `heartbeats-llm`. A role picks what one process polls: `all` (the default:
one Worker per queue, in this process), `workflows` or `llm`, so workflow workers and LLM workers
can be run and sized apart (docs/deployment.md).

Connection settings come from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE or Temporal's config
profiles (runtime/connection.py); the database from HEARTBEATS_DATABASE_URL; tuning from
HEARTBEATS_WORKFLOW_SANDBOX, HEARTBEATS_MAX_CACHED_WORKFLOWS and HEARTBEATS_MAX_CONCURRENT_LLM_CALLS
(WorkerSettings). SIGINT/SIGTERM shut it down gracefully: polling stops, in-flight activities get a
grace period to finish.
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
from enum import StrEnum
from types import TracebackType

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.heartbeat_activities import HeartbeatActivities
from contract.errors import ConfigurationError, HeartbeatsError
from contract.names import LLM_TASK_QUEUE, TASK_QUEUE
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
# Model calls one process makes at once: an LLM activity holds its slot for the whole call (seconds
# to minutes, mostly waiting). The SDK's default for activities; lower it to stay under a provider's
# rate limit, raise it (or add LLM workers) when calls queue on `heartbeats-llm`.
DEFAULT_MAX_CONCURRENT_LLM_CALLS = 100


class WorkerRole(StrEnum):
    """What one worker process polls."""

    ALL = "all"  # both queues, one Worker each: the default (`heartbeats demo`, drills, tests)
    WORKFLOWS = "workflows"  # `heartbeats`: workflow tasks, their local activities, every other activity
    LLM = "llm"  # `heartbeats-llm`: the model calls only


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
    max_concurrent_llm_calls: int = DEFAULT_MAX_CONCURRENT_LLM_CALLS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if environ is None else environ
        sandbox = env.get("HEARTBEATS_WORKFLOW_SANDBOX", "off").strip().lower()
        if sandbox not in ("on", "off", "1", "0", "true", "false"):
            raise ConfigurationError(f"HEARTBEATS_WORKFLOW_SANDBOX: expected on or off (got {sandbox!r})")
        return cls(sandboxed=sandbox in ("on", "1", "true"),
                   max_cached_workflows=_whole_number(env, "HEARTBEATS_MAX_CACHED_WORKFLOWS",
                                                      DEFAULT_MAX_CACHED_WORKFLOWS, minimum=2),
                   max_concurrent_llm_calls=_whole_number(env, "HEARTBEATS_MAX_CONCURRENT_LLM_CALLS",
                                                          DEFAULT_MAX_CONCURRENT_LLM_CALLS, minimum=1))


def _whole_number(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    """The variable as a whole number of at least `minimum` (`default` when unset); ConfigurationError naming it."""
    value = env.get(name, str(default)).strip()
    if not value.isdigit() or int(value) < minimum:
        raise ConfigurationError(f"{name}: expected a whole number >= {minimum} (got {value!r})")
    return int(value)


def workflow_runner(sandboxed: bool) -> WorkflowRunner:
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


class WorkerGroup:
    """The Workers of one process, one per task queue, started and stopped together; used as one
    Worker is (`async with group:`, or `run()` until `shutdown()`)."""

    def __init__(self, workers: Sequence[Worker]) -> None:
        self.workers = tuple(workers)
        self._started = False

    @property
    def task_queues(self) -> tuple[str, ...]:
        return tuple(worker.task_queue for worker in self.workers)

    async def run(self) -> None:
        """Run every Worker until `shutdown()`; when one of them fails, stop the others and raise its error."""
        self._started = True
        runs = [asyncio.ensure_future(worker.run()) for worker in self.workers]
        try:
            await asyncio.wait(runs, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            await self._shut_down_running(runs)
        for run in runs:
            error = None if run.cancelled() else run.exception()
            if error is not None:
                raise error

    async def shutdown(self) -> None:
        """Stop every Worker; safe to repeat. (A Worker's own shutdown waits for a run that was never
        started, so a group that never started has nothing to stop.)"""
        if self._started:
            await asyncio.gather(*(worker.shutdown() for worker in self.workers))

    async def __aenter__(self) -> WorkerGroup:
        self._started = True
        started: list[Worker] = []
        try:
            for worker in self.workers:
                await worker.__aenter__()
                started.append(worker)
        except BaseException:
            await asyncio.gather(*(worker.__aexit__(None, None, None) for worker in started), return_exceptions=True)
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await asyncio.gather(*(worker.__aexit__(kind, error, traceback) for worker in self.workers))

    async def _shut_down_running(self, runs: list[asyncio.Future[None]]) -> None:
        for worker, run in zip(self.workers, runs, strict=True):
            if not run.done():
                await worker.shutdown()
        await asyncio.gather(*runs, return_exceptions=True)


def build_worker(client: Client, activities: HeartbeatActivities, *, role: WorkerRole = WorkerRole.ALL,
                 task_queue: str = TASK_QUEUE, settings: WorkerSettings = WorkerSettings(),
                 extra_workflows: Sequence[type] = ()) -> WorkerGroup:
    """The Workers of `role`: on `task_queue` every workflow and activity, on the LLM task queue the
    model calls (contract.names.LLM_TASK_QUEUE).

    A workflows worker keeps the LLM activities registered on its own queue: runs that scheduled
    model calls there before the LLM queue existed keep doing so until their next continue-as-new
    (workflows.turn). It runs them only for such runs; new turns schedule on the LLM queue."""
    workers = []
    if role in (WorkerRole.ALL, WorkerRole.WORKFLOWS):
        workers.append(Worker(
            client,
            task_queue=task_queue,
            workflows=[*WORKFLOWS, *extra_workflows],
            activities=activities.all(),
            workflow_runner=workflow_runner(settings.sandboxed),
            max_cached_workflows=settings.max_cached_workflows,
            graceful_shutdown_timeout=timedelta(seconds=10),
        ))
    if role in (WorkerRole.ALL, WorkerRole.LLM):
        workers.append(Worker(
            client,
            task_queue=LLM_TASK_QUEUE,
            activities=activities.llm(),
            max_concurrent_activities=settings.max_concurrent_llm_calls,
            # A call cut off after the grace period is retried on another worker: its heartbeats stop,
            # and the activity's 10 s heartbeat timeout hands it on.
            graceful_shutdown_timeout=timedelta(seconds=10),
        ))
    return WorkerGroup(workers)


def describe_queues(role: WorkerRole, task_queue: str = TASK_QUEUE) -> str:
    """What a worker of `role` polls, as its start line says it."""
    parts = []
    if role in (WorkerRole.ALL, WorkerRole.WORKFLOWS):
        parts.append(f"{task_queue!r} (workflows and activities)")
    if role in (WorkerRole.ALL, WorkerRole.LLM):
        parts.append(f"{LLM_TASK_QUEUE!r} (LLM calls)")
    return "task queue" + ("s " if len(parts) > 1 else " ") + " and ".join(parts)


async def run_worker(
    client: Client,
    *,
    stop: asyncio.Event,
    skills: SkillRegistry | None = None,
    role: WorkerRole = WorkerRole.ALL,
    task_queue: str = TASK_QUEUE,
    settings: WorkerSettings | None = None,
) -> None:
    """Run until `stop` is set, then shut down gracefully."""
    from store import open_store

    settings = settings or WorkerSettings.from_env()
    store = await open_store()
    try:
        worker = build_worker(client, HeartbeatActivities(store, skills or default_registry()), role=role,
                              task_queue=task_queue, settings=settings)
        async with worker:
            log.info("worker (role %s) polling %s on namespace %r (sandbox %s, cache %d workflows, %d LLM calls at"
                     " once)", role.value, describe_queues(role, task_queue), client.namespace,
                     "on" if settings.sandboxed else "off", settings.max_cached_workflows,
                     settings.max_concurrent_llm_calls)
            await stop.wait()
            log.info("shutting down")
    finally:
        await store.close()


async def serve(profile: str | None = None, *, role: WorkerRole = WorkerRole.ALL) -> None:
    """Connect, run the worker, stop on SIGINT/SIGTERM."""
    from runtime.connection import connect

    settings = WorkerSettings.from_env()  # a bad setting fails before anything connects
    client = await connect(profile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"worker running (role {role.value}): {describe_queues(role)}, Temporal"
          f" {client.service_client.config.target_host} namespace {client.namespace!r}; Ctrl-C to stop", flush=True)
    await run_worker(client, stop=stop, role=role, settings=settings)


def run_until_stopped(role: WorkerRole = WorkerRole.ALL) -> None:
    """Run the worker until SIGINT/SIGTERM, on a Temporal runtime of its own: its threads end
    before the interpreter does, so the exit is clean (see runtime.connection.own_runtime)."""
    from runtime.connection import own_runtime

    with own_runtime():
        asyncio.run(serve(role=role))


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
