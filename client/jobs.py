"""Runtime tasks from the outside: create, list and cancel for the CLI and the HTTP API, over the
rules of skills.runtime_tasks (which an agent's own `tasks` skill applies from inside a tool call).

    created = await create_task(client, store, tenant="acme", app="marketing", agent="cmo", key="digest",
                                prompt="Send the weekly digest.", every="1w")
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from client.checks import require_id, require_tenant
from client.temporal import temporal_errors
from runtime.workflows import TemporalWorkflows
from skills.runtime_tasks import TaskView, cancel_runtime_task, create_runtime_task, list_runtime_tasks

if TYPE_CHECKING:
    from temporalio.client import Client

    from store import Store

__all__ = ["TaskView", "cancel_task", "create_task", "list_tasks"]


async def create_task(client: Client, store: Store, *, tenant: str, app: str, agent: str, key: str, prompt: str,
                      params: dict[str, Any] | None = None, in_: str | None = None, at: str | None = None,
                      cron: str | None = None, every: str | None = None, created_by: str = "cli",
                      now: datetime | None = None) -> TaskView:
    with temporal_errors():
        return await create_runtime_task(store, TemporalWorkflows(client), tenant=tenant, app=app, agent=agent,
                                         key=key, prompt=prompt, params=params, in_=in_, at=at, cron=cron,
                                         every=every, created_by=created_by, now=now)


async def list_tasks(store: Store, *, tenant: str, app: str | None = None, agent: str | None = None,
                     status: str | None = None, now: datetime | None = None) -> list[TaskView]:
    require_id(tenant, "tenant")
    await require_tenant(store, tenant)
    for what, value in (("app", app), ("agent", agent)):
        if value is not None:
            require_id(value, what)
    return await list_runtime_tasks(store, tenant=tenant, app=app, agent=agent, status=status, now=now)


async def cancel_task(client: Client, store: Store, *, tenant: str, app: str, agent: str, key: str) -> TaskView:
    with temporal_errors():
        return await cancel_runtime_task(store, TemporalWorkflows(client), tenant=tenant, app=app, agent=agent,
                                         key=key)
