"""`heartbeats documents list|show` (client.documents): the versioned documents state-machine
workflows keep, per tenant and app. Read-only: workflows write them (docs/documents.md)."""

from __future__ import annotations

import json

import click

from cli.output import JSON_OPTION, add_row, console, echo_json, table
from cli.runner import run_with_store
from client.documents import list_documents, show_document
from store.types import iso_z


@click.group("documents")
def documents_group() -> None:
    """Documents: versioned JSON objects workflows create, load and update (per tenant and app).

    \b
    Examples:
      heartbeats documents list --tenant acme
      heartbeats documents show invoice --tenant acme --app billing --version 2 --json
    """


@documents_group.command("list")
@click.option("--tenant", "tenant_id", required=True, metavar="TENANT", help="Tenant id.")
@click.option("--app", "app_id", metavar="APP", help="Only this app's documents.")
@JSON_OPTION
def list_command(tenant_id: str, app_id: str | None, as_json: bool) -> None:
    """List the tenant's documents, one line each with its latest version, by app and name.

    JSON: [{app, name, version, updated_at}].

    \b
    Examples:
      heartbeats documents list --tenant acme
      heartbeats documents list --tenant acme --app billing --json
    """
    found = run_with_store(lambda store: list_documents(store, tenant=tenant_id, app=app_id))
    if as_json:
        echo_json([summary.to_json() for summary in found])
        return
    if not found:
        click.echo("no documents")
        return
    listing = table("app", "document", "version", "updated")
    for summary in found:
        add_row(listing, summary.app, summary.name, str(summary.version), iso_z(summary.updated_at) or "")
    console().print(listing)


@documents_group.command("show")
@click.argument("name", metavar="NAME")
@click.option("--tenant", "tenant_id", required=True, metavar="TENANT", help="Tenant id.")
@click.option("--app", "app_id", required=True, metavar="APP", help="App id.")
@click.option("--version", type=click.IntRange(min=1), metavar="N", help="This version (default: the latest).")
@JSON_OPTION
def show_command(name: str, tenant_id: str, app_id: str, version: int | None, as_json: bool) -> None:
    """Show document NAME of an app: its latest version, or version N.

    JSON: {app, name, version, content, created_at, created_by, latest_version}.

    \b
    Examples:
      heartbeats documents show invoice --tenant acme --app billing
      heartbeats documents show invoice --tenant acme --app billing --version 1 --json
    """
    shown = run_with_store(lambda store: show_document(store, tenant=tenant_id, app=app_id, name=name,
                                                       version=version))
    if as_json:
        echo_json(shown.to_json())
        return
    doc = shown.document
    click.echo(f"{'document:':<12}{doc.name} (app {doc.app})")
    click.echo(f"{'version:':<12}{doc.version} of {shown.latest_version}")
    click.echo(f"{'written:':<12}{iso_z(doc.created_at)}{f' by {doc.created_by}' if doc.created_by else ''}")
    click.echo("content:")
    click.echo(json.dumps(doc.content, indent=2, ensure_ascii=False))


COMMANDS: list[click.Command] = [documents_group]
