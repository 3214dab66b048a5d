"""Conversations: one thread per (tenant, app, agent, mode), and its messages."""

from __future__ import annotations

import uuid

from sqlalchemy import Table, func, select

from contract.vocabulary import STORED_CONVERSATION_MODES
from store.checks import check_choice, check_id, check_ids, check_limit, check_text
from store.db import Area
from store.errors import NotFoundError
from store.models import Message
from store.tables import ConversationRow, MessageRow
from store.types import utcnow

conversations: Table = ConversationRow.__table__  # type: ignore[assignment]
messages: Table = MessageRow.__table__  # type: ignore[assignment]


class Conversations(Area):
    async def id_for(self, *, tenant: str, app: str, agent: str, mode: str) -> str:
        """The agent's conversation id in `mode` ('dedicated' | 'main'), created on first use."""
        check_ids(tenant=tenant, app=app, agent=agent)
        check_choice(mode, STORED_CONVERSATION_MODES, "conversation mode")
        existing = await self.find(tenant=tenant, app=app, agent=agent, mode=mode)
        if existing is not None:
            return existing
        values = {
            "id": str(uuid.uuid4()),
            "tenant_id": tenant,
            "app_id": app,
            "agent_id": agent,
            "mode": mode,
            "created_at": utcnow(),
        }
        # Two processes may race to create it: the unique constraint picks one, both read it back.
        async with self._db.write() as conn:
            found, _ = await self.insert_or_fetch(
                conn, conversations, values,
                unique=(conversations.c.tenant_id, conversations.c.app_id, conversations.c.agent_id,
                        conversations.c.mode),
                returning=conversations.c.id,
            )
        return str(found)

    async def find(self, *, tenant: str, app: str, agent: str, mode: str) -> str | None:
        """The agent's conversation id in `mode`, or None before its first message (creates nothing)."""
        check_ids(tenant=tenant, app=app, agent=agent)
        check_choice(mode, STORED_CONVERSATION_MODES, "conversation mode")
        async with self._db.read() as conn:
            found = (await conn.execute(self._query(tenant, app, agent, mode))).scalar_one_or_none()
        return None if found is None else str(found)

    @staticmethod
    def _query(tenant: str, app: str, agent: str, mode: str):  # noqa: ANN205 - a SQLAlchemy Select
        return select(conversations.c.id).where(
            conversations.c.tenant_id == tenant,
            conversations.c.app_id == app,
            conversations.c.agent_id == agent,
            conversations.c.mode == mode,
        )

    async def append(self, *, tenant: str, conversation_id: str, role: str, content: str) -> int:
        """Append a message to one of the tenant's conversations; returns the message id."""
        check_id(tenant, "tenant id")
        role = check_text(role, "message role", max_length=32)
        content = check_text(content, "message content", allow_empty=True)
        owned = select(conversations.c.id).where(
            conversations.c.id == conversation_id, conversations.c.tenant_id == tenant
        )
        async with self._db.write() as conn:
            if (await conn.execute(owned)).first() is None:
                raise NotFoundError(f"tenant {tenant!r} has no conversation {conversation_id!r}")
            result = await conn.execute(
                messages.insert().values(
                    tenant_id=tenant, conversation_id=conversation_id, role=role, content=content, created_at=utcnow()
                )
            )
        return int(result.inserted_primary_key[0])

    async def count(self, *, tenant: str, conversation_id: str) -> int:
        """How many messages the tenant's conversation holds."""
        check_id(tenant, "tenant id")
        query = select(func.count()).select_from(messages).where(messages.c.tenant_id == tenant,
                                                                 messages.c.conversation_id == conversation_id)
        async with self._db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def messages(self, *, tenant: str, conversation_id: str, limit: int = 50) -> list[Message]:
        """The newest `limit` messages, oldest first (the order a prompt wants them in)."""
        check_id(tenant, "tenant id")
        query = (
            select(messages)
            .where(messages.c.tenant_id == tenant, messages.c.conversation_id == conversation_id)
            .order_by(messages.c.id.desc())
            .limit(check_limit(limit))
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [Message.from_row(row) for row in reversed(rows)]
