"""A task workflow's input, carried state and signal payloads.

A task's pushed triggers (event, threshold, a2a, manual) send small case references, never bodies:
an event's body stays in the store and an activity reads it when the task runs, so a flood of
events keeps the workflow's history small.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.heartbeat import MAX_TICKS_PER_RUN, HeartbeatConfig
from contract.names import task_workflow_id
from contract.vocabulary import Status
from manifest.tasks import TaskSpec

CaseSource = Literal["schedule", "event", "threshold", "a2a", "manual"]
MAX_PENDING_CASES = 1_000  # cases waiting for a run; beyond it the oldest are dropped (and logged)
MAX_CASE_PAYLOAD_CHARS = 8_000  # a delegation's input or a manual run's payload, as JSON


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskConfig(_Frozen):
    """Everything a task workflow needs to schedule and run (from the manifest)."""

    tenant: str
    app: str
    agent: str
    tenant_timezone: str = "UTC"
    task: TaskSpec

    @property
    def slug(self) -> str:
        return self.task.slug

    @property
    def workflow_id(self) -> str:
        return task_workflow_id(self.tenant, self.app, self.agent, self.task.slug)

    @property
    def fingerprint(self) -> str:
        """Stable hash of the config: equal fingerprints mean nothing to reconfigure."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# What the sync client starts one long-lived workflow for: a heartbeat, or a task.
EntityConfig = HeartbeatConfig | TaskConfig


class PendingCase(_Frozen):
    """A case a pushed trigger brought, waiting for the task's next run.

    `ref` finds its body: an event's id (the body is in the store), a metric crossing's
    `metric@time`, a delegation's id, a schedule's due time; `payload` is the small body of a
    delegation, a crossing or a manual run.
    `key` is set when the sender knows it (a manual run's key); otherwise the run derives it.
    """

    source: CaseSource
    ref: str
    name: str = ""  # the event's or the metric's name
    payload: Any = None
    key: str | None = None
    force: bool = False  # a manual run that bypasses dedupe
    at: datetime | None = None


class ManualRun(_Frozen):
    """`run_now`'s optional argument: a payload (the case), its key, and `force` (bypass dedupe)."""

    payload: Any = None
    key: str | None = None
    force: bool = False


class EventCase(_Frozen):
    event: str
    event_id: str


class ThresholdCase(_Frozen):
    metric: str
    value: float
    crossed_at: datetime


class DelegatedCase(_Frozen):
    delegation_id: str
    from_agent: str
    input: Any = None
    key: str | None = None


class TaskState(_Frozen):
    """What a task carries across continue-as-new."""

    status: Status = "active"
    failure_count: int = 0
    last_run: datetime | None = None
    last_ok_at: datetime | None = None
    last_due: datetime | None = None  # handled through, as for heartbeats
    pending: list[PendingCase] = Field(default_factory=list)
    ticks: int = 0


class TaskInput(_Frozen):
    config: TaskConfig
    state: TaskState = Field(default_factory=TaskState)
    max_ticks_per_run: int = Field(default=MAX_TICKS_PER_RUN, ge=1)


MAX_KEY_CHARS = 400  # a longer key is stored as its hash


def case_key(body: Any, path: str | None, *, default: str) -> str:
    """The value at the dot `path` in the case's body, as a string; `default` when there is no path or
    no value there. Long keys become their hash."""
    value: Any = body
    for part in (path.split(".") if path else ()):
        value = value.get(part) if isinstance(value, dict) else None
    if path is None or value is None:
        key = default
    elif isinstance(value, str):
        key = value
    else:
        key = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return key if len(key) <= MAX_KEY_CHARS else "sha256:" + hashlib.sha256(key.encode()).hexdigest()
