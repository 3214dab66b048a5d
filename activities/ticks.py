"""The end of a tick: the reply protocol, the conversation and memory writes, and the receipt.

COMPLETE_TICK: a suppressed reply (`HEARTBEAT_OK`, seeds/004) leaves only its receipt. A substantive
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

from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

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
from reply.protocol import classify_reply
from store.errors import StoreError
from store.store import Store
from store.types import utcnow

SUMMARY_KIND = "heartbeat_summary"
MAX_SUMMARY_CHARS = 200
ESCALATION_ONLY_TEXT = "[escalated to vision]"  # the message when the reply was nothing but the marker

# How far back a retry looks for its own earlier writes (see complete_tick).
_MEMORY_LOOKBACK = 50
_MESSAGE_LOOKBACK = 10


async def complete_tick(store: Store, request: CompleteTickRequest, *, attempt: int = 1) -> TickCompletion:
    """Apply the reply protocol and persist the tick's outcome; safe to run again for the same tick.

    Idempotency without a transaction spanning the store's methods: the writes go in a fixed order,
    message → commitments → memory summary → fed commitments done → receipt, and each run first
    looks for the earlier ones.

    - The memory summary carries the tick's identity in its `data`. Found → the message and the
      commitments before it were written too, so none is written again. This is exact, and it is why
      the summary comes after them: it is the marker that those writes are done. The commitments
      are idempotent on their own as well (dedupe keys, see write_commitments); marking the fed ones
      done only touches entries not done yet.
    - The receipt is idempotent in the store (unique heartbeat_id + tick_id); add_receipt returns
      False on a repeat and writes nothing.
    - The one gap: a run that appended the message and died before the summary. A *retry*
      (attempt > 1) then looks for an identical assistant message among the thread's newest few and
      does not append it twice. Only retries look: on a first attempt an identical message is an
      earlier tick saying the same thing again, which must be kept. The worst case of the heuristic
      (an earlier tick said exactly this, and this tick's first attempt died before appending) loses a
      verbatim repeat, never a distinct message.

    Checking the receipt first instead would not do: it is written last, so a retry after a partial
    run would not see it; writing it first would make a crash lose the message for good.
    """
    tick = request.tick
    verdict = classify_reply(request.reply.text)
    receipt = _receipt_fields(tick) | {
        "rows": request.rows,
        "provider": request.reply.provider,
        "model": request.reply.model,
        "tokens_in": request.reply.tokens_in,
        "tokens_out": request.reply.tokens_out,
        "duration_ms": request.duration_ms,
        "reply": verdict.text,
    }
    try:
        if verdict.suppressed:
            # Not persisted anywhere but the receipt: keeps the dedicated thread bounded (seeds/004).
            await _complete_fed_commitments(store, tick)
            await _add_receipt(store, tick, outcome="suppressed", **receipt)
            return TickCompletion(outcome="suppressed", escalated=False)

        message = verdict.text or ESCALATION_ONLY_TEXT
        if await _summary_written(store, tick):
            activity.logger.info("%s tick %s: conversation and memory already written", tick.heartbeat_id, tick.tick_id)
        else:
            await _append_to_conversation(store, request, message, retry=attempt > 1)
            await write_commitments(store, tick, verdict.text)
            await store.add_memory(
                tenant=tick.tenant,
                app=tick.app,
                agent=tick.agent,
                kind=SUMMARY_KIND,
                content=summary_line(message),
                data={"heartbeat_id": tick.heartbeat_id, "tick_id": tick.tick_id, "escalated": verdict.escalated},
            )
        await _complete_fed_commitments(store, tick)
        await _add_receipt(store, tick, outcome="substantive", escalated=verdict.escalated, **receipt)
    except StoreError as exc:
        raise _rejected(exc) from None
    return TickCompletion(outcome="substantive", escalated=verdict.escalated)


async def record_receipt(store: Store, request: ReceiptRequest) -> bool:
    """Write the receipt; False when this tick's receipt already existed (a retry)."""
    tick = request.tick
    error = request.error
    if error is not None and len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    try:
        return await _add_receipt(
            store,
            tick,
            **_receipt_fields(tick),
            outcome=request.outcome,
            reason=request.reason,
            rows=request.rows,
            error=error,
            duration_ms=request.duration_ms,
        )
    except StoreError as exc:
        raise _rejected(exc) from None


async def write_commitments(store: Store, tick: TickRef, text: str) -> list[int]:
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
    tenant = await store.get_tenant(tenant=tick.tenant)
    timezone = tenant.timezone if tenant is not None else "UTC"
    found = [c for c in extract_commitments(text, now=tick.at, timezone=timezone)
             if c.due_at + COMMITMENT_EXPIRY > tick.at]
    if not found:
        return []
    day = local_day(tick.at, timezone).isoformat()
    inferred_today = await store.query_memory(
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
            await store.add_memory(
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


async def _add_receipt(store: Store, tick: TickRef, **fields: Any) -> bool:
    written = await store.add_receipt(**fields)
    activity.logger.info(
        "%s tick %s: receipt %s%s",
        tick.heartbeat_id,
        tick.tick_id,
        fields["outcome"],
        "" if written else " (already written)",
    )
    return written


async def _summary_written(store: Store, tick: TickRef) -> bool:
    # Newest first: a retry comes soon after its first attempt, so this tick's summary, if any, is
    # among the agent's newest few (the agent's heartbeats write one per substantive tick).
    entries = await store.query_memory(
        tenant=tick.tenant, app=tick.app, agent=tick.agent, kind=SUMMARY_KIND, now=utcnow(), limit=_MEMORY_LOOKBACK
    )
    return any(
        isinstance(entry["data"], dict)
        and entry["data"].get("heartbeat_id") == tick.heartbeat_id
        and entry["data"].get("tick_id") == tick.tick_id
        for entry in entries
    )


def _from_tick(entry: dict[str, Any], tick: TickRef) -> bool:
    data = entry.get("data")
    return isinstance(data, dict) and data.get("heartbeat_id") == tick.heartbeat_id and data.get("tick_id") == tick.tick_id


async def _complete_fed_commitments(store: Store, tick: TickRef) -> None:
    # The commitments this tick's pre-filter claimed (see activities.prefilter); a no-op otherwise,
    # and on a retry (they are done already).
    done = await store.complete_claimed_memory(
        tenant=tick.tenant,
        app=tick.app,
        agent=tick.agent,
        claim=commitment_claim(tick.heartbeat_id, tick.tick_id),
        at=utcnow(),
    )
    if done:
        activity.logger.info("%s tick %s: %d commitment(s) done", tick.heartbeat_id, tick.tick_id, done)


async def _append_to_conversation(store: Store, request: CompleteTickRequest, message: str, *, retry: bool) -> None:
    tick = request.tick
    if request.conversation_mode == "isolated":
        return  # a fresh single-shot turn each tick: no history to keep
    conversation = await store.conversation_id(
        tenant=tick.tenant, app=tick.app, agent=tick.agent, mode=request.conversation_mode
    )
    if retry:
        recent = await store.list_messages(tenant=tick.tenant, conversation_id=conversation, limit=_MESSAGE_LOOKBACK)
        if any(m["role"] == "assistant" and m["content"] == message for m in recent):
            activity.logger.info("%s tick %s: message already appended", tick.heartbeat_id, tick.tick_id)
            return
    await store.append_message(tenant=tick.tenant, conversation_id=conversation, role="assistant", content=message)


def _rejected(exc: StoreError) -> ApplicationError:
    return ApplicationError(f"store rejected the tick's write: {exc}", type=ERROR_STORE_REJECTED, non_retryable=True)
