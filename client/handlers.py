"""Event handlers from the outside: a chat message answered now, an inbound message handled once, and
an agent's conversation read back. For the CLI and the HTTP API.

    answer = await send_chat(client, store, tenant="acme", app="shop", agent="helper", text="Any news?")
    accepted = await send_inbound(client, store, tenant="acme", app="shop", agent="helper",
                                  message=InboundMessage(id="<m1@x>", **{"from": "a@b.c"}, text="Hi"))

The handler (its prompt and model tier) is the agent's `on_chat` / `on_inbound` as installed now;
an agent without one refuses the message (Conflict), an app not installed or an unknown agent is
NotFound.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, overload

from pydantic import ValidationError

from client.checks import require_id, require_tenant
from client.temporal import temporal_errors
from contract.errors import Conflict, InvalidInput, NotFound, TimedOut, Unavailable
from contract.handlers import (
    DEFAULT_CHAT_WAIT_SECONDS,
    ChatAnswer,
    ChatConfig,
    InboundInput,
    InboundMessage,
    IncomingChat,
)
from contract.names import chat_workflow_id, inbound_workflow_id
from manifest.handlers import OnChatSpec, OnInboundSpec
from runtime.workflows import send_chat as send_chat_update
from runtime.workflows import start_inbound
from store.installed import installed_app
from store.models import Message

if TYPE_CHECKING:
    from temporalio.client import Client

    from store import Store

# Tries to hand a chat message to the chat workflow when a run refuses it (it is continuing as new).
ACCEPT_ATTEMPTS = 3

__all__ = ["ChatAnswer", "InboundAccepted", "InboundMessage", "conversation", "inbound_message", "require_handler",
           "send_chat", "send_inbound"]


@dataclass(frozen=True)
class InboundAccepted:
    workflow_id: str
    message_id: str
    duplicate: bool  # this message id was already received: nothing new runs

    def to_json(self) -> dict[str, object]:
        return {"workflow_id": self.workflow_id, "message_id": self.message_id, "duplicate": self.duplicate}


async def send_chat(client: Client, store: Store, *, tenant: str, app: str, agent: str, text: str,
                    message_id: str | None = None, wait_seconds: float = DEFAULT_CHAT_WAIT_SECONDS) -> ChatAnswer:
    """The agent's reply to `text`, in its main conversation.

    `message_id` makes a retry safe: the same id is answered once (a fresh one per call otherwise).
    TimedOut when the reply takes longer than `wait_seconds`: the turn goes on, and its reply lands
    in the conversation. Unavailable when no worker takes the message within that time, or the
    agent's turn failed (its receipt says why).
    """
    from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError

    if not text.strip():
        raise InvalidInput("text: must not be empty")
    handler = await require_handler(store, tenant=tenant, app=app, agent=agent, kind="on_chat")
    try:
        message = IncomingChat(id=message_id or str(uuid.uuid4()), text=text, model_tier=handler.model_tier,
                              sent_at=datetime.now(UTC))
    except ValidationError as exc:
        raise InvalidInput(_first_problem(exc)) from None
    config = ChatConfig(tenant=tenant, app=app, agent=agent, workflow_id=chat_workflow_id(tenant, app, agent))
    where = f"heartbeats conversation --tenant {tenant} --app {app} --agent {agent}"
    try:
        async with asyncio.timeout(wait_seconds):
            for attempt in range(ACCEPT_ATTEMPTS):
                try:
                    with temporal_errors():
                        handle = await send_chat_update(client, config, message)
                    break
                except WorkflowUpdateFailedError as exc:
                    # Refused by a run about to continue as new (or closing idle): the next run takes it.
                    if attempt == ACCEPT_ATTEMPTS - 1:
                        raise Unavailable(f"the message was refused: {_cause(exc)}") from None
                    await asyncio.sleep(0.2 * (attempt + 1))
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise Unavailable(f"no worker took the message within {wait_seconds:g} s (is `heartbeats worker` running?);"
                          " it was not answered: send it again") from None
    try:
        async with asyncio.timeout(wait_seconds):
            with temporal_errors():
                return await handle.result()
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise TimedOut(f"no reply within {wait_seconds:g} s; the agent is still answering message {message.id!r},"
                       f" and its reply will be in the conversation ({where})") from None
    except WorkflowUpdateFailedError as exc:
        raise Unavailable(f"{_cause(exc)} (message {message.id!r})") from None


async def send_inbound(client: Client, store: Store, *, tenant: str, app: str, agent: str,
                       message: InboundMessage) -> InboundAccepted:
    """Start the one turn that handles `message` with the agent's `on_inbound`; a message id seen
    before starts nothing (`duplicate`)."""
    handler = await require_handler(store, tenant=tenant, app=app, agent=agent, kind="on_inbound")
    workflow_id = inbound_workflow_id(tenant, app, agent, message.id)
    started = InboundInput(tenant=tenant, app=app, agent=agent, workflow_id=workflow_id, message=message,
                           prompt=handler.prompt, model_tier=handler.model_tier,
                           conversation_mode=handler.conversation_mode, received_at=datetime.now(UTC))
    with temporal_errors():
        new = await start_inbound(client, started)
    return InboundAccepted(workflow_id=workflow_id, message_id=message.id, duplicate=not new)


def inbound_message(*, id: str, sender: str, text: str, subject: str = "") -> InboundMessage:
    """An InboundMessage from loose values; InvalidInput naming the field that is wrong."""
    try:
        return InboundMessage.model_validate({"id": id, "from": sender, "subject": subject, "text": text})
    except ValidationError as exc:
        raise InvalidInput(_first_problem(exc)) from None


async def conversation(store: Store, *, tenant: str, app: str, agent: str,
                       mode: Literal["main", "dedicated"] = "main", limit: int = 50) -> list[Message]:
    """The newest `limit` messages of the agent's thread, oldest first ([] before the first one)."""
    for what, value in (("tenant", tenant), ("app", app), ("agent", agent)):
        require_id(value, what)
    await require_tenant(store, tenant)
    found = await store.conversations.find(tenant=tenant, app=app, agent=agent, mode=mode)
    if found is None:
        return []
    return await store.conversations.messages(tenant=tenant, conversation_id=found, limit=limit)


@overload
async def require_handler(store: Store, *, tenant: str, app: str, agent: str,
                          kind: Literal["on_chat"]) -> OnChatSpec: ...
@overload
async def require_handler(store: Store, *, tenant: str, app: str, agent: str,
                          kind: Literal["on_inbound"]) -> OnInboundSpec: ...
async def require_handler(store: Store, *, tenant: str, app: str, agent: str,
                          kind: Literal["on_chat", "on_inbound"]) -> OnChatSpec | OnInboundSpec:
    """The agent's handler as installed now (store reads only): NotFound for an unknown tenant, an
    app not installed or an unknown agent; Conflict when the agent has no such handler."""
    for what, value in (("tenant", tenant), ("app", app), ("agent", agent)):
        require_id(value, what)
    await require_tenant(store, tenant)
    installed = await installed_app(store, tenant=tenant, app=app)
    if installed is None:
        raise NotFound(f"app {app!r} is not installed for tenant {tenant!r}")
    spec = installed.agent(agent)
    if spec is None:
        raise NotFound(f"app {app!r} has no agent {agent!r}")
    handler = getattr(spec, kind)
    if handler is None:
        what = "chat" if kind == "on_chat" else "inbound"
        raise Conflict(f"agent {agent!r} of app {app!r} takes no {what} messages: its manifest has no {kind}")
    return handler


def _first_problem(exc: ValidationError) -> str:
    problem = exc.errors()[0]
    field = ".".join(str(part) for part in problem["loc"]) or "message"
    return f"{field}: {problem['msg']}"


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return str(getattr(cause, "message", None) or cause)
