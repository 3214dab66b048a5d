"""`heartbeats list|health|status|runs|run-now|pause|resume|enable`: the operations library, printed."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from cli.output import JSON_OPTION, add_row, console, echo_json, table
from cli.runner import run_with_client, run_with_store, run_with_temporal
from client.checks import require_id
from client.operations import (
    check_entity_id,
    health,
    heartbeat_runs,
    heartbeat_status,
    list_heartbeats,
    run_task_now,
    signal_heartbeat,
)
from contract.errors import InvalidInput
from contract.heartbeat import FAILING_THRESHOLD, MAX_CONSECUTIVE_FAILURES, HeartbeatStatusView
from contract.names import SIGNAL_ENABLE, SIGNAL_PAUSE, SIGNAL_RESUME, SIGNAL_RUN_NOW
from contract.task import ManualRun
from store.models import Receipt
from store.types import iso_z

VIEW_FIELDS = tuple(HeartbeatStatusView.model_fields)


def warn_unanswered(count: int) -> None:
    if count:
        click.echo(
            f"warning: {count} status quer{'y' if count == 1 else 'ies'} went unanswered (is a worker"
            " running? `heartbeats worker`); status and failure count shown from search attributes,"
            " times unknown",
            err=True,
        )


def next_run_cell(view: HeartbeatStatusView) -> str:
    """A paused or disabled heartbeat runs no scheduled tick: say so instead of a time."""
    if view.status != "active":
        return view.status
    return view.next_run or "-"


def print_views(views: Sequence[HeartbeatStatusView], *, title: str | None = None) -> None:
    listing = table("id", "status", "failures", "next run", "last run", "last HEARTBEAT_OK", title=title)
    for view in views:
        add_row(listing, view.id, view.status, str(view.failure_count), next_run_cell(view), view.last_run or "-",
                view.last_heartbeat_ok_at or "-")
    console().print(listing)


def check_tenant_option(tenant: str | None) -> None:
    if tenant is not None:
        require_id(tenant, "--tenant")


TENANT_FILTER = click.option("--tenant", metavar="TENANT", help="Only this tenant's heartbeats and tasks.")


@click.command("list")
@TENANT_FILTER
@JSON_OPTION
def list_command(tenant: str | None, as_json: bool) -> None:
    """List running heartbeats and tasks with their status, failure count and run times.

    JSON: a list of {id, tenant, app, agent, slug, status, failure_count, next_run, last_run,
    last_heartbeat_ok_at, ignored_signals}, times ISO 8601 UTC with Z; the id's prefix
    (heartbeat: or task:) tells the kind; next_run is null for a paused or disabled one (no
    scheduled run), and for a task without time triggers; ignored_signals lists signals of
    unknown names it received (a typo on the plain temporal CLI).

    \b
    Examples:
      heartbeats list
      heartbeats list --tenant demo --json
    \b
    Plain temporal CLI:
      temporal workflow list --query 'ExecutionStatus="Running" AND HeartbeatTenant="demo"'
    """
    check_tenant_option(tenant)
    found = run_with_client(lambda client: list_heartbeats(client, tenant=tenant))
    warn_unanswered(found.unanswered)
    views = found.views
    if as_json:
        echo_json([view.model_dump(mode="json") for view in views])
        return
    if not views:
        click.echo("no heartbeats or tasks running" + (f" for tenant {tenant}" if tenant else ""))
        return
    print_views(views)


HEALTH_HELP = f"""Failing and disabled heartbeats and tasks (exit status 0 either way).

    Failing: active with failure_count >= {FAILING_THRESHOLD}. Disabled: after {MAX_CONSECUTIVE_FAILURES}
    failed runs in a row; `heartbeats enable ID` re-arms it. JSON: {{"failing": [...],
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
    found = run_with_client(lambda client: health(client, tenant=tenant))
    warn_unanswered(found.unanswered)
    if as_json:
        echo_json({"failing": [view.model_dump(mode="json") for view in found.failing],
                   "disabled": [view.model_dump(mode="json") for view in found.disabled]})
        return
    if not found.failing and not found.disabled:
        click.echo("all healthy" + (f" (tenant {tenant})" if tenant else ""))
        return
    if found.failing:
        print_views(found.failing, title=f"failing (failure_count >= {FAILING_THRESHOLD})")
    if found.disabled:
        print_views(found.disabled, title="disabled (re-arm: heartbeats enable ID)")


@click.command("status")
@click.argument("workflow_id", metavar="ID")
@JSON_OPTION
def status_command(workflow_id: str, as_json: bool) -> None:
    """One heartbeat's or task's status, from its `status` query.

    ID is the workflow ID heartbeat:TENANT:APP:AGENT:SLUG or task:TENANT:APP:AGENT:SLUG (see
    `heartbeats list`).

    \b
    Examples:
      heartbeats status heartbeat:demo:sales:outreach:daily_cadence
      heartbeats status task:demo:support:reviewer:review_cases --json
    \b
    Plain temporal CLI:
      temporal workflow query --workflow-id heartbeat:demo:sales:outreach:daily_cadence --type status
      temporal workflow describe --workflow-id heartbeat:demo:sales:outreach:daily_cadence
    """
    check_entity_id(workflow_id)
    view, answered = run_with_client(lambda client: heartbeat_status(client, workflow_id))
    warn_unanswered(0 if answered else 1)
    if as_json:
        echo_json(view.model_dump(mode="json"))
        return
    shown = view.model_dump(mode="json") | {"next_run": next_run_cell(view)}
    for name in VIEW_FIELDS:
        value = shown[name]
        if isinstance(value, list):
            value = ", ".join(value) or None
        click.echo(f"{name + ':':<22}{'-' if value is None else value}")


@click.command("runs")
@click.argument("workflow_id", metavar="ID")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="At most N receipts.")
@JSON_OPTION
def runs_command(workflow_id: str, limit: int, as_json: bool) -> None:
    """A heartbeat's or task's receipts (one per tick or run), newest first (from the store).

    JSON fields: at, trigger, outcome, reason, rows, escalated, provider, model, tokens_in,
    tokens_out, duration_ms, error, tick_id; for tasks also cases, duplicates (cases dropped as
    already processed) and forced (a run-now --force that bypassed dedupe).

    \b
    Examples:
      heartbeats runs heartbeat:demo:sales:outreach:daily_cadence
      heartbeats runs task:demo:support:reviewer:review_cases --limit 5 --json
    \b
    Plain temporal CLI (the ticks as workflow history: activities and their results):
      temporal workflow show --workflow-id heartbeat:demo:sales:outreach:daily_cadence
    """
    check_entity_id(workflow_id)
    receipts = run_with_store(lambda store: heartbeat_runs(store, workflow_id, limit=limit))
    if as_json:
        echo_json([receipt.to_json() for receipt in receipts])
        return
    if not receipts:
        click.echo(f"no runs yet for {workflow_id}")
        return
    timeline = table("at", "trigger", "outcome", "reason", "rows", "cases", "esc", "model", "tokens in/out", "ms",
                     "error", title=workflow_id)
    for receipt in receipts:
        model = "/".join(part for part in (receipt.provider, receipt.model) if part) or "-"
        error = (receipt.error or "-").splitlines()[0][:80]
        add_row(timeline, iso_z(receipt.at) or "", receipt.trigger, receipt.outcome, receipt.reason or "-",
                str(receipt.rows), _cases_cell(receipt), "yes" if receipt.escalated else "", model,
                f"{receipt.tokens_in}/{receipt.tokens_out}", str(receipt.duration_ms), error)
    console().print(timeline)


# Who the audit log names for an action taken with this CLI.
OPERATOR = "operator:cli"


async def _no_checks(_store: object) -> None:
    return None


def signal_command(name: str, signal: str, summary: str, after: str, detail: str) -> click.Command:
    def command(workflow_id: str) -> None:
        check_entity_id(workflow_id)
        run_with_temporal(_no_checks, lambda client, store, _: signal_heartbeat(
            client, workflow_id, signal, audit=store.audit, actor=OPERATOR))
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


def _cases_cell(receipt: Receipt) -> str:
    """A task run's cases: `3 (1 dup)`, `1 forced`; empty for a heartbeat's tick."""
    if not receipt.cases and not receipt.duplicates:
        return ""
    cell = f"{receipt.cases}" + (f" ({receipt.duplicates} dup)" if receipt.duplicates else "")
    return cell + (" forced" if receipt.forced else "")


@click.command("run-now")
@click.argument("workflow_id", metavar="ID")
@click.option("--force", is_flag=True, help="Tasks: run even if the case was processed within the dedupe TTL.")
@click.option("--payload", metavar="JSON", help="Tasks: the case to run, a JSON value (its key per the task's dedupe).")
@click.option("--key", metavar="KEY", help="Tasks: the case's key (default: from the payload, else never a duplicate).")
def run_now_command(workflow_id: str, force: bool, payload: str | None, key: str | None) -> None:
    """Run heartbeat or task ID now.

    Bypasses active hours, cooldown and pause; several run-now signals to a heartbeat while one is
    pending run once. A disabled heartbeat or task refuses it and records a `refused` receipt.

    A task's run-now is its manual trigger: with --payload the payload is the case (keyed by the
    task's dedupe key, or --key); without one, the run has a case of its own that is never a
    duplicate. --force bypasses dedupe (the operator override) and the receipt says `forced`.

    \b
    Examples:
      heartbeats run-now heartbeat:demo:sales:outreach:daily_cadence
      heartbeats run-now task:demo:support:reviewer:review_cases --payload '{"case_id": "c-42"}' --force
    \b
    Plain temporal CLI:
      temporal workflow signal --workflow-id heartbeat:demo:sales:outreach:daily_cadence --name run_now
      temporal workflow signal --workflow-id task:demo:support:reviewer:review_cases --name run_now \\
        --input '{"payload": {"case_id": "c-42"}, "force": true}'
    """
    check_entity_id(workflow_id)
    if force or payload is not None or key is not None:
        run = ManualRun(payload=_json_option(payload, "--payload"), key=key, force=force)
        run_with_temporal(_no_checks, lambda client, store, _: run_task_now(
            client, workflow_id, run, audit=store.audit, actor=OPERATOR))
    else:
        run_with_temporal(_no_checks, lambda client, store, _: signal_heartbeat(
            client, workflow_id, SIGNAL_RUN_NOW, audit=store.audit, actor=OPERATOR))
    what = "a tick runs now" if workflow_id.startswith("heartbeat:") else "a run starts now, forced" if force \
        else "a run starts now"
    click.echo(f"sent {SIGNAL_RUN_NOW} to {workflow_id}: {what}; see `heartbeats runs ID`")


def _json_option(text: str | None, option: str) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{option}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


pause_command = signal_command(
    "pause",
    SIGNAL_PAUSE,
    "Pause heartbeat or task ID: its runs are skipped until it is resumed.",
    "paused; `heartbeats resume ID` resumes it",
    "The workflow keeps running (and answers queries); its schedule resumes on `resume`. A paused task's"
    " pushed cases (events, crossings, delegations) leave `skipped / paused` receipts and are not marked processed.",
)
resume_command = signal_command(
    "resume",
    SIGNAL_RESUME,
    "Resume a paused heartbeat or task ID.",
    "resumed",
    "Scheduled ticks run again from the next due time; no burst of missed ticks.",
)
enable_command = signal_command(
    "enable",
    SIGNAL_ENABLE,
    "Re-arm heartbeat or task ID after it disabled itself.",
    "enabled; its failure count is 0 again",
    f"A heartbeat or task disables itself after {MAX_CONSECUTIVE_FAILURES} failed runs in a row; enable"
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
