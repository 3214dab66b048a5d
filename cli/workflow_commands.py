"""`heartbeats workflow start|show|list|transition|retry|cancel|graph`: runs of an app's state-machine
workflows (client.machines), the same as the HTTP API's `/v1/tenants/{t}/apps/{a}/workflows`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.output import JSON_OPTION, add_row, echo_json, print_table, table
from cli.runner import run_with_client, run_with_temporal
from client.checks import require_tenant
from client.machines import (
    cancel_run,
    graph_from_file,
    list_runs,
    parse_vars,
    prepare_run,
    retry_run,
    show_run,
    start_run,
    transition_run,
)
from contract.errors import InvalidInput
from contract.machine import MACHINE_STATUSES, MachineView
from contract.vocabulary import iso_utc


@click.group("workflow")
def workflow_group() -> None:
    """Runs of state-machine workflows: start, watch, move by hand, retry, cancel (docs/workflows.md)."""


def _json_option(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise InvalidInput(f"{what}: not JSON ({exc})") from None


@workflow_group.command("start")
@click.argument("name")
@click.option("--tenant", required=True, metavar="TENANT")
@click.option("--app", required=True, metavar="APP", help="The installed app the workflow belongs to.")
@click.option("--key", metavar="KEY", help="Names the run (default: a new key); a key runs once.")
@click.option("--var", "variables", multiple=True, metavar="K=V",
              help="Sets context.variables.K (V as JSON when it parses, else text); repeatable.")
@click.option("--context", "custom", metavar="JSON", help="A JSON object: context.custom.")
@JSON_OPTION
def start_command(name: str, tenant: str, app: str, key: str | None, variables: tuple[str, ...], custom: str | None,
                  as_json: bool) -> None:
    """Start a run of workflow NAME of an installed app; print its ID.

    The run keeps the workflow as installed now (its hash is printed): installing a new version
    changes the runs started after that, never this one.

    \b
    Example:
      heartbeats workflow start document_processor_workflow --tenant acme --app docs \\
          --var SOURCE_DOCUMENT=q3.pdf
    """
    values = parse_vars(variables)
    context = _json_option(custom, "--context")

    async def prepare(store):
        await require_tenant(store, tenant)
        return await prepare_run(store, tenant=tenant, app=app, workflow=name, key=key, variables=values,
                                 custom=context)

    started = run_with_temporal(prepare, lambda client, store, input: start_run(
        client, store, tenant=tenant, app=app, workflow=name, key=input.key, variables=values, custom=context))
    if as_json:
        echo_json(started.to_json())
        return
    click.echo(f"started {started.id} (definition {started.definition_hash})")
    click.echo(f"  heartbeats workflow show {started.id}")


@workflow_group.command("show")
@click.argument("run_id", metavar="ID")
@JSON_OPTION
def show_command(run_id: str, as_json: bool) -> None:
    """Print a run: place, status, variables, what it waits for, and the transitions taken.

    JSON: {id, workflow, key, definition_hash, place, status, variables, context, error, steps,
    steps_total, waiting_for, failed_transition, compensations_pending, started_at}.
    """
    found = run_with_client(lambda client: show_run(client, run_id))
    if as_json:
        echo_json(found.model_dump(mode="json"))
        return
    _print_view(found)


def _print_view(view: MachineView) -> None:
    click.echo(f"{view.id}\n  workflow {view.workflow} · definition {view.definition_hash}")
    click.echo(f"  {view.status} at {view.place}")
    if view.error:
        click.echo(f"  error: {view.error.get('message')}")
    if view.failed_transition:
        click.echo(f"  failed transition: {view.failed_transition} (heartbeats workflow retry {view.id})")
    for option in view.waiting_for:
        deadline = f", deadline {iso_utc(option.deadline_at)} → {option.on_deadline}" if option.deadline_at else ""
        fields = ", ".join(sorted((option.payload_schema or {}).get("properties", {}))) or "any payload"
        click.echo(f"  waiting for: {option.transition} → {' | '.join(option.targets)} ({fields}){deadline}")
    for pending in view.compensations_pending:
        click.echo(f"  compensation pending: {pending}")
    if view.variables:
        click.echo("  variables: " + json.dumps(view.variables, ensure_ascii=False)[:2_000])
    shown = table("#", "transition", "from", "to", "outcome", "at")
    first = view.steps_total - len(view.steps) + 1
    for number, step in enumerate(view.steps, start=first):
        outcome = step.outcome + (" (manual)" if step.manual else "") + (f": {step.error}" if step.error else "")
        add_row(shown, str(number), step.transition, step.source, step.target or "-", outcome, iso_utc(step.at) or "")
    if view.steps:
        print_table(shown)


@workflow_group.command("list")
@click.option("--tenant", required=True, metavar="TENANT")
@click.option("--app", metavar="APP")
@click.option("--workflow", metavar="NAME")
@click.option("--status", type=click.Choice(MACHINE_STATUSES))
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@JSON_OPTION
def list_command(tenant: str, app: str | None, workflow: str | None, status: str | None, limit: int,
                 as_json: bool) -> None:
    """List a tenant's runs, newest first (from Temporal's search attributes)."""
    found = run_with_client(lambda client: list_runs(client, tenant=tenant, app=app, workflow=workflow,
                                                     status=status, limit=limit))
    if as_json:
        echo_json([run.to_json() for run in found])
        return
    if not found:
        click.echo("no runs")
        return
    shown = table("id", "status", "place", "started")
    for run in found:
        add_row(shown, run.id, run.status, run.place, iso_utc(run.started_at) or "")
    print_table(shown)


@workflow_group.command("transition")
@click.argument("run_id", metavar="ID")
@click.argument("name")
@click.option("--payload", metavar="JSON", help="The transition's payload (checked against its payload_schema).")
@JSON_OPTION
def transition_command(run_id: str, name: str, payload: str | None, as_json: bool) -> None:
    """Fire manual transition NAME of a waiting run, with --payload; print the run after it.

    A payload its schema refuses, or a transition that does not leave the run's place, changes
    nothing and exits 1 saying why.

    \b
    Example:
      heartbeats workflow transition machine:acme:docs:approval:r1 process_user_approval \\
          --payload '{"approved": true}'
    """
    body = _json_option(payload, "--payload")
    found = run_with_client(lambda client: transition_run(client, run_id, name, body))
    if as_json:
        echo_json(found.model_dump(mode="json"))
        return
    _print_view(found)


@workflow_group.command("retry")
@click.argument("run_id", metavar="ID")
@JSON_OPTION
def retry_command(run_id: str, as_json: bool) -> None:
    """Resume a failed run from its failed transition: calls that completed are not run again
    (or, when its compensations were stopped by a failure, run the rest of them)."""
    found = run_with_client(lambda client: retry_run(client, run_id))
    if as_json:
        echo_json(found.model_dump(mode="json"))
        return
    _print_view(found)


@workflow_group.command("cancel")
@click.argument("run_id", metavar="ID")
def cancel_command(run_id: str) -> None:
    """Cancel a run (its status becomes cancelled; compensations do not run)."""
    cancelled = run_with_client(lambda client: cancel_run(client, run_id))
    click.echo(f"cancelled {run_id}" if cancelled else f"{run_id} had already ended")


@workflow_group.command("graph")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--current", metavar="PLACE", help="Highlight this place.")
def graph_command(name: str, file: str, current: str | None) -> None:
    """Print workflow NAME of manifest FILE as a Mermaid state diagram (paste it into any Mermaid
    viewer, or a Markdown file on GitHub).

    \b
    Example:
      heartbeats workflow graph document_processor_workflow manifests/docs.yaml > graph.mmd
    """
    click.echo(graph_from_file(Path(file), name, current=current), nl=False)


COMMANDS: list[click.Command] = [workflow_group]
