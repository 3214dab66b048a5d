"""State-machine runs, for the CLI and the HTTP API: start, show, transition, retry, cancel, list, graph.

    run = await start_run(client, store, tenant="acme", app="docs", workflow="review", variables={"DOC": "a.pdf"})
    view = await show_run(client, run.id)
    view = await transition_run(client, run.id, "approve", {"ok": True})   # InvalidInput: payload refused

A run is pinned to its workflow as resolved at start (template merged) and to the app version it
came from, by hash: a re-install changes new runs only. Every refusal is a project error: an unknown
app or workflow NotFound, a payload its schema refuses InvalidInput (nothing changed), a run that is
not waiting or not failed Conflict.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client.checks import require_id
from client.temporal import temporal_errors
from contract.errors import Conflict, InvalidInput, NotFound, Unavailable
from contract.machine import (
    MACHINE_STATE_ERROR,
    MachineInput,
    MachineView,
    TransitionRequest,
    new_run,
    resolved_workflow,
)
from contract.names import (
    MACHINE_WORKFLOW,
    QUERY_MACHINE,
    UPDATE_RETRY,
    UPDATE_TRANSITION,
    machine_workflow_id,
    parse_machine_workflow_id,
)
from manifest.loader import ManifestError, load_manifest
from manifest.machines import mermaid
from runtime.workflows import cancel_if_running, start_machine
from store.installed import InstalledApp, installed_app
from store.store import Areas

if TYPE_CHECKING:
    from temporalio.client import Client

MAX_CONTEXT_BYTES = 64 * 1024  # --var and --context together
UPDATE_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class StartedRun:
    id: str
    workflow: str
    key: str
    definition_hash: str
    manifest_hash: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "workflow": self.workflow, "key": self.key, "definition_hash": self.definition_hash,
                "manifest_hash": self.manifest_hash}


@dataclass(frozen=True)
class RunSummary:
    id: str
    workflow: str
    key: str
    status: str
    place: str
    started_at: datetime | None
    closed: bool

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "workflow": self.workflow, "key": self.key, "status": self.status,
                "place": self.place, "started_at": self.started_at.isoformat() if self.started_at else None,
                "closed": self.closed}


def new_key(now: datetime | None = None) -> str:
    """A run key when none is given: `r` + UTC time + 6 random hex digits (sorts by start)."""
    now = now or datetime.now(UTC)
    return f"r{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


def parse_vars(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`K=V` pairs as context.variables: V as JSON when it parses (`3`, `true`, `[1,2]`), else the text."""
    found: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--var {pair!r}: expected NAME=VALUE")
        try:
            found[name.strip()] = json.loads(text)
        except ValueError:
            found[name.strip()] = text
    return found


async def prepare_run(store: Areas, *, tenant: str, app: str, workflow: str, key: str | None = None,
                      variables: dict[str, Any] | None = None, custom: dict[str, Any] | None = None) -> MachineInput:
    """The input of a new run of `workflow` as the app is installed for the tenant now."""
    require_id(tenant, "tenant")
    require_id(app, "app")
    require_id(workflow, "workflow")
    key = require_id(key, "key") if key is not None else new_key()
    for what, value in (("variables", variables), ("context", custom)):
        if value is not None and not isinstance(value, dict):
            raise InvalidInput(f"{what}: must be a JSON object")
    size = len(json.dumps([variables or {}, custom or {}], default=str))
    if size > MAX_CONTEXT_BYTES:
        raise InvalidInput(f"variables and context: {size:,} bytes; at most {MAX_CONTEXT_BYTES:,}")
    installed = await _installed(store, tenant=tenant, app=app)
    return new_run(installed.manifest, manifest_hash=installed.manifest_hash, tenant=tenant, app=app,
                   workflow=workflow, key=key, variables=variables, custom=custom)


async def _installed(store: Areas, *, tenant: str, app: str) -> InstalledApp:
    installed = await installed_app(store, tenant=tenant, app=app)
    if installed is None:
        raise NotFound(f"app {app!r} is not installed for tenant {tenant!r}")
    return installed


async def start_run(client: Client, store: Areas, *, tenant: str, app: str, workflow: str, key: str | None = None,
                    variables: dict[str, Any] | None = None, custom: dict[str, Any] | None = None) -> StartedRun:
    """Start a run; Conflict when a run with that key was started before."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    input = await prepare_run(store, tenant=tenant, app=app, workflow=workflow, key=key, variables=variables,
                              custom=custom)
    try:
        with temporal_errors():
            await start_machine(client, input)
    except WorkflowAlreadyStartedError:
        raise Conflict(f"a run with key {input.key!r} of workflow {workflow!r} was already started"
                       f" ({input.workflow_id}); pick another --key") from None
    return StartedRun(id=input.workflow_id, workflow=workflow, key=input.key, definition_hash=input.definition_hash,
                      manifest_hash=input.manifest_hash)


def check_run_id(run_id: str, *, tenant: str | None = None, app: str | None = None) -> str:
    """`run_id` when it is a run's ID (of `tenant` and `app` when given); NotFound for another
    tenant's or app's run, so an ID never reveals whether it exists elsewhere."""
    try:
        owner, owner_app, _, _ = parse_machine_workflow_id(run_id)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if (tenant is not None and owner != tenant) or (app is not None and owner_app != app):
        raise NotFound(f"no run {run_id!r}")
    return run_id


async def show_run(client: Client, run_id: str, *, tenant: str | None = None, app: str | None = None) -> MachineView:
    """The run's place, status, variables and transitions (a closed run answers from its history)."""
    check_run_id(run_id, tenant=tenant, app=app)
    handle = client.get_workflow_handle(run_id)
    try:
        with temporal_errors():
            return await asyncio.wait_for(handle.query(QUERY_MACHINE, result_type=MachineView), UPDATE_WAIT_SECONDS)
    except TimeoutError:
        raise Unavailable(f"no worker answered for {run_id} (is `heartbeats worker` running?)") from None
    except NotFound:
        raise NotFound(f"no run {run_id!r}") from None


async def transition_run(client: Client, run_id: str, transition: str, payload: Any = None, *,
                         tenant: str | None = None, app: str | None = None) -> MachineView:
    """Fire a manual transition; InvalidInput when the run refuses it (nothing changed), with why."""
    check_run_id(run_id, tenant=tenant, app=app)
    return await _update(client, run_id, UPDATE_TRANSITION, TransitionRequest(transition=transition, payload=payload))


async def retry_run(client: Client, run_id: str, *, tenant: str | None = None, app: str | None = None) -> MachineView:
    """Resume a failed run from its failed transition (completed calls are not repeated)."""
    check_run_id(run_id, tenant=tenant, app=app)
    return await _update(client, run_id, UPDATE_RETRY, None)


async def _update(client: Client, run_id: str, name: str, argument: Any) -> MachineView:
    from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError

    handle = client.get_workflow_handle(run_id)
    args = [] if argument is None else [argument]
    try:
        with temporal_errors():
            return await asyncio.wait_for(handle.execute_update(name, args=args, result_type=MachineView),
                                          UPDATE_WAIT_SECONDS)
    except WorkflowUpdateFailedError as exc:
        cause = exc.__cause__ or exc
        message = str(getattr(cause, "message", None) or cause)
        if getattr(cause, "type", None) == MACHINE_STATE_ERROR:
            raise Conflict(message) from None
        raise InvalidInput(message) from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise Unavailable(f"{run_id} did not answer within {UPDATE_WAIT_SECONDS:g} s (is `heartbeats worker`"
                          " running?); `heartbeats workflow show` tells whether it moved") from None
    except NotFound:
        pass
    # An update to a run that has ended: say so (a retried request after the run finished), else unknown.
    try:
        with temporal_errors():
            described = await handle.describe()
    except NotFound:
        raise NotFound(f"no run {run_id!r}") from None
    raise Conflict(f"{run_id} has ended ({described.status.name.lower() if described.status else 'closed'});"
                   " nothing changed")


async def cancel_run(client: Client, run_id: str, *, tenant: str | None = None, app: str | None = None) -> bool:
    """Cancel the run; False when it had already ended."""
    check_run_id(run_id, tenant=tenant, app=app)
    with temporal_errors():
        return await cancel_if_running(client, run_id)


async def list_runs(client: Client, *, tenant: str, app: str | None = None, workflow: str | None = None,
                    status: str | None = None, limit: int = 100) -> list[RunSummary]:
    """The tenant's runs, newest first, from the search attributes (no worker needed)."""
    require_id(tenant, "tenant")
    parts = [f'WorkflowType="{MACHINE_WORKFLOW}"', f'HeartbeatTenant="{tenant}"']
    if app is not None:
        parts.append(f'HeartbeatApp="{require_id(app, "app")}"')
    if workflow is not None:
        parts.append(f'MachineWorkflow="{require_id(workflow, "workflow")}"')
    if status is not None:
        parts.append(f'MachineStatus="{require_id(status, "status")}"')
    return await _summaries(client, " AND ".join(parts), limit)


async def runs_needing_a_person(client: Client, *, limit: int = 200) -> list[RunSummary]:
    """Open runs of every tenant that wait for a manual transition or failed (retry or cancel), newest
    first: one visibility query, however many tenants."""
    query = (f'WorkflowType="{MACHINE_WORKFLOW}" AND ExecutionStatus="Running"'
             ' AND MachineStatus IN ("waiting", "failed")')
    return await _summaries(client, query, limit)


async def _summaries(client: Client, query: str, limit: int) -> list[RunSummary]:
    from contract.search_attributes import SA_MACHINE, SA_MACHINE_PLACE, SA_MACHINE_STATUS

    found: list[RunSummary] = []
    with temporal_errors():
        async for execution in client.list_workflows(query, limit=limit):
            attributes = execution.typed_search_attributes
            closed = execution.close_time is not None
            status_now = attributes.get(SA_MACHINE_STATUS) or "pending"
            if closed and status_now in ("pending", "running", "waiting", "failed"):
                status_now = "cancelled"  # closed without saying so: cancelled or terminated
            _, _, name, key = parse_machine_workflow_id(execution.id)
            found.append(RunSummary(id=execution.id, workflow=attributes.get(SA_MACHINE) or name, key=key,
                                    status=status_now, place=attributes.get(SA_MACHINE_PLACE) or "",
                                    started_at=execution.start_time, closed=closed))
    return found


def graph_from_file(path: Path, workflow: str, *, current: str | None = None) -> str:
    """The Mermaid state diagram of `workflow` in the manifest file (validated first)."""
    try:
        manifest = load_manifest(path)
    except ManifestError as exc:
        raise InvalidInput("\n".join(str(problem) for problem in exc.problems)) from None
    return mermaid(resolved_workflow(manifest, workflow), current=current)


async def graph_installed(store: Areas, *, tenant: str, app: str, workflow: str, current: str | None = None) -> str:
    """The Mermaid state diagram of an installed app's workflow."""
    installed = await _installed(store, tenant=tenant, app=app)
    return mermaid(resolved_workflow(installed.manifest, workflow), current=current)


__all__ = ["RunSummary", "StartedRun", "cancel_run", "check_run_id", "graph_from_file", "graph_installed",
           "list_runs", "machine_workflow_id", "new_key", "parse_vars", "prepare_run", "retry_run", "show_run",
           "start_run", "transition_run"]
