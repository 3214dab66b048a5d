"""`heartbeats install`, `uninstall` and `sync`: the install library (client.sync) with progress and tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.errors import UserError
from cli.output import JSON_OPTION, add_row, console, echo_json, table
from cli.runner import run_with_temporal
from client.checks import load_manifests, require_id
from client.install import InstallResult, UninstallResult
from client.sync import Progress, apply_plans, plan_manifests, recorded_app, sync_folder, uninstall_app

# Above this many Temporal calls the CLI shows a progress bar (on a terminal).
PROGRESS_THRESHOLD = 50
# Rows of the per-heartbeat table; larger installs show the changes first and a count of the rest.
MAX_TABLE_ROWS = 100


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

        terminal = Console(stderr=True)
        if not self.enabled or total <= PROGRESS_THRESHOLD or not terminal.is_terminal:
            return None
        self._bar = RichProgress(console=terminal, transient=True)
        self._bar.start()
        task = self._bar.add_task("Temporal calls", total=total)
        return lambda done: self._bar.advance(task, done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def print_install(result: InstallResult) -> None:
    out = console()
    if result.app_unchanged and not result.repaired:
        out.print(
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
    changes = table("change", "heartbeat workflow", title=f"app {result.app} (tenant {result.tenant})")
    for change, wid in rows[:MAX_TABLE_ROWS]:
        add_row(changes, change, wid)
    if len(rows) > MAX_TABLE_ROWS:
        add_row(changes, "…", f"{len(rows) - MAX_TABLE_ROWS} more")
    if rows:
        out.print(changes)
    if result.repaired:
        out.print(
            f"repaired: {len(result.repaired)} workflow(s) of the unchanged app were not running"
            " and were started again",
            highlight=False,
        )
    if not result.changed and not result.app_unchanged:
        out.print("no heartbeat changed (the app record was updated)", highlight=False)
    out.print(totals(result), highlight=False)


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


TENANT_OPTION = click.option(
    "--tenant", required=True, metavar="TENANT", help="Tenant id (create it with `heartbeats tenant set`)."
)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@TENANT_OPTION
@JSON_OPTION
def install(file: Path, tenant: str, as_json: bool) -> None:
    """Install (or update) the app in FILE for TENANT: one workflow per heartbeat.

    Idempotent: an unchanged manifest changes nothing and says so; a changed heartbeat is
    reconfigured in place (failure count and history kept), taking effect from its next due
    time; a heartbeat no longer in the file is cancelled, and so is the vision loop of an agent
    no longer in it. All-or-nothing: when the manifest is invalid, the tenant unknown or a
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
    require_id(tenant, "--tenant")
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
    """Cancel every workflow of APP for TENANT (its heartbeats and its agents' vision loops) and
    mark the app uninstalled.

    The app's records, memory and receipts stay in the store; installing it again starts
    fresh workflows.

    \b
    Examples:
      heartbeats uninstall sales --tenant demo
    \b
    Plain temporal CLI (cancel the app's running workflows):
      temporal workflow cancel --query 'HeartbeatTenant="demo" AND HeartbeatApp="sales"' --yes
      temporal workflow cancel --query 'WorkflowId STARTS_WITH "vision:demo:sales:"' --yes
    """
    require_id(tenant, "--tenant")
    require_id(app, "APP")
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
    from cli.manifest_commands import manifest_paths

    require_id(tenant, "--tenant")
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
