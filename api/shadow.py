"""Shadow mode of one heartbeat or task over HTTP (client.shadow):

    POST /v1/tenants/{tenant}/workflows/{workflow_id}/shadow/decisions   {case, decision: [{tool, arguments}]}
    GET  /v1/tenants/{tenant}/workflows/{workflow_id}/shadow/report
    POST /v1/tenants/{tenant}/workflows/{workflow_id}/shadow/promote
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_token
from api.context import Context
from api.errors import ErrorBody, InvalidField
from api.request_body import json_model
from api.targets import TENANT_PATH, app_target, charge_rate_limit
from client.operations import check_entity_id
from client.shadow import decide, promote, shadow_report
from client.temporal import no_such_heartbeat
from contract.errors import InvalidInput

router = APIRouter(prefix="/tenants/{tenant}/workflows/{workflow_id}/shadow", dependencies=[Depends(require_token)])

WORKFLOW_ID_PATH = PathParam(description="heartbeat:TENANT:APP:AGENT:SLUG or task:TENANT:APP:AGENT:SLUG")
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such heartbeat or task for this tenant"}}


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case: str = Field(min_length=1, max_length=400, description="The case key (a heartbeat's tick:ID).")
    decision: list[dict[str, Any]] = Field(description="The tool calls that should happen; [] for none.")


def _checked(tenant: str, workflow_id: str, context: Any) -> None:
    try:
        _, id_tenant, app, _, _ = check_entity_id(workflow_id)
    except InvalidInput as exc:
        raise InvalidField("workflow_id", str(exc)) from None
    target = app_target(tenant, app)
    if id_tenant != tenant:
        raise no_such_heartbeat(workflow_id)
    charge_rate_limit(target, context)


@router.post("/decisions", status_code=204, responses=NOT_FOUND, summary="Record a human decision for a case")
async def post_decision(request: Request, context: Context, tenant: str = TENANT_PATH,
                        workflow_id: str = WORKFLOW_ID_PATH) -> Response:
    _checked(tenant, workflow_id, context)
    asked, _ = await json_model(request, DecisionRequest)
    await decide(context.backends.store, workflow_id=workflow_id, case=asked.case, actions=asked.decision, actor="api")
    return Response(status_code=204)


@router.get("/report", responses=NOT_FOUND, summary="Shadow proposals compared with the human decisions")
async def get_report(context: Context, tenant: str = TENANT_PATH, workflow_id: str = WORKFLOW_ID_PATH) -> JSONResponse:
    _checked(tenant, workflow_id, context)
    return JSONResponse((await shadow_report(context.backends.store, workflow_id=workflow_id)).to_json())


@router.post("/promote", responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "Not allowed yet: why"}},
             summary="Switch shadow mode off (compared >= min_cases, disagreement < 5%)")
async def post_promote(context: Context, tenant: str = TENANT_PATH,
                       workflow_id: str = WORKFLOW_ID_PATH) -> JSONResponse:
    _checked(tenant, workflow_id, context)
    return JSONResponse((await promote(context.backends.store, workflow_id=workflow_id, actor="api")).to_json())
