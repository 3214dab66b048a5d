"""`heartbeats spend`, `heartbeats queue list|resolve` and `heartbeats audit` (client.budgets): what
was spent, what waits for an operator, and who did what."""

from __future__ import annotations

import click

from cli.output import JSON_OPTION, add_row, console, echo_json, table
from cli.runner import run_with_store
from client.budgets import audit_log, queue_items, resolve_item, spend
from store.spend import GROUPS

TENANT = click.option("--tenant", required=True, metavar="TENANT", help="The tenant.")


@click.command("spend")
@TENANT
@click.option("--app", metavar="APP", help="Only this app's calls.")
@click.option("--agent", metavar="AGENT", help="Only this agent's calls.")
@click.option("--by", type=click.Choice(GROUPS), default="day", show_default=True,
              help="Group by tenant-local day, task (workflow ID), agent or model.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="From this tenant-local day on (YYYY-MM-DD).")
@JSON_OPTION
def spend_command(tenant: str, app: str | None, agent: str | None, by: str, since, as_json: bool) -> None:
    """What the tenant's LLM calls cost, from the spend ledger (one row per call).

    Calls to a model without a known price are counted as `unpriced` (their cost is unknown, not $0).

    JSON: a list of {key, calls, tokens_in, tokens_out, cache_read_tokens, usd, unpriced_calls}.

    \b
    Examples:
      heartbeats spend --tenant acme
      heartbeats spend --tenant acme --app support --by task --json
    """
    lines = run_with_store(lambda store: spend(store, tenant=tenant, by=by, app=app, agent=agent,  # type: ignore[arg-type]
                                               since=since.date() if since else None))
    if as_json:
        echo_json([line.to_json() for line in lines])
        return
    if not lines:
        click.echo(f"no LLM calls recorded for tenant {tenant}")
        return
    listing = table(by, "calls", "tokens in", "tokens out", "cached", "USD", "unpriced")
    for line in lines:
        body = line.to_json()
        add_row(listing, body["key"], str(line.calls), str(line.tokens_in), str(line.tokens_out),
                str(line.cache_read_tokens), body["usd"], str(line.unpriced_calls or ""))
    console().print(listing)


@click.group("queue")
def queue_group() -> None:
    """The operator queue: what waits for a human (agents held at their monthly budget, ...)."""


@queue_group.command("list")
@click.option("--tenant", metavar="TENANT", help="Only this tenant's items.")
@click.option("--status", type=click.Choice(["open", "approved", "rejected", "all"]), default="open",
              show_default=True)
@JSON_OPTION
def queue_list_command(tenant: str | None, status: str, as_json: bool) -> None:
    """List queue items, oldest first.

    JSON: a list of {id, tenant, app, agent, kind, subject, detail, status, created_at, resolved_at,
    resolved_by, resolution}.

    \b
    Example:
      heartbeats queue list --tenant acme
    """
    items = run_with_store(lambda store: queue_items(store, tenant=tenant, status=None if status == "all" else status))
    if as_json:
        echo_json([item.to_json() for item in items])
        return
    if not items:
        click.echo("the queue is empty" if status == "open" else "no such items")
        return
    listing = table("id", "tenant", "kind", "subject", "status", "since", "detail")
    for item in items:
        detail = ", ".join(f"{k} {v}" for k, v in (item.detail or {}).items())
        add_row(listing, str(item.id), item.tenant, item.kind, item.subject, item.status,
                item.to_json()["created_at"], detail)
    console().print(listing)


@queue_group.command("resolve")
@click.argument("item_id", metavar="ITEM", type=int)
@click.option("--tenant", metavar="TENANT", help="Refuse the item unless it is this tenant's.")
@click.option("--approve", "decision", flag_value="approve", help="Approve (a monthly hold: with one of the two below).")
@click.option("--reject", "decision", flag_value="reject", help="Reject: the item closes, nothing else changes.")
@click.option("--raise-monthly-usd", metavar="USD", help="Approve a monthly hold by raising the agent's monthly ceiling.")
@click.option("--approve-once", is_flag=True, help="Approve a monthly hold for the rest of this tenant-local month.")
@JSON_OPTION
def queue_resolve_command(item_id: int, tenant: str | None, decision: str | None, raise_monthly_usd: str | None,
                          approve_once: bool, as_json: bool) -> None:
    """Resolve queue item ITEM (audited).

    Approving an agent's monthly hold resumes its heartbeats and tasks at their next due time:
    --approve-once lets it spend past its ceiling until the tenant-local month ends; --raise-monthly-usd
    sets a new ceiling for the agent.

    \b
    Examples:
      heartbeats queue resolve 3 --approve --approve-once
      heartbeats queue resolve 3 --approve --raise-monthly-usd 80
      heartbeats queue resolve 4 --tenant acme --reject
    """
    if decision is None:
        raise click.UsageError("give --approve or --reject")
    resolved = run_with_store(lambda store: resolve_item(
        store, tenant=tenant, item_id=item_id, approve=decision == "approve", actor="operator:cli",
        raise_monthly_usd=raise_monthly_usd, approve_once=approve_once))
    if as_json:
        echo_json(resolved.to_json())
        return
    click.echo(f"queue item {resolved.id} ({resolved.kind}, {resolved.subject}): {resolved.status}")


@click.command("audit")
@TENANT
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--action", metavar="ACTION", help="Only this action (pause, budget_monthly, queue_resolve, ...).")
@JSON_OPTION
def audit_command(tenant: str, limit: int, action: str | None, as_json: bool) -> None:
    """The tenant's audit log, newest first: budget decisions and operator actions, who and when.

    JSON: a list of {id, tenant, at, actor, action, target, detail}.

    \b
    Example:
      heartbeats audit --tenant acme --json
    """
    entries = run_with_store(lambda store: audit_log(store, tenant=tenant, limit=limit, action=action))
    if as_json:
        echo_json([entry.to_json() for entry in entries])
        return
    if not entries:
        click.echo(f"no audit entries for tenant {tenant}")
        return
    listing = table("at", "actor", "action", "target", "detail")
    for entry in entries:
        detail = ", ".join(f"{k} {v}" for k, v in (entry.detail or {}).items())
        add_row(listing, entry.to_json()["at"], entry.actor, entry.action, entry.target, detail)
    console().print(listing)


COMMANDS: list[click.Command] = [spend_command, queue_group, audit_command]
