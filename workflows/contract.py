"""The names and shapes others build on: workflow IDs, task queue, signals, query, search attributes,
and the heartbeat workflow's input, carried state and status view.

Pure (pydantic only): imported by the workflow, the sync client, the operations CLI and tests.
Nothing secret belongs in these models: they are recorded in workflow history.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import SearchAttributeKey

from manifest.ids import WORKFLOW_ID_PREFIX, id_problem, parse_workflow_id  # noqa: F401 (re-exported)
from manifest.models import HeartbeatSpec

TASK_QUEUE = "heartbeats"

# Signals and the query, by the names operators type into `temporal workflow signal/query`.
SIGNAL_RUN_NOW = "run_now"
SIGNAL_PAUSE = "pause"
SIGNAL_RESUME = "resume"
SIGNAL_ENABLE = "enable"
SIGNAL_RECONFIGURE = "reconfigure"
QUERY_STATUS = "status"

MAX_CONSECUTIVE_FAILURES = 5  # at this many failed ticks in a row the heartbeat disables itself
FAILING_THRESHOLD = 3  # health lists active heartbeats with at least this many as failing

Status = Literal["active", "paused", "disabled"]
Trigger = Literal["schedule", "run_now", "escalation"]  # escalation: vision passes
Outcome = Literal["skipped", "suppressed", "substantive", "failed", "refused"]

# Custom search attributes (registered by `heartbeats server` from temporal-dev.yaml).
SA_TENANT = SearchAttributeKey.for_keyword("HeartbeatTenant")
SA_APP = SearchAttributeKey.for_keyword("HeartbeatApp")
SA_AGENT = SearchAttributeKey.for_keyword("HeartbeatAgent")
SA_SLUG = SearchAttributeKey.for_keyword("HeartbeatSlug")
SA_STATUS = SearchAttributeKey.for_keyword("HeartbeatStatus")
SA_FAILURE_COUNT = SearchAttributeKey.for_int("HeartbeatFailureCount")


def workflow_id(tenant: str, app: str, agent: str, slug: str) -> str:
    """`heartbeat:{tenant}:{app}:{agent}:{slug}`; every part is a `[a-z][a-z0-9_-]*` id."""
    for what, value in (("tenant", tenant), ("app", app), ("agent", agent), ("slug", slug)):
        reason = id_problem(value)
        if reason:
            raise ValueError(f"{what} {reason}")
    return f"{WORKFLOW_ID_PREFIX}:{tenant}:{app}:{agent}:{slug}"


def iso_utc(instant: datetime | None) -> str | None:
    """ISO 8601 UTC with `Z`: the one time format of every status and receipt."""
    if instant is None:
        return None
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HeartbeatConfig(_Frozen):
    """Everything a heartbeat workflow needs to schedule and run its ticks (from the manifest)."""

    tenant: str
    app: str
    agent: str
    tenant_timezone: str = "UTC"
    heartbeat: HeartbeatSpec

    @property
    def workflow_id(self) -> str:
        return workflow_id(self.tenant, self.app, self.agent, self.heartbeat.slug)

    @property
    def fingerprint(self) -> str:
        """Stable hash of the config: equal fingerprints mean nothing to reconfigure."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class HeartbeatState(_Frozen):
    """What a heartbeat carries across continue-as-new."""

    status: Status = "active"
    failure_count: int = 0
    last_run: datetime | None = None
    last_heartbeat_ok_at: datetime | None = None
    # The last scheduled due time handled: the next one is computed strictly after it, so a
    # restart or continue-as-new neither repeats nor skips a tick.
    last_due: datetime | None = None
    run_now_pending: bool = False
    ticks: int = 0  # ticks woken over the heartbeat's whole life


# A run carries at most this many ticks before continuing as new, so its history stays small
# and replays fast even before Temporal suggests continuing.
MAX_TICKS_PER_RUN = 500


class HeartbeatInput(_Frozen):
    config: HeartbeatConfig
    state: HeartbeatState = Field(default_factory=HeartbeatState)
    max_ticks_per_run: int = Field(default=MAX_TICKS_PER_RUN, ge=1)


class HeartbeatStatusView(_Frozen):
    """The `status` query's answer (and `heartbeats status ID --json`)."""

    id: str
    tenant: str
    app: str
    agent: str
    slug: str
    status: Status
    failure_count: int
    next_run: str | None
    last_run: str | None
    last_heartbeat_ok_at: str | None
