"""The conversation window an agent step sends (activities.turn._history), on a real SQLite store:
bounded, and moving in steps so the provider's prompt cache keeps hitting the stored prefix."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from activities.turn import EARLIER_TICK, HISTORY_MAX_MESSAGES, HISTORY_STEP, HISTORY_TOKEN_WINDOW, _history
from contract.messages import AgentStepRequest, TickRef
from store import open_store


def step_request() -> AgentStepRequest:
    tick = TickRef(heartbeat_id="heartbeat:acme:shop:helper:kpi", tenant="acme", app="shop", agent="helper",
                   slug="kpi", tick_id="r/1", at=datetime(2026, 12, 1, tzinfo=UTC), trigger="schedule")
    return AgentStepRequest(tick=tick, step=0, prompt="Go.", rows=[], truncated=False, model_tier="cheap",
                            conversation_mode="dedicated", turn=[])


async def test_the_window_is_bounded_and_its_start_moves_in_steps(tmp_path):
    store = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        await store.tenants.upsert(tenant="acme", timezone="UTC")
        thread = await store.conversations.id_for(tenant="acme", app="shop", agent="helper", mode="dedicated")
        starts, sizes = [], []
        for tick in range(120):
            await store.conversations.append(tenant="acme", conversation_id=thread, role="assistant",
                                             content=f"note {tick:03d} " + "x" * 600)
            window = await _history(store, step_request())
            assistant = [m.content for m in window if m.role == "assistant"]
            starts.append(assistant[0][:8])
            sizes.append(sum(len(m.content) for m in window))
        # Bounded: the stored notes within the window, plus a short user placeholder before each.
        assert max(sizes) <= HISTORY_TOKEN_WINDOW * 4 + HISTORY_MAX_MESSAGES * len(EARLIER_TICK)
        # Once the window is full its first note changes only every HISTORY_STEP notes, never tick by tick.
        full = starts[40:]
        changes = sum(1 for a, b in zip(full, full[1:], strict=False) if a != b)
        assert changes <= len(full) // HISTORY_STEP + 1 and len(set(full)) > 1
        runs = [len(list(group)) for _, group in itertools.groupby(full)]
        assert all(run >= HISTORY_STEP for run in runs[1:-1])
    finally:
        await store.close()
