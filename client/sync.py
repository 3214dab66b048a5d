"""Install, uninstall and sync: make Temporal match the manifests, one workflow per heartbeat or task.

- a new heartbeat or task is started, a changed one is reconfigured in place (its failure count and history
  stay), both with one signal-with-start call (`reconfigure` + its config): it starts the workflow
  when none is running and signals the running one otherwise, so a half-applied install is repaired by
  running it again;
- a removed heartbeat's or task's workflow is cancelled, and so is the vision loop of a removed agent;
- an unchanged app (same manifest, same tenant timezone) writes nothing: one visibility count checks
  that its workflows run, and only when some are missing are they started again ("repaired");
- uninstalling an app ends every workflow of it: its heartbeats, its tasks and its agents' vision loops.

Everything is checked before Temporal is touched (all-or-nothing: an invalid manifest, an unknown
tenant or a pre-filter tool that is not LOW risk starts nothing), and the app is recorded in the store
only after the Temporal calls succeeded. Temporal calls run concurrently, at most `CONCURRENCY` at a time.

    loaded = load_manifests([path])                                  # client.checks
    results = await install_manifests(client, store, loaded, tenant="acme")
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from client.checks import LoadedManifest, ManifestsInvalid, never_firing, require_tenant
from client.install import AppPlan, InstallResult, UninstallResult, entity_configs, plan_install, planned_calls
from client.temporal import (
    CONCURRENCY,
    app_runs_query,
    cancel_workflow,
    entities_query,
    is_running,
    running_ids,
    vision_query,
)
from contract.errors import NotFound
from contract.names import JOB_ID_PREFIX, vision_workflow_id
from contract.task import EntityConfig
from runtime.workflows import start_or_reconfigure
from store.installed import stored_manifest

if TYPE_CHECKING:
    from temporalio.client import Client

    from store import App, Store

# Apps applied at once (each also does a visibility query and a store write): keeps 32 calls busy
# when apps have few heartbeats each.
APP_CONCURRENCY = 8
# Unchanged apps checked by one visibility count (a query of bounded length).
COUNT_BATCH = 100

T = TypeVar("T")

Progress = Callable[[int], None]  # called with the number of Temporal calls just completed


class Limiter:
    """Runs coroutines concurrently, at most `limit` at a time; reports each completion."""

    def __init__(self, limit: int = CONCURRENCY, progress: Progress | None = None) -> None:
        self._semaphore = asyncio.Semaphore(limit)
        self._progress = progress

    async def run(self, thunks: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        async def one(thunk: Callable[[], Awaitable[T]]) -> T:
            async with self._semaphore:
                value = await thunk()
            if self._progress:
                self._progress(1)
            return value

        # TaskGroup: the first failure cancels the calls not yet made; it surfaces as itself.
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(thunk)) for thunk in thunks]
        except BaseExceptionGroup as group:
            first: BaseException = group
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        return [task.result() for task in tasks]


async def apply_plan(
    client: Client, store: Store, plan: AppPlan, *, limiter: Limiter | None = None,
    counted_complete: bool = False,
) -> InstallResult:
    """Make Temporal match the plan, then record the app (only after every call succeeded).

    `counted_complete`: a count shared with other unchanged apps already found all of this app's
    workflows running (see apply_plans), so its own count query is skipped.
    """
    limiter = limiter or Limiter()
    result = InstallResult(app=plan.app, tenant=plan.tenant, app_unchanged=plan.app_unchanged)
    query = entities_query(plan.tenant, app=plan.app)
    if plan.app_unchanged:
        expected = {cfg.workflow_id: cfg for cfg in plan.unchanged}
        missing: list[EntityConfig] = []
        if not counted_complete and (await client.count_workflows(query)).count < len(expected):
            # Visibility lags a little behind starts: confirm with describe (consistent) first.
            listed = await running_ids(client, query)
            unlisted = [cfg for wid, cfg in expected.items() if wid not in listed]
            running = await limiter.run([_bind(is_running, client, cfg.workflow_id) for cfg in unlisted])
            missing = [cfg for cfg, up in zip(unlisted, running, strict=True) if not up]
            await limiter.run([_bind(start_or_reconfigure, client, cfg) for cfg in missing])
        result.repaired = [cfg.workflow_id for cfg in missing]
        result.started = list(result.repaired)
        result.unchanged = [wid for wid in expected if wid not in set(result.repaired)]
        return result

    # Heartbeats and tasks of the app that run but are in neither manifest (e.g. the store was
    # reset): cancel. Runtime tasks are not the manifest's: an install leaves them running.
    wanted = {cfg.workflow_id for cfg in plan.configs}
    planned_cancels = set(plan.cancel)
    running = {wid for wid in await running_ids(client, query) if not wid.startswith(f"{JOB_ID_PREFIX}:")}
    orphans = sorted(running - wanted - planned_cancels)

    writes: list[Callable[[], Awaitable[Any]]] = [
        *(_bind(start_or_reconfigure, client, cfg) for cfg in (*plan.start, *plan.reconfigure)),
        *(_bind(cancel_workflow, client, wid) for wid in plan.cancel),
    ]
    orphan_writes = [_bind(cancel_workflow, client, wid) for wid in orphans]
    outcomes = await limiter.run([*writes, *orphan_writes])
    orphans_cancelled = [wid for wid, ok in zip(orphans, outcomes[len(writes) :], strict=True) if ok]

    await store.apps.record(
        tenant=plan.tenant,
        app=plan.app,
        name=plan.manifest.display_name,
        version=plan.manifest.version,
        manifest=plan.manifest_json,
        manifest_hash=plan.manifest_hash,
    )
    result.started = [cfg.workflow_id for cfg in plan.start]
    result.reconfigured = [cfg.workflow_id for cfg in plan.reconfigure]
    result.unchanged = [cfg.workflow_id for cfg in plan.unchanged]
    result.cancelled = [*plan.cancel, *orphans_cancelled]
    return result


async def recorded_app(store: Store, *, tenant: str, app: str) -> App:
    """The app's record (installed or uninstalled); NotFound when the tenant never installed it."""
    recorded = await store.apps.get(tenant=tenant, app=app)
    if recorded is None:
        raise NotFound(f"app {app!r} is not installed for tenant {tenant!r}")
    return recorded


async def uninstall_app(
    client: Client, store: Store, *, tenant: str, app: str, limiter: Limiter | None = None
) -> UninstallResult:
    """Cancel every workflow of the app, its heartbeats, tasks, runtime tasks, agents' vision loops,
    chats, inbound messages and state-machine runs in progress (found by visibility, the stored manifest's ids and the runtime tasks' rows), then mark
    it uninstalled."""
    limiter = limiter or Limiter()
    recorded = await recorded_app(store, tenant=tenant, app=app)
    ids = await running_ids(client, entities_query(tenant, app=app)) | await running_ids(
        client, vision_query(tenant, app)) | await running_ids(client, app_runs_query(tenant, app))
    old_manifest = stored_manifest(recorded)
    if old_manifest is not None and recorded.status == "installed":
        ids |= {cfg.workflow_id for cfg in entity_configs(old_manifest, tenant=tenant, tenant_timezone="UTC")}
        ids |= {vision_workflow_id(tenant, app, agent.id) for agent in old_manifest.agents}
    # Its runtime tasks end with it: those the store lists as active, and any visibility shows.
    active = await store.runtime_tasks.list(tenant=tenant, app=app, status="active")
    ids |= {task.workflow_id for task in active}
    ordered = sorted(ids)
    outcomes = await limiter.run([_bind(cancel_workflow, client, wid) for wid in ordered])
    for task in active:
        await store.runtime_tasks.end(tenant=tenant, app=app, agent=task.agent, key=task.key, status="cancelled")
    await store.apps.mark_uninstalled(tenant=tenant, app=app)
    return UninstallResult(
        app=app,
        tenant=tenant,
        cancelled=[wid for wid, ok in zip(ordered, outcomes, strict=True) if ok],
        was_installed=recorded.status == "installed",
    )


async def plan_manifests(
    store: Store, loaded: Sequence[LoadedManifest], *, tenant: str
) -> list[AppPlan]:
    """The plan of every manifest for the tenant (store reads only: no Temporal call)."""
    tz = (await require_tenant(store, tenant)).timezone
    problems = never_firing(loaded, tenant=tenant, tenant_timezone=tz)
    if problems:
        raise ManifestsInvalid(problems)
    installed = await store.apps.get_many(tenant=tenant, app_ids=[item.manifest.id for item in loaded])
    return [
        plan_install(item.manifest, tenant=tenant, tenant_timezone=tz, installed=installed.get(item.manifest.id))
        for item in loaded
    ]


async def apply_plans(
    client: Client,
    store: Store,
    plans: Sequence[AppPlan],
    *,
    progress: Callable[[int], Progress | None] | None = None,
) -> list[InstallResult]:
    """Apply the plans, `APP_CONCURRENCY` apps at a time, their Temporal calls bounded across all.

    Each app is recorded once its own calls succeeded; the first failure stops the apps not yet
    applied and is raised (installing again repairs the rest). `progress(total_calls)` may return
    a callback that is told of each completed Temporal call.
    """
    report = progress(sum(planned_calls(plan) for plan in plans)) if progress else None
    calls = Limiter(CONCURRENCY, report)
    complete = await unchanged_apps_all_running(client, [plan for plan in plans if plan.app_unchanged])
    return await Limiter(APP_CONCURRENCY).run(
        [lambda plan=plan: apply_plan(client, store, plan, limiter=calls, counted_complete=plan.app in complete)
         for plan in plans]
    )


async def unchanged_apps_all_running(client: Client, plans: Sequence[AppPlan]) -> set[str]:
    """Apps (of one tenant) whose heartbeats and tasks all run, from one count per `COUNT_BATCH` apps.

    Each visibility count scans the tenant's workflows, so 1,000 unchanged apps counted one by one
    cost 1,000 scans. A batch whose count is short is left out: its apps are counted one by one.
    """
    if len(plans) < 2:
        return set()
    complete: set[str] = set()
    for tenant in sorted({plan.tenant for plan in plans}):
        mine = [plan for plan in plans if plan.tenant == tenant]
        for start in range(0, len(mine), COUNT_BATCH):
            batch = mine[start : start + COUNT_BATCH]
            apps = ", ".join(f'"{plan.app}"' for plan in batch)
            counted = await client.count_workflows(entities_query(tenant, f"HeartbeatApp IN ({apps})"))
            if counted.count >= sum(len(plan.unchanged) for plan in batch):
                complete |= {plan.app for plan in batch}
    return complete


async def install_manifests(
    client: Client,
    store: Store,
    loaded: Sequence[LoadedManifest],
    *,
    tenant: str,
    progress: Callable[[int], Progress | None] | None = None,
) -> list[InstallResult]:
    """Plan and apply every manifest for the tenant."""
    plans = await plan_manifests(store, loaded, tenant=tenant)
    return await apply_plans(client, store, plans, progress=progress)


async def sync_folder(
    client: Client,
    store: Store,
    loaded: Sequence[LoadedManifest],
    *,
    tenant: str,
    plans: Sequence[AppPlan] | None = None,
    progress: Callable[[int], Progress | None] | None = None,
) -> tuple[list[InstallResult], list[UninstallResult]]:
    """Install every manifest; uninstall the tenant's installed apps that are not among them."""
    if plans is None:
        plans = await plan_manifests(store, loaded, tenant=tenant)
    installed = await apply_plans(client, store, plans, progress=progress)
    keep = {item.manifest.id for item in loaded}
    gone = [app.id for app in await store.apps.list(tenant=tenant) if app.id not in keep]
    return installed, await uninstall_apps(client, store, tenant=tenant, apps=gone)


async def uninstall_apps(client: Client, store: Store, *, tenant: str, apps: Sequence[str]) -> list[UninstallResult]:
    """Uninstall several apps of a tenant, `APP_CONCURRENCY` at a time, their calls bounded across all."""
    calls = Limiter(CONCURRENCY)
    return await Limiter(APP_CONCURRENCY).run(
        [lambda app=app: uninstall_app(client, store, tenant=tenant, app=app, limiter=calls) for app in apps]
    )


def _bind(function: Callable[..., Awaitable[T]], *args: Any) -> Callable[[], Awaitable[T]]:
    return lambda: function(*args)
