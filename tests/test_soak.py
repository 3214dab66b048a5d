"""The soak's counting, on hand-made receipts and history events: what is due, what ran, and how late.

Tenant "demo" on a 5-minute interval has salt 296 s: its due times are hh:m4:56 and hh:m9:56 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import (
    HistoryEvent,
    TimerFiredEventAttributes,
    WorkflowTaskCompletedEventAttributes,
)
from temporalio.api.sdk.v1 import UserMetadata
from temporalio.converter import PayloadConverter

from drills.soak import Tally, count_ticks, first_task_started, lateness_line, percentile, tick_starts
from manifest.models import HeartbeatSpec
from store.models import Receipt

SPEC = HeartbeatSpec.model_validate(
    {"slug": "hb000", "skill": "_internal_app_records", "tool": "query", "params": {"record_type": "kpi"},
     "interval_minutes": 5}
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-22T{text}+00:00")


def receipt(at: str, *, trigger: str = "schedule", outcome: str = "skipped") -> Receipt:
    return Receipt(tick_id=f"run/{at}", at=utc(at), trigger=trigger, outcome=outcome, reason=None, rows=0,
                   escalated=False, provider=None, model=None, tokens_in=0, tokens_out=0, duration_ms=0, error=None,
                   reply=None)


def tally(receipts: list[Receipt], *, began: str = "12:00:00", window_end: str = "12:16:00", starts=None) -> Tally:
    return count_ticks(SPEC, tenant="demo", began=utc(began), window_end=utc(window_end), receipts=receipts,
                       starts=starts or {})


def test_every_due_time_in_the_window_with_a_receipt_is_run():
    result = tally([receipt("12:04:56"), receipt("12:09:56"), receipt("12:14:56", outcome="substantive")])
    assert (result.due, result.run, result.missed, result.passed) == (3, 3, (), True)


def test_a_due_time_before_the_workflow_began_is_not_due():
    # The workflow's first task ran at 12:05:00, after 12:04:56: its first due time is 12:09:56.
    result = tally([receipt("12:09:56"), receipt("12:14:56")], began="12:05:00")
    assert (result.due, result.run, result.missed, result.passed) == (2, 2, (), True)


def test_a_due_time_at_the_very_moment_the_workflow_began_is_not_due():
    result = tally([receipt("12:09:56"), receipt("12:14:56")], began="12:04:56")
    assert (result.due, result.run, result.passed) == (2, 2, True)


def test_a_missing_tick_inside_the_window_is_missed():
    result = tally([receipt("12:04:56"), receipt("12:14:56")], began="12:00:00")
    assert (result.due, result.run, result.missed, result.passed) == (3, 2, (utc("12:09:56"),), False)


def test_due_times_after_the_window_end_are_not_counted():
    result = tally([receipt("12:04:56"), receipt("12:09:56"), receipt("12:14:56"), receipt("12:19:56")])
    assert (result.due, result.run, result.not_due, result.passed) == (3, 3, 0, True)


def test_two_receipts_for_one_due_time_are_a_duplicate():
    result = tally([receipt("12:04:56"), receipt("12:04:56"), receipt("12:09:56"), receipt("12:14:56")])
    assert (result.due, result.run, result.duplicates, result.passed) == (3, 3, 1, False)


def test_a_scheduled_receipt_at_a_time_not_due_counts_and_run_now_does_not():
    ran = [receipt("12:04:56"), receipt("12:09:56"), receipt("12:14:56")]
    assert tally([*ran, receipt("12:07:13", trigger="run_now")]).passed
    result = tally([*ran, receipt("12:07:13")])
    assert (result.not_due, result.passed) == (1, False)


def test_failures_fail_the_soak():
    result = tally([receipt("12:04:56"), receipt("12:09:56", outcome="failed"), receipt("12:14:56")])
    assert (result.run, result.failures, result.passed) == (3, 1, False)


def test_lateness_is_tick_start_minus_due_time_for_ticks_run():
    starts = {utc("12:04:56"): utc("12:04:56.020000"), utc("12:09:56"): utc("12:09:57.500000"),
              utc("12:14:56"): utc("12:14:58")}  # 12:14:56 has no receipt: not run, no lateness
    result = tally([receipt("12:04:56"), receipt("12:09:56")], starts=starts)
    assert result.lateness == (0.02, 1.5)


def test_tallies_add_up():
    one = tally([receipt("12:04:56")], window_end="12:05:00", starts={utc("12:04:56"): utc("12:04:57")})
    two = tally([], window_end="12:05:00")
    total = one + two
    assert (total.due, total.run, total.missed, total.lateness) == (2, 1, (utc("12:04:56"),), (1.0,))


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(100, 0, -1)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50.0, 99.0, 100.0)
    assert percentile([0.3], 0.99) == 0.3
    line = lateness_line(Tally(run=3, lateness=(0.25, 0.5)))
    assert line == ("lateness (tick began - due time) over 2 ticks: p50 0.250s  p99 0.500s  max 0.500s"
                    "  (1 run without a fired timer: unmeasured)")


# --- history ---------------------------------------------------------------------------------


def event(event_id: int, kind: EventType.ValueType, at: str, **fields) -> HistoryEvent:
    stamp = Timestamp()
    stamp.FromDatetime(utc(at).astimezone(UTC).replace(tzinfo=None))
    return HistoryEvent(event_id=event_id, event_type=kind, event_time=stamp, **fields)


def timer_started(event_id: int, at: str, due: str) -> HistoryEvent:
    summary = PayloadConverter.default.to_payload(f"next tick 2026-11-22T{due}Z")
    return event(event_id, EventType.EVENT_TYPE_TIMER_STARTED, at, user_metadata=UserMetadata(summary=summary))


def timer_fired(event_id: int, at: str, started: int) -> HistoryEvent:
    return event(event_id, EventType.EVENT_TYPE_TIMER_FIRED, at,
                 timer_fired_event_attributes=TimerFiredEventAttributes(started_event_id=started))


def task(event_id: int, at: str, *, completed_at: str | None = None) -> list[HistoryEvent]:
    """A workflow task started at `at`, completed at `completed_at` (else it timed out)."""
    started = event(event_id, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, at)
    if completed_at is None:
        return [started, event(event_id + 1, EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, at)]
    return [started, event(event_id + 1, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, completed_at,
                           workflow_task_completed_event_attributes=WorkflowTaskCompletedEventAttributes(
                               started_event_id=event_id))]


HISTORY = [
    event(1, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, "12:00:00"),
    *task(2, "12:00:01.300000", completed_at="12:00:01.320000"),
    timer_started(4, "12:00:01.320000", "12:04:56"),
    timer_fired(5, "12:04:56.010000", 4),
    *task(6, "12:04:56.030000", completed_at="12:04:56.080000"),
    timer_started(8, "12:04:56.080000", "12:09:56"),
    timer_fired(9, "12:09:56.010000", 8),
    *task(10, "12:09:56.020000"),  # the worker died mid-task: the retry ran the tick
    *task(12, "12:10:06.500000", completed_at="12:10:06.550000"),
    event(14, EventType.EVENT_TYPE_TIMER_STARTED, "12:10:06.550000"),  # a timer without a summary
]


def test_tick_starts_maps_each_timer_due_time_to_the_task_that_ran_it():
    assert tick_starts(HISTORY) == {
        utc("12:04:56"): utc("12:04:56.030000"),
        utc("12:09:56"): utc("12:10:06.500000"),
    }


def test_first_task_started_is_the_workflow_now_of_the_first_task():
    assert first_task_started(HISTORY) == utc("12:00:01.300000")
    assert first_task_started(HISTORY[:1]) is None
