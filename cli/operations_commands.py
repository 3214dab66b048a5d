"""`heartbeats list|health|status|runs|run-now|pause|resume|enable`: the operations library, printed."""

from __future__ import annotations

from collections.abc import Sequence

import click

from cli.output import JSON_OPTION, add_row, console, echo_json, table
from cli.runner import run_with_client, run_with_store
from client.checks import require_id
from client.operations import (
    check_heartbeat_id,
    health,
    heartbeat_runs,
    heartbeat_status,
    list_heartbeats,
    signal_heartbeat,
)
from contract.heartbeat import FAILING_THRESHOLD, MAX_CONSECUTIVE_FAILURES, HeartbeatStatusView
from contract.names import SIGNAL_ENABLE, SIGNAL_PAUSE, SIGNAL_RESUME, SIGNAL_RUN_NOW
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


TENANT_FILTER = click.option("--tenant", metavar="TENANT", help="Only this tenant's heartbeats.")


@click.command("list")
@TENANT_FILTER
@JSON_OPTION
def list_command(tenant: str | None, as_json: bool) -> None:
    """List running heartbeats with their status, failure count and run times.

    JSON: a list of {id, tenant, app, agent, slug, status, failure_count, next_run, last_run,
    last_heartbeat_ok_at, ignored_signals}, times ISO 8601 UTC with Z; next_run is null for a
    paused or disabled heartbeat (no scheduled tick runs); ignored_signals lists signals of
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
    check_heartbeat_id(workflow_id)
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
    check_heartbeat_id(workflow_id)
    receipts = run_with_store(lambda store: heartbeat_runs(store, workflow_id, limit=limit))
    if as_json:
        echo_json([receipt.to_json() for receipt in receipts])
        return
    if not receipts:
        click.echo(f"no runs yet for {workflow_id}")
        return
    timeline = table("at", "trigger", "outcome", "reason", "rows", "esc", "model", "tokens in/out", "ms", "error",
                     title=workflow_id)
    for receipt in receipts:
        model = "/".join(part for part in (receipt.provider, receipt.model) if part) or "-"
        error = (receipt.error or "-").splitlines()[0][:80]
        add_row(timeline, iso_z(receipt.at) or "", receipt.trigger, receipt.outcome, receipt.reason or "-",
                str(receipt.rows), "yes" if receipt.escalated else "", model,
                f"{receipt.tokens_in}/{receipt.tokens_out}", str(receipt.duration_ms), error)
    console().print(timeline)


def signal_command(name: str, signal: str, summary: str, after: str, detail: str) -> click.Command:
    def command(workflow_id: str) -> None:
        check_heartbeat_id(workflow_id)
        run_with_client(lambda client: signal_heartbeat(client, workflow_id, signal))
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
