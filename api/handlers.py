"""An agent's event handlers over HTTP (client.handlers):

    POST /v1/tenants/{tenant}/apps/{app}/agents/{agent}/chat           {text, id?}  → 200 {reply, ...}
    GET  /v1/tenants/{tenant}/apps/{app}/agents/{agent}/conversation   ?mode=main|dedicated&limit=50
    POST /v1/tenants/{tenant}/apps/{app}/agents/{agent}/inbound        {id, from, subject?, text} → 202

Each chat or inbound message is an LLM turn: besides the app's rate limit, each agent takes at most
HEARTBEATS_API_HANDLER_RATE_PER_SECOND of them (burst HEARTBEATS_API_HANDLER_RATE_BURST), else 429.
A chat waits HEARTBEATS_API_CHAT_WAIT_SECONDS for the reply, then answers 504 (the turn goes on and
its reply lands in the conversation). A chat's `id` (or its Idempotency-Key) makes a retry safe.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_token
from api.context import Context
from api.errors import ErrorBody, HttpRefusal, InvalidField
from api.idempotency import IDEMPOTENCY_KEY_HEADER, checked_key
from api.request_body import json_model
from api.targets import AppTarget, RateLimitedTarget
from client.handlers import conversation, inbound_message, require_handler, send_chat, send_inbound
from contract.handlers import (
    MAX_CHAT_CHARS,
    MAX_INBOUND_FROM_CHARS,
    MAX_INBOUND_SUBJECT_CHARS,
    MAX_INBOUND_TEXT_CHARS,
    MAX_MESSAGE_ID_CHARS,
)
from manifest.ids import id_problem

router = APIRouter(prefix="/tenants/{tenant}/apps/{app}/agents/{agent}", dependencies=[Depends(require_token)])

AGENT_PATH = PathParam(description="The agent the message is for.")
REFUSED = {404: {"model": ErrorBody, "description": "Unknown tenant, app not installed, or unknown agent"},
           409: {"model": ErrorBody, "description": "The agent has no such handler in its manifest"},
           429: {"model": ErrorBody, "description": "Too many messages for this agent (Retry-After)"}}


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_CHAT_CHARS, description="The message.")
    id: str | None = Field(default=None, min_length=1, max_length=MAX_MESSAGE_ID_CHARS,
                           description="The message's id: the same id is answered once (default: the"
                                       " Idempotency-Key, else a new one).")


class ChatReply(BaseModel):
    message_id: str
    reply: str
    provider: str
    model: str
    tokens_in: int
    tokens_out: int


class InboundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1, max_length=MAX_MESSAGE_ID_CHARS, description="The sender's message id: handled once.")
    from_: str = Field(alias="from", min_length=1, max_length=MAX_INBOUND_FROM_CHARS, description="Who sent it.")
    subject: str = Field(default="", max_length=MAX_INBOUND_SUBJECT_CHARS)
    text: str = Field(min_length=1, max_length=MAX_INBOUND_TEXT_CHARS, description="The message body.")


class InboundAccepted(BaseModel):
    workflow_id: str
    message_id: str
    duplicate: bool


class ConversationMessage(BaseModel):
    id: int
    role: str
    content: str
    created_at: str


def _agent(agent: str) -> str:
    problem = id_problem(agent)
    if problem:
        raise InvalidField("agent", problem)
    return agent


def _charge_agent(target: AppTarget, agent: str, context: Context) -> None:
    # Keyed by (tenant, "app/agent"): each agent of the app has its own allowance.
    wait = context.handler_limiter.take(target.tenant, f"{target.app}/{agent}")
    if wait is not None:
        limiter = context.handler_limiter
        raise HttpRefusal(429, "rate_limited",
                          f"too many messages for agent {agent!r} of app {target.app!r} (limit {limiter.rate:g}/s,"
                          f" burst {limiter.burst}); retry in {wait} s", headers={"Retry-After": str(wait)})


@router.post("/chat", response_model=ChatReply, summary="Send a chat message; the agent's reply",
             responses={**REFUSED, 504: {"model": ErrorBody, "description": "No reply in time; the turn goes on"}})
async def chat(request: Request, target: RateLimitedTarget, context: Context, agent: str = AGENT_PATH,
               idempotency_key: str | None = IDEMPOTENCY_KEY_HEADER) -> JSONResponse:
    asked, _ = await json_model(request, ChatRequest)
    agent = _agent(agent)
    store = context.backends.store
    # Store checks before the allowance and Temporal: a wrong agent is a 404 even while Temporal is away.
    await require_handler(store, tenant=target.tenant, app=target.app, agent=agent, kind="on_chat")
    _charge_agent(target, agent, context)
    answer = await send_chat(await context.backends.temporal(), store, tenant=target.tenant, app=target.app,
                             agent=agent, text=asked.text, message_id=asked.id or checked_key(idempotency_key),
                             wait_seconds=context.settings.chat_wait_seconds)
    return JSONResponse(answer.model_dump(mode="json"))


@router.get("/conversation", response_model=list[ConversationMessage],
            summary="The agent's conversation thread, oldest message first")
async def get_conversation(target: RateLimitedTarget, context: Context, agent: str = AGENT_PATH,
                           mode: Literal["main", "dedicated"] = Query("main"),
                           limit: int = Query(50, ge=1, le=500)) -> JSONResponse:
    found = await conversation(context.backends.store, tenant=target.tenant, app=target.app, agent=_agent(agent),
                               mode=mode, limit=limit)
    return JSONResponse([message.to_json() for message in found])


@router.post("/inbound", response_model=InboundAccepted, status_code=202,
             responses={**REFUSED, 200: {"model": InboundAccepted, "description": "This id was received before"}},
             summary="Hand an inbound message to the agent's on_inbound (once per id)")
async def inbound(request: Request, target: RateLimitedTarget, context: Context,
                  agent: str = AGENT_PATH) -> JSONResponse:
    asked, _ = await json_model(request, InboundRequest)
    agent = _agent(agent)
    store = context.backends.store
    await require_handler(store, tenant=target.tenant, app=target.app, agent=agent, kind="on_inbound")
    _charge_agent(target, agent, context)
    message = inbound_message(id=asked.id, sender=asked.from_, subject=asked.subject, text=asked.text)
    accepted = await send_inbound(await context.backends.temporal(), store, tenant=target.tenant, app=target.app,
                                  agent=agent, message=message)
    return JSONResponse(accepted.to_json(), status_code=200 if accepted.duplicate else 202)
