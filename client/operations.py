"""Operations on installed heartbeats: list, health, status, runs, run-now, pause, resume, enable.

Everything here is also possible with the plain `temporal` CLI (each command's help shows the line;
docs/operations.md puts them side by side): the workflows carry their tenant, app, agent, slug,
status and failure count as search attributes, answer the `status` query and take the signals.
Receipts (`runs`) come from the store, where the workflow's activities write them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from client.errors import UserError
from client.sync import CONCURRENCY, JSON_OPTION, echo_json
from contract.heartbeat import FAILING_THRESHOLD, MAX_CONSECUTIVE_FAILURES, HeartbeatStatusView
from contract.names import (
    HEARTBEAT_WORKFLOW,
    QUERY_STATUS,
    SIGNAL_ENABLE,
    SIGNAL_PAUSE,
    SIGNAL_RESUME,
    SIGNAL_RUN_NOW,
    parse_heartbeat_workflow_id,
)
from contract.search_attributes import SA_FAILURE_COUNT, SA_STATUS
from manifest.ids import id_problem

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecution

    from store import Store

T = TypeVar("T")

# A status query waits for a worker to answer it; without one, give up after this long and show
# what the search attributes say instead.
QUERY_TIMEOUT = timedelta(seconds=5)

RUNNING_HEARTBEATS = f'WorkflowType="{HEARTBEAT_WORKFLOW}" AND ExecutionStatus="Running"'

VIEW_FIELDS = tuple(HeartbeatStatusView.model_fields)


# ------------------------------------------------------------------------------------ library


def heartbeats_query(tenant: str | None = None, *conditions: str) -> str:
    """Visibility query of running heartbeat workflows, optionally of one tenant."""
    parts = [RUNNING_HEARTBEATS]
    if tenant is not None:
        parts.append(f'HeartbeatTenant="{tenant}"')  # ids are [a-z][a-z0-9_-]*: nothing to escape
    parts.extend(conditions)
    return " AND ".join(parts)


def failing_query(tenant: str | None = None) -> str:
    return heartbeats_query(
        tenant, 'HeartbeatStatus="active"', f"HeartbeatFailureCount >= {FAILING_THRESHOLD}"
    )


def disabled_query(tenant: str | None = None) -> str:
    return heartbeats_query(tenant, 'HeartbeatStatus="disabled"')


def view_from_search_attributes(workflow_id: str, attributes: Any) -> dict[str, Any]:
    """The status view as far as visibility knows it (no times: those only the workflow knows)."""
    tenant, app, agent, slug = parse_heartbeat_workflow_id(workflow_id)
    return {
        "id": workflow_id,
        "tenant": tenant,
        "app": app,
        "agent": agent,
        "slug": slug,
        "status": attributes.get(SA_STATUS) or "active",
        "failure_count": attributes.get(SA_FAILURE_COUNT) or 0,
        "next_run": None,
        "last_run": None,
        "last_heartbeat_ok_at": None,
    }


class StatusReader:
    """Status queries, concurrently and bounded; falls back to search attributes when unanswered.

    After the first query that times out (no worker polling), the rest are not attempted: they
    would each wait QUERY_TIMEOUT for the same answer.
    """

    def __init__(self, client: Client, *, limit: int = CONCURRENCY) -> None:
        self._client = client
        self._semaphore = asyncio.Semaphore(limit)
        self.unanswered = 0
        self._no_worker = False

    async def query(self, workflow_id: str) -> dict[str, Any] | None:
        """The `status` query's answer, or None when it could not be had."""
        from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
        from temporalio.service import RPCError, RPCStatusCode

        if self._no_worker:
            return None
        async with self._semaphore:
            if self._no_worker:
                return None
            try:
                view = await self._client.get_workflow_handle(workflow_id).query(
                    QUERY_STATUS, result_type=HeartbeatStatusView, rpc_timeout=QUERY_TIMEOUT
                )
            except RPCError as exc:
                if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.FAILED_PRECONDITION):
                    self._no_worker = True
                return None
            except (WorkflowQueryFailedError, WorkflowQueryRejectedError):
                return None
        return view.model_dump(mode="json")

    async def view(self, execution: WorkflowExecution) -> dict[str, Any]:
        answered = await self.query(execution.id)
        if answered is None:
            self.unanswered += 1
            return view_from_search_attributes(execution.id, execution.typed_search_attributes)
        return answered

    async def views(self, executions: Sequence[WorkflowExecution]) -> list[dict[str, Any]]:
        views = await asyncio.gather(*(self.view(execution) for execution in executions))
        return sorted(views, key=lambda view: view["id"])


async def executions(client: Client, query: str) -> list[WorkflowExecution]:
    from contract.names import HEARTBEAT_ID_PREFIX

    found = [execution async for execution in client.list_workflows(query)]
    # Only well-formed heartbeat IDs (someone may have started a stray workflow of the type).
    return [e for e in found if e.id.startswith(HEARTBEAT_ID_PREFIX + ":") and _is_heartbeat_id(e.id)]


def _is_heartbeat_id(value: str) -> bool:
    try:
        parse_heartbeat_workflow_id(value)
    except ValueError:
        return False
    return True


async def list_heartbeats(client: Client, *, tenant: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """Status views of the running heartbeats (of one tenant), by id; and how many went unanswered."""
    reader = StatusReader(client)
    views = await reader.views(await executions(client, heartbeats_query(tenant)))
    return views, reader.unanswered


async def health(client: Client, *, tenant: str | None = None) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """{"failing": [...], "disabled": [...]} by the search attributes; views from the status query."""
    failing, disabled = await asyncio.gather(
        executions(client, failing_query(tenant)), executions(client, disabled_query(tenant))
    )
    reader = StatusReader(client)
    failing_views, disabled_views = await asyncio.gather(reader.views(failing), reader.views(disabled))
    return {"failing": failing_views, "disabled": disabled_views}, reader.unanswered


def check_workflow_id(value: str) -> tuple[str, str, str, str]:
    try:
        return parse_heartbeat_workflow_id(value)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def not_found(workflow_id: str) -> UserError:
    return UserError(f"no heartbeat workflow {workflow_id} (see `heartbeats list`)")


async def describe_running(client: Client, workflow_id: str) -> Any:
    """The workflow's description; UserError when there is none or it is not running."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise not_found(workflow_id) from None
        raise
    if described.status != WorkflowExecutionStatus.RUNNING:
        state = described.status.name.lower() if described.status else "closed"
        raise UserError(
            f"heartbeat workflow {workflow_id} is not running (it is {state}: uninstalled, or removed"
            " from its manifest); install its app again to start it"
        )
    return described


async def heartbeat_status(client: Client, workflow_id: str) -> tuple[dict[str, Any], bool]:
    """(status view, answered by the workflow) of one running heartbeat."""
    check_workflow_id(workflow_id)
    described = await describe_running(client, workflow_id)
    answered = await StatusReader(client).query(workflow_id)
    if answered is None:
        return view_from_search_attributes(workflow_id, described.typed_search_attributes), False
    return answered, True


async def send_signal(client: Client, workflow_id: str, signal: str) -> None:
    """Send a no-argument signal to a running heartbeat; UserError when there is none."""
    from temporalio.service import RPCError, RPCStatusCode

    check_workflow_id(workflow_id)
    try:
        await client.get_workflow_handle(workflow_id).signal(signal)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        if "completed" in exc.message.lower():
            raise UserError(
                f"heartbeat workflow {workflow_id} is not running (uninstalled, or removed from its"
                " manifest)"
            ) from None
        raise not_found(workflow_id) from None


async def heartbeat_runs(store: Store, workflow_id: str, *, limit: int) -> list[dict[str, Any]]:
    """The heartbeat's receipts, newest first; UserError when the store knows no such heartbeat."""
    from client.sync import stored_manifest

    tenant, app, agent, slug = check_workflow_id(workflow_id)
    receipts = await store.receipts.list(tenant=tenant, heartbeat_id=workflow_id, limit=limit)
    if receipts:
        return receipts
    recorded = await store.apps.get(tenant=tenant, app=app)
    manifest = stored_manifest(recorded) if recorded else None
    known = manifest is not None and any(
        agent_spec.id == agent and heartbeat.slug == slug for agent_spec, heartbeat in manifest.heartbeats()
    )
    if not known:
        raise not_found(workflow_id)
    return receipts


# ------------------------------------------------------------------------------------ running


def run_client(action: Callable[[Client], Awaitable[T]]) -> T:
    """Connect to Temporal and run `action`; Temporal errors become one-line UserErrors."""
    from client.connection import connect, temporal_errors

    async def main() -> T:
        return await action(await connect())

    with temporal_errors():
        return asyncio.run(main())


def warn_unanswered(count: int) -> None:
    if count:
        click.echo(
            f"warning: {count} status quer{'y' if count == 1 else 'ies'} went unanswered (is a worker"
            " running? `heartbeats worker`); status and failure count shown from search attributes,"
            " times unknown",
            err=True,
        )


def print_views(views: Sequence[dict[str, Any]], *, title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table("id", "status", "failures", "next run", "last run", "last HEARTBEAT_OK", title=title)
    for view in views:
        cells = (
            view["id"],
            view["status"],
            str(view["failure_count"]),
            view["next_run"] or "-",
            view["last_run"] or "-",
            view["last_heartbeat_ok_at"] or "-",
        )
        table.add_row(*(Text(cell) for cell in cells))
    Console(soft_wrap=False, width=max(Console().width, 150)).print(table)


def check_tenant_option(tenant: str | None) -> None:
    if tenant is not None and id_problem(tenant):
        raise UserError(f"--tenant {id_problem(tenant)}")


# ------------------------------------------------------------------------------------ commands

TENANT_FILTER = click.option("--tenant", metavar="TENANT", help="Only this tenant's heartbeats.")


@click.command("list")
@TENANT_FILTER
@JSON_OPTION
def list_command(tenant: str | None, as_json: bool) -> None:
    """List running heartbeats with their status, failure count and run times.

    JSON: a list of {id, tenant, app, agent, slug, status, failure_count, next_run, last_run,
    last_heartbeat_ok_at}, times ISO 8601 UTC with Z.

    \b
    Examples:
      heartbeats list
      heartbeats list --tenant demo --json
    \b
    Plain temporal CLI:
      temporal workflow list --query 'ExecutionStatus="Running" AND HeartbeatTenant="demo"'
    """
    check_tenant_option(tenant)
    views, unanswered = run_client(lambda client: list_heartbeats(client, tenant=tenant))
    warn_unanswered(unanswered)
    if as_json:
        echo_json(views)
        return
    if not views:
        click.echo("no heartbeats running" + (f" for tenant {tenant}" if tenant else ""))
        return
    print_views(views)


HEALTH_HELP = f"""Failing and disabled heartbeats (exit status 0 either way).

    Failing: active with failure_count >= {FAILING_THRESHOLD}. Disabled: after {MAX_CONSECUTIVE_FAILURES}
    failed ticks in a row; `heartbeats enable ID` re-arms it. JSON: {{"failing": [...],
    "disabled": [...]}} of status views (the fields of `heartbeats list --json`).

    \b
    Examples:
      heartbeats health
      heartbeats health --tenant demo --json
    \b
    Plain temporal CLI:
      temporal workflow list --query 'HeartbeatStatus="disabled" AND ExecutionStatus="Running"'
      temporal workflow list --query 'HeartbeatStatus="active" AND HeartbeatFailureCount >= {FAILING_THRESHOLD}'
    """


@click.command("health", help=HEALTH_HELP)
@TENANT_FILTER
@JSON_OPTION
def health_command(tenant: str | None, as_json: bool) -> None:
    check_tenant_option(tenant)
    found, unanswered = run_client(lambda client: health(client, tenant=tenant))
    warn_unanswered(unanswered)
    if as_json:
        echo_json(found)
        return
    if not found["failing"] and not found["disabled"]:
        click.echo("all healthy" + (f" (tenant {tenant})" if tenant else ""))
        return
    if found["failing"]:
        print_views(found["failing"], title=f"failing (failure_count >= {FAILING_THRESHOLD})")
    if found["disabled"]:
        print_views(found["disabled"], title="disabled (re-arm: heartbeats enable ID)")


@click.command("status")
@click.argument("workflow_id", metavar="ID")
@JSON_OPTION
def status_command(workflow_id: str, as_json: bool) -> None:
    """One heartbeat's status, from its `status` query.

    ID is the workflow ID heartbeat:TENANT:APP:AGENT:SLUG (see `heartbeats list`).

    \b
    Examples:
      heartbeats status heartbeat:demo:sales:outreach:daily_cadence
      heartbeats status heartbeat:demo:marketing:cmo:hourly_kpi --json
    \b
    Plain temporal CLI:
      temporal workflow query --workflow-id heartbeat:demo:sales:outreach:daily_cadence --type status
      temporal workflow describe --workflow-id heartbeat:demo:sales:outreach:daily_cadence
    """
    check_workflow_id(workflow_id)
    view, answered = run_client(lambda client: heartbeat_status(client, workflow_id))
    warn_unanswered(0 if answered else 1)
    if as_json:
        echo_json(view)
        return
    for name in VIEW_FIELDS:
        value = view.get(name)
        click.echo(f"{name + ':':<22}{'-' if value is None else value}")


@click.command("runs")
@click.argument("workflow_id", metavar="ID")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="At most N receipts.")
@JSON_OPTION
def runs_command(workflow_id: str, limit: int, as_json: bool) -> None:
    """A heartbeat's tick receipts, newest first (from the store).

    JSON fields: at, trigger, outcome, reason, rows, escalated, provider, model, tokens_in,
    tokens_out, duration_ms, error (and tick_id).

    \b
    Examples:
      heartbeats runs heartbeat:demo:sales:outreach:daily_cadence
      heartbeats runs heartbeat:demo:marketing:cmo:hourly_kpi --limit 5 --json
    \b
    Plain temporal CLI (the ticks as workflow history: activities and their results):
      temporal workflow show --workflow-id heartbeat:demo:sales:outreach:daily_cadence
    """
    from client.store_commands import run_with_store

    check_workflow_id(workflow_id)
    receipts = [r.to_json() for r in run_with_store(lambda store: heartbeat_runs(store, workflow_id, limit=limit))]
    if as_json:
        echo_json(receipts)
        return
    if not receipts:
        click.echo(f"no runs yet for {workflow_id}")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table("at", "trigger", "outcome", "reason", "rows", "esc", "model", "tokens in/out", "ms", "error",
                  title=workflow_id)  # fmt: skip
    for receipt in receipts:
        model = "/".join(part for part in (receipt.get("provider"), receipt.get("model")) if part) or "-"
        error = (receipt.get("error") or "-").splitlines()[0][:80]
        cells = (
            receipt["at"],
            receipt["trigger"],
            receipt["outcome"],
            receipt.get("reason") or "-",
            str(receipt.get("rows", 0)),
            "yes" if receipt.get("escalated") else "",
            model,
            f"{receipt.get('tokens_in', 0)}/{receipt.get('tokens_out', 0)}",
            str(receipt.get("duration_ms", 0)),
            error,
        )
        table.add_row(*(Text(cell) for cell in cells))
    Console(soft_wrap=False, width=max(Console().width, 150)).print(table)


def signal_command(name: str, signal: str, summary: str, after: str, detail: str) -> click.Command:
    def command(workflow_id: str) -> None:
        check_workflow_id(workflow_id)
        run_client(lambda client: send_signal(client, workflow_id, signal))
        click.echo(f"sent {signal} to {workflow_id}: {after}")

    command.__doc__ = f"""{summary}

    {detail}

    \b
    Example:
      heartbeats {name} heartbeat:demo:sales:outreach:daily_cadence
    \b
    Plain temporal CLI:
      temporal workflow signal --workflow-id heartbeat:demo:sales:outreach:daily_cadence --name {signal}
    """
    return click.command(name)(click.argument("workflow_id", metavar="ID")(command))


run_now_command = signal_command(
    "run-now",
    SIGNAL_RUN_NOW,
    "Run one tick of heartbeat ID now.",
    "a tick runs now; see `heartbeats runs ID`",
    "Bypasses active hours and cooldown; several run-now signals while one is pending run once."
    " A disabled heartbeat refuses it and records a `refused` receipt.",
)
pause_command = signal_command(
    "pause",
    SIGNAL_PAUSE,
    "Pause heartbeat ID: scheduled ticks are skipped until it is resumed.",
    "paused; `heartbeats resume ID` resumes it",
    "The workflow keeps running (and answers queries); its schedule resumes on `resume`.",
)
resume_command = signal_command(
    "resume",
    SIGNAL_RESUME,
    "Resume a paused heartbeat ID.",
    "resumed",
    "Scheduled ticks run again from the next due time; no burst of missed ticks.",
)
enable_command = signal_command(
    "enable",
    SIGNAL_ENABLE,
    "Re-arm heartbeat ID after it disabled itself.",
    "enabled; its failure count is 0 again",
    f"A heartbeat disables itself after {MAX_CONSECUTIVE_FAILURES} failed ticks in a row; enable"
    " sets it active with failure count 0.",
)


COMMANDS: list[click.Command] = [
    list_command,
    health_command,
    status_command,
    runs_command,
    run_now_command,
    pause_command,
    resume_command,
    enable_command,
]
