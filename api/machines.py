"""State-machine runs over HTTP (client.machines), the same operations as `heartbeats workflow ...`.

    POST   /v1/tenants/{t}/apps/{a}/workflows/{workflow}/runs                 {key?, variables?, context?}
    GET    /v1/tenants/{t}/apps/{a}/workflows[?workflow=&status=]             the app's runs, newest first
    GET    /v1/tenants/{t}/apps/{a}/workflows/{workflow}/runs/{key}           place, status, variables, steps
    POST   /v1/tenants/{t}/apps/{a}/workflows/{workflow}/runs/{key}/transitions/{name}   {payload}
    POST   /v1/tenants/{t}/apps/{a}/workflows/{workflow}/runs/{key}/retry
    DELETE /v1/tenants/{t}/apps/{a}/workflows/{workflow}/runs/{key}          cancel
    GET    /v1/tenants/{t}/apps/{a}/workflows/{workflow}/graph[?current=]     Mermaid (text/plain)

A start is idempotent by its key (or the Idempotency-Key header): 201 when it started the run, 200
with `"created": false` when that key's run exists. A transition the run refuses (a payload its
schema refuses, a transition that does not leave its place) is 400 and changes nothing; one that
comes after the run moved on is 409, so a retried request never fires twice.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_token
from api.context import Context
from api.errors import ErrorBody, InvalidField
from api.idempotency import IDEMPOTENCY_KEY_HEADER, checked_key
from api.request_body import json_model
from api.targets import RateLimitedTarget
from client.machines import (
    cancel_run,
    graph_installed,
    list_runs,
    retry_run,
    show_run,
    start_run,
    transition_run,
)
from contract.errors import Conflict
from contract.machine import MACHINE_STATUSES, MachineView
from contract.names import machine_workflow_id
from manifest.ids import id_problem

router = APIRouter(prefix="/tenants/{tenant}/apps/{app}/workflows", dependencies=[Depends(require_token)])

WORKFLOW_PATH = PathParam(description="The workflow's name in the app's manifest.")
KEY_PATH = PathParam(description="The run's key.")


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(default=None, description="Names the run; a key runs once (default: the Idempotency-Key,"
                                                       " else a new key).")
    variables: dict[str, Any] | None = Field(default=None, description="context.variables of the run.")
    context: dict[str, Any] | None = Field(default=None, description="context.custom of the run.")


class StartedView(BaseModel):
    id: str
    workflow: str
    key: str
    definition_hash: str | None = None
    manifest_hash: str | None = None
    created: bool


class FireTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: Any = Field(default=None, description="Checked against the transition's payload_schema.")


class RunSummaryView(BaseModel):
    id: str
    workflow: str
    key: str
    status: str
    place: str
    started_at: str | None
    closed: bool


def _id(field: str, value: str) -> str:
    problem = id_problem(value)
    if problem:
        raise InvalidField(field, problem)
    return value


def _header_key(value: str | None) -> str | None:
    """A run key from an Idempotency-Key: itself when it is an id, else a digest of it (one header
    value always names one run)."""
    if value is None or id_problem(value) is None:
        return value
    return "k" + hashlib.sha256(value.encode()).hexdigest()[:32]


def _run_id(target, workflow: str, key: str) -> str:
    return machine_workflow_id(target.tenant, target.app, _id("workflow", workflow), _id("key", key))


@router.post("/{workflow}/runs", response_model=StartedView, status_code=201,
             responses={200: {"model": StartedView, "description": "That key's run exists: not started again"},
                        404: {"model": ErrorBody, "description": "Unknown app or workflow"}},
             summary="Start a run (idempotent by key)")
async def start(request: Request, target: RateLimitedTarget, context: Context, workflow: str = WORKFLOW_PATH,
                idempotency_key: str | None = IDEMPOTENCY_KEY_HEADER) -> JSONResponse:
    asked, _ = await json_model(request, StartRun)
    key = _id("key", asked.key) if asked.key is not None else _header_key(checked_key(idempotency_key))
    try:
        started = await start_run(await context.backends.temporal(), context.backends.store, tenant=target.tenant,
                                  app=target.app, workflow=_id("workflow", workflow), key=key,
                                  variables=asked.variables, custom=asked.context)
    except Conflict:
        if key is None:
            raise
        return JSONResponse({"id": _run_id(target, workflow, key), "workflow": workflow, "key": key,
                             "created": False}, status_code=200)
    return JSONResponse({**started.to_json(), "created": True}, status_code=201)


@router.get("", response_model=list[RunSummaryView], summary="The app's runs, newest first")
async def list_(target: RateLimitedTarget, context: Context, workflow: str | None = Query(None),
                status: str | None = Query(None, description=" | ".join(MACHINE_STATUSES)),
                limit: int = Query(100, ge=1, le=1000)) -> JSONResponse:
    if status is not None and status not in MACHINE_STATUSES:
        raise InvalidField("status", f"must be one of {', '.join(MACHINE_STATUSES)}")
    found = await list_runs(await context.backends.temporal(), tenant=target.tenant, app=target.app,
                            workflow=_id("workflow", workflow) if workflow else None, status=status, limit=limit)
    return JSONResponse([run.to_json() for run in found])


@router.get("/{workflow}/runs/{key}", response_model=MachineView,
            responses={404: {"model": ErrorBody, "description": "No such run"}}, summary="One run")
async def show(target: RateLimitedTarget, context: Context, workflow: str = WORKFLOW_PATH,
               key: str = KEY_PATH) -> JSONResponse:
    found = await show_run(await context.backends.temporal(), _run_id(target, workflow, key), tenant=target.tenant,
                           app=target.app)
    return JSONResponse(found.model_dump(mode="json"))


@router.post("/{workflow}/runs/{key}/transitions/{name}", response_model=MachineView,
             responses={400: {"model": ErrorBody, "description": "Refused: bad payload, or not a way on from here"},
                        409: {"model": ErrorBody, "description": "The run moved on first"}},
             summary="Fire a manual transition")
async def transition(request: Request, target: RateLimitedTarget, context: Context, workflow: str = WORKFLOW_PATH,
                     key: str = KEY_PATH, name: str = PathParam(description="The manual transition.")) -> JSONResponse:
    asked, _ = await json_model(request, FireTransition)
    moved = await transition_run(await context.backends.temporal(), _run_id(target, workflow, key), name,
                                 asked.payload, tenant=target.tenant, app=target.app)
    return JSONResponse(moved.model_dump(mode="json"))


@router.post("/{workflow}/runs/{key}/retry", response_model=MachineView,
             responses={400: {"model": ErrorBody, "description": "The run is not failed"}},
             summary="Resume a failed run from its failed transition")
async def retry(target: RateLimitedTarget, context: Context, workflow: str = WORKFLOW_PATH,
                key: str = KEY_PATH) -> JSONResponse:
    resumed = await retry_run(await context.backends.temporal(), _run_id(target, workflow, key), tenant=target.tenant,
                              app=target.app)
    return JSONResponse(resumed.model_dump(mode="json"))


@router.delete("/{workflow}/runs/{key}", summary="Cancel a run")
async def cancel(target: RateLimitedTarget, context: Context, workflow: str = WORKFLOW_PATH,
                 key: str = KEY_PATH) -> JSONResponse:
    run_id = _run_id(target, workflow, key)
    cancelled = await cancel_run(await context.backends.temporal(), run_id, tenant=target.tenant, app=target.app)
    return JSONResponse({"id": run_id, "cancelled": cancelled})


@router.get("/{workflow}/graph", response_class=PlainTextResponse, summary="The workflow as a Mermaid diagram")
async def graph(target: RateLimitedTarget, context: Context, workflow: str = WORKFLOW_PATH,
                current: str | None = Query(None)) -> PlainTextResponse:
    text = await graph_installed(context.backends.store, tenant=target.tenant, app=target.app,
                                 workflow=_id("workflow", workflow), current=current)
    return PlainTextResponse(text, media_type="text/vnd.mermaid")
