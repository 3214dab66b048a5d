"""The pre-filter: the cheap, zero-LLM look that decides whether
a tick wakes the agent.

Three sources:

1. a registered skill's tool, only when the tool is LOW risk (checked here at run time too, not only at
   install: a skill can be re-registered with another risk between install and tick);
2. `_internal_app_records`: params `record_type` plus equality filters on the record's data fields
   → the matching records' data, by key;
3. `_internal_agent_memory`: params `kind` → this agent's unexpired entries, newest first. The agent is
   the tick's (tenant, app, agent), never taken from params. With `kind: commitment` commitments are
   re-checked before the agent sees them: only those due (due_at <= now, or none), unexpired and not
   done, most overdue first; the rows kept are claimed for this tick, and complete_tick marks them
   done when the tick completes (see commitments and docs/skills.md, "Commitments").

Caps (they bound what enters workflow history): at most MAX_PREFILTER_ROWS rows and at most
MAX_PREFILTER_BYTES of row JSON (UTF-8, compact separators). Rows past either cap are dropped, in
order, and `truncated` is set.

Errors: an app fault (unknown skill, non-LOW tool, bad params, a handler that raises) is a
non-retryable ApplicationError with a stable type and counts toward the five-failure disable.
Infrastructure faults (database unreachable, connection reset, timeouts) propagate unchanged so
Temporal retries them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from commitments import COMMITMENT_KIND, commitment_claim
from contract.messages import (
    ERROR_BAD_PARAMS,
    ERROR_PREFILTER_FAILED,
    ERROR_TOOL_NOT_ALLOWED,
    ERROR_UNKNOWN_SKILL,
    MAX_PREFILTER_BYTES,
    MAX_PREFILTER_ROWS,
    PrefilterRequest,
    PrefilterResult,
    TickRef,
)
from manifest.models import INTERNAL_AGENT_MEMORY, INTERNAL_APP_RECORDS
from skills.registry import (
    InvalidArgumentsError,
    SkillContext,
    SkillError,
    SkillRegistry,
    check_arguments,
)
from store.errors import StoreError
from store.store import Store

# Faults of the machinery, not of the app: retried by Temporal. DBAPIError covers SQLAlchemy's
# OperationalError / InterfaceError (server down, connection dropped); the pool's TimeoutError and
# OSError (refused, reset, TimeoutError) cover the rest.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, PoolTimeoutError, OSError)

MAX_ERROR_MESSAGE = 300  # an app fault's message, as it appears in the failed receipt


@dataclass(frozen=True)
class Source:
    """Where a pre-filter looks: an internal source, or a registered skill's LOW-risk tool."""

    skill: str
    tool: str
    params: dict[str, Any]

    @property
    def name(self) -> str:
        return self.skill if self.skill in (INTERNAL_APP_RECORDS, INTERNAL_AGENT_MEMORY) else f"{self.skill}.{self.tool}"


@dataclass(frozen=True)
class FoundRow:
    """A row a pre-filter found, and its own key: `record_type:id` for an app record,
    `memory:{id}` for a memory entry, a tool row's `id` field (else a hash of the row)."""

    key: str
    body: Any


async def find_rows(store: Store, skills: SkillRegistry, tick: TickRef, source: Source, *, now: datetime) -> list[FoundRow]:
    """What the pre-filter finds (one more than MAX_PREFILTER_ROWS at most, to tell "exactly 50" from
    "more"); app faults as non-retryable ApplicationErrors, infrastructure faults unchanged."""
    try:
        if source.skill == INTERNAL_APP_RECORDS:
            _require_query_tool(source)
            return await _app_records(store, tick, source.params)
        if source.skill == INTERNAL_AGENT_MEMORY:
            _require_query_tool(source)
            return await _agent_memory(store, tick, source.params, now=now)
        return await _skill_tool(store, skills, tick, source, now=now)
    except ApplicationError:
        raise
    except INFRASTRUCTURE_ERRORS:
        raise  # retryable: the database or network is down, not the app
    except StoreError as exc:
        # The store refuses these params (bad filter value, key too long): the manifest must change.
        raise _app_fault(f"{source.name}: {exc}", ERROR_BAD_PARAMS) from None
    except Exception as exc:
        raise _app_fault(f"{source.name} failed: {type(exc).__name__}: {exc}", ERROR_PREFILTER_FAILED) from None


async def run_prefilter(
    store: Store, skills: SkillRegistry, request: PrefilterRequest, *, now: datetime | None = None
) -> PrefilterResult:
    """Run the tick's pre-filter; write the `skipped / prefilter_empty` receipt when it is a no-op tick."""
    started = time.monotonic()
    tick = request.tick
    # The tick's own time, or later when the activity runs late (a retry): what is due is judged
    # as of the tick, never before it. (On the time-skipping test server tick time runs ahead.)
    now = now or max(datetime.now(UTC), request.tick.at)
    source = Source(request.skill, request.tool, request.params)
    matched = [row.body for row in await find_rows(store, skills, tick, source, now=now)]

    rows, truncated = cap_rows(matched)
    if rows and _feeds_commitments(request):
        # Exactly the entries the agent is about to see: marked done when this tick completes.
        await store.memory.claim(
            tenant=tick.tenant,
            app=tick.app,
            agent=tick.agent,
            ids=[row["id"] for row in rows],
            claim=commitment_claim(tick.heartbeat_id, tick.tick_id),
        )
    activity.logger.info(
        "prefilter %s for %s: %d matched, %d kept%s",
        source.name,
        tick.heartbeat_id,
        len(matched),
        len(rows),
        " (truncated)" if truncated else "",
    )
    if rows or truncated or request.invoke_always:
        return PrefilterResult(rows=rows, truncated=truncated, receipt_written=False)

    # Nothing found and not invoke_always: the common no-op tick ends here, with its receipt. On a
    # retry add_receipt finds the receipt already there (idempotent per tick) and writes nothing.
    written = await store.receipts.add(
        tenant=tick.tenant,
        heartbeat_id=tick.heartbeat_id,
        tick_id=tick.tick_id,
        at=tick.at,
        trigger=tick.trigger,
        outcome="skipped",
        reason="prefilter_empty",
        rows=0,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    if not written:
        activity.logger.info("receipt for %s tick %s already written", tick.heartbeat_id, tick.tick_id)
    return PrefilterResult(rows=[], truncated=False, receipt_written=True)


def cap_rows(matched: list[Any]) -> tuple[list[Any], bool]:
    """(rows within MAX_PREFILTER_ROWS and MAX_PREFILTER_BYTES of JSON, whether any were dropped)."""
    rows: list[Any] = []
    size = 2  # "[" and "]"
    for row in matched[:MAX_PREFILTER_ROWS]:
        encoded = len(json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode())
        size += encoded + (1 if rows else 0)
        if size > MAX_PREFILTER_BYTES:
            break
        rows.append(row)
    return rows, len(rows) < len(matched)


# ---------------------------------------------------------------------------------- sources


def _require_query_tool(source: Source) -> None:
    if source.tool != "query":
        raise _app_fault(f'{source.skill} has only the tool "query" (got {source.tool!r})', ERROR_BAD_PARAMS)


async def _app_records(store: Store, tick: TickRef, params: dict[str, Any]) -> list[FoundRow]:
    filters = dict(params)
    record_type = filters.pop("record_type", None)
    if not isinstance(record_type, str) or not record_type:
        raise _app_fault(
            f"{INTERNAL_APP_RECORDS} needs params.record_type, a record type name (got {record_type!r})",
            ERROR_BAD_PARAMS,
        )
    # One more than the cap: tells "exactly 50" from "more than 50".
    found = await store.records.find(
        tenant=tick.tenant, app=tick.app, record_type=record_type, filters=filters, limit=MAX_PREFILTER_ROWS + 1
    )
    return [FoundRow(f"{record.record_type}:{record.id}", record.data) for record in found]


async def _agent_memory(store: Store, tick: TickRef, params: dict[str, Any], *, now: datetime) -> list[FoundRow]:
    unknown = sorted(set(params) - {"kind"})
    if unknown:
        # In particular no `agent`: the agent is the heartbeat's own, never chosen by params.
        raise _app_fault(
            f"{INTERNAL_AGENT_MEMORY} takes only params.kind (got {', '.join(unknown)});"
            " the agent is always the heartbeat's own",
            ERROR_BAD_PARAMS,
        )
    kind = params.get("kind")
    if kind is not None and (not isinstance(kind, str) or not kind):
        raise _app_fault(f"{INTERNAL_AGENT_MEMORY}: params.kind must be a memory kind (got {kind!r})", ERROR_BAD_PARAMS)
    if kind == COMMITMENT_KIND:
        entries = await store.memory.query(
            tenant=tick.tenant,
            app=tick.app,
            agent=tick.agent,
            kind=kind,
            now=now,
            limit=MAX_PREFILTER_ROWS + 1,
            due_only=True,
            include_done=False,
        )
    else:
        entries = await store.memory.query(
            tenant=tick.tenant, app=tick.app, agent=tick.agent, kind=kind, now=now, limit=MAX_PREFILTER_ROWS + 1
        )
    return [FoundRow(f"memory:{entry.id}", entry.to_json()) for entry in entries]


def _feeds_commitments(request: PrefilterRequest) -> bool:
    return request.skill == INTERNAL_AGENT_MEMORY and request.params.get("kind") == COMMITMENT_KIND


async def _skill_tool(
    store: Store, skills: SkillRegistry, tick: TickRef, source: Source, *, now: datetime
) -> list[FoundRow]:
    try:
        spec = skills.tool(source.skill, source.tool)
    except SkillError as exc:
        raise _app_fault(str(exc), ERROR_UNKNOWN_SKILL) from None
    problem = skills.prefilter_problem(source.skill, source.tool)
    if problem:
        raise _app_fault(problem, ERROR_TOOL_NOT_ALLOWED)
    try:
        args = check_arguments(spec, dict(source.params))
    except InvalidArgumentsError as exc:
        raise _app_fault(f"{source.skill}.{exc}", ERROR_BAD_PARAMS) from None
    # LOW tools do not write, but a key costs nothing and lets a handler log or dedupe.
    ctx = SkillContext.for_tick(store, tick, now=now, idempotency_key=f"{tick.heartbeat_id}/{tick.tick_id}/prefilter")
    result = await spec.handler(ctx, args)
    rows = _as_rows(result)
    try:
        json.dumps(rows, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _app_fault(f"{source.name} returned rows that are not JSON: {exc}", ERROR_PREFILTER_FAILED) from None
    return [FoundRow(_row_key(row), row) for row in rows]


def _as_rows(result: Any) -> list[Any]:
    """A tool's result as pre-filter rows: None is nothing found, a list is its rows, else one row."""
    if result is None:
        return []
    if isinstance(result, list | tuple):
        return list(result)
    return [result]


# ---------------------------------------------------------------------------------- helpers


def _row_key(row: Any) -> str:
    """A tool row's own key: its `id` field, else a hash of the row (the same row, the same key)."""
    if isinstance(row, dict) and isinstance(row.get("id"), str | int) and not isinstance(row.get("id"), bool):
        return str(row["id"])
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _app_fault(message: str, error_type: str) -> ApplicationError:
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[: MAX_ERROR_MESSAGE - 1] + "…"
    return ApplicationError(message, type=error_type, non_retryable=True)
