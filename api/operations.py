"""Operator actions on one heartbeat or task, by its workflow ID (the ID `heartbeats list` shows).

    POST /v1/tenants/{tenant}/workflows/{workflow_id}/run-now   {"payload"?, "key"?, "force"?} -> 202

The same path as `heartbeats run-now ID` and `temporal workflow signal --name run_now`: a task's run
is its manual trigger (a payload is the case; `force` bypasses dedupe); a heartbeat's run takes no
body. The ID must be of the tenant in the path (another tenant's is a 404, as an unknown one is).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.auth import require_token
from api.context import Context
from api.errors import ErrorBody, InvalidField, validation_message
from api.idempotency import IDEMPOTENCY_KEY_HEADER, answer_once, checked_key, request_fingerprint
from api.request_body import parse_json
from api.targets import TENANT_PATH, AppTarget, app_target, charge_rate_limit
from client.operations import check_entity_id, run_task_now, signal_heartbeat
from client.temporal import no_such_heartbeat
from contract.errors import InvalidInput
from contract.names import SIGNAL_RUN_NOW, TASK_ID_PREFIX
from contract.task import ManualRun

router = APIRouter(prefix="/tenants/{tenant}/workflows/{workflow_id}", dependencies=[Depends(require_token)])

WORKFLOW_ID_PATH = PathParam(description="heartbeat:TENANT:APP:AGENT:SLUG or task:TENANT:APP:AGENT:SLUG")


class RunNowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "force": "yes" is a mistake, not true

    payload: Any = Field(default=None, description="Tasks: the case to run (keyed by the task's dedupe key).")
    key: str | None = Field(default=None, min_length=1, max_length=400, description="Tasks: the case's key.")
    force: bool = Field(default=False, description="Tasks: run even if the case was processed within the TTL.")


class RunNowSent(BaseModel):
    id: str
    forced: bool


@router.post(
    "/run-now",
    status_code=202,
    response_model=RunNowSent,
    responses={404: {"model": ErrorBody, "description": "No such workflow for this tenant"},
               409: {"model": ErrorBody, "description": "Not running, or the Idempotency-Key was used differently"}},
    summary="Run a heartbeat or a task now",
    description=("Sends `run_now`. A task's run is its manual trigger: `payload` is the case, `key` its key,"
                 " `force` bypasses dedupe (the receipt says `forced`). A heartbeat's run takes no body."
                 " A task without a `manual` trigger records a `refused / no_manual_trigger` receipt."),
)
async def run_now(
    request: Request,
    context: Context,
    tenant: str = TENANT_PATH,
    workflow_id: str = WORKFLOW_ID_PATH,
    idempotency_key: str | None = IDEMPOTENCY_KEY_HEADER,
) -> Any:
    try:
        kind, id_tenant, app, _agent, _slug = check_entity_id(workflow_id)
    except InvalidInput as exc:
        raise InvalidField("workflow_id", str(exc)) from None
    target: AppTarget = app_target(tenant, app)
    if id_tenant != tenant:
        raise no_such_heartbeat(workflow_id)
    charge_rate_limit(target, context)
    raw = await request.body()
    body = parse_json(raw) if raw.strip() else {}
    try:
        asked = RunNowRequest.model_validate(body)
    except ValidationError as exc:
        message, field = validation_message(list(exc.errors()))
        raise (InvalidField(field, message.removeprefix(f"{field}: ")) if field else InvalidInput(message)) from None
    if kind != TASK_ID_PREFIX and asked != RunNowRequest():
        raise InvalidInput(f"{workflow_id} is a heartbeat: payload, key and force apply to tasks only")

    async def send() -> tuple[int, dict[str, Any]]:
        client = await context.backends.temporal()
        audit = context.backends.store.audit
        if kind == TASK_ID_PREFIX:
            await run_task_now(client, workflow_id, ManualRun(payload=asked.payload, key=asked.key, force=asked.force),
                               audit=audit, actor="api")
        else:
            await signal_heartbeat(client, workflow_id, SIGNAL_RUN_NOW, audit=audit, actor="api")
        return 202, RunNowSent(id=workflow_id, forced=asked.force).model_dump()

    return await answer_once(context.backends.store, target, route="run-now", key=checked_key(idempotency_key),
                             fingerprint=request_fingerprint(request.url.path, body), run=send)
