"""The app manifest: agents and their heartbeats, as pydantic v2 models.

Every rule of the heartbeat field reference (docs/manifest.md) is enforced here, so a manifest that
validates can be scheduled. Cross-field rules raise `problem(...)` errors that carry the exact
field they are about (`at`), so the loader can point at the right line of the YAML file.

Pure domain code: no I/O, no Temporal imports. Workflows, activities and the CLI all import it.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from manifest.ids import id_problem

INTERNAL_APP_RECORDS = "_internal_app_records"
INTERNAL_AGENT_MEMORY = "_internal_agent_memory"
INTERNAL_SOURCES = (INTERNAL_APP_RECORDS, INTERNAL_AGENT_MEMORY)

MIN_INTERVAL_MINUTES = 5
MAX_INTERVAL_MINUTES = 43_200  # 30 days
MAX_COOLDOWN_SECONDS = MAX_INTERVAL_MINUTES * 60  # 30 days, like the longest interval
MAX_PROMPT_CHARS = 8_000
MAX_SYSTEM_PROMPT_CHARS = 32_000
USER_TIMEZONE = "user"  # "the tenant's configured timezone"
SECONDS_PER_DAY = 86_400

ScheduleType = Literal["interval", "daily", "weekly", "cron"]
ConversationMode = Literal["dedicated", "isolated", "main"]
ModelTier = Literal["cheap", "standard", "premium"]

_SKILL_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_TOOL_NAME = re.compile(r"[a-z][a-z0-9_]*")
_FILTER_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


# Validation context of a manifest being authored (the loader, `heartbeats validate`, install). Rules
# added over time (bounds, say) apply to authored manifests only: a manifest installed earlier, and a
# running workflow's input, keep decoding, and the engine clamps what it must (schedule.fires.cooldown).
AUTHORING = {"authoring": True}


def is_authoring(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("authoring"))


def problem(message: str, *at: str | int) -> PydanticCustomError:
    """A validation error about the field `at` below the model that raises it."""
    # `at` travels in the error context; the loader appends it to the error's location.
    return PydanticCustomError("manifest", message, {"at": at})


# --- small field types -------------------------------------------------------------------------


def _check_identifier(value: str) -> str:
    reason = id_problem(value)
    if reason:
        raise problem(reason)
    return value


Identifier = Annotated[
    str,
    AfterValidator(_check_identifier),
    WithJsonSchema({"type": "string", "pattern": "^[a-z][a-z0-9_-]*$", "maxLength": 63}),
]


def between(low: int, high: int):
    def check(value: int) -> int:
        if not low <= value <= high:
            raise problem(f"must be between {low} and {high} (got {value})")
        return value

    return AfterValidator(check)


IntervalMinutes = Annotated[
    int,
    between(MIN_INTERVAL_MINUTES, MAX_INTERVAL_MINUTES),
    WithJsonSchema(
        {"type": "integer", "minimum": MIN_INTERVAL_MINUTES, "maximum": MAX_INTERVAL_MINUTES}
    ),
]


def parse_clock(value: str, *, allow_24: bool = False) -> int:
    """'HH:MM' (24 h) as seconds after midnight; '24:00' only where `allow_24`."""
    match = _CLOCK.fullmatch(value)
    if not match:
        raise ValueError(f'must be a time "HH:MM" (got {value!r})')
    hours, minutes = int(match[1]), int(match[2])
    if (hours, minutes) == (24, 0) and allow_24:
        return SECONDS_PER_DAY
    if hours > 23 or minutes > 59:
        latest = "24:00" if allow_24 else "23:59"
        raise ValueError(f"must be a time from 00:00 to {latest} (got {value!r})")
    return hours * 3600 + minutes * 60


def _clock_field(allow_24: bool):
    def check(value: str) -> str:
        try:
            seconds = parse_clock(value, allow_24=allow_24)
        except ValueError as exc:
            raise problem(str(exc)) from None
        if seconds == SECONDS_PER_DAY:
            return "24:00"
        return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"  # normalise "9:00" -> "09:00"

    pattern = "^([01]?[0-9]|2[0-3]):[0-5][0-9]$" if not allow_24 else (
        "^(([01]?[0-9]|2[0-3]):[0-5][0-9]|24:00)$"
    )
    return Annotated[
        str, AfterValidator(check), WithJsonSchema({"type": "string", "pattern": pattern})
    ]


ClockTime = _clock_field(allow_24=False)
ClockTimeOrMidnight = _clock_field(allow_24=True)


@lru_cache(maxsize=1)
def _zone_names_by_lower() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def timezone_problem(name: str) -> str | None:
    """Why `name` is not an IANA zone, or None when it is one."""
    try:
        zoneinfo.ZoneInfo(name)
        return None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    hint = _zone_names_by_lower().get(name.lower())
    suggestion = f" (did you mean {hint!r}?)" if hint else ""
    return f"unknown timezone {name!r}: use an IANA name such as 'Europe/Berlin', or 'user'{suggestion}"


def _check_timezone(value: str) -> str:
    if value != USER_TIMEZONE:
        reason = timezone_problem(value)
        if reason:
            raise problem(reason)
    return value


TimezoneName = Annotated[
    str,
    AfterValidator(_check_timezone),
    WithJsonSchema(
        {"type": "string", "description": "An IANA zone such as Europe/Berlin, or 'user'"}
    ),
]


class ManifestModel(BaseModel):
    # Strict: YAML `yes` or "60" never silently becomes a bool or an int.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- windows -----------------------------------------------------------------------------------


class Window(ManifestModel):
    """A daily local-time window [start, end); wraps midnight when end < start."""

    start: ClockTime = Field(description='Local start time "HH:MM", inclusive.')
    end: ClockTimeOrMidnight = Field(description='Local end time "HH:MM", exclusive; may be "24:00".')
    timezone: TimezoneName = Field(
        default=USER_TIMEZONE, description="IANA zone, or 'user' for the tenant's timezone."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, data: Any) -> Any:
        # The shorthand `active_hours: "08:00-18:00"`: the same window, in the tenant's zone.
        if isinstance(data, str):
            start, sep, end = data.partition("-")
            if not sep:
                raise problem(
                    f'must be "HH:MM-HH:MM" or a mapping with start, end, timezone (got {data!r})'
                )
            return {"start": start.strip(), "end": end.strip(), "timezone": USER_TIMEZONE}
        return data

    @model_validator(mode="after")
    def _not_zero_width(self) -> Window:
        # "00:00"-"24:00" is the whole day; only identical start and end are empty.
        if self.start_seconds == self.end_seconds:
            raise problem(
                f"start and end are both {self.start}: a zero-width window never opens", "end"
            )
        return self

    @property
    def start_seconds(self) -> int:
        return parse_clock(self.start)

    @property
    def end_seconds(self) -> int:
        return parse_clock(self.end, allow_24=True)

    def contains(self, second_of_day: int) -> bool:
        """Whether a local time (seconds after midnight) lies inside the window."""
        start, end = self.start_seconds, self.end_seconds
        if start < end:
            return start <= second_of_day < end
        return second_of_day >= start or second_of_day < end  # wraps midnight


class SplitInterval(ManifestModel):
    """A business-hours / overnight cadence, e.g. {business_hours: 15, overnight: 120}."""

    business_hours: IntervalMinutes = Field(description="Minutes between ticks inside the window.")
    overnight: IntervalMinutes = Field(description="Minutes between ticks outside the window.")


def _interval_kind(value: Any) -> str:
    return "split" if isinstance(value, dict | SplitInterval) else "minutes"


Interval = Annotated[
    Annotated[IntervalMinutes, Tag("minutes")] | Annotated[SplitInterval, Tag("split")],
    Discriminator(_interval_kind),
]
# Union tags pydantic puts into error locations; the loader drops them from paths.
UNION_TAGS = frozenset({"minutes", "split"})


# --- heartbeats --------------------------------------------------------------------------------


_CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")


def _cron_item(value: str) -> re.Pattern[str]:
    # One entry of a comma list: `*` or a value or range `a-b`, optionally with a step `/n`.
    return re.compile(rf"(?:\*|{value}(?:-{value})?)(?:/[0-9]+)?")


# Month and day-of-week take names (JAN..DEC, SUN..SAT) too; croniter checks which names exist.
_CRON_ITEMS = (*[_cron_item("[0-9]+")] * 3, *[_cron_item("(?:[0-9]+|[A-Za-z]{3})")] * 2)


def _nonstandard_cron_item(fields: list[str]) -> str | None:
    """The first entry that is not standard cron syntax (croniter also reads L, W, #, ? and R)."""
    for name, field, item_pattern in zip(_CRON_FIELDS, fields, _CRON_ITEMS, strict=True):
        for item in field.split(","):
            if not item_pattern.fullmatch(item):
                return f"{item!r} in the {name} field"
    return None


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a usable standard 5-field cron expression, or None."""
    fields = expression.split()
    if len(fields) != 5:
        return f"must have 5 fields (minute hour day month weekday), got {len(fields)}: {expression!r}"
    try:
        # Fixed start: validation must not depend on the clock. Catches "0 0 30 2 *" (never).
        croniter(expression, datetime(2024, 1, 1)).get_next(datetime)
    except CroniterBadDateError:  # before its base class: a valid expression with no date
        return f"{expression!r} never matches a calendar date"
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        return f"is not a valid cron expression {expression!r}: {exc}"
    nonstandard = _nonstandard_cron_item(fields)
    if nonstandard:
        return (
            f"is not a standard cron expression {expression!r}: {nonstandard} is not a number, *,"
            " range a-b, list a,b or step /n (month and weekday names like JAN or MON are fine)"
        )
    return None


def cron_times_of_day(expression: str) -> list[int]:
    """Every local time of day (seconds) at which a valid cron expression can fire."""
    minutes, hours = croniter.expand(expression)[0][:2]
    minutes = range(60) if minutes == ["*"] else minutes
    hours = range(24) if hours == ["*"] else hours
    return sorted(hour * 3600 + minute * 60 for hour in hours for minute in minutes)


def cron_for_calendar(time_of_day: str, day_of_week: int | None) -> str:
    """The cron expression of a daily (day_of_week None) or weekly schedule."""
    seconds = parse_clock(time_of_day)
    # Our weekdays are 0 = Monday .. 6 = Sunday; cron's are 0 = Sunday .. 6 = Saturday.
    weekday = "*" if day_of_week is None else str((day_of_week + 1) % 7)
    return f"{seconds % 3600 // 60} {seconds // 3600} * * {weekday}"


def check_prefilter_skill(skill: str) -> str:
    """A pre-filter's source: an internal one, or a skill name."""
    if skill.startswith("_internal"):
        if skill not in INTERNAL_SOURCES:
            raise problem(f"unknown internal source {skill!r}; use one of {', '.join(INTERNAL_SOURCES)}")
    elif not _SKILL_NAME.fullmatch(skill):
        raise problem(f"must be a skill name like 'x_api' (lowercase, letter-first) (got {skill!r})")
    return skill


def check_prefilter_tool(tool: str, skill: str | None) -> str:
    """A pre-filter's tool: `query` for the internal sources, else a tool name."""
    if skill in INTERNAL_SOURCES and tool != "query":
        raise problem(f'must be "query" for the internal source {skill} (got {tool!r})')
    if not _TOOL_NAME.fullmatch(tool):
        raise problem(f"must be a tool name like 'search_mentions' (got {tool!r})")
    return tool


def check_prefilter_params(params: dict[str, Any], skill: str | None) -> dict[str, Any]:
    """The parameters the internal sources take (a skill's own tools check theirs at install)."""
    if skill == INTERNAL_APP_RECORDS:
        record_type = params.get("record_type")
        if record_type is None:
            raise problem(f"record_type is required for {INTERNAL_APP_RECORDS}", "record_type")
        if not isinstance(record_type, str) or not record_type:
            raise problem(f"must be a record type name (got {record_type!r})", "record_type")
        for key, value in params.items():
            if key == "record_type":
                continue
            if not _FILTER_KEY.fullmatch(key):
                raise problem(f"filter field {key!r} must be a plain field name", key)
            if isinstance(value, dict | list):
                raise problem(
                    f"filters compare a field for equality: give a string, number, true/false or null (got {type(value).__name__})",
                    key,
                )
    elif skill == INTERNAL_AGENT_MEMORY:
        for key, value in params.items():
            if key != "kind":
                raise problem(f"unknown parameter for {INTERNAL_AGENT_MEMORY}; it takes only 'kind'", key)
            if not isinstance(value, str) or not value:
                raise problem(f"must be a memory kind such as 'commitment' (got {value!r})", key)
    return params


def expand_cooldown_minutes(data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    """`cooldown_minutes: N` (the shorthand of heartbeats and tasks) as `cooldown_seconds: N*60`."""
    if "cooldown_minutes" not in data:
        return data
    data = dict(data)
    if "cooldown_seconds" in data:
        raise problem("give either cooldown_minutes or cooldown_seconds, not both", "cooldown_minutes")
    minutes = data.pop("cooldown_minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
        raise problem(f"must be a whole number of minutes >= 0 (got {minutes!r})", "cooldown_minutes")
    if minutes > MAX_INTERVAL_MINUTES and is_authoring(info):
        raise problem(f"must be at most {MAX_INTERVAL_MINUTES} minutes (30 days) (got {minutes})", "cooldown_minutes")
    data["cooldown_seconds"] = minutes * 60
    return data


def check_cooldown_seconds(value: int, info: ValidationInfo) -> int:
    if value < 0:
        raise problem(f"must be >= 0 (got {value})")
    if value > MAX_COOLDOWN_SECONDS and is_authoring(info):
        raise problem(f"must be at most {MAX_COOLDOWN_SECONDS} seconds (30 days) (got {value})")
    return value


def check_prompt(value: str) -> str:
    if len(value) > MAX_PROMPT_CHARS:
        raise problem(f"must be at most {MAX_PROMPT_CHARS} characters (got {len(value)})")
    return value


# --- budgets -----------------------------------------------------------------------------------
#
# What an agent's LLM calls may cost, at three levels (docs/budgets.md):
# - `per_call_tokens` (heartbeat/task): one call's estimated input tokens plus its output cap; above
#   it the call is refused before it is made (a configuration that cannot work: a failure);
# - `daily_usd` (heartbeat/task): what its calls may cost per tenant-local day (refused until the
#   next day; not a failure);
# - `monthly_usd` (agent): what all the agent's calls may cost per tenant-local month, whatever the
#   run (heartbeats, tasks, runtime tasks, chats, inbound, vision, delegated questions); reaching it
#   holds the agent for an operator's review, and a new month does not lift the hold.

MIN_PER_CALL_TOKENS = 1_000
MAX_PER_CALL_TOKENS = 2_000_000
MAX_USD = 1_000_000.0


def _check_usd(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise problem(f"must be a positive amount of USD (got {value})")
    if value > MAX_USD:
        raise problem(f"must be at most {MAX_USD:,.0f} USD (got {value})")
    return value


class BudgetSpec(ManifestModel):
    """A heartbeat's or task's budget."""

    per_call_tokens: int | None = Field(
        default=None, description=f"Ceiling of one LLM call: estimated input tokens + output cap, "
                                  f"{MIN_PER_CALL_TOKENS}..{MAX_PER_CALL_TOKENS}.",
        json_schema_extra={"minimum": MIN_PER_CALL_TOKENS, "maximum": MAX_PER_CALL_TOKENS})
    daily_usd: float | None = Field(default=None, description="USD per tenant-local day for this heartbeat or task.",
                                    json_schema_extra={"exclusiveMinimum": 0})

    @field_validator("per_call_tokens")
    @classmethod
    def _check_tokens(cls, value: int | None) -> int | None:
        if value is not None and not MIN_PER_CALL_TOKENS <= value <= MAX_PER_CALL_TOKENS:
            raise problem(f"must be between {MIN_PER_CALL_TOKENS} and {MAX_PER_CALL_TOKENS} (got {value})")
        return value

    @field_validator("daily_usd")
    @classmethod
    def _check_daily(cls, value: float | None) -> float | None:
        return None if value is None else _check_usd(value)


class AgentBudgetSpec(ManifestModel):
    """An agent's budget: all its calls, per tenant-local month."""

    monthly_usd: float = Field(description="USD per tenant-local calendar month for all the agent's LLM calls.",
                               json_schema_extra={"exclusiveMinimum": 0})

    @field_validator("monthly_usd")
    @classmethod
    def _check_monthly(cls, value: float) -> float:
        return _check_usd(value)


# --- shadow mode -------------------------------------------------------------------------------
#
# `shadow_mode: true` (a heartbeat, a task, or an agent as the default of its heartbeats and tasks):
# the agent runs as usual, but a tool whose risk is not LOW is never executed; the call is recorded
# as a proposal for the run's case, to be compared with what a human decided (docs/shadow.md).

MIN_SHADOW_CASES = 1
MAX_SHADOW_CASES = 10_000


class ShadowSpec(ManifestModel):
    """How a shadow run's proposals are compared with the human decisions, and when it may be promoted."""

    compare: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per tool (skill.tool, e.g. email.send), the argument fields that must match too;"
                    " other tools match by name.")
    min_cases: int = Field(default=20, description="Compared cases needed before a promotion.",
                           json_schema_extra={"minimum": MIN_SHADOW_CASES, "maximum": MAX_SHADOW_CASES})

    @field_validator("compare")
    @classmethod
    def _check_compare(cls, compare: dict[str, list[str]]) -> dict[str, list[str]]:
        for tool, fields in compare.items():
            skill, dot, name = tool.partition(".")
            if not dot or not _SKILL_NAME.fullmatch(skill) or not _TOOL_NAME.fullmatch(name):
                raise problem(f"must name a tool as skill.tool, e.g. email.send (got {tool!r})", tool)
            for index, field_name in enumerate(fields):
                if not isinstance(field_name, str) or not _FILTER_KEY.fullmatch(field_name):
                    raise problem(f"must be an argument name (got {field_name!r})", tool, index)
        return compare

    @field_validator("min_cases")
    @classmethod
    def _check_min_cases(cls, value: int) -> int:
        if not MIN_SHADOW_CASES <= value <= MAX_SHADOW_CASES:
            raise problem(f"must be between {MIN_SHADOW_CASES} and {MAX_SHADOW_CASES} (got {value})")
        return value


class HeartbeatSpec(ManifestModel):
    """One recurring routine of an agent: where it looks, when it runs, how it wakes the agent."""

    slug: Identifier = Field(description="Unique per agent; lowercase, letter-first.")
    skill: str = Field(
        description="Pre-filter source: a LOW-risk skill, or _internal_app_records / _internal_agent_memory."
    )
    tool: str = Field(description='The skill\'s tool; "query" for the internal sources.')
    params: dict[str, Any] = Field(
        default_factory=dict, description="Free-form parameters passed to the pre-filter."
    )
    schedule_type: ScheduleType = Field(default="interval")
    interval_minutes: Interval | None = Field(
        default=None,
        validate_default=True,
        description="Required for interval: 5..43200, or {business_hours: N, overnight: N}.",
    )
    business_hours: Window | None = Field(
        default=None,
        validate_default=True,
        description="The business window of a split interval_minutes.",
    )
    cron_expression: str | None = Field(
        default=None, validate_default=True, description="Required for cron: 5 fields, local time."
    )
    time_of_day: ClockTime | None = Field(
        default=None, validate_default=True, description='Required for daily / weekly: "HH:MM".'
    )
    day_of_week: int | None = Field(
        default=None,
        validate_default=True,
        description="Required for weekly: 0 = Monday .. 6 = Sunday.",
    )
    active_hours: Window | None = Field(
        default=None, description="Skip due times outside this local window."
    )
    invoke_always: bool = Field(
        default=False, description="Wake the agent every tick, even when the pre-filter is empty."
    )
    cooldown_seconds: int = Field(
        default=0,
        description=f"Minimum spacing between runs: 0..{MAX_COOLDOWN_SECONDS} (30 days).",
        json_schema_extra={"minimum": 0, "maximum": MAX_COOLDOWN_SECONDS},
    )
    conversation_mode: ConversationMode = Field(default="dedicated")
    model_tier: ModelTier = Field(default="cheap")
    prompt: str = Field(default="", description="Per-tick instruction, at most 8000 characters.")
    budget: BudgetSpec | None = Field(default=None, description="Per-call token and daily USD ceilings.")
    shadow_mode: bool | None = Field(default=None, description="Never execute non-LOW tools: record proposals"
                                                               " (default: the agent's shadow_mode).")
    shadow: ShadowSpec | None = Field(default=None, description="How shadow proposals are compared; min_cases.")

    # shorthand -> canonical fields
    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "cron" in data:
            if "cron_expression" in data:
                raise problem("give either cron or cron_expression, not both", "cron")
            declared = data.get("schedule_type", "cron")
            if declared != "cron":
                raise problem(f"cron: means schedule_type cron, but schedule_type is {declared!r}", "cron")
            data["cron_expression"] = data.pop("cron")
            data["schedule_type"] = "cron"
        return expand_cooldown_minutes(data, info)

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
    def _check_internal_params(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return check_prefilter_params(params, info.data.get("skill"))

    @field_validator("interval_minutes")
    @classmethod
    def _interval_matches_type(cls, value: int | SplitInterval | None, info: ValidationInfo):
        return only_for(value, info, {"interval"})

    @field_validator("business_hours")
    @classmethod
    def _business_hours_with_split(cls, value: Window | None, info: ValidationInfo):
        interval = info.data.get("interval_minutes")
        if isinstance(interval, SplitInterval) and value is None:
            raise problem("is required when interval_minutes has business_hours and overnight")
        if value is not None and "interval_minutes" in info.data and not isinstance(interval, SplitInterval):
            raise problem("applies only with interval_minutes: {business_hours: N, overnight: N}")
        return value

    @field_validator("cron_expression")
    @classmethod
    def _check_cron(cls, value: str | None, info: ValidationInfo):
        value = only_for(value, info, {"cron"})
        if value is not None:
            reason = cron_problem(value)
            if reason:
                raise problem(reason)
        return value

    @field_validator("time_of_day")
    @classmethod
    def _time_for_calendar(cls, value: str | None, info: ValidationInfo):
        return only_for(value, info, {"daily", "weekly"})

    @field_validator("day_of_week")
    @classmethod
    def _check_day_of_week(cls, value: int | None, info: ValidationInfo):
        value = only_for(value, info, {"weekly"})
        if value is not None and not 0 <= value <= 6:
            raise problem(f"must be between 0 (Monday) and 6 (Sunday) (got {value})")
        return value

    @field_validator("cooldown_seconds")
    @classmethod
    def _check_cooldown(cls, value: int, info: ValidationInfo) -> int:
        return check_cooldown_seconds(value, info)

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str) -> str:
        return check_prompt(value)

    @model_validator(mode="after")
    def _fires_inside_active_hours(self) -> HeartbeatSpec:
        # Interval grids depend on the tenant's salt and zone, so only calendar schedules can be
        # proven never to fire here; an interval that misses is reported at preview/install.
        if self.active_hours is None or self.schedule_type == "interval":
            return self
        expression = self.calendar_cron()
        if not any(self.active_hours.contains(t) for t in cron_times_of_day(expression)):
            window = f"{self.active_hours.start}-{self.active_hours.end}"
            when = self.time_of_day if self.time_of_day else f"cron {expression!r}"
            raise problem(f"{when} is never inside active_hours {window}: this heartbeat would never fire", "active_hours")
        return self

    def calendar_cron(self) -> str:
        """The local-time cron expression of a daily, weekly or cron schedule."""
        if self.schedule_type == "cron":
            assert self.cron_expression is not None
            return self.cron_expression
        assert self.time_of_day is not None
        return cron_for_calendar(self.time_of_day, self.day_of_week if self.schedule_type == "weekly" else None)


_REQUIRED_BY = {
    "interval_minutes": "interval",
    "cron_expression": "cron",
    "time_of_day": "daily and weekly",
    "day_of_week": "weekly",
}


def only_for(value: Any, info: ValidationInfo, schedule_types: set[str]) -> Any:
    """A schedule field is required for `schedule_types` and meaningless for the others."""
    schedule_type = info.data.get("schedule_type")
    if schedule_type is None:  # schedule_type itself was invalid; that error is enough
        return value
    if schedule_type in schedule_types and value is None:
        raise problem(f"is required for schedule_type {schedule_type}")
    if schedule_type not in schedule_types and value is not None:
        raise problem(
            f"applies only to schedule_type {_REQUIRED_BY[info.field_name]}"
            f" (this heartbeat is {schedule_type})"
        )
    return value
