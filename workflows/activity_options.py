"""Timeouts and retry policies of every activity the workflows call, stated once per kind of work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from contract.messages import NON_RETRYABLE_PREFILTER_ERRORS


def _options(*, start_to_close: timedelta, schedule_to_close: timedelta, first_retry: timedelta,
             longest_retry: timedelta, attempts: int = 0, heartbeat: timedelta | None = None,
             non_retryable: tuple[str, ...] = ()) -> dict[str, Any]:
    """Keyword arguments of `workflow.execute_(local_)activity`: timeouts and an exponential retry policy."""
    options: dict[str, Any] = dict(
        start_to_close_timeout=start_to_close,
        schedule_to_close_timeout=schedule_to_close,
        retry_policy=RetryPolicy(initial_interval=first_retry, backoff_coefficient=2.0, maximum_interval=longest_retry,
                                 maximum_attempts=attempts, non_retryable_error_types=list(non_retryable)),
    )
    if heartbeat is not None:
        options["heartbeat_timeout"] = heartbeat
    return options


# Fast database work: local activities (recorded as one marker each, no extra workflow task).
STORE_ACTIVITY = _options(start_to_close=timedelta(seconds=30), schedule_to_close=timedelta(minutes=2),
                          first_retry=timedelta(seconds=1), longest_retry=timedelta(seconds=15),
                          non_retryable=NON_RETRYABLE_PREFILTER_ERRORS)
# An LLM call may be slow: a regular activity with its own, longer budget. It heartbeats while it
# waits, so a crashed worker's call is retried within seconds.
AGENT_ACTIVITY = _options(start_to_close=timedelta(minutes=2), schedule_to_close=timedelta(minutes=10),
                          first_retry=timedelta(seconds=2), longest_retry=timedelta(minutes=1), attempts=5,
                          heartbeat=timedelta(seconds=10))
# Side-effecting tools: retried like the agent, and idempotent per key on the tool's side.
TOOL_ACTIVITY = _options(start_to_close=timedelta(minutes=2), schedule_to_close=timedelta(minutes=10),
                         first_retry=timedelta(seconds=1), longest_retry=timedelta(seconds=30), attempts=5)
