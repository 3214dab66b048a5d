"""Shadow mode's data: each case's shadow run, its proposals, the human decisions, promotions.

A proposal is written once per tool call (its idempotency key); a case's latest shadow run is the
one its proposals are read from; a decision may be given before or after the case's run, and
replaced; a promotion switches shadow mode off for one heartbeat or task of one tenant, and is
recorded with the report that allowed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select

from store.checks import check_id
from store.db import Area
from store.tables import ShadowDecisionRow, ShadowPromotionRow, ShadowProposalRow, ShadowRunRow
from store.types import utcnow

runs: Table = ShadowRunRow.__table__  # type: ignore[assignment]
proposals: Table = ShadowProposalRow.__table__  # type: ignore[assignment]
decisions: Table = ShadowDecisionRow.__table__  # type: ignore[assignment]
promotions: Table = ShadowPromotionRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ShadowCase:
    """One case of a heartbeat or task in shadow: what its latest run proposed, what a human decided."""

    case_key: str
    tick_id: str | None  # None: decided, but no shadow run yet
    proposed: list[dict[str, Any]]  # [{tool, arguments}]
    decided: list[dict[str, Any]] | None  # None: no decision yet
    ran_at: datetime | None = None  # when its latest shadow run was recorded


class Shadow(Area):
    async def record_run(self, *, tenant: str, workflow_id: str, case_key: str, tick_id: str) -> None:
        """The case's latest shadow run is `tick_id` (a case run again replaces its earlier run)."""
        check_id(tenant, "tenant id")
        now = utcnow()
        insert = self.insert(runs).values(tenant_id=tenant, workflow_id=workflow_id, case_key=case_key[:400],
                                          tick_id=tick_id, at=now)
        async with self._db.write() as conn:
            await conn.execute(insert.on_conflict_do_update(
                index_elements=[runs.c.tenant_id, runs.c.workflow_id, runs.c.case_key],
                set_={"tick_id": tick_id, "at": now}))

    async def propose(self, *, tenant: str, workflow_id: str, case_key: str, tick_id: str, call_key: str, tool: str,
                      arguments: dict[str, Any]) -> None:
        check_id(tenant, "tenant id")
        insert = self.insert(proposals).values(tenant_id=tenant, workflow_id=workflow_id, case_key=case_key[:400],
                                               tick_id=tick_id, call_key=call_key[:500], tool=tool,
                                               arguments=arguments, created_at=utcnow())
        async with self._db.write() as conn:
            await conn.execute(insert.on_conflict_do_nothing(index_elements=[proposals.c.tenant_id,
                                                                             proposals.c.call_key]))

    async def decide(self, *, tenant: str, workflow_id: str, case_key: str, actions: list[dict[str, Any]],
                     decided_by: str) -> None:
        check_id(tenant, "tenant id")
        now = utcnow()
        values = {"actions": actions, "decided_by": decided_by[:200], "decided_at": now}
        insert = self.insert(decisions).values(tenant_id=tenant, workflow_id=workflow_id, case_key=case_key[:400],
                                               **values)
        async with self._db.write() as conn:
            await conn.execute(insert.on_conflict_do_update(
                index_elements=[decisions.c.tenant_id, decisions.c.workflow_id, decisions.c.case_key], set_=values))

    async def decision(self, *, tenant: str, workflow_id: str, case_key: str) -> list[dict[str, Any]] | None:
        check_id(tenant, "tenant id")
        query = select(decisions.c.actions).where(decisions.c.tenant_id == tenant,
                                                  decisions.c.workflow_id == workflow_id,
                                                  decisions.c.case_key == case_key)
        async with self._db.read() as conn:
            found = (await conn.execute(query)).first()
        return None if found is None else list(found.actions)

    async def cases(self, *, tenant: str, workflow_id: str, limit: int = 10_000) -> list[ShadowCase]:
        """Every case with a shadow run or a decision, by key."""
        check_id(tenant, "tenant id")
        async with self._db.read() as conn:
            ran = {r.case_key: (r.tick_id, r.at) for r in (await conn.execute(select(runs).where(
                runs.c.tenant_id == tenant, runs.c.workflow_id == workflow_id).limit(limit))).all()}
            decided = {r.case_key: list(r.actions) for r in (await conn.execute(select(decisions).where(
                decisions.c.tenant_id == tenant, decisions.c.workflow_id == workflow_id).limit(limit))).all()}
            proposed: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for row in (await conn.execute(select(proposals).where(
                    proposals.c.tenant_id == tenant, proposals.c.workflow_id == workflow_id)
                    .order_by(proposals.c.id))).all():
                proposed.setdefault((row.case_key, row.tick_id), []).append(
                    {"tool": row.tool, "arguments": row.arguments})
        return [ShadowCase(key, ran[key][0] if key in ran else None,
                           proposed.get((key, ran[key][0]), []) if key in ran else [], decided.get(key),
                           ran[key][1] if key in ran else None) for key in sorted(set(ran) | set(decided))]

    async def proposals(self, *, tenant: str, workflow_id: str, limit: int = 10_000) -> list[dict[str, Any]]:
        """Every proposal recorded for the heartbeat or task, oldest first (failed runs' included)."""
        check_id(tenant, "tenant id")
        query = (select(proposals).where(proposals.c.tenant_id == tenant, proposals.c.workflow_id == workflow_id)
                 .order_by(proposals.c.id).limit(limit))
        async with self._db.read() as conn:
            return [{"case": r.case_key, "tick_id": r.tick_id, "tool": r.tool, "arguments": r.arguments}
                    for r in (await conn.execute(query)).all()]

    async def promoted(self, *, tenant: str, workflow_id: str) -> bool:
        check_id(tenant, "tenant id")
        query = select(promotions.c.workflow_id).where(promotions.c.tenant_id == tenant,
                                                       promotions.c.workflow_id == workflow_id)
        async with self._db.read() as conn:
            return (await conn.execute(query)).first() is not None

    async def promote(self, *, tenant: str, workflow_id: str, promoted_by: str, report: dict[str, Any]) -> bool:
        """Record the promotion; False when it was promoted already."""
        check_id(tenant, "tenant id")
        insert = self.insert(promotions).values(tenant_id=tenant, workflow_id=workflow_id,
                                                promoted_by=promoted_by[:200], promoted_at=utcnow(), report=report)
        async with self._db.write() as conn:
            done = await conn.execute(insert.on_conflict_do_nothing(
                index_elements=[promotions.c.tenant_id, promotions.c.workflow_id]))
        return bool(done.rowcount)
