"""Operations on installed heartbeats and tasks: list, health, status, runs, and the operator signals.

Everything here is also possible with the plain `temporal` CLI (docs/operations.md puts them side by
side): the workflows carry their tenant, app, agent, slug, status and failure count as search
attributes, answer the `status` query and take the signals. Receipts (`runs`) come from the store,
where the workflow's activities write them. Each function raises the project's errors: NotFound
for an unknown heartbeat or task, Conflict for one that is not running, InvalidInput for a malformed ID.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from client.checks import require_id
from client.temporal import (
    QUERY_TIMEOUT,
    StatusReader,
    describe_running,
    disabled_query,
    entities_query,
    entity_executions,
    failing_query,
    is_entity_id,
    no_such_heartbeat,
    signal_running,
    temporal_errors,
    view_from_search_attributes,
)
from contract.errors import InvalidInput
from contract.heartbeat import HeartbeatStatusView
from contract.names import (
    CHAT_ID_PREFIX,
    HEARTBEAT_SIGNALS,
    INBOUND_ID_PREFIX,
    JOB_ID_PREFIX,
    SIGNAL_RECONFIGURE,
    SIGNAL_RUN_NOW,
    TASK_ID_PREFIX,
    parse_entity_workflow_id,
    parse_receipt_workflow_id,
)
from contract.task import ManualRun
from store.installed import stored_manifest
from store.models import Receipt

if TYPE_CHECKING:
    from temporalio.client import Client

    from store import Store
    from store.spend import AuditLog

# The signals an operator sends by name (reconfigure carries a config: the sync client sends it).
OPERATOR_SIGNALS = tuple(name for name in HEARTBEAT_SIGNALS if name != SIGNAL_RECONFIGURE)


@dataclass(frozen=True)
class Views:
    """Status views, by id; `unanswered` of them came from search attributes (no worker answered)."""

    views: list[HeartbeatStatusView]
    unanswered: int


@dataclass(frozen=True)
class Health:
    failing: list[HeartbeatStatusView]  # active with failure_count >= FAILING_THRESHOLD
    disabled: list[HeartbeatStatusView]
    unanswered: int


def check_entity_id(value: str) -> tuple[str, str, str, str, str]:
    """(kind, tenant, app, agent, slug) of a heartbeat's or a task's workflow ID; InvalidInput otherwise."""
    try:
        return parse_entity_workflow_id(value)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


async def list_heartbeats(client: Client, *, tenant: str | None = None) -> Views:
    """Status views of the running heartbeats and tasks (of one tenant)."""
    reader = StatusReader(client)
    views = await reader.views(await entity_executions(client, entities_query(tenant)))
    return Views(views, reader.unanswered)


@dataclass(frozen=True)
class ViewPage:
    """One page of status views; `next_page` (opaque) asks for the following one, None at the end."""

    views: list[HeartbeatStatusView]
    next_page: str | None
    unanswered: int


PAGE_SIZES = range(1, 201)
_SEARCH = re.compile(r"^[a-z0-9_-]{1,64}$")


async def page_heartbeats(client: Client, *, tenant: str, app: str | None = None, search: str | None = None,
                          page_size: int = 50, page: str | None = None) -> ViewPage:
    """A page of a tenant's (or an app's) running heartbeats, tasks and runtime tasks, in visibility's
    order: only this page is asked for its status, so a page costs the same with 10,000 installed.
    `search` keeps those whose agent or slug starts with it. The page's status queries end within
    QUERY_TIMEOUT of the first: those unanswered by then are shown from the search attributes."""
    require_id(tenant, "tenant")
    if app is not None:
        require_id(app, "app")
    if page_size not in PAGE_SIZES:
        raise InvalidInput(f"page_size must be between 1 and {PAGE_SIZES[-1]} (got {page_size})")
    conditions = []
    if search:
        if not _SEARCH.match(search):
            raise InvalidInput(f"search: letters a-z, digits, '_' and '-' only, at most 64 (got {search!r})")
        conditions.append(f'(HeartbeatSlug STARTS_WITH "{search}" OR HeartbeatAgent STARTS_WITH "{search}")')
    try:
        token = base64.urlsafe_b64decode(page.encode()) if page else None
    except (ValueError, binascii.Error):
        raise InvalidInput("page: not a page of this list (start again from the first page)") from None
    with temporal_errors():
        listed = client.list_workflows(entities_query(tenant, *conditions, app=app), page_size=page_size,
                                       next_page_token=token)
        await listed.fetch_next_page()
    executions = [execution for execution in listed.current_page or () if is_entity_id(execution.id)]
    reader = StatusReader(client, budget=QUERY_TIMEOUT)  # a page waits one QUERY_TIMEOUT at most
    views = await reader.views(executions)
    following = listed.next_page_token
    return ViewPage(views, base64.urlsafe_b64encode(following).decode() if following else None, reader.unanswered)


async def health(client: Client, *, tenant: str | None = None) -> Health:
    """Failing and disabled heartbeats and tasks by the search attributes; views from the status query."""
    failing, disabled = await asyncio.gather(
        entity_executions(client, failing_query(tenant)), entity_executions(client, disabled_query(tenant))
    )
    reader = StatusReader(client)
    failing_views, disabled_views = await asyncio.gather(reader.views(failing), reader.views(disabled))
    return Health(failing_views, disabled_views, reader.unanswered)


async def heartbeat_status(client: Client, workflow_id: str) -> tuple[HeartbeatStatusView, bool]:
    """(status view, answered by the workflow) of one running heartbeat or task."""
    check_entity_id(workflow_id)
    described = await describe_running(client, workflow_id)
    answered = await StatusReader(client).query(workflow_id)
    if answered is None:
        return view_from_search_attributes(workflow_id, described.typed_search_attributes), False
    return answered, True


async def signal_heartbeat(client: Client, workflow_id: str, signal: str, *, audit: AuditLog | None = None,
                           actor: str = "operator") -> None:
    """Send an operator signal (run_now, pause, resume, enable) to a running heartbeat or task; with
    `audit`, the action is recorded in the tenant's audit log once the signal was accepted."""
    _, tenant, *_ = check_entity_id(workflow_id)
    if signal not in OPERATOR_SIGNALS:
        raise InvalidInput(f"unknown signal {signal!r}; the operator signals are {', '.join(OPERATOR_SIGNALS)}")
    await signal_running(client, workflow_id, signal)
    if audit is not None:
        await audit.add(tenant=tenant, actor=actor, action=signal, target=workflow_id, detail={})


async def run_task_now(client: Client, workflow_id: str, run: ManualRun, *, audit: AuditLog | None = None,
                       actor: str = "operator") -> None:
    """A task's manual trigger: one run now, with an optional payload (the case) and key; `force`
    runs it even when its key was processed within the task's dedupe TTL (audited, with `audit`)."""
    kind, tenant, *_ = check_entity_id(workflow_id)
    if kind != TASK_ID_PREFIX:
        raise InvalidInput(f"{workflow_id} is a heartbeat: a payload, a key and --force apply to tasks only"
                           " (a heartbeat's run-now always runs)")
    await signal_running(client, workflow_id, SIGNAL_RUN_NOW, run)
    if audit is not None:
        await audit.add(tenant=tenant, actor=actor, action="run_now_forced" if run.force else SIGNAL_RUN_NOW,
                        target=workflow_id, detail={"key": run.key, "force": run.force})


async def heartbeat_runs(store: Store, workflow_id: str, *, limit: int) -> list[Receipt]:
    """The receipts of a heartbeat, task, runtime task, agent chat or inbound message, newest first;
    NotFound when the store knows no such one."""
    try:
        kind, tenant, app, agent, slug = parse_receipt_workflow_id(workflow_id)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    receipts = await store.receipts.list(tenant=tenant, heartbeat_id=workflow_id, limit=limit)
    if receipts:
        return receipts
    if kind in (CHAT_ID_PREFIX, INBOUND_ID_PREFIX):
        raise no_such_heartbeat(workflow_id)  # receipts are all the store keeps of them
    if kind == JOB_ID_PREFIX:  # a runtime task: its row says whether it exists
        if await store.runtime_tasks.get(tenant=tenant, app=app, agent=agent, key=slug) is None:
            raise no_such_heartbeat(workflow_id)
        return receipts
    recorded = await store.apps.get(tenant=tenant, app=app)  # installed or uninstalled since
    manifest = stored_manifest(recorded) if recorded is not None else None
    declared = [] if manifest is None else manifest.tasks() if kind == TASK_ID_PREFIX else manifest.heartbeats()
    if not any(a.id == agent and entity.slug == slug for a, entity in declared):
        raise no_such_heartbeat(workflow_id)
    return receipts
