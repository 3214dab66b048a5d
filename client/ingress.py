"""What the world pushes to an app's tasks: events, metric values, and the webhook secret that signs them.

One path for the CLI (`heartbeats events send`, `heartbeats metrics put`) and the HTTP API:

- `send_event` stores the event once per id (the id is the sender's `Idempotency-Key` or
  `webhook-id`, else generated), then signals-with-start every task of the app that listens for
  it, carrying only the event's id (the body stays in the store, so a flood keeps histories
  small). A repeat of a delivered id answers as the first time and sends nothing; a repeat of an
  id whose delivery failed half-way delivers it again (a task drops a case it already holds).
- `put_metric` keeps the metric's last value and applies it to every threshold trigger on it: a
  crossing into the condition fires once (the store disarms it in the same update), a value on the
  other side re-arms it. A crossing whose signal could not be sent is re-armed, so the next value
  fires it again instead of it being lost.
- `verify_webhook` checks a Standard Webhooks signature against the app's secret (`whsec_...`),
  refusing a timestamp more than 5 minutes away.

Errors are the project's: InvalidInput (bad name, id, body or value), NotFound (unknown tenant, an
app not installed, an event no task listens for), Conflict (an id reused for another event),
Unauthorized (a bad signature), Unavailable (Temporal down: nothing is marked delivered).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from client.checks import require_id, require_tenant
from client.install import entity_configs
from client.sync import Limiter
from client.temporal import temporal_errors
from contract.errors import Conflict, InvalidInput, NotFound, Unauthorized
from contract.names import SIGNAL_EVENT, SIGNAL_THRESHOLD
from contract.task import EventCase, TaskConfig, ThresholdCase
from contract.vocabulary import iso_utc
from manifest.tasks import ThresholdTrigger, name_problem
from runtime.workflows import start_or_reconfigure
from store.installed import installed_app

if TYPE_CHECKING:
    from temporalio.client import Client

    from store import Store

MAX_EVENT_ID_CHARS = 200
EVENT_ID_PREFIX = "evt_"


@dataclass(frozen=True)
class EventDelivery:
    event_id: str
    event: str
    tasks: list[str] = field(default_factory=list)  # the task workflows the event was delivered to
    duplicate: bool = False  # this id was delivered before: nothing was sent again

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "event": self.event, "tasks": self.tasks, "duplicate": self.duplicate}


@dataclass(frozen=True)
class MetricReading:
    metric: str
    value: float
    at: str  # ISO 8601 UTC
    fired: list[str] = field(default_factory=list)  # the task workflows whose threshold this value crossed

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "at": self.at, "fired": self.fired}


async def send_event(client: Client, store: Store, *, tenant: str, app: str, event: str, body: Any,
                     event_id: str | None = None, listeners: list[TaskConfig] | None = None) -> EventDelivery:
    """Deliver the event to every task of the app listening for it (see the module docstring).
    `listeners`: what `event_listeners` answered for this event just before, when the caller
    checked it first (before touching Temporal); otherwise looked up here."""
    event_id = check_event_id(event_id) if event_id is not None else EVENT_ID_PREFIX + uuid.uuid4().hex
    if not isinstance(body, dict):
        raise InvalidInput(f"an event's body must be a JSON object (got {type(body).__name__})")
    if listeners is None:
        listeners = await event_listeners(store, tenant=tenant, app=app, event=event)
    stored, new = await store.events.record(tenant=tenant, app=app, event_id=event_id, name=event, body=body)
    if not new and (stored.name != event or stored.body != body):
        raise Conflict(f"event id {event_id!r} was already used for another event"
                       f" ({stored.name!r}, received {iso_utc(stored.received_at)}); use a new id")
    if stored.tasks is not None:
        return EventDelivery(event_id, event, list(stored.tasks), duplicate=True)
    case = EventCase(event=event, event_id=event_id)
    with temporal_errors():
        await Limiter().run([_signal(client, config, SIGNAL_EVENT, case) for config in listeners])
    reached = [config.workflow_id for config in listeners]
    await store.events.mark_delivered(tenant=tenant, app=app, event_id=event_id, tasks=reached)
    return EventDelivery(event_id, event, reached, duplicate=not new)


async def event_listeners(store: Store, *, tenant: str, app: str, event: str) -> list[TaskConfig]:
    """The installed tasks of the app with a trigger for `event`; NotFound when there is none (or
    no such tenant or installed app). Store reads only: callers check before touching Temporal."""
    _check_name(event, "event")
    configs = await app_tasks(store, tenant=tenant, app=app)
    listeners = [config for config in configs if any(t.event == event for t in config.task.triggers_of("event"))]
    if not listeners:
        raise NotFound(f"no task of app {app!r} listens for event {event!r}{_listened(configs)}")
    return listeners


async def put_metric(client: Client, store: Store, *, tenant: str, app: str, metric: str, value: float,
                     at: datetime | None = None) -> MetricReading:
    """Keep the metric's value and fire each threshold trigger it crosses (see the module docstring)."""
    _check_name(metric, "metric")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"value must be a finite number (got {value!r})")
    at = at or datetime.now(UTC)
    configs = await app_tasks(store, tenant=tenant, app=app)
    await store.metrics.put(tenant=tenant, app=app, metric=metric, value=float(value), at=at)
    watching = [(config, index, trigger) for config in configs for index, trigger in enumerate(config.task.triggers)
                if isinstance(trigger, ThresholdTrigger) and trigger.metric == metric]
    fired: list[TaskConfig] = []
    for config, index, trigger in watching:
        inside = value > trigger.above if trigger.above is not None else value < trigger.below  # type: ignore[operator]
        if await store.metrics.cross(tenant=tenant, task_id=config.workflow_id, trigger=index, in_condition=inside,
                                     at=at):
            fired.append(config)
    case = ThresholdCase(metric=metric, value=float(value), crossed_at=at)
    try:
        with temporal_errors():
            await Limiter().run([_signal(client, config, SIGNAL_THRESHOLD, case) for config in fired])
    except Exception:
        # Not delivered: re-arm, so the next value inside the condition fires the crossing again.
        for config, index, _ in watching:
            if config in fired:
                await store.metrics.cross(tenant=tenant, task_id=config.workflow_id, trigger=index,
                                          in_condition=False, at=at)
        raise
    return MetricReading(metric, float(value), iso_utc(at) or "", [config.workflow_id for config in fired])


async def webhook_secret(store: Store, *, tenant: str, app: str, rotate: bool = False) -> str:
    """The app's Standard Webhooks secret (`whsec_...`), made on first use; `rotate` replaces it."""
    await app_tasks(store, tenant=tenant, app=app)
    return await store.webhook_secrets.get_or_create(tenant=tenant, app=app, rotate=rotate)


async def verify_webhook(store: Store, *, tenant: str, app: str, body: bytes, headers: Mapping[str, str]) -> str:
    """The `webhook-id` of a request signed with the app's secret; Unauthorized otherwise (no
    secret made yet, a missing or wrong signature, a timestamp more than 5 minutes away)."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    require_id(tenant, "tenant")
    require_id(app, "app")
    secret = await store.webhook_secrets.get(tenant=tenant, app=app)
    if secret is None:
        raise Unauthorized(f"app {app!r} of tenant {tenant!r} has no webhook secret yet"
                           f" (make one: heartbeats webhooks secret --tenant {tenant} --app {app})")
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        Webhook(secret).verify(body, lowered, json_parse=False)
    except WebhookVerificationError as exc:
        raise Unauthorized(f"webhook signature refused: {_reason(str(exc))}") from None
    except (ValueError, UnicodeDecodeError):  # a malformed signature header or body encoding
        raise Unauthorized("webhook signature refused: malformed webhook-signature header") from None
    return check_event_id(lowered["webhook-id"])


def check_event_id(value: str) -> str:
    if not value or len(value) > MAX_EVENT_ID_CHARS or not value.isprintable() or value.strip() != value:
        raise InvalidInput(f"an event id must be 1..{MAX_EVENT_ID_CHARS} printable characters without surrounding"
                           f" spaces (got {value[:60]!r})")
    return value


# --------------------------------------------------------------------------------------------


def _check_name(value: str, what: str) -> None:
    reason = name_problem(value)
    if reason:
        raise InvalidInput(f"{what} {reason}")


async def app_tasks(store: Store, *, tenant: str, app: str) -> list[TaskConfig]:
    """The app's tasks as installed for the tenant; NotFound for an unknown tenant or an app that
    is not installed. Store reads only."""
    require_id(tenant, "tenant")
    require_id(app, "app")
    timezone = (await require_tenant(store, tenant)).timezone
    installed = await installed_app(store, tenant=tenant, app=app)
    if installed is None:
        raise NotFound(f"app {app!r} is not installed for tenant {tenant!r}")
    return [config for config in entity_configs(installed.manifest, tenant=tenant, tenant_timezone=timezone)
            if isinstance(config, TaskConfig)]


def _signal(client: Client, config: TaskConfig, signal: str, case: Any):
    # Signal-with-start: a task whose workflow is not running (e.g. ended by an operator) is
    # started with the installed config and gets the case all the same.
    return lambda: start_or_reconfigure(client, config, start_signal=signal, start_signal_args=[case])


def _listened(configs: Sequence[TaskConfig]) -> str:
    names = sorted({trigger.event for config in configs for trigger in config.task.triggers_of("event")})
    return f" (events listened for: {', '.join(names)})" if names else " (none of its tasks has an event trigger)"


def _reason(message: str) -> str:
    return {"Missing required headers": "missing webhook-id, webhook-timestamp or webhook-signature header",
            "Message timestamp too old": "webhook-timestamp is more than 5 minutes old",
            "Message timestamp too new": "webhook-timestamp is more than 5 minutes in the future",
            "No matching signature found": "the signature does not match the body and the app's secret",
            }.get(message, message.lower())
