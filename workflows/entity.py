"""What every long-lived entity workflow shares: a heartbeat is a task with one trigger.

`EntityWorkflow` holds one code path for the status (active, paused, disabled), the operator
signals (pause, resume, enable, and a trace of unknown ones), failure counting with the disable at
MAX_CONSECUTIVE_FAILURES, receipts, the vision wake-up, search attributes, current details and
continue-as-new. `HeartbeatWorkflow` and `TaskWorkflow` add what they wait for and how a tick runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from contract.budget import BUDGET_REFUSALS
    from contract.heartbeat import MAX_CONSECUTIVE_FAILURES
    from contract.messages import ReceiptRequest, TickRef, WakeVisionRequest
    from contract.names import RECORD_RECEIPT, SIGNAL_ENABLE, SIGNAL_PAUSE, SIGNAL_RESUME, WAKE_VISION
    from contract.search_attributes import SA_FAILURE_COUNT, SA_STATUS
    from contract.vocabulary import Status, iso_utc
    from workflows.activity_options import STORE_ACTIVITY
    from workflows.failures import error_text, error_type, excerpt, is_cancellation

MAX_IGNORED_SIGNALS = 5  # unknown signal names kept for the status query


class EntityState(Protocol):
    """What every entity's carried-over state has (HeartbeatState, TaskState, JobState)."""

    @property
    def status(self) -> Status: ...
    @property
    def failure_count(self) -> int: ...
    @property
    def last_run(self) -> datetime | None: ...
    @property
    def last_due(self) -> datetime | None: ...
    @property
    def ticks(self) -> int: ...


class EntityWorkflow:
    """The shared half of a heartbeat's and a task's workflow (not a workflow type of its own)."""

    KNOWN_SIGNALS: Sequence[str] = ()

    def _init_entity(self, entity_id: str, state: EntityState, max_ticks_per_run: int) -> None:
        """The shared state, from what the last run carried over (or a new entity's defaults)."""
        self._entity_id = entity_id
        self._status: Status = state.status
        self._failure_count = state.failure_count
        self._last_run = state.last_run
        self._last_due = state.last_due
        self._ticks_total = state.ticks
        self._ticks_this_run = 0
        self._next_due: datetime | None = None
        self._woken = False  # config or status changed: recompute the next due time
        self._max_ticks_per_run = max_ticks_per_run
        self._published: tuple[str, int] | None = None
        self._ignored_signals: list[str] = []

    # --- operator signals ----------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_PAUSE)
    def pause(self) -> None:
        if self._status == "active":
            self._set_status("paused")

    @workflow.signal(name=SIGNAL_RESUME)
    def resume(self) -> None:
        if self._status == "paused":
            self._set_status("active")

    @workflow.signal(name=SIGNAL_ENABLE)
    def enable(self) -> None:
        """Re-arm a disabled heartbeat or task (failure count back to 0)."""
        if self._status == "disabled":
            # The time spent disabled is not owed: resume on the grid, with no catch-up tick.
            self._last_due = workflow.now()
        if self._status == "disabled" or self._failure_count:
            self._failure_count = 0
            self._set_status("active" if self._status == "disabled" else self._status)

    @workflow.signal(dynamic=True)
    def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """A signal of a name this workflow does not know (a typo such as `runnow`): ignored, but
        logged with the known names and kept for the status query, so the sender can see it."""
        workflow.logger.warning("%s ignored unknown signal %r; known signals: %s", self._entity_id, name,
                                ", ".join(self.KNOWN_SIGNALS))
        self._ignored_signals = [*self._ignored_signals, name[:100]][-MAX_IGNORED_SIGNALS:]
        self._publish_details()

    # --- the end of a tick ---------------------------------------------------------------------

    def _begin_tick(self) -> None:
        self._ticks_this_run += 1
        self._ticks_total += 1

    def _record_success(self) -> None:
        if self._failure_count:
            self._failure_count = 0
            self._publish_search_attributes()

    async def _record_failure(self, tick: TickRef, failure: FailureError, *, started: datetime, **fields) -> None:
        reason = error_type(failure)
        if reason in BUDGET_REFUSALS:
            # A ceiling refused the call (the day's, or the agent's month): not a failure of the work.
            # (This error type did not exist before budgets: no recorded history takes this branch.)
            await self._receipt(tick, "refused", reason=reason, error=error_text(failure),
                                duration_ms=milliseconds(workflow.now() - started), **fields)
            return
        self._failure_count += 1
        if self._failure_count >= MAX_CONSECUTIVE_FAILURES and self._status == "active":
            self._status = "disabled"
            workflow.logger.warning("%s disabled after %d consecutive failures", tick.heartbeat_id, self._failure_count)
        self._publish_search_attributes()
        await self._receipt(tick, "failed", reason=reason, error=error_text(failure),
                            duration_ms=milliseconds(workflow.now() - started), **fields)

    async def _receipt(self, tick: TickRef, outcome: str, **fields) -> None:
        await record_receipt(tick, outcome, **fields)

    async def _wake_vision(self, tick: TickRef, text: str) -> None:
        """`<escalate-to-vision/>`: the agent's vision loop runs 30 s later (escalations coalesce)."""
        try:
            await workflow.execute_local_activity(
                WAKE_VISION, WakeVisionRequest(tick=tick, reason=excerpt(text, 200)),
                summary=f"wake vision of {tick.agent}", **STORE_ACTIVITY)
        except FailureError as failure:
            if is_cancellation(failure):
                raise
            workflow.logger.warning("vision loop of %s not woken: %s", tick.agent, failure)

    # --- state, visibility, continue-as-new ----------------------------------------------------

    def _set_status(self, status: Status) -> None:
        self._status = status
        self._woken = True
        self._publish_search_attributes()

    def _publish_search_attributes(self) -> None:
        # Only on change: an upsert is a history event, and most ticks change nothing. The
        # workflow keeps current the attributes its starter gave it (the sync client sets all
        # six); a workflow started without them (e.g. on the test server, which cannot register
        # custom attributes) does not add them.
        current = (self._status, self._failure_count)
        if current == self._published:
            return
        attributes = workflow.info().typed_search_attributes
        if attributes.get(SA_STATUS) is None:
            return
        if self._published is None and (attributes.get(SA_STATUS), attributes.get(SA_FAILURE_COUNT)) == current:
            self._published = current  # the starter (or the previous run) already set them
            return
        workflow.upsert_search_attributes([SA_STATUS.value_set(self._status),
                                           SA_FAILURE_COUNT.value_set(self._failure_count)])
        self._published = current

    def _publish_details(self) -> None:
        # Current details are shown by `temporal workflow describe` and the web UI, and cost no
        # history event (unlike a search attribute per tick).
        next_due = iso_utc(self._next_due) if self._status == "active" else None
        details = (f"**{self._status}** · next due {next_due or '—'} · last run {iso_utc(self._last_run) or '—'}"
                   f" · failures {self._failure_count}/{MAX_CONSECUTIVE_FAILURES}")
        if self._ignored_signals:
            details += (f" · ignored unknown signal(s) {', '.join(repr(n) for n in self._ignored_signals)}"
                        f" (known: {', '.join(self.KNOWN_SIGNALS)})")
        workflow.set_current_details(details)

    def _next_run(self) -> str | None:
        # Paused and disabled entities run no scheduled tick: no next run to show.
        return iso_utc(self._next_due) if self._status == "active" else None

    def _should_continue_as_new(self) -> bool:
        return self._ticks_this_run >= self._max_ticks_per_run or workflow.info().is_continue_as_new_suggested()


def milliseconds(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() * 1000))


async def record_receipt(tick: TickRef, outcome: str, **fields) -> None:
    """The RECORD_RECEIPT local activity of a tick that ended without a completion (skipped, failed,
    refused), for every workflow that writes receipts."""
    try:
        await workflow.execute_local_activity(
            RECORD_RECEIPT,
            ReceiptRequest(tick=tick, outcome=outcome, **fields),
            summary=f"receipt {outcome}" + (f" ({fields['reason']})" if fields.get("reason") else ""),
            **STORE_ACTIVITY,
        )
    except FailureError as failure:
        if is_cancellation(failure):
            raise
        # The store stayed down past the retry budget. The tick's outcome is already in the
        # workflow's state and history; a missing receipt must not stop the workflow.
        workflow.logger.exception("receipt for %s tick %s not written", tick.heartbeat_id, tick.tick_id)
