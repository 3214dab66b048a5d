"""Runtime tasks: the one place their rules are applied, for the `tasks` skill (an agent's own
tool calls) and for the client library (the CLI and the HTTP API).

- The agent must exist in the app as installed for the tenant.
- Exactly one of `in_`, `at`, `cron`, `every` (schedule.job_times has the rules).
- A key that exists (active or done) returns the existing task and changes nothing (`created:
  false`); a cancelled key may be created again.
- The row is written first, then the workflow is started; a start that fails marks the row
  cancelled again, so nothing is half-created. An active row found on a second create is started
  again (a no-op when its workflow runs), which repairs a crash between the two.
- Bounds: 100 active tasks per agent, 5 created per agent run (store.jobs enforces them in the
  create's transaction), prompt and params capped (contract.job).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from contract.errors import InvalidInput, NotFound
from contract.job import MAX_ACTIVE_JOBS_PER_AGENT, MAX_JOBS_CREATED_PER_RUN, JobConfig
from contract.names import job_workflow_id
from contract.ports import Workflows
from contract.vocabulary import iso_utc
from manifest.ids import id_problem
from schedule.job_times import TimingError, job_timing, next_job_fire
from store.installed import installed_app
from store.jobs import RuntimeTask
from store.store import Areas


@dataclass(frozen=True)
class TaskView:
    """A runtime task as listed: its row, and its next due time (None when it will not run again)."""

    task: RuntimeTask
    next_run: str | None
    created: bool | None = None  # set by create: whether this call created it

    def to_json(self) -> dict[str, Any]:
        config = self.task.config
        body = {"id": self.task.workflow_id, "tenant": self.task.tenant, "app": self.task.app,
                "agent": self.task.agent, "key": self.task.key, "status": self.task.status,
                "timing": describe(config), "prompt": config.get("prompt", ""), "params": config.get("params", {}),
                "next_run": self.next_run, "created_by": self.task.created_by,
                "created_at": iso_utc(self.task.created_at), "ended_at": iso_utc(self.task.ended_at)}
        return body if self.created is None else {"created": self.created, **body}


async def create_runtime_task(store: Areas, workflows: Workflows, *, tenant: str, app: str, agent: str, key: str,
                              prompt: str, params: dict[str, Any] | None = None, in_: str | None = None,
                              at: str | None = None, cron: str | None = None, every: str | None = None,
                              created_by: str, created_in: str | None = None,
                              now: datetime | None = None) -> TaskView:
    """Create the runtime task (see the module docstring); InvalidInput / NotFound say what is wrong."""
    config = await task_config(store, tenant=tenant, app=app, agent=agent, key=key, prompt=prompt, params=params,
                               in_=in_, at=at, cron=cron, every=every, created_by=created_by, now=now)
    row, created = await store.runtime_tasks.create(
        tenant=tenant, app=app, agent=agent, key=key, workflow_id=config.workflow_id,
        config=config.model_dump(mode="json"), created_by=created_by, created_in=created_in,
        max_active=MAX_ACTIVE_JOBS_PER_AGENT, max_per_run=MAX_JOBS_CREATED_PER_RUN, now=config.created_at)
    if row.status == "active":
        try:
            await workflows.start_job(JobConfig.model_validate(row.config))
        except BaseException:
            if created:  # nothing half-created: the row goes back to what a cancel leaves
                await store.runtime_tasks.end(tenant=tenant, app=app, agent=agent, key=key, status="cancelled")
            raise
    return task_view(row, created=created, now=config.created_at)


async def task_config(store: Areas, *, tenant: str, app: str, agent: str, key: str, prompt: str,
                      params: dict[str, Any] | None, in_: str | None, at: str | None, cron: str | None,
                      every: str | None, created_by: str, now: datetime | None = None) -> JobConfig:
    """The task's config, checked: the agent exists, the key is an id, the timing and sizes hold."""
    check_names(tenant=tenant, app=app, agent=agent, key=key)
    found = await store.tenants.get(tenant=tenant)
    if found is None:
        raise NotFound(f"unknown tenant {tenant!r}")
    installed = await installed_app(store, tenant=tenant, app=app)
    if installed is None:
        raise NotFound(f"app {app!r} is not installed for tenant {tenant!r}")
    if installed.agent(agent) is None:
        raise NotFound(f"app {app!r} has no agent {agent!r}")
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    try:
        timing = job_timing(now=now, tenant_timezone=found.timezone, in_=in_, at=at, cron=cron, every=every)
        return JobConfig(tenant=tenant, app=app, agent=agent, key=key, tenant_timezone=found.timezone, prompt=prompt,
                         params=params or {}, timing=timing, created_by=created_by, created_at=now)
    except TimingError as exc:
        raise InvalidInput(str(exc)) from None
    except ValidationError as exc:
        raise InvalidInput(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None


async def list_runtime_tasks(store: Areas, *, tenant: str, app: str | None = None, agent: str | None = None,
                             status: str | None = None, now: datetime | None = None) -> list[TaskView]:
    """The tenant's runtime tasks (of one app, one agent, one status), newest first, with next runs."""
    rows = await store.runtime_tasks.list(tenant=tenant, app=app, agent=agent, status=status)
    return [task_view(row, now=now) for row in rows]


async def cancel_runtime_task(store: Areas, workflows: Workflows, *, tenant: str, app: str, agent: str,
                              key: str) -> TaskView:
    """Cancel the runtime task's workflow and mark its row; NotFound when there is no such task.
    Cancelling one that already ended changes nothing."""
    check_names(tenant=tenant, app=app, agent=agent, key=key)
    row = await store.runtime_tasks.get(tenant=tenant, app=app, agent=agent, key=key)
    if row is None:
        raise NotFound(f"agent {agent!r} of app {app!r} has no runtime task {key!r}")
    if row.status == "active":
        await workflows.cancel(job_workflow_id(tenant, app, agent, key))
        await store.runtime_tasks.end(tenant=tenant, app=app, agent=agent, key=key, status="cancelled")
        row = await store.runtime_tasks.get(tenant=tenant, app=app, agent=agent, key=key)
        assert row is not None
    return task_view(row)


def task_view(row: RuntimeTask, *, created: bool | None = None, now: datetime | None = None) -> TaskView:
    next_run = None
    if row.status == "active":
        config = JobConfig.model_validate(row.config)
        after = max(now or datetime.now(UTC), config.created_at)
        due = next_job_fire(config.timing, after=after, tenant_timezone=config.tenant_timezone) \
            if config.recurring else config.timing.at
        next_run = iso_utc(due)
    return TaskView(row, next_run, created)


def describe(config: dict[str, Any]) -> str:
    try:
        return JobConfig.model_validate(config).timing.describe()
    except ValidationError:
        return "?"


def check_names(**names: str) -> None:
    for what, value in names.items():
        problem = id_problem(value)
        if problem:
            raise InvalidInput(f"{what} {problem}")
