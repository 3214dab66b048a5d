"""`heartbeats events send`, `heartbeats metrics put`, `heartbeats webhooks secret`: what the world
pushes to an app's tasks (client.ingress), from the command line. The HTTP API takes the same path."""

from __future__ import annotations

import json

import click

from cli.output import JSON_OPTION, echo_json
from cli.runner import run_with_store, run_with_temporal
from client.ingress import app_tasks, event_listeners, put_metric, send_event, webhook_secret
from contract.errors import InvalidInput

TENANT = click.option("--tenant", required=True, metavar="TENANT", help="The tenant.")
APP = click.option("--app", required=True, metavar="APP", help="The installed app.")


@click.group("events")
def events_group() -> None:
    """Events delivered to the tasks that listen for them (an `event` trigger)."""


@events_group.command("send")
@click.argument("event")
@TENANT
@APP
@click.option("--data", default="{}", show_default=True, metavar="JSON", help="The event's body, a JSON object.")
@click.option("--id", "event_id", metavar="ID",
              help="The event's id (an idempotency key: sending the same id again changes nothing). Default: generated.")
@JSON_OPTION
def send_command(event: str, tenant: str, app: str, data: str, event_id: str | None, as_json: bool) -> None:
    """Send EVENT to every task of the app that listens for it.

    The same path as `POST /v1/tenants/T/apps/A/events/EVENT`. Each task gets a case whose key is
    the body's value at its dedupe key, else the event's id: a case already processed within the
    task's TTL is dropped before any LLM call.

    \b
    Examples:
      heartbeats events send case.created --tenant demo --app support --data '{"case_id": "c-42"}'
      heartbeats events send case.created --tenant demo --app support --data '{"case_id": "c-42"}' --id evt-1 --json
    """
    body = _json_object(data)
    delivery = run_with_temporal(
        lambda store: event_listeners(store, tenant=tenant, app=app, event=event),
        lambda client, store, listeners: send_event(client, store, tenant=tenant, app=app, event=event, body=body,
                                                    event_id=event_id, listeners=listeners),
    )
    if as_json:
        echo_json(delivery.to_json())
        return
    if delivery.duplicate:
        click.echo(f"event {delivery.event_id} was received before: nothing sent again"
                   f" (it reached {', '.join(delivery.tasks)})")
        return
    click.echo(f"event {delivery.event_id} ({delivery.event}) delivered to {', '.join(delivery.tasks)};"
               " see `heartbeats runs ID`")


@click.group("metrics")
def metrics_group() -> None:
    """Metric values, for the tasks with a threshold trigger on them."""


@metrics_group.command("put")
@click.argument("metric")
@click.argument("value", type=float)
@TENANT
@APP
@JSON_OPTION
def put_command(metric: str, value: float, tenant: str, app: str, as_json: bool) -> None:
    """Record VALUE as METRIC's latest value; fire each threshold it crosses into.

    The same path as `POST /v1/tenants/T/apps/A/metrics/METRIC` with {"value": VALUE}. A threshold
    fires once when a value crosses into its condition (`above` / `below`), and again only after a
    value on the other side has re-armed it.

    \b
    Example:
      heartbeats metrics put error_rate 0.031 --tenant demo --app support
    """
    reading = run_with_temporal(
        lambda store: app_tasks(store, tenant=tenant, app=app),
        lambda client, store, _: put_metric(client, store, tenant=tenant, app=app, metric=metric, value=value),
    )
    if as_json:
        echo_json(reading.to_json())
        return
    fired = f"; fired {', '.join(reading.fired)}" if reading.fired else "; no threshold crossed"
    click.echo(f"{reading.metric} = {reading.value:g} at {reading.at}{fired}")


@click.group("webhooks")
def webhooks_group() -> None:
    """The app's webhook secret: outside senders sign events with it instead of an API token."""


@webhooks_group.command("secret")
@TENANT
@APP
@click.option("--rotate", is_flag=True, help="Replace the secret; the old one stops verifying at once.")
def secret_command(tenant: str, app: str, rotate: bool) -> None:
    """Print the app's Standard Webhooks secret (`whsec_...`), made on first use.

    A sender signs `{webhook-id}.{webhook-timestamp}.{body}` with it (HMAC-SHA256, the Standard
    Webhooks scheme; any of its libraries does it) and sends the webhook-id, webhook-timestamp
    and webhook-signature headers to the event endpoint. Timestamps more than 5 minutes away are
    refused; the webhook-id is the event's id, so a redelivery changes nothing.

    \b
    Examples:
      heartbeats webhooks secret --tenant demo --app support
      heartbeats webhooks secret --tenant demo --app support --rotate
    """
    click.echo(run_with_store(lambda store: webhook_secret(store, tenant=tenant, app=app, rotate=rotate)))


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--data: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"--data: an event's body must be a JSON object (got {type(value).__name__})")
    return value


COMMANDS: list[click.Command] = [events_group, metrics_group, webhooks_group]
