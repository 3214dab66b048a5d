"""Tick receipts: what each woken tick did, written once per tick however often a writer retries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select

from contract.names import parse_receipt_workflow_id
from contract.vocabulary import OUTCOMES
from store.checks import (
    check_aware,
    check_bool,
    check_choice,
    check_count,
    check_id,
    check_limit,
    check_text,
    optional_text,
)
from store.db import Area
from store.errors import StoreError
from store.models import Receipt
from store.tables import ReceiptRow, SpendRow

receipts: Table = ReceiptRow.__table__  # type: ignore[assignment]
ledger: Table = SpendRow.__table__  # type: ignore[assignment]

MAX_ERROR_LENGTH = 8000  # a receipt keeps the start of a long error (a whole traceback is noise)
MAX_REPLY_EXCERPT = 1000  # a receipt keeps the start of the agent's reply; the thread has all of it


class Receipts(Area):
    async def add(
        self,
        *,
        tenant: str,
        heartbeat_id: str,
        tick_id: str,
        at: datetime,
        trigger: str,
        outcome: str,
        reason: str | None = None,
        rows: int = 0,
        escalated: bool = False,
        provider: str | None = None,
        model: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        duration_ms: int = 0,
        error: str | None = None,
        reply: str | None = None,
        cases: int = 0,
        duplicates: int = 0,
        forced: bool = False,
    ) -> bool:
        """Write the receipt of one tick; False when that tick's receipt already exists.

        Idempotent by (heartbeat_id, tick_id), so a retried writer never writes it twice.
        `heartbeat_id` is the workflow ID of a heartbeat, a task, a runtime task, an agent's chat or an
        inbound message; app, agent and slug come from it, and it must belong to `tenant`. `reply` is what
        the agent said; longer than MAX_REPLY_EXCERPT characters it is cut, with "…".
        """
        check_id(tenant, "tenant id")
        try:
            _, owner, app, agent, slug = parse_receipt_workflow_id(heartbeat_id)
        except ValueError:
            raise StoreError(f"heartbeat id must look like heartbeat:TENANT:APP:AGENT:SLUG (or task:, job:, chat:,"
                             f" inbound:) (got {heartbeat_id!r})") from None
        if owner != tenant:
            raise StoreError(f"heartbeat {heartbeat_id!r} does not belong to tenant {tenant!r}")
        if isinstance(error, str) and len(error) > MAX_ERROR_LENGTH:
            error = error[:MAX_ERROR_LENGTH] + " [truncated]"
        if isinstance(reply, str) and len(reply) > MAX_REPLY_EXCERPT:
            reply = reply[: MAX_REPLY_EXCERPT - 1] + "…"
        values = {
            "tenant_id": tenant,
            "heartbeat_id": heartbeat_id,
            "tick_id": check_text(tick_id, "tick_id", max_length=200),
            "app_id": app,
            "agent_id": agent,
            "slug": slug,
            "at": check_aware(at, "at"),
            "trigger": check_text(trigger, "trigger", max_length=32),
            "outcome": check_choice(outcome, OUTCOMES, "outcome"),
            "reason": optional_text(reason, "reason", max_length=64),
            "rows": check_count(rows, "rows"),
            "escalated": check_bool(escalated, "escalated"),
            "provider": optional_text(provider, "provider", max_length=32),
            "model": optional_text(model, "model", max_length=200),
            "tokens_in": check_count(tokens_in, "tokens_in"),
            "tokens_out": check_count(tokens_out, "tokens_out"),
            "duration_ms": check_count(duration_ms, "duration_ms"),
            "error": optional_text(error, "error"),
            "reply": optional_text(reply, "reply"),
            "cases": check_count(cases, "cases"),
            "duplicates": check_count(duplicates, "duplicates"),
            "forced": check_bool(forced, "forced"),
        }
        insert = (
            self.insert(receipts)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[receipts.c.heartbeat_id, receipts.c.tick_id])
            .returning(receipts.c.id)
        )
        async with self._db.write() as conn:
            # A skipped tick never reached the agent: no call to sum (and no query on the no-op path).
            values["nano_usd"] = None if outcome == "skipped" else await _tick_cost(conn, tenant, heartbeat_id,
                                                                                     values["tick_id"])
            inserted = (await conn.execute(insert.values(nano_usd=values["nano_usd"]))).first()
        return inserted is not None

    async def list(self, *, tenant: str, heartbeat_id: str, limit: int = 20) -> list[Receipt]:
        """The heartbeat's receipts, newest first."""
        check_id(tenant, "tenant id")
        query = (
            select(receipts)
            .where(receipts.c.tenant_id == tenant, receipts.c.heartbeat_id == heartbeat_id)
            .order_by(receipts.c.at.desc(), receipts.c.id.desc())
            .limit(check_limit(limit))
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [Receipt.from_row(row) for row in rows]


async def _tick_cost(conn: Any, tenant: str, heartbeat_id: str, tick_id: str) -> int | None:
    """What the tick's LLM calls cost, from the spend ledger: every call of its turn (and the tool
    calls' own LLM calls) is keyed `{heartbeat_id}/{tick_id}/...`. None when it made no call, or
    one of them has no known price."""
    prefix = f"{heartbeat_id}/{tick_id}/"
    query = select(func.count(), func.count(ledger.c.nano_usd), func.coalesce(func.sum(ledger.c.nano_usd), 0)).where(
        ledger.c.tenant_id == tenant, ledger.c.call_key.startswith(prefix, autoescape=True),
        ledger.c.status == "settled")
    calls, priced, total = (await conn.execute(query)).one()
    return int(total) if calls and calls == priced else None
