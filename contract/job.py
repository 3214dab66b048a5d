"""A runtime task: created at run time (by an agent's `tasks.create`, the CLI or the API), not declared
in a manifest. Its workflow `job:{tenant}:{app}:{agent}:{key}` waits for each due time and runs one
agent turn of the creating agent with the task's prompt and params.

Bounded: a key is unique per agent (creating it again returns the existing task), at most
MAX_ACTIVE_JOBS_PER_AGENT are active per agent, one run of an agent creates at most
MAX_JOBS_CREATED_PER_RUN (no fork bomb through the model), and prompt and params are capped.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.heartbeat import MAX_TICKS_PER_RUN
from contract.names import job_workflow_id
from contract.vocabulary import ModelTier, Status
from schedule.job_times import JobTiming

MAX_ACTIVE_JOBS_PER_AGENT = 100
MAX_JOBS_CREATED_PER_RUN = 5
MAX_JOB_PROMPT_CHARS = 4_000
MAX_JOB_PARAMS_CHARS = 4_000  # the params as compact JSON

JobStatus = Literal["active", "done", "cancelled"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JobConfig(_Frozen):
    """Everything a runtime task's workflow needs: whose it is, when it runs, what it asks."""

    tenant: str
    app: str
    agent: str
    key: str
    tenant_timezone: str = "UTC"
    prompt: str
    params: dict[str, Any] = Field(default_factory=dict)
    timing: JobTiming
    model_tier: ModelTier = "cheap"
    created_by: str  # "cli", "api", or the workflow ID of the agent run that created it
    created_at: datetime

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("prompt must not be empty")
        if len(prompt) > MAX_JOB_PROMPT_CHARS:
            raise ValueError(f"prompt must be at most {MAX_JOB_PROMPT_CHARS} characters (got {len(prompt)})")
        return prompt

    @field_validator("params")
    @classmethod
    def _check_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(params, separators=(",", ":"), ensure_ascii=False, default=str))
        if size > MAX_JOB_PARAMS_CHARS:
            raise ValueError(f"params must be at most {MAX_JOB_PARAMS_CHARS} characters as JSON (got {size})")
        return params

    @property
    def workflow_id(self) -> str:
        return job_workflow_id(self.tenant, self.app, self.agent, self.key)

    @property
    def slug(self) -> str:
        return self.key

    @property
    def recurring(self) -> bool:
        return self.timing.kind != "once"


class JobState(_Frozen):
    """What a runtime task carries across continue-as-new."""

    status: Status = "active"
    failure_count: int = 0
    last_run: datetime | None = None
    last_due: datetime | None = None
    runs: int = 0  # completed runs
    ticks: int = 0


class JobInput(_Frozen):
    config: JobConfig
    state: JobState = Field(default_factory=JobState)
    max_ticks_per_run: int = Field(default=MAX_TICKS_PER_RUN, ge=1)


class JobEndedRequest(_Frozen):
    """The JOB_ENDED activity's input: the task's row says `done` (its one run completed)."""

    tenant: str
    app: str
    agent: str
    key: str
    status: JobStatus
