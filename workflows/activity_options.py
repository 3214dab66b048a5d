"""Timeouts and retry policies of every activity the workflows call, stated once per kind of work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from contract.messages import NON_RETRYABLE_PREFILTER_ERRORS

# Fast database work: local activities (recorded as one marker each, no extra workflow task).
STORE_ACTIVITY: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(seconds=30),
    schedule_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=15),
        non_retryable_error_types=list(NON_RETRYABLE_PREFILTER_ERRORS),
    ),
)
# An LLM call may be slow: a regular activity with its own, longer budget. It heartbeats while it
# waits, so a crashed worker's call is retried within seconds.
AGENT_ACTIVITY: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=2),
    heartbeat_timeout=timedelta(seconds=10),
    schedule_to_close_timeout=timedelta(minutes=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=5,
    ),
)
# Side-effecting tools: retried like the agent, and idempotent per key on the tool's side.
TOOL_ACTIVITY: dict[str, Any] = dict(
    start_to_close_timeout=timedelta(minutes=2),
    schedule_to_close_timeout=timedelta(minutes=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=5,
    ),
)
