"""The end of a tick: the reply protocol, the conversation and memory writes, and the receipt.

COMPLETE_TICK: a suppressed reply (`HEARTBEAT_OK`) leaves only its receipt. A substantive
one is appended to the agent's conversation (`dedicated`: the agent's own heartbeat thread; `main`:
the user-facing thread; `isolated`: not persisted), goes through the commitment post-pass (each
"I'll follow up on Tuesday" becomes a memory entry of kind `commitment` with its due time, see
`commitments`), leaves a one-line `heartbeat_summary` memory entry, and a `substantive` receipt with
the escalation flag, provider, model, tokens and an excerpt.

Either way, the commitments the tick's pre-filter fed it (`_internal_agent_memory`, kind
`commitment`) are marked done: the agent has seen them and acted, or decided there was nothing to do.

RECORD_RECEIPT: the receipt of a tick that ended without a reply (skipped, failed, refused).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.shadow import shadow_case
from commitments import (
    COMMITMENT_EXPIRY,
    COMMITMENT_KIND,
    MAX_COMMITMENTS_PER_DAY,
    commitment_claim,
    extract_commitments,
    local_day,
)
from contract.messages import (
    ERROR_STORE_REJECTED,
    MAX_ERROR_CHARS,
    CompleteTickRequest,
    ReceiptRequest,
    TickCompletion,
    TickRef,
)
from contract.shadow import QUEUE_SHADOW_REVIEW
from reply.protocol import classify_reply
from store.errors import StoreError
from store.models import MemoryEntry
from store.store import Areas, Store, Transaction
from store.types import utcnow

SUMMARY_KIND = "heartbeat_summary"
MAX_SUMMARY_CHARS = 200
ESCALATION_ONLY_TEXT = "[escalated to vision]"  # the message when the reply was nothing but the marker
SHADOW_REASON = "shadow"  # a shadow run's receipt: its non-LOW tool calls were proposals, not executed



async def complete_tick(store: Store, request: CompleteTickRequest) -> TickCompletion:
    """Apply the reply protocol and persist the tick's outcome, in one transaction.

    Every write of the tick (receipt, fed commitments done, and for a substantive reply the
    conversation message, the inferred commitments and the summary) commits together or not at
    all, so a crash never leaves half a tick behind. The receipt is written first: it is unique
    per (heartbeat, tick), so a retried activity, or a second attempt racing the first, finds it,
    writes nothing else and returns the same verdict.
    """
    tick = request.tick
    verdict = classify_reply(request.reply.text)
    suppressed = verdict.suppressed and request.user_message is None
    completion = TickCompletion(outcome="suppressed" if suppressed else "substantive",
                                escalated=verdict.escalated and not suppressed)
    # A shadow run (decided by the turn's first step): its proposals belong to this case.
    shadow = shadow_case(tick, request.processed) if request.reply.shadow else None
    try:
        async with store.transaction() as tx:
            written = await tx.receipts.add(
                **_receipt_fields(tick),
                outcome=completion.outcome,
                reason=SHADOW_REASON if shadow is not None else None,
                escalated=completion.escalated,
                rows=request.rows,
                provider=request.reply.provider,
                model=request.reply.model,
                tokens_in=request.reply.tokens_in,
                tokens_out=request.reply.tokens_out,
                duration_ms=request.duration_ms,
                reply=verdict.text,
                cases=request.cases,
                duplicates=request.duplicates,
                forced=request.forced,
            )
            if not written:
                activity.logger.info("%s tick %s: already completed", tick.heartbeat_id, tick.tick_id)
                return completion
            if shadow is not None:  # the case's proposals (none: "no action") are this run's
                await tx.shadow.record_run(tenant=tick.tenant, workflow_id=tick.heartbeat_id,
                                           case_key=shadow, tick_id=tick.tick_id)
                # One open "review due" item per heartbeat or task in shadow, however many runs.
                await tx.queue.open(tenant=tick.tenant, app=tick.app, agent=tick.agent, kind=QUEUE_SHADOW_REVIEW,
                                    subject=tick.heartbeat_id, open_key=f"{QUEUE_SHADOW_REVIEW}:{tick.heartbeat_id}",
                                    detail={"since_case": shadow})
            await _complete_fed_commitments(tx, tick)
            if request.processed:  # a task's cases: not run again within its dedupe TTL
                await tx.dedupe.mark(tenant=tick.tenant, task_id=tick.heartbeat_id, keys=request.processed,
                                     now=max(utcnow(), tick.at), ttl=timedelta(hours=request.ttl_hours))
            if request.user_message is not None:
                await _append_to_conversation(tx, request, request.user_message, role=request.user_role)
            elif verdict.suppressed:
                # Nothing persisted but the receipt: keeps the dedicated thread bounded.
                return completion
            message = verdict.text or (request.reply.text if verdict.suppressed else ESCALATION_ONLY_TEXT)
            await _append_to_conversation(tx, request, message)
            await write_commitments(tx, tick, verdict.text)
            await tx.memory.add(
                tenant=tick.tenant,
                app=tick.app,
                agent=tick.agent,
                kind=SUMMARY_KIND,
                content=summary_line(message),
                data={"heartbeat_id": tick.heartbeat_id, "tick_id": tick.tick_id, "escalated": verdict.escalated},
            )
    except StoreError as exc:
        raise _rejected(exc) from None
    activity.logger.info("%s tick %s: receipt %s", tick.heartbeat_id, tick.tick_id, completion.outcome)
    return completion


async def record_receipt(store: Store, request: ReceiptRequest) -> bool:
    """Write the receipt; False when this tick's receipt already existed (a retry)."""
    tick = request.tick
    error = request.error
    if error is not None and len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    try:
        written = await store.receipts.add(
            **_receipt_fields(tick),
            outcome=request.outcome,
            reason=request.reason,
            rows=request.rows,
            error=error,
            duration_ms=request.duration_ms,
            cases=request.cases,
            duplicates=request.duplicates,
            forced=request.forced,
        )
    except StoreError as exc:
        raise _rejected(exc) from None
    activity.logger.info("%s tick %s: receipt %s%s", tick.heartbeat_id, tick.tick_id, request.outcome,
                         "" if written else " (already written)")
    return written


async def write_commitments(store: Areas, tick: TickRef, text: str) -> list[int]:
    """The commitment post-pass: write the commitments of `text` to the agent's memory; their ids.

    Due times come from `extract_commitments` at the tick's time in the tenant's zone. Each entry:
    kind `commitment`, the sentence as content, `due_at`, `expires_at` = due + COMMITMENT_EXPIRY,
    data {heartbeat_id, tick_id, index, inferred_on}. At most MAX_COMMITMENTS_PER_DAY are inferred
    per agent per local day (`inferred_on`); the excess is dropped and logged. A commitment already
    expired when said (a date long past) is dropped too.

    Idempotent: each entry's dedupe key is "commitment:{heartbeat_id}/{tick_id}/{index}", and a retry
    does not count this tick's own earlier entries against the cap, so it writes the same ones again
    (finding them) and no more.
    """
    tenant = await store.tenants.get(tenant=tick.tenant)
    timezone = tenant.timezone if tenant is not None else "UTC"
    found = [c for c in extract_commitments(text, now=tick.at, timezone=timezone)
             if c.due_at + COMMITMENT_EXPIRY > tick.at]
    if not found:
        return []
    day = local_day(tick.at, timezone).isoformat()
    inferred_today = await store.memory.query(
        tenant=tick.tenant,
        app=tick.app,
        agent=tick.agent,
        kind=COMMITMENT_KIND,
        now=tick.at,  # what was inferred today expires days after tick.at: all of it is still there
        data_equals={"inferred_on": day},
        limit=100,
    )
    others = [e for e in inferred_today if not _from_tick(e, tick)]
    slots = max(0, MAX_COMMITMENTS_PER_DAY - len(others))
    kept, dropped = found[:slots], found[slots:]
    if dropped:
        activity.logger.warning(
            "%s tick %s: %d commitment(s) dropped: agent %s already has %d of %d for %s: %s",
            tick.heartbeat_id, tick.tick_id, len(dropped), tick.agent, len(others) + len(kept),
            MAX_COMMITMENTS_PER_DAY, day, "; ".join(c.text for c in dropped),
        )
    ids = []
    for index, commitment in enumerate(kept):
        ids.append(
            await store.memory.add(
                tenant=tick.tenant,
                app=tick.app,
                agent=tick.agent,
                kind=COMMITMENT_KIND,
                content=commitment.text,
                data={"heartbeat_id": tick.heartbeat_id, "tick_id": tick.tick_id, "index": index,
                      "inferred_on": day},
                due_at=commitment.due_at,
                expires_at=commitment.due_at + COMMITMENT_EXPIRY,
                dedupe_key=f"{COMMITMENT_KIND}:{tick.heartbeat_id}/{tick.tick_id}/{index}",
            )
        )
    if ids:
        activity.logger.info("%s tick %s: %d commitment(s) written", tick.heartbeat_id, tick.tick_id, len(ids))
    return ids


def summary_line(text: str) -> str:
    """The first non-empty line of `text`, at most MAX_SUMMARY_CHARS characters."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= MAX_SUMMARY_CHARS else line[: MAX_SUMMARY_CHARS - 1] + "…"


# ---------------------------------------------------------------------------------- helpers


def _receipt_fields(tick: TickRef) -> dict[str, Any]:
    return {
        "tenant": tick.tenant,
        "heartbeat_id": tick.heartbeat_id,
        "tick_id": tick.tick_id,
        "at": tick.at,
        "trigger": tick.trigger,
    }


def _from_tick(entry: MemoryEntry, tick: TickRef) -> bool:
    data = entry.data
    return isinstance(data, dict) and data.get("heartbeat_id") == tick.heartbeat_id and data.get("tick_id") == tick.tick_id


async def _complete_fed_commitments(tx: Transaction, tick: TickRef) -> None:
    # The commitments this tick's pre-filter claimed (see activities.prefilter); a no-op otherwise.
    done = await tx.memory.complete_claimed(
        tenant=tick.tenant,
        app=tick.app,
        agent=tick.agent,
        claim=commitment_claim(tick.heartbeat_id, tick.tick_id),
        at=utcnow(),
    )
    if done:
        activity.logger.info("%s tick %s: %d commitment(s) done", tick.heartbeat_id, tick.tick_id, done)


async def _append_to_conversation(tx: Transaction, request: CompleteTickRequest, message: str,
                                  role: str = "assistant") -> None:
    tick = request.tick
    if request.conversation_mode == "isolated":
        return  # a fresh single-shot turn each tick: no history to keep
    conversation = await tx.conversations.id_for(
        tenant=tick.tenant, app=tick.app, agent=tick.agent, mode=request.conversation_mode
    )
    await tx.conversations.append(tenant=tick.tenant, conversation_id=conversation, role=role, content=message)


def _rejected(exc: StoreError) -> ApplicationError:
    return ApplicationError(f"store rejected the tick's write: {exc}", type=ERROR_STORE_REJECTED, non_retryable=True)
