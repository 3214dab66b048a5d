"""`heartbeats tenant ...` and `heartbeats records ...`: tenants and app records (client.data).

Each command opens the store (HEARTBEATS_DATABASE_URL, else .data/heartbeats.db; migrated on
first use), does one thing and closes it. Store errors become one-line `error: ...` messages.
"""

from __future__ import annotations

import json
from typing import Any

import click

from cli.errors import UserError
from cli.output import add_row, console, echo_json, table
from cli.runner import run_with_store
from client.data import get_tenant, list_records, put_record, set_tenant
from contract.vocabulary import PROVIDERS
from store.types import iso_z

# ------------------------------------------------------------------------------- tenant


@click.group()
def tenant() -> None:
    """Tenants: their time zone and LLM provider/models.

    \b
    Examples:
      heartbeats tenant set acme --timezone Europe/Berlin --provider anthropic
      heartbeats tenant show acme --json
    """


@tenant.command("set")
@click.argument("tenant_id", metavar="TENANT")
@click.option("--timezone", help="IANA time zone used for schedules, e.g. Europe/Berlin.")
@click.option(
    "--provider",
    type=click.Choice(sorted(PROVIDERS)),
    help="LLM provider for this tenant's agents.",
)
@click.option("--model-cheap", metavar="MODEL", help="Model for the cheap tier.")
@click.option("--model-standard", metavar="MODEL", help="Model for the standard tier.")
@click.option("--model-premium", metavar="MODEL", help="Model for the premium tier.")
@click.option("--price", "prices", metavar="MODEL=IN,OUT", multiple=True,
              help="The tenant's price for a model the pricing library lacks, USD per million input and output"
                   " tokens (repeatable).")
def tenant_set(
    tenant_id: str,
    timezone: str | None,
    provider: str | None,
    model_cheap: str | None,
    model_standard: str | None,
    model_premium: str | None,
    prices: tuple[str, ...],
) -> None:
    """Create TENANT or change its settings; options not given keep their value.

    \b
    Examples:
      heartbeats tenant set acme
      heartbeats tenant set acme --timezone America/New_York
      heartbeats tenant set acme --provider openai --model-standard gpt-6.2-sol
      heartbeats tenant set acme --price my-local-llm=0.5,1.5
    """
    saved = run_with_store(
        lambda store: set_tenant(
            store,
            tenant=tenant_id,
            timezone=timezone,
            provider=provider,
            model_cheap=model_cheap,
            model_standard=model_standard,
            model_premium=model_premium,
            prices=prices,
        )
    )
    click.echo(
        f"tenant {saved.id} saved (timezone {saved.timezone}, provider {saved.provider or '-'})"
    )


@tenant.command("show")
@click.argument("tenant_id", metavar="TENANT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def tenant_show(tenant_id: str, as_json: bool) -> None:
    """Show TENANT's settings.

    \b
    Examples:
      heartbeats tenant show acme
      heartbeats tenant show acme --json
    """
    found = run_with_store(lambda store: get_tenant(store, tenant=tenant_id))
    if as_json:
        echo_json(found.to_json())
        return
    for name, value in found.to_json().items():
        click.echo(f"{name + ':':<16}{'-' if value is None else value}")


# ------------------------------------------------------------------------------ records


@click.group()
def records() -> None:
    """App records: the data apps keep per tenant (the same rows as ctx.kv `TYPE:ID` keys).

    \b
    Examples:
      heartbeats records put --tenant acme --app sales --type campaign --data '{"status": "active"}'
      heartbeats records list --tenant acme --app sales --type campaign --json
    """


@records.command("put")
@click.option("--tenant", "tenant_id", required=True, metavar="TENANT", help="Tenant id.")
@click.option("--app", "app_id", required=True, metavar="APP", help="App id.")
@click.option(
    "--type", "record_type", required=True, metavar="TYPE", help="Record type, e.g. campaign."
)
@click.option("--id", "record_id", metavar="ID", help="Record id (default: a short random hex id).")
@click.option(
    "--data", "data_text", required=True, metavar="JSON", help="The record, a JSON object."
)
def records_put(
    tenant_id: str, app_id: str, record_type: str, record_id: str | None, data_text: str
) -> None:
    """Create or replace one record (its kv key is TYPE:ID).

    \b
    Examples:
      heartbeats records put --tenant acme --app sales --type campaign --id spring \\
          --data '{"status": "active", "name": "Spring launch"}'
      heartbeats records put --tenant acme --app sales --type lead --data '{"email": "a@b.c"}'
    """
    data = parse_json_object(data_text, "--data")
    saved = run_with_store(lambda store: put_record(store, tenant=tenant_id, app=app_id, record_type=record_type,
                                                    record_id=record_id, data=data))
    click.echo(f"saved {record_type}:{saved} (tenant {tenant_id}, app {app_id})")


@records.command("list")
@click.option("--tenant", "tenant_id", required=True, metavar="TENANT", help="Tenant id.")
@click.option("--app", "app_id", required=True, metavar="APP", help="App id.")
@click.option("--type", "record_type", metavar="TYPE", help="Only records of this type.")
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(min=1), help="At most N."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def records_list(
    tenant_id: str, app_id: str, record_type: str | None, limit: int, as_json: bool
) -> None:
    """List an app's records, ordered by key.

    \b
    Examples:
      heartbeats records list --tenant acme --app sales
      heartbeats records list --tenant acme --app sales --type lead --json
    """

    found = run_with_store(lambda store: list_records(store, tenant=tenant_id, app=app_id, record_type=record_type,
                                                      limit=limit))
    if as_json:
        echo_json([record.to_json() for record in found])
        return
    if not found:
        click.echo("no records")
        return
    listing = table("type", "id", "data", "updated")
    for record in found:
        add_row(listing, record.record_type, record.id, json.dumps(record.data, ensure_ascii=False),
                iso_z(record.updated_at) or "")
    console().print(listing)


def parse_json_object(text: str, option: str) -> dict[str, Any]:
    """`text` parsed as a JSON object, or a UserError naming `option`."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UserError(f'{option} must be a JSON object like \'{{"status": "active"}}\'')
    return value


COMMANDS: list[click.Command] = [tenant, records]
