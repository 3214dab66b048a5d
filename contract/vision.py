"""The vision workflow's input and the plan a vision pass writes to the agent's memory."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contract.messages import TickRef

VISION_PLAN_MEMORY_KIND = "vision_plan"


class VisionInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: str
    app: str
    agent: str
    passes: int = 0
    pending: list[str] = Field(default_factory=list)  # escalation reasons not yet acted on


class VisionPlan(BaseModel):
    """A vision pass's output, written to the agent's memory (kind `vision_plan`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tick: TickRef
    assess: str
    plan: str
    act: str
    provider: str
    model: str


class VisionStatusView(BaseModel):
    """The vision workflow's `status` query: passes run, escalations waiting, when the next pass runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    passes: int
    pending: int
    next_pass: str | None  # ISO 8601 UTC with Z
