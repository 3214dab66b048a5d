"""Tasks: an agent's work with one or more triggers, each case of which is processed once.

    tasks:
      - slug: review_cases
        prompt: Review each new case.
        dedupe: {key: case_id, ttl_hours: 168}
        triggers:
          - {type: event, event: case.created}
          - {type: heartbeat, interval_minutes: 15, skill: _internal_app_records, tool: query,
             params: {record_type: case, status: open}}
          - {type: schedule, cron: "0 9 * * 1-5"}
          - {type: threshold, metric: error_rate, above: 0.02}
          - {type: a2a, from: [senior_reviewer]}
          - {type: manual}

Six trigger kinds. The time triggers (`schedule`, `heartbeat`) use the heartbeats' schedule maths
and the task's `active_hours` and cooldown; a `heartbeat` trigger polls with a zero-LLM pre-filter
like a heartbeat, down to one minute. `event`, `threshold`, `a2a` and `manual` fire when something
arrives. Each firing yields cases; a case whose key the task processed within `dedupe.ttl_hours`
is dropped before any LLM call, whichever trigger brought it.

Pure domain code, like manifest.models: no I/O, no Temporal imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from manifest.models import (
    MAX_COOLDOWN_SECONDS,
    MAX_INTERVAL_MINUTES,
    BudgetSpec,
    ClockTime,
    ConversationMode,
    Identifier,
    ManifestModel,
    ModelTier,
    ShadowSpec,
    SplitInterval,
    Window,
    between,
    check_cooldown_seconds,
    check_prefilter_params,
    check_prefilter_skill,
    check_prefilter_tool,
    check_prompt,
    cron_for_calendar,
    cron_problem,
    cron_times_of_day,
    expand_cooldown_minutes,
    problem,
)

TRIGGER_TYPES = ("schedule", "heartbeat", "event", "threshold", "a2a", "manual")
MIN_TASK_INTERVAL_MINUTES = 1  # a task's poll may run every minute; below that, use an event trigger
DEFAULT_DEDUPE_TTL_HOURS = 168  # a week
MAX_DEDUPE_TTL_HOURS = 24 * 366

_NAME = re.compile(r"[a-z][a-z0-9_.-]*")  # event and metric names
_KEY_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_NAME_LENGTH = 128


def name_problem(value: object) -> str | None:
    """Why `value` is not an event or metric name, or None when it is one."""
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or not _NAME.fullmatch(value):
        return (f"must be lowercase letters, digits, '_', '.' or '-', starting with a letter, at most"
                f" {MAX_NAME_LENGTH} characters (got {value!r})")
    return None


def _check_name(value: str) -> str:
    reason = name_problem(value)
    if reason:
        raise problem(reason)
    return value


Name = Annotated[str, WithJsonSchema({"type": "string", "pattern": "^[a-z][a-z0-9_.-]*$",
                                      "maxLength": MAX_NAME_LENGTH})]

TaskIntervalMinutes = Annotated[
    int,
    between(MIN_TASK_INTERVAL_MINUTES, MAX_INTERVAL_MINUTES),
    WithJsonSchema({"type": "integer", "minimum": MIN_TASK_INTERVAL_MINUTES, "maximum": MAX_INTERVAL_MINUTES}),
]


class TaskSplitInterval(SplitInterval):
    """A business-hours / overnight poll, e.g. {business_hours: 15, overnight: 120}."""

    business_hours: TaskIntervalMinutes = Field(description="Minutes between polls inside the window.")
    overnight: TaskIntervalMinutes = Field(description="Minutes between polls outside the window.")


def _interval_kind(value: Any) -> str:
    return "split" if isinstance(value, dict | TaskSplitInterval) else "minutes"


TaskInterval = Annotated[
    Annotated[TaskIntervalMinutes, Tag("minutes")] | Annotated[TaskSplitInterval, Tag("split")],
    Discriminator(_interval_kind),
]


# --- triggers ----------------------------------------------------------------------------------


class ScheduleTrigger(ManifestModel):
    """Fires on a calendar: `cron: "0 9 * * 1-5"`, or daily / weekly at `time_of_day` (local time)."""

    type: Literal["schedule"]
    schedule_type: Literal["cron", "daily", "weekly"] = Field(default="cron")
    cron_expression: str | None = Field(default=None, description="For cron: 5 fields, local time.")
    time_of_day: ClockTime | None = Field(default=None, description='For daily / weekly: "HH:MM".')
    day_of_week: int | None = Field(default=None, description="For weekly: 0 = Monday .. 6 = Sunday.")

    @model_validator(mode="before")
    @classmethod
    def _expand_cron(cls, data: Any) -> Any:
        if isinstance(data, dict) and "cron" in data:
            data = dict(data)
            if "cron_expression" in data:
                raise problem("give either cron or cron_expression, not both", "cron")
            data["cron_expression"] = data.pop("cron")
        return data

    @model_validator(mode="after")
    def _fields_of_the_schedule_type(self) -> ScheduleTrigger:
        needs = {"cron": ("cron_expression",), "daily": ("time_of_day",), "weekly": ("time_of_day", "day_of_week")}
        for field in ("cron_expression", "time_of_day", "day_of_week"):
            value = getattr(self, field)
            if field in needs[self.schedule_type] and value is None:
                raise problem(f"is required for schedule_type {self.schedule_type}", field)
            if field not in needs[self.schedule_type] and value is not None:
                raise problem(f"does not apply to schedule_type {self.schedule_type}", field)
        if self.cron_expression is not None and (reason := cron_problem(self.cron_expression)):
            raise problem(reason, "cron_expression")
        if self.day_of_week is not None and not 0 <= self.day_of_week <= 6:
            raise problem(f"must be between 0 (Monday) and 6 (Sunday) (got {self.day_of_week})", "day_of_week")
        return self

    def calendar_cron(self) -> str:
        if self.schedule_type == "cron":
            assert self.cron_expression is not None
            return self.cron_expression
        assert self.time_of_day is not None
        return cron_for_calendar(self.time_of_day, self.day_of_week if self.schedule_type == "weekly" else None)


class HeartbeatTrigger(ManifestModel):
    """Polls on a clock with a zero-LLM pre-filter; each row it finds is a case."""

    type: Literal["heartbeat"]
    interval_minutes: TaskInterval = Field(description="1..43200, or {business_hours: N, overnight: N}.")
    business_hours: Window | None = Field(default=None, description="The business window of a split interval.")
    skill: str = Field(description="Pre-filter source: a LOW-risk skill, or an internal source.")
    tool: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("skill")
    @classmethod
    def _check_skill(cls, skill: str) -> str:
        return check_prefilter_skill(skill)

    @field_validator("tool")
    @classmethod
    def _check_tool(cls, tool: str, info: ValidationInfo) -> str:
        return check_prefilter_tool(tool, info.data.get("skill"))

    @field_validator("params")
    @classmethod
    def _check_params(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return check_prefilter_params(params, info.data.get("skill"))

    @model_validator(mode="after")
    def _business_hours_with_split(self) -> HeartbeatTrigger:
        split = isinstance(self.interval_minutes, TaskSplitInterval)
        if split and self.business_hours is None:
            raise problem("is required when interval_minutes has business_hours and overnight", "business_hours")
        if not split and self.business_hours is not None:
            raise problem("applies only with interval_minutes: {business_hours: N, overnight: N}", "business_hours")
        return self


class EventTrigger(ManifestModel):
    """Fires for each event of this name posted to the app (`POST .../events/{event}`)."""

    type: Literal["event"]
    event: Name

    @field_validator("event")
    @classmethod
    def _check_event(cls, event: str) -> str:
        return _check_name(event)


class ThresholdTrigger(ManifestModel):
    """Fires once when a metric's value crosses into `above` (or `below`); re-arms on the other side."""

    type: Literal["threshold"]
    metric: Name
    above: float | int | None = None
    below: float | int | None = None

    @field_validator("metric")
    @classmethod
    def _check_metric(cls, metric: str) -> str:
        return _check_name(metric)

    @model_validator(mode="after")
    def _one_bound(self) -> ThresholdTrigger:
        if self.above is None and self.below is None:
            raise problem("give exactly one of above or below")
        if self.above is not None and self.below is not None:
            raise problem("give exactly one of above or below", "above")
        return self


class A2aTrigger(ManifestModel):
    """Fires when another agent of the app delegates to this task (`team.delegate` with `task`)."""

    # `from` in the manifest; the stored (dumped) manifest says `from_`: both are read.
    model_config = ConfigDict(**ManifestModel.model_config, populate_by_name=True)

    type: Literal["a2a"]
    from_: list[Identifier] | None = Field(
        default=None, alias="from",
        description="Agents that may delegate; absent: the agents whose team lists this one.",
    )


class ManualTrigger(ManifestModel):
    """Fires when an operator runs the task (CLI, API, `temporal workflow signal --name run_now`)."""

    type: Literal["manual"]


def _trigger_kind(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"trigger:{kind}" if kind in TRIGGER_TYPES else None


Trigger = Annotated[
    Annotated[ScheduleTrigger, Tag("trigger:schedule")]
    | Annotated[HeartbeatTrigger, Tag("trigger:heartbeat")]
    | Annotated[EventTrigger, Tag("trigger:event")]
    | Annotated[ThresholdTrigger, Tag("trigger:threshold")]
    | Annotated[A2aTrigger, Tag("trigger:a2a")]
    | Annotated[ManualTrigger, Tag("trigger:manual")],
    Discriminator(_trigger_kind),
]
TRIGGER_TAGS = frozenset(f"trigger:{kind}" for kind in TRIGGER_TYPES)


# --- the task ----------------------------------------------------------------------------------


class Dedupe(ManifestModel):
    """How a case is known again: its key, and how long a processed key is remembered."""

    key: str | None = Field(
        default=None,
        description="A field of the case (a dot path such as case_id or data.id); absent: each trigger's default key.",
    )
    ttl_hours: int = Field(default=DEFAULT_DEDUPE_TTL_HOURS, description="Hours a processed case is not run again.")

    @field_validator("key")
    @classmethod
    def _check_key(cls, key: str | None) -> str | None:
        if key is not None and not _KEY_PATH.fullmatch(key):
            raise problem(f"must be a field name or a dot path such as case_id or data.id (got {key!r})")
        return key

    @field_validator("ttl_hours")
    @classmethod
    def _check_ttl(cls, hours: int) -> int:
        if not 1 <= hours <= MAX_DEDUPE_TTL_HOURS:
            raise problem(f"must be between 1 and {MAX_DEDUPE_TTL_HOURS} hours (got {hours})")
        return hours


class TaskSpec(ManifestModel):
    """One task of an agent: what it does, what fires it, and how its cases are known again."""

    slug: Identifier = Field(description="Unique per agent, across its heartbeats and tasks.")
    prompt: str = Field(default="", description="The instruction of each run, at most 8000 characters.")
    budget: BudgetSpec | None = Field(default=None, description="Per-call token and daily USD ceilings.")
    shadow_mode: bool | None = Field(default=None, description="Never execute non-LOW tools: record proposals"
                                                               " (default: the agent's shadow_mode).")
    shadow: ShadowSpec | None = Field(default=None, description="How shadow proposals are compared; min_cases.")
    triggers: list[Trigger] = Field(min_length=1)
    dedupe: Dedupe = Field(default_factory=Dedupe)
    active_hours: Window | None = Field(default=None, description="Time triggers fire only inside this window.")
    cooldown_seconds: int = Field(
        default=0, description=f"Minimum spacing of time-triggered runs: 0..{MAX_COOLDOWN_SECONDS}.",
        json_schema_extra={"minimum": 0, "maximum": MAX_COOLDOWN_SECONDS},
    )
    conversation_mode: ConversationMode = Field(default="dedicated")
    model_tier: ModelTier = Field(default="cheap")

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any, info: ValidationInfo) -> Any:
        return expand_cooldown_minutes(data, info) if isinstance(data, dict) else data

    @field_validator("triggers", mode="before")
    @classmethod
    def _known_trigger_types(cls, triggers: Any) -> Any:
        if isinstance(triggers, list):
            for index, trigger in enumerate(triggers):
                kind = trigger.get("type") if isinstance(trigger, dict) else None
                if isinstance(trigger, dict) and kind not in TRIGGER_TYPES:
                    raise problem(
                        f"unknown trigger type {kind!r}; use one of {', '.join(TRIGGER_TYPES)}"
                        if kind is not None else f"is required: one of {', '.join(TRIGGER_TYPES)}",
                        index, "type",
                    )
        return triggers

    @field_validator("triggers")
    @classmethod
    def _one_poll_and_one_manual(cls, triggers: list[Any]) -> list[Any]:
        for kind in ("heartbeat", "manual"):
            where = [index for index, trigger in enumerate(triggers) if trigger.type == kind]
            if len(where) > 1:
                raise problem(f"a task has at most one {kind} trigger (triggers {where[0]} and {where[1]} are)",
                              where[1], "type")
        return triggers

    @field_validator("cooldown_seconds")
    @classmethod
    def _check_cooldown(cls, value: int, info: ValidationInfo) -> int:
        return check_cooldown_seconds(value, info)

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str) -> str:
        return check_prompt(value)

    @model_validator(mode="after")
    def _calendar_triggers_fire_inside_active_hours(self) -> TaskSpec:
        if self.active_hours is None:
            return self
        for index, trigger in enumerate(self.triggers):
            if isinstance(trigger, ScheduleTrigger) and not any(
                self.active_hours.contains(t) for t in cron_times_of_day(trigger.calendar_cron())
            ):
                window = f"{self.active_hours.start}-{self.active_hours.end}"
                raise problem(f"never fires inside active_hours {window}", "triggers", index)
        return self

    def triggers_of(self, kind: str) -> list[Any]:
        return [trigger for trigger in self.triggers if trigger.type == kind]

    def time_schedules(self) -> list[TimeSchedule]:
        """The task's time triggers as schedules the schedule maths reads, in trigger order."""
        return [TimeSchedule(trigger, self.active_hours, self.cooldown_seconds) for trigger in self.triggers
                if isinstance(trigger, ScheduleTrigger | HeartbeatTrigger)]


@dataclass(frozen=True)
class TimeSchedule:
    """A time trigger with the task's active hours and cooldown: what schedule.next_fire reads."""

    trigger: ScheduleTrigger | HeartbeatTrigger
    active_hours: Window | None
    cooldown_seconds: int

    @property
    def schedule_type(self) -> str:
        return "interval" if isinstance(self.trigger, HeartbeatTrigger) else self.trigger.schedule_type

    @property
    def interval_minutes(self) -> int | SplitInterval | None:
        return self.trigger.interval_minutes if isinstance(self.trigger, HeartbeatTrigger) else None

    @property
    def business_hours(self) -> Window | None:
        return self.trigger.business_hours if isinstance(self.trigger, HeartbeatTrigger) else None

    def calendar_cron(self) -> str:
        assert isinstance(self.trigger, ScheduleTrigger)
        return self.trigger.calendar_cron()
