"""`heartbeats tasks create|list|cancel`: runtime tasks (client.jobs), the same rules as an agent's
own `tasks` skill and the HTTP API's `/v1/tenants/{t}/apps/{a}/agents/{g}/tasks`."""

from __future__ import annotations

import json

import click

from cli.output import JSON_OPTION, add_row, console, echo_json, table
from cli.runner import run_with_store, run_with_temporal
from client.jobs import cancel_task, create_task, list_tasks
from contract.errors import InvalidInput
from skills.runtime_tasks import task_config

TENANT = click.option("--tenant", required=True, metavar="TENANT", help="The tenant.")
APP = click.option("--app", required=True, metavar="APP", help="The installed app.")
AGENT = click.option("--agent", required=True, metavar="AGENT", help="The agent that runs it.")


@click.group("tasks")
def tasks_group() -> None:
    """Runtime tasks: one-shot or recurring agent turns created at run time (by an agent, or here)."""


@tasks_group.command("create")
@TENANT
@APP
@AGENT
@click.option("--key", required=True, help="Unique per agent (an id: lowercase, letter first).")
@click.option("--prompt", required=True, help="What the agent is asked when it runs.")
@click.option("--params", metavar="JSON", help="A JSON object the run gets with the prompt.")
@click.option("--in", "in_", metavar="DURATION", help="One-shot after a delay: 30m, 2h, 3d, 1w.")
@click.option("--at", metavar="ISO", help="One-shot at an ISO 8601 time (no offset: the tenant's local time).")
@click.option("--cron", metavar="EXPR", help="Recurring, 5-field cron in the tenant's local time.")
@click.option("--every", metavar="DURATION", help="Recurring, 5m..366d (days keep the local time of day).")
@JSON_OPTION
def create_command(tenant: str, app: str, agent: str, key: str, prompt: str, params: str | None, in_: str | None,
                   at: str | None, cron: str | None, every: str | None, as_json: bool) -> None:
    """Create a runtime task: exactly one of --in, --at (one-shot) or --cron, --every (recurring).

    A run is one turn of the agent with the prompt and params, with a receipt like any tick
    (`heartbeats runs job:T:A:G:KEY`). Creating an existing key returns that task and changes
    nothing; a one-shot runs once; at most 100 active runtime tasks per agent.

    \b
    Examples:
      heartbeats tasks create --tenant demo --app sales --agent outreach --key follow-up-ada \\
          --in 2h --prompt "Follow up with Ada if she has not replied."
      heartbeats tasks create --tenant demo --app marketing --agent cmo --key weekly-digest \\
          --cron "0 9 * * 1" --prompt "Send the weekly KPI digest." --json
    """
    parsed = _json_object(params)

    def check(store):
        # Everything that needs no Temporal (tenant, agent, key, timing, sizes) is refused first.
        return task_config(store, tenant=tenant, app=app, agent=agent, key=key, prompt=prompt, params=parsed,
                           in_=in_, at=at, cron=cron, every=every, created_by="cli")

    created = run_with_temporal(check, lambda client, store, _: create_task(
        client, store, tenant=tenant, app=app, agent=agent, key=key, prompt=prompt, params=parsed, in_=in_, at=at,
        cron=cron, every=every, created_by="cli"))
    if as_json:
        echo_json(created.to_json())
        return
    body = created.to_json()
    what = "created" if created.created else f"exists already ({body['status']}); nothing changed"
    click.echo(f"{body['id']}: {what}; {body['timing']}, next run {body['next_run'] or '-'}")


@tasks_group.command("list")
@TENANT
@click.option("--app", metavar="APP", help="Only this app's.")
@click.option("--agent", metavar="AGENT", help="Only this agent's.")
@click.option("--status", type=click.Choice(["active", "done", "cancelled"]), help="Only these.")
@JSON_OPTION
def list_command(tenant: str, app: str | None, agent: str | None, status: str | None, as_json: bool) -> None:
    """List runtime tasks, newest first, with their timing and next run.

    JSON: a list of {id, tenant, app, agent, key, status, timing, prompt, params, next_run,
    created_by, created_at, ended_at}.

    \b
    Examples:
      heartbeats tasks list --tenant demo
      heartbeats tasks list --tenant demo --app sales --status active --json
    """
    found = run_with_store(lambda store: list_tasks(store, tenant=tenant, app=app, agent=agent, status=status))
    if as_json:
        echo_json([view.to_json() for view in found])
        return
    if not found:
        click.echo(f"no runtime tasks for tenant {tenant}")
        return
    listing = table("id", "status", "timing", "next run", "created by")
    for view in found:
        body = view.to_json()
        add_row(listing, body["id"], body["status"], body["timing"], body["next_run"] or "-", body["created_by"])
    console().print(listing)


@tasks_group.command("cancel")
@click.argument("key")
@TENANT
@APP
@AGENT
@JSON_OPTION
def cancel_command(key: str, tenant: str, app: str, agent: str, as_json: bool) -> None:
    """Cancel runtime task KEY of the agent (an ended one stays as it is).

    \b
    Example:
      heartbeats tasks cancel weekly-digest --tenant demo --app marketing --agent cmo
    """
    cancelled = run_with_temporal(lambda store: list_tasks(store, tenant=tenant, app=app, agent=agent),
                                  lambda client, store, _: cancel_task(client, store, tenant=tenant, app=app,
                                                                       agent=agent, key=key))
    if as_json:
        echo_json(cancelled.to_json())
        return
    click.echo(f"{cancelled.task.workflow_id}: {cancelled.task.status}")


def _json_object(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--params: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"--params: must be a JSON object (got {type(value).__name__})")
    return value


COMMANDS: list[click.Command] = [tasks_group]
