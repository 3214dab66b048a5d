"""A heartbeat workflow's input, the state it carries across continue-as-new, and its status view."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from contract.names import heartbeat_workflow_id
from contract.vocabulary import Status
from manifest.models import HeartbeatSpec

MAX_CONSECUTIVE_FAILURES = 5  # at this many failed ticks in a row the heartbeat disables itself
FAILING_THRESHOLD = 3  # health lists active heartbeats with at least this many as failing

# A run carries at most this many ticks before continuing as new, so its history stays small
# and replays fast even before Temporal suggests continuing.
MAX_TICKS_PER_RUN = 500


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
    def slug(self) -> str:
        return self.heartbeat.slug

    @property
    def workflow_id(self) -> str:
        return heartbeat_workflow_id(self.tenant, self.app, self.agent, self.heartbeat.slug)

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
    # Signals of unknown names this run received (a typo such as `runnow`), newest last.
    ignored_signals: list[str] = Field(default_factory=list)
