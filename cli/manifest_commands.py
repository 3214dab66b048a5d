"""Commands that read manifests without touching Temporal: validate, schema, preview."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from cli.errors import UserError
from cli.output import add_row, console, table
from cli.runner import run_with_store
from client.checks import check_manifests, machine_findings, require_id
from contract.vocabulary import iso_utc
from manifest.app import AppManifest
from manifest.loader import ManifestError, load_manifest
from manifest.models import timezone_problem
from manifest.schema import manifest_json_schema_text
from schedule import describe_schedule, heartbeat_zone, upcoming_fires
from schedule.describe import describe_trigger
from schedule.local_time import zone

MANIFEST_SUFFIXES = (".yaml", ".yml")


def manifest_paths(paths: tuple[str, ...]) -> list[Path]:
    """Files named on the command line; a folder stands for the manifests directly inside it."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES))
        else:
            found.append(path)
    return found


def summary(manifest: AppManifest) -> str:
    agents, heartbeats, tasks = len(manifest.agents), len(manifest.heartbeats()), len(manifest.tasks())
    workflows = len(manifest.workflows)
    return (
        f"app {manifest.id} {manifest.version}: {agents} agent{'s' * (agents != 1)},"
        f" {heartbeats} heartbeat{'s' * (heartbeats != 1)}" + (f", {tasks} task{'s' * (tasks != 1)}" if tasks else "")
        + (f", {workflows} workflow{'s' * (workflows != 1)}" if workflows else "")
    )


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
def validate(files: tuple[str, ...]) -> None:
    """Check manifest files; print every problem as FILE:LINE:COL: FIELD: MESSAGE.

    Runs every check `install` runs that needs no server: the manifest rules, app ids unique
    across the files, every agent tool a registered skill, every pre-filter a LOW-risk tool.
    Exit status 0 when every file is valid, 1 otherwise. A folder stands for the *.yaml / *.yml
    files in it.

    \b
    Examples:
      heartbeats validate manifests/sales.yaml
      heartbeats validate manifests/
    """
    paths = manifest_paths(files)
    loaded, problems = check_manifests(paths)
    for problem in problems:
        click.echo(problem)
    for warning, is_warning in machine_findings(loaded):
        if is_warning:
            click.echo(f"{warning} (warning)", err=True)
    bad_files = {problem.split(":", 1)[0] for problem in problems}
    for item in loaded:
        if str(item.path) not in bad_files:
            click.echo(f"{item.path}: ok, {summary(item.manifest)}")
    if problems:
        raise SystemExit(1)


@click.command()
def schema() -> None:
    """Print the JSON Schema of the manifest (the repo keeps it as manifest.schema.json).

    \b
    Example:
      heartbeats schema > manifest.schema.json
    """
    click.echo(manifest_json_schema_text(), nl=False)


def parse_instant(text: str | None) -> datetime:
    """An ISO 8601 instant; naive times and plain dates are taken as UTC."""
    if text is None:
        return datetime.now(UTC)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--from: not an ISO 8601 time: {text!r} (example: 2026-03-29T00:00:00Z)") from None
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


async def _stored_timezone(store, tenant: str) -> str | None:
    record = await store.tenants.get(tenant=tenant)
    return record.timezone if record else None


@dataclass(frozen=True)
class PreviewRow:
    """One heartbeat's, or one time trigger of a task's, next fires."""

    name: str  # app/agent/slug
    schedule: str
    zone: str
    fires: list[datetime]
    ids: dict[str, Any]  # the JSON row's app, agent, slug (and a task's trigger type)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--tenant", required=True, help="Tenant id: it salts interval grids.")
@click.option("--timezone", "timezone_name", help="Tenant timezone (default: the stored tenant's, else UTC).")
@click.option("--from", "from_", metavar="ISO", help="Show fires strictly after this time (default: now).")
@click.option("--count", default=5, show_default=True, type=click.IntRange(1, 1000), help="Fires per heartbeat.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: [{app, agent, slug, timezone, fires}].")
def preview(
    files: tuple[str, ...], tenant: str, timezone_name: str | None, from_: str | None, count: int, as_json: bool
) -> None:
    """Show the next fire times of every heartbeat, and of every task's schedule and poll
    triggers, in the manifests, for one tenant.

    Times follow the platform's exact rules: salted interval grids, local wall time in
    the heartbeat's zone, DST, active hours, business/overnight intervals and cooldown
    (assuming every fire shown runs).

    \b
    Examples:
      heartbeats preview manifests/cmo.yaml --tenant demo
      heartbeats preview manifests/ --tenant acme --timezone Europe/Berlin \\
          --from 2026-03-28T00:00:00Z --count 10 --json
    """
    require_id(tenant, "--tenant")
    if timezone_name is not None and timezone_problem(timezone_name):
        raise UserError(f"--timezone: {timezone_problem(timezone_name)}")
    after = parse_instant(from_)
    manifests = []
    for path in manifest_paths(files):
        try:
            manifests.append(load_manifest(path))
        except ManifestError as exc:
            raise UserError(f"{path} is not a valid manifest:\n{exc}") from None
    tenant_timezone = timezone_name or run_with_store(lambda store: _stored_timezone(store, tenant)) or "UTC"

    rows: list[PreviewRow] = []
    for manifest in manifests:
        for agent, heartbeat in manifest.heartbeats():
            fires = upcoming_fires(heartbeat, tenant_id=tenant, after=after, count=count, tenant_timezone=tenant_timezone)
            rows.append(PreviewRow(f"{manifest.id}/{agent.id}/{heartbeat.slug}", describe_schedule(heartbeat),
                                   heartbeat_zone(heartbeat, tenant_timezone), fires,
                                   {"app": manifest.id, "agent": agent.id, "slug": heartbeat.slug}))
        for agent, task in manifest.tasks():
            for schedule in task.time_schedules():  # a task's schedule and poll triggers, one row each
                fires = upcoming_fires(schedule, tenant_id=tenant, after=after, count=count,
                                       tenant_timezone=tenant_timezone)
                rows.append(PreviewRow(f"{manifest.id}/{agent.id}/{task.slug}", describe_trigger(schedule.trigger),
                                       heartbeat_zone(schedule, tenant_timezone), fires,
                                       {"app": manifest.id, "agent": agent.id, "slug": task.slug,
                                        "trigger": schedule.trigger.type}))

    if as_json:
        click.echo(json.dumps([{**row.ids, "timezone": row.zone, "fires": [iso_utc(f) for f in row.fires]}
                               for row in rows], indent=2))
        return
    fires_table = table("heartbeat / task", "schedule", "UTC", "local",
                        title=f"Next fires for tenant {tenant} (timezone {tenant_timezone}) after {iso_utc(after)}")
    for row in rows:
        if not row.fires:
            add_row(fires_table, row.name, row.schedule, "never", "no due time inside its windows")
        for index, fire in enumerate(row.fires):
            local = fire.astimezone(zone(row.zone))
            add_row(
                fires_table,
                row.name if index == 0 else "",
                row.schedule if index == 0 else "",
                iso_utc(fire),
                f"{local:%a %Y-%m-%d %H:%M:%S} {local.tzname()} ({row.zone})",
            )
        fires_table.add_section()
    console().print(fires_table)


COMMANDS = [validate, schema, preview]
