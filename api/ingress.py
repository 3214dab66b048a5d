"""What outside systems send to an app: events (which fire the tasks that listen for them) and metric
values (which fire threshold triggers). Both call the same client library as the CLI.

    POST /v1/tenants/{tenant}/apps/{app}/events/{event}     any JSON object  -> 202 delivery
    POST /v1/tenants/{tenant}/apps/{app}/metrics/{metric}   {"value": 0.031} -> 200 reading
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import TokenOrSignature, require_token
from api.context import Context
from api.errors import ErrorBody
from api.idempotency import IDEMPOTENCY_KEY_HEADER, answer_once, checked_key, request_fingerprint
from api.request_body import json_model, json_object
from api.targets import RateLimitedTarget
from client.ingress import app_tasks, event_listeners, put_metric, send_event

router = APIRouter(prefix="/tenants/{tenant}/apps/{app}")

NOT_FOUND_OR_CONFLICT = {
    404: {"model": ErrorBody, "description": "Unknown tenant, app not installed, or nothing listens"},
    409: {"model": ErrorBody, "description": "The id or Idempotency-Key was used for a different request"},
}


class EventDelivery(BaseModel):
    event_id: str = Field(description="The event's id: webhook-id, Idempotency-Key, or generated.")
    event: str
    tasks: list[str] = Field(description="Workflow ids of the tasks the event was delivered to.")
    duplicate: bool = Field(description="This id had been received before: nothing was delivered again.")


class MetricValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float = Field(strict=True, allow_inf_nan=False, description="A finite number.")


class MetricReading(BaseModel):
    metric: str
    value: float
    at: str = Field(description="When the value was taken, ISO 8601 UTC.")
    fired: list[str] = Field(description="Workflow ids of the tasks whose threshold this value crossed.")


def _json_body(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    # The endpoints read their bodies themselves (after authentication): describe them here.
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema, "example": example}}}}


@router.post(
    "/events/{event}",
    status_code=202,
    response_model=EventDelivery,
    responses=NOT_FOUND_OR_CONFLICT,
    summary="Send an event to the app's tasks that listen for it",
    description=(
        "The body (any JSON object) becomes the case of each task of the app with an `event` trigger for"
        " this name. Authenticate with the bearer token, or sign with the app's secret (Standard Webhooks:"
        " `webhook-id`, `webhook-timestamp`, `webhook-signature`; `heartbeats webhooks secret`); a timestamp"
        " more than 5 minutes off is refused. The event's id is the verified `webhook-id`, else the"
        " `Idempotency-Key`, else a new one: an id received before is not delivered again (`duplicate`)."),
    openapi_extra=_json_body({"type": "object"}, {"case_id": "c-42", "subject": "Refund request"}),
)
async def post_event(
    request: Request,
    caller: TokenOrSignature,
    target: RateLimitedTarget,
    context: Context,
    event: str = PathParam(description="The event's name, as in the tasks' `event` triggers."),
    idempotency_key: str | None = IDEMPOTENCY_KEY_HEADER,
    _webhook_id: str | None = Header(None, alias="webhook-id", description="Standard Webhooks message id."),
    _webhook_timestamp: str | None = Header(None, alias="webhook-timestamp", description="Unix seconds."),
    _webhook_signature: str | None = Header(None, alias="webhook-signature", description="`v1,<base64>`"),
) -> JSONResponse:
    body = await json_object(request)
    event_id = caller.signed_id or checked_key(idempotency_key)
    store = context.backends.store
    # Store checks first: an unknown tenant or event is a 404 even while Temporal is away.
    listeners = await event_listeners(store, tenant=target.tenant, app=target.app, event=event)
    delivery = await send_event(await context.backends.temporal(), store, tenant=target.tenant, app=target.app,
                                event=event, body=body, event_id=event_id, listeners=listeners)
    return JSONResponse(delivery.to_json(), status_code=202)


@router.post(
    "/metrics/{metric}",
    response_model=MetricReading,
    responses=NOT_FOUND_OR_CONFLICT,
    dependencies=[Depends(require_token)],
    summary="Record a metric's value; fires the thresholds it crosses",
    description=(
        "Keeps the value as the metric's last one and fires each `threshold` trigger of the app's tasks"
        " that this value crosses into its condition (once per crossing). Safe to retry with an"
        " `Idempotency-Key`."),
    openapi_extra=_json_body(MetricValue.model_json_schema(), {"value": 0.031}),
)
async def post_metric(
    request: Request,
    target: RateLimitedTarget,
    context: Context,
    metric: str = PathParam(description="The metric's name, as in the tasks' `threshold` triggers."),
    idempotency_key: str | None = IDEMPOTENCY_KEY_HEADER,
) -> JSONResponse:
    reading, body = await json_model(request, MetricValue)
    key = checked_key(idempotency_key)

    store = context.backends.store

    async def record() -> tuple[int, dict[str, Any]]:
        await app_tasks(store, tenant=target.tenant, app=target.app)  # a 404 even while Temporal is away
        result = await put_metric(await context.backends.temporal(), store, tenant=target.tenant,
                                  app=target.app, metric=metric, value=reading.value)
        return 200, result.to_json()

    return await answer_once(store, target, route="metrics", key=key,
                             fingerprint=request_fingerprint(request.url.path, body), run=record)
