"""Manifest sync: `heartbeats install`, `uninstall` and `sync` (library functions + click commands).

Installing an app for a tenant makes Temporal match the manifest, one workflow per heartbeat:

- a new heartbeat is started, a changed one is reconfigured in place (its failure count and history
  stay), both with one signal-with-start call (`reconfigure` + its config): it starts the workflow
  when none is running and signals the running one otherwise, so a half-applied install is repaired by
  running it again;
- a removed heartbeat's workflow is cancelled;
- an unchanged app (same manifest, same tenant timezone) writes nothing: one visibility count checks
  that its workflows run, and only when some are missing are they started again ("repaired").

Everything is validated before Temporal is touched (all-or-nothing: an invalid manifest, an unknown
tenant or a pre-filter tool that is not LOW risk starts nothing), and the app is recorded in the store
only after the Temporal calls succeeded. Temporal calls run concurrently, at most `CONCURRENCY` at a time.

    plan = plan_install(manifest, tenant="acme", tenant_timezone="UTC", installed=None)
    result = await apply_plan(client, store, plan)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from client.errors import UserError
from client.store_commands import run_with_store
from contract.heartbeat import HeartbeatConfig, HeartbeatInput
from contract.names import HEARTBEAT_WORKFLOW, SIGNAL_RECONFIGURE, TASK_QUEUE
from contract.search_attributes import SA_AGENT, SA_APP, SA_FAILURE_COUNT, SA_SLUG, SA_STATUS, SA_TENANT
from manifest.ids import id_problem
from manifest.loader import ManifestError, load_manifest
from manifest.models import INTERNAL_SOURCES, AppManifest

if TYPE_CHECKING:
    from temporalio.client import Client

    from store import App, Store

# Temporal calls in flight at once: enough for 10,000 heartbeats in seconds, gentle on a dev server.
CONCURRENCY = 32
# Apps applied at once (each also does a visibility query and a store write): keeps 32 calls busy
# when apps have few heartbeats each.
APP_CONCURRENCY = 8
# Unchanged apps checked by one visibility count (a query of bounded length).
COUNT_BATCH = 100
# Above this many Temporal calls the CLI shows a progress bar (on a terminal).
PROGRESS_THRESHOLD = 50
# Rows of the per-heartbeat table; larger installs show the changes first and a count of the rest.
MAX_TABLE_ROWS = 100

T = TypeVar("T")
P = TypeVar("P")


# ------------------------------------------------------------------------------------ planning


def manifest_json(manifest: AppManifest) -> dict[str, Any]:
    """The manifest as stored: canonical field names, JSON types (shorthand already expanded)."""
    return manifest.model_dump(mode="json")


def installed_hash(manifest: dict[str, Any], tenant_timezone: str) -> str:
    """Hash of what an installation depends on: the manifest and the tenant's timezone.

    Stored as the app's `manifest_hash`; equal hashes mean the app's workflows need no change.
    The timezone is part of it because every heartbeat config carries it (a tenant that moved
    to another zone must have its heartbeats reconfigured at the next install or sync).
    """
    canonical = json.dumps(
        {"manifest": manifest, "tenant_timezone": tenant_timezone},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def heartbeat_configs(
    manifest: AppManifest, *, tenant: str, tenant_timezone: str
) -> list[HeartbeatConfig]:
    """One config per heartbeat, in manifest order."""
    return [
        HeartbeatConfig(
            tenant=tenant,
            app=manifest.id,
            agent=agent.id,
            tenant_timezone=tenant_timezone,
            heartbeat=heartbeat,
        )
        for agent, heartbeat in manifest.heartbeats()
    ]


def stored_manifest(app: App) -> AppManifest | None:
    """The manifest an app was installed from, or None when it no longer validates."""
    try:
        return AppManifest.model_validate(app.manifest)
    except ValueError:  # pydantic's ValidationError: the schema moved on since that install
        return None


@dataclass
class AppPlan:
    """What installing one manifest for one tenant changes, before anything is changed."""

    tenant: str
    manifest: AppManifest
    manifest_json: dict[str, Any]
    manifest_hash: str
    start: list[HeartbeatConfig] = field(default_factory=list)  # new heartbeats
    reconfigure: list[HeartbeatConfig] = field(default_factory=list)  # changed heartbeats
    unchanged: list[HeartbeatConfig] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)  # workflow ids of removed heartbeats
    # Same manifest and timezone as the installed app: no workflow writes at all.
    app_unchanged: bool = False

    @property
    def app(self) -> str:
        return self.manifest.id

    @property
    def configs(self) -> list[HeartbeatConfig]:
        """Every heartbeat of the new manifest."""
        return [*self.start, *self.reconfigure, *self.unchanged]


def plan_install(
    manifest: AppManifest, *, tenant: str, tenant_timezone: str, installed: App | None
) -> AppPlan:
    """Diff the manifest against the installed app (None, or uninstalled: nothing installed).

    Old configs are recomputed from the stored manifest. The stored hash tells whether the tenant's
    timezone is still the one of that install; when it is not, every kept heartbeat is reconfigured.
    """
    new_json = manifest_json(manifest)
    plan = AppPlan(
        tenant=tenant,
        manifest=manifest,
        manifest_json=new_json,
        manifest_hash=installed_hash(new_json, tenant_timezone),
    )
    new_configs = heartbeat_configs(manifest, tenant=tenant, tenant_timezone=tenant_timezone)
    if installed is None or installed.status != "installed":
        plan.start = new_configs
        return plan
    if installed.manifest_hash == plan.manifest_hash:
        plan.unchanged = new_configs
        plan.app_unchanged = True
        return plan

    old_manifest = stored_manifest(installed)
    old: dict[str, HeartbeatConfig] = {}
    if old_manifest is not None:
        old = {
            cfg.workflow_id: cfg
            for cfg in heartbeat_configs(old_manifest, tenant=tenant, tenant_timezone=tenant_timezone)
        }
    # Not the timezone of the last install: the workflows carry an older zone; reconfigure them all.
    timezone_moved = installed.manifest_hash != installed_hash(installed.manifest, tenant_timezone)
    new_ids = set()
    for cfg in new_configs:
        new_ids.add(cfg.workflow_id)
        before = old.get(cfg.workflow_id)
        if before is None:
            plan.start.append(cfg)
        elif timezone_moved or before.fingerprint != cfg.fingerprint:
            plan.reconfigure.append(cfg)
        else:
            plan.unchanged.append(cfg)
    plan.cancel = [workflow_id for workflow_id in old if workflow_id not in new_ids]
    return plan


# ------------------------------------------------------------------------------ validation


@dataclass(frozen=True)
class LoadedManifest:
    path: Path
    manifest: AppManifest


def load_manifests(paths: Sequence[Path]) -> list[LoadedManifest]:
    """Load and validate every file; UserError listing every problem of every file (all-or-nothing)."""
    loaded: list[LoadedManifest] = []
    problems: list[str] = []
    for path in paths:
        try:
            loaded.append(LoadedManifest(path, load_manifest(path)))
        except ManifestError as exc:
            problems.extend(str(problem) for problem in exc.problems)
    seen: dict[str, Path] = {}
    for item in loaded:
        if item.manifest.id in seen:
            problems.append(
                f"{item.path}:1:1: id: app {item.manifest.id!r} is also defined in {seen[item.manifest.id]}"
            )
        seen.setdefault(item.manifest.id, item.path)
    problems.extend(prefilter_problems(loaded))
    if problems:
        count = len(problems)
        raise UserError(
            f"nothing installed: {count} problem{'s' * (count != 1)}\n" + "\n".join(problems)
        )
    return loaded


def prefilter_problems(loaded: Iterable[LoadedManifest]) -> list[str]:
    """What the skill registry refuses: pre-filters that are not LOW-risk tools of a registered
    skill, and agent `tools` that name no registered skill. One file:line:col line each."""
    from manifest.loader import problem_at
    from skills.registry import default_registry

    registry = default_registry()
    problems: list[str] = []
    for item in loaded:
        for i, agent in enumerate(item.manifest.agents):
            for k, skill in enumerate(agent.tools):
                if skill not in registry:
                    known = ", ".join(sorted(registry.names()))
                    problems.append(str(problem_at(item.path, ("agents", i, "tools", k),
                                                   f"no skill {skill!r} is registered (known: {known})")))
            for j, heartbeat in enumerate(agent.heartbeats):
                if heartbeat.skill in INTERNAL_SOURCES or heartbeat.skill.startswith("_internal_"):
                    continue  # the internal sources are checked by the manifest rules
                reason = registry.prefilter_problem(heartbeat.skill, heartbeat.tool)
                if reason:
                    problems.append(str(problem_at(item.path, ("agents", i, "heartbeats", j, "skill"), reason)))
    return problems


def never_firing(loaded: Iterable[LoadedManifest], *, tenant: str, tenant_timezone: str) -> list[str]:
    """Heartbeats that would never fire for this tenant: an interval grid (salted per tenant, read
    in the tenant's zone) that never falls inside its active hours. Validation cannot know the
    tenant, so calendar schedules are checked there and interval ones here."""
    from datetime import UTC, datetime

    from manifest.loader import problem_at
    from schedule import heartbeat_zone, next_fire

    now = datetime.now(UTC)
    problems = []
    for item in loaded:
        for i, agent in enumerate(item.manifest.agents):
            for j, heartbeat in enumerate(agent.heartbeats):
                if heartbeat.active_hours is None:
                    continue
                if next_fire(heartbeat, tenant_id=tenant, tenant_timezone=tenant_timezone, after=now) is None:
                    zone = heartbeat_zone(heartbeat, tenant_timezone)
                    problems.append(str(problem_at(
                        item.path, ("agents", i, "heartbeats", j, "active_hours"),
                        f"for tenant {tenant!r} ({zone}) no due time of this schedule ever falls inside"
                        f" {heartbeat.active_hours.start}-{heartbeat.active_hours.end}: it would never fire"
                        " (`heartbeats preview` shows its times)")))
    return problems


def check_tenant_id(tenant: str) -> None:
    reason = id_problem(tenant)
    if reason:
        raise UserError(f"--tenant {reason}")


async def tenant_timezone(store: Store, tenant: str) -> str:
    """The tenant's timezone; UserError telling how to create the tenant when it does not exist."""
    found = await store.tenants.get(tenant=tenant)
    if found is None:
        raise UserError(f"unknown tenant {tenant!r}; create it first: heartbeats tenant set {tenant}")
    return found.timezone


# ------------------------------------------------------------------------------- applying


@dataclass
class InstallResult:
    app: str
    tenant: str
    started: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # of an unchanged app, found not running
    app_unchanged: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "tenant": self.tenant,
            "started": self.started,
            "reconfigured": self.reconfigured,
            "unchanged": self.unchanged,
            "cancelled": self.cancelled,
            "repaired": self.repaired,
        }

    @property
    def changed(self) -> bool:
        return bool(self.started or self.reconfigured or self.cancelled)


@dataclass
class UninstallResult:
    app: str
    tenant: str
    cancelled: list[str] = field(default_factory=list)
    was_installed: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"app": self.app, "tenant": self.tenant, "cancelled": self.cancelled}


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


def tenant_query(tenant: str) -> str:
    """Visibility query of a tenant's running heartbeat workflows (ids are `[a-z][a-z0-9_-]*`)."""
    return f'WorkflowType="{HEARTBEAT_WORKFLOW}" AND HeartbeatTenant="{tenant}" AND ExecutionStatus="Running"'


def app_query(tenant: str, app: str) -> str:
    """Visibility query of an app's running heartbeat workflows."""
    return (
        f'WorkflowType="{HEARTBEAT_WORKFLOW}" AND HeartbeatTenant="{tenant}" AND HeartbeatApp="{app}"'
        ' AND ExecutionStatus="Running"'
    )


async def running_ids(client: Client, query: str) -> set[str]:
    return {execution.id async for execution in client.list_workflows(query)}


def search_attributes(config: HeartbeatConfig) -> Any:
    """All six heartbeat search attributes, set at start (the workflow upserts status and count)."""
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_TENANT, config.tenant),
            SearchAttributePair(SA_APP, config.app),
            SearchAttributePair(SA_AGENT, config.agent),
            SearchAttributePair(SA_SLUG, config.heartbeat.slug),
            SearchAttributePair(SA_STATUS, "active"),
            SearchAttributePair(SA_FAILURE_COUNT, 0),
        ]
    )


def static_summary(config: HeartbeatConfig) -> str:
    from client.manifest_commands import describe_schedule

    return f"{config.app}/{config.agent}/{config.heartbeat.slug}: {describe_schedule(config.heartbeat)}"


async def start_or_reconfigure(client: Client, config: HeartbeatConfig) -> None:
    """Signal-with-start: starts the heartbeat's workflow, or reconfigures the running one."""
    from temporalio.common import WorkflowIDReusePolicy

    await client.start_workflow(
        HEARTBEAT_WORKFLOW,
        HeartbeatInput(config=config),
        id=config.workflow_id,
        task_queue=TASK_QUEUE,
        start_signal=SIGNAL_RECONFIGURE,
        start_signal_args=[config],
        search_attributes=search_attributes(config),
        static_summary=static_summary(config),
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


async def cancel_workflow(client: Client, workflow_id: str) -> bool:
    """Request cancellation of the workflow; False when there is no open one (that is fine)."""
    from temporalio.service import RPCError, RPCStatusCode

    # The server accepts a cancel request for a workflow that has already closed (only a never-seen
    # ID is NOT_FOUND), so ask first: an ended workflow must not be reported as cancelled.
    if not await is_running(client, workflow_id):
        return False
    try:
        await client.get_workflow_handle(workflow_id).cancel()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # never started, or already closed
            return False
        raise
    return True


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


def planned_calls(plan: AppPlan) -> int:
    """Temporal writes the plan needs (for the progress bar)."""
    if plan.app_unchanged:
        return 0
    return len(plan.start) + len(plan.reconfigure) + len(plan.cancel)


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
    query = app_query(plan.tenant, plan.app)
    if plan.app_unchanged:
        expected = {cfg.workflow_id: cfg for cfg in plan.unchanged}
        missing: list[HeartbeatConfig] = []
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

    # Workflows of the app that run but are in neither manifest (e.g. the store was reset): cancel.
    wanted = {cfg.workflow_id for cfg in plan.configs}
    planned_cancels = set(plan.cancel)
    orphans = sorted(await running_ids(client, query) - wanted - planned_cancels)

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
    """The app's record (installed or uninstalled); UserError when the tenant never installed it."""
    recorded = await store.apps.get(tenant=tenant, app=app)
    if recorded is None:
        raise UserError(f"app {app!r} is not installed for tenant {tenant!r}")
    return recorded


async def uninstall_app(
    client: Client, store: Store, *, tenant: str, app: str, limiter: Limiter | None = None
) -> UninstallResult:
    """Cancel every workflow of the app (visibility + the stored manifest's ids); mark it uninstalled."""
    limiter = limiter or Limiter()
    recorded = await recorded_app(store, tenant=tenant, app=app)
    ids = await running_ids(client, app_query(tenant, app))
    old_manifest = stored_manifest(recorded)
    if old_manifest is not None and recorded.status == "installed":
        ids |= {
            cfg.workflow_id
            for cfg in heartbeat_configs(old_manifest, tenant=tenant, tenant_timezone="UTC")
        }
    ordered = sorted(ids)
    outcomes = await limiter.run([_bind(cancel_workflow, client, wid) for wid in ordered])
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
    tz = await tenant_timezone(store, tenant)
    problems = never_firing(loaded, tenant=tenant, tenant_timezone=tz)
    if problems:
        count = len(problems)
        raise UserError(f"nothing installed: {count} problem{'s' * (count != 1)}\n" + "\n".join(problems))
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
    """Apps (of one tenant) whose heartbeats all run, from one count per `COUNT_BATCH` apps.

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
            counted = await client.count_workflows(f"{tenant_query(tenant)} AND HeartbeatApp IN ({apps})")
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


# ------------------------------------------------------------------------------------- running


def run_with_temporal(
    prepare: Callable[[Store], Awaitable[P]],
    action: Callable[[Client, Store, P], Awaitable[T]],
) -> T:
    """Open the store, run `prepare` (store checks), then connect to Temporal and run `action`.

    Checks that need only the store (unknown tenant or app) fail before any Temporal call.
    Store and Temporal errors become one-line UserErrors.
    """
    from client.connection import connect, temporal_errors

    async def with_store(store: Store) -> T:
        prepared = await prepare(store)
        client = await connect()
        return await action(client, store, prepared)

    with temporal_errors():
        return run_with_store(with_store)


# ------------------------------------------------------------------------------------- output


class ProgressBar:
    """A progress bar on stderr for large installs: only on a terminal, never with --json.

    Call it with the total number of Temporal calls; it returns the per-call callback (or None
    when no bar is shown). `close()` always restores the terminal, also after an error.
    """

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None

    def __call__(self, total: int) -> Progress | None:
        from rich.console import Console
        from rich.progress import Progress as RichProgress

        console = Console(stderr=True)
        if not self.enabled or total <= PROGRESS_THRESHOLD or not console.is_terminal:
            return None
        self._bar = RichProgress(console=console, transient=True)
        self._bar.start()
        task = self._bar.add_task("Temporal calls", total=total)
        return lambda done: self._bar.advance(task, done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def print_install(result: InstallResult) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(soft_wrap=False)
    if result.app_unchanged and not result.repaired:
        console.print(
            f"app {result.app} is unchanged for tenant {result.tenant}: nothing changed"
            f" ({len(result.unchanged)} heartbeat{'s' * (len(result.unchanged) != 1)} running)",
            highlight=False,
        )
        return
    rows = [
        *(("started", wid) for wid in result.started),
        *(("reconfigured", wid) for wid in result.reconfigured),
        *(("cancelled", wid) for wid in result.cancelled),
        *(("unchanged", wid) for wid in result.unchanged),
    ]
    table = Table("change", "heartbeat workflow", title=f"app {result.app} (tenant {result.tenant})")
    for change, wid in rows[:MAX_TABLE_ROWS]:
        table.add_row(Text(change), Text(wid))
    if len(rows) > MAX_TABLE_ROWS:
        table.add_row(Text("…"), Text(f"{len(rows) - MAX_TABLE_ROWS} more"))
    if rows:
        console.print(table)
    if result.repaired:
        console.print(
            f"repaired: {len(result.repaired)} workflow(s) of the unchanged app were not running"
            " and were started again",
            highlight=False,
        )
    if not result.changed and not result.app_unchanged:
        console.print("no heartbeat changed (the app record was updated)", highlight=False)
    console.print(totals(result), highlight=False)


def totals(result: InstallResult) -> str:
    return (
        f"{result.app}: {len(result.started)} started, {len(result.reconfigured)} reconfigured,"
        f" {len(result.unchanged)} unchanged, {len(result.cancelled)} cancelled"
    )


def print_uninstall(result: UninstallResult) -> None:
    already = "" if result.was_installed else " (it was already uninstalled)"
    click.echo(
        f"uninstalled app {result.app} for tenant {result.tenant}{already}:"
        f" {len(result.cancelled)} workflow{'s' * (len(result.cancelled) != 1)} cancelled"
    )
    for wid in result.cancelled:
        click.echo(f"  cancelled {wid}")


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


# ------------------------------------------------------------------------------------ commands

TENANT_OPTION = click.option(
    "--tenant", required=True, metavar="TENANT", help="Tenant id (create it with `heartbeats tenant set`)."
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@TENANT_OPTION
@JSON_OPTION
def install(file: Path, tenant: str, as_json: bool) -> None:
    """Install (or update) the app in FILE for TENANT: one workflow per heartbeat.

    Idempotent: an unchanged manifest changes nothing and says so; a changed heartbeat is
    reconfigured in place (failure count and history kept); a heartbeat no longer in the file
    is cancelled. All-or-nothing: when the manifest is invalid, the tenant unknown or a
    pre-filter tool not LOW risk, nothing is started.

    \b
    Examples:
      heartbeats install manifests/sales.yaml --tenant demo
      heartbeats install manifests/cmo.yaml --tenant acme --json
    \b
    Plain temporal CLI, per heartbeat (signal-with-start: starts it, or reconfigures it if running):
      temporal workflow signal-with-start --type HeartbeatWorkflow --task-queue heartbeats \\
          --workflow-id heartbeat:demo:sales:outreach:daily_cadence --input-file input.json \\
          --signal-name reconfigure --signal-input-file config.json \\
          --search-attribute HeartbeatTenant='"demo"' --search-attribute HeartbeatApp='"sales"' ...
    """
    check_tenant_id(tenant)
    loaded = load_manifests([file])
    bar = ProgressBar(enabled=not as_json)
    try:
        results = run_with_temporal(
            lambda store: plan_manifests(store, loaded, tenant=tenant),
            lambda client, store, plans: apply_plans(client, store, plans, progress=bar),
        )
    finally:
        bar.close()
    if as_json:
        echo_json(results[0].to_json())
        return
    print_install(results[0])


@click.command()
@click.argument("app")
@TENANT_OPTION
@JSON_OPTION
def uninstall(app: str, tenant: str, as_json: bool) -> None:
    """Cancel every heartbeat workflow of APP for TENANT and mark the app uninstalled.

    The app's records, memory and receipts stay in the store; installing it again starts
    fresh workflows.

    \b
    Examples:
      heartbeats uninstall sales --tenant demo
    \b
    Plain temporal CLI (cancel the app's running workflows):
      temporal workflow cancel --query 'HeartbeatTenant="demo" AND HeartbeatApp="sales"' --yes
    """
    check_tenant_id(tenant)
    reason = id_problem(app)
    if reason:
        raise UserError(f"APP {reason}")
    result = run_with_temporal(
        lambda store: recorded_app(store, tenant=tenant, app=app),
        lambda client, store, _: uninstall_app(client, store, tenant=tenant, app=app),
    )
    if as_json:
        echo_json(result.to_json())
        return
    print_uninstall(result)


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, exists=True, path_type=Path))
@TENANT_OPTION
@JSON_OPTION
def sync(folder: Path, tenant: str, as_json: bool) -> None:
    """Make TENANT's installed apps exactly the manifests in DIR (*.yaml, *.yml).

    Every manifest is validated first; if any is invalid nothing is applied. Then each is
    installed (as `heartbeats install`), and the tenant's installed apps that have no
    manifest in DIR any more are uninstalled.

    \b
    Examples:
      heartbeats sync manifests/ --tenant demo
      heartbeats sync apps/acme/ --tenant acme --json
    \b
    Plain temporal CLI (what runs for the tenant afterwards):
      temporal workflow list --query 'HeartbeatTenant="demo" AND ExecutionStatus="Running"'
    """
    from client.manifest_commands import manifest_paths

    check_tenant_id(tenant)
    paths = manifest_paths((str(folder),))
    if not paths:
        # Applying an empty folder would uninstall every app of the tenant: almost surely a mistake.
        raise UserError(
            f"no manifests (*.yaml, *.yml) in {folder}; to remove an app use `heartbeats uninstall APP`"
        )
    loaded = load_manifests(paths)
    bar = ProgressBar(enabled=not as_json)
    try:
        installed, removed = run_with_temporal(
            lambda store: plan_manifests(store, loaded, tenant=tenant),
            lambda client, store, plans: sync_folder(
                client, store, loaded, tenant=tenant, plans=plans, progress=bar
            ),
        )
    finally:
        bar.close()
    if as_json:
        echo_json(
            {
                "tenant": tenant,
                "apps": [result.to_json() for result in installed],
                "uninstalled": [result.to_json() for result in removed],
            }
        )
        return
    for result in installed:
        print_install(result)
    for result in removed:
        click.echo(f"app {result.app} has no manifest in {folder} any more:")
        print_uninstall(result)


COMMANDS: list[click.Command] = [install, uninstall, sync]
