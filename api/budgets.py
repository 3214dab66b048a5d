"""Spend, the operator queue and the audit log of a tenant over HTTP (client.budgets):

    GET  /v1/tenants/{tenant}/spend?by=day|task|agent|model&app=&agent=&since=YYYY-MM-DD
    GET  /v1/tenants/{tenant}/queue?status=open|approved|rejected|all
    POST /v1/tenants/{tenant}/queue/{item}/resolve   {decision: approve|reject, raise_monthly_usd?, approve_once?}
    GET  /v1/tenants/{tenant}/audit?limit=100&action=
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_token
from api.context import Context
from api.errors import ErrorBody
from api.request_body import json_model
from api.targets import RateLimitedTenant
from client.budgets import audit_log, queue_items, resolve_item, spend

router = APIRouter(prefix="/tenants/{tenant}", dependencies=[Depends(require_token)])


class SpendLineView(BaseModel):
    key: str
    calls: int
    tokens_in: int
    tokens_out: int
    cache_read_tokens: int
    usd: str
    unpriced_calls: int


class QueueItemView(BaseModel):
    id: int
    tenant: str
    app: str
    agent: str
    kind: str
    subject: str
    detail: Any
    status: str
    created_at: str
    resolved_at: str | None
    resolved_by: str | None
    resolution: Any


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    raise_monthly_usd: Decimal | None = Field(default=None, gt=0, le=1_000_000,
                                              description="Approve a monthly hold with a new monthly ceiling.")
    approve_once: bool = Field(default=False, description="Approve a monthly hold for the rest of this month.")


class AuditEntryView(BaseModel):
    id: int
    tenant: str
    at: str
    actor: str
    action: str
    target: str
    detail: Any


@router.get("/spend", response_model=list[SpendLineView], summary="What the tenant's LLM calls cost, grouped")
async def get_spend(tenant: RateLimitedTenant, context: Context,
                    by: Literal["day", "task", "agent", "model"] = Query("day"), app: str | None = Query(None),
                    agent: str | None = Query(None),
                    since: Annotated[date | None, Query(description="From this tenant-local day on.")] = None,
                    ) -> JSONResponse:
    lines = await spend(context.backends.store, tenant=tenant, by=by, app=app, agent=agent, since=since)
    return JSONResponse([line.to_json() for line in lines])


@router.get("/queue", response_model=list[QueueItemView], summary="The tenant's operator queue, oldest first")
async def get_queue(tenant: RateLimitedTenant, context: Context,
                    status: Literal["open", "approved", "rejected", "all"] = Query("open")) -> JSONResponse:
    items = await queue_items(context.backends.store, tenant=tenant, status=None if status == "all" else status)
    return JSONResponse([item.to_json() for item in items])


@router.post("/queue/{item}/resolve", response_model=QueueItemView, summary="Resolve a queue item (audited)",
             responses={404: {"model": ErrorBody, "description": "The tenant has no such item"},
                        409: {"model": ErrorBody, "description": "Resolved already"}})
async def post_resolve(request: Request, tenant: RateLimitedTenant, context: Context,
                       item: int = PathParam(description="The item's id (heartbeats queue list).")) -> JSONResponse:
    asked, _ = await json_model(request, Resolution)
    resolved = await resolve_item(context.backends.store, tenant=tenant, item_id=item,
                                  approve=asked.decision == "approve", actor="api",
                                  raise_monthly_usd=asked.raise_monthly_usd, approve_once=asked.approve_once)
    return JSONResponse(resolved.to_json())


@router.get("/audit", response_model=list[AuditEntryView], summary="The tenant's audit log, newest first")
async def get_audit(tenant: RateLimitedTenant, context: Context, limit: int = Query(100, ge=1, le=1000),
                    action: str | None = Query(None, max_length=64)) -> JSONResponse:
    entries = await audit_log(context.backends.store, tenant=tenant, limit=limit, action=action)
    return JSONResponse([entry.to_json() for entry in entries])
