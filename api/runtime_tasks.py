"""Runtime tasks of one agent over HTTP: create, list, cancel (the rules of skills.runtime_tasks).

    POST   /v1/tenants/{tenant}/apps/{app}/agents/{agent}/tasks          {key, prompt, params?, in|at|cron|every}
    GET    /v1/tenants/{tenant}/apps/{app}/agents/{agent}/tasks[?status=active]
    DELETE /v1/tenants/{tenant}/apps/{app}/agents/{agent}/tasks/{key}

A create is idempotent by its key: 201 when it created the task, 200 with the existing one (and
`"created": false`) otherwise.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_token
from api.context import Context
from api.errors import ErrorBody, InvalidField
from api.request_body import json_model
from api.targets import RateLimitedTarget
from client.jobs import cancel_task, create_task, list_tasks
from contract.job import MAX_JOB_PROMPT_CHARS
from manifest.ids import id_problem

router = APIRouter(prefix="/tenants/{tenant}/apps/{app}/agents/{agent}/tasks", dependencies=[Depends(require_token)])

AGENT_PATH = PathParam(description="The agent that runs the task.")


class CreateRuntimeTask(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    key: str = Field(description="Unique per agent: lowercase letters, digits, '_' or '-', starting with a letter.")
    prompt: str = Field(max_length=MAX_JOB_PROMPT_CHARS, description="What the agent is asked when it runs.")
    params: dict[str, Any] | None = Field(default=None, description="Data the run gets with the prompt.")
    in_: str | None = Field(default=None, alias="in", description="One-shot after a delay: 30m, 2h, 3d, 1w.")
    at: str | None = Field(default=None, description="One-shot at an ISO 8601 time (no offset: tenant's local time).")
    cron: str | None = Field(default=None, description="Recurring, 5-field cron in the tenant's local time.")
    every: str | None = Field(default=None, description="Recurring, 5m..366d (days keep the local time of day).")


class RuntimeTaskView(BaseModel):
    id: str
    tenant: str
    app: str
    agent: str
    key: str
    status: Literal["active", "done", "cancelled"]
    timing: str
    prompt: str
    params: dict[str, Any]
    next_run: str | None
    created_by: str
    created_at: str | None
    ended_at: str | None
    created: bool | None = None


def _agent(agent: str) -> str:
    problem = id_problem(agent)
    if problem:
        raise InvalidField("agent", problem)
    return agent


@router.post("", response_model=RuntimeTaskView, status_code=201,
             responses={200: {"model": RuntimeTaskView, "description": "The key exists: that task, unchanged"},
                        404: {"model": ErrorBody, "description": "Unknown tenant, app or agent"}},
             summary="Create a runtime task (idempotent by key)")
async def create(request: Request, target: RateLimitedTarget, context: Context,
                 agent: str = AGENT_PATH) -> JSONResponse:
    asked, _ = await json_model(request, CreateRuntimeTask)
    created = await create_task(await context.backends.temporal(), context.backends.store, tenant=target.tenant,
                                app=target.app, agent=_agent(agent), key=asked.key, prompt=asked.prompt,
                                params=asked.params, in_=asked.in_, at=asked.at, cron=asked.cron, every=asked.every,
                                created_by="api")
    return JSONResponse(created.to_json(), status_code=201 if created.created else 200)


@router.get("", response_model=list[RuntimeTaskView], summary="The agent's runtime tasks, newest first")
async def list_(target: RateLimitedTarget, context: Context, agent: str = AGENT_PATH,
                status: Literal["active", "done", "cancelled"] | None = Query(None)) -> JSONResponse:
    found = await list_tasks(context.backends.store, tenant=target.tenant, app=target.app, agent=_agent(agent),
                             status=status)
    return JSONResponse([view.to_json() for view in found])


@router.delete("/{key}", response_model=RuntimeTaskView,
               responses={404: {"model": ErrorBody, "description": "No such runtime task"}},
               summary="Cancel a runtime task (an ended one stays as it is)")
async def cancel(target: RateLimitedTarget, context: Context, agent: str = AGENT_PATH,
                 key: str = PathParam(description="The task's key.")) -> JSONResponse:
    cancelled = await cancel_task(await context.backends.temporal(), context.backends.store, tenant=target.tenant,
                                  app=target.app, agent=_agent(agent), key=key)
    return JSONResponse(cancelled.to_json())
