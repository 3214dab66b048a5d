"""Activity requests and results, the caps on what enters workflow history, and stable error types.

Everything here is recorded in workflow history: rows and texts are capped, and nothing secret is
ever put in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.llm import LlmResponse
from contract.task import PendingCase
from contract.vocabulary import ConversationMode, ModelTier, Outcome, Trigger

# Caps on what enters history from one tick.
MAX_PREFILTER_ROWS = 50
MAX_PREFILTER_BYTES = 64 * 1024  # JSON of the rows handed to the agent
MAX_REPLY_CHARS = 4_000
MAX_ERROR_CHARS = 2_000

# Stable ApplicationError types. Non-retryable ones are app faults: they count toward the
# five-failure disable. Infrastructure faults (database down, provider 429/5xx) are retried.
ERROR_UNKNOWN_SKILL = "UnknownSkill"
ERROR_TOOL_NOT_ALLOWED = "PrefilterToolNotAllowed"
ERROR_PREFILTER_FAILED = "PrefilterFailed"
ERROR_BAD_PARAMS = "InvalidPrefilterParams"
# The store refused what a tick asked it to write (a bug or a corrupt request, not an outage).
ERROR_STORE_REJECTED = "StoreRejected"
NON_RETRYABLE_PREFILTER_ERRORS = (ERROR_UNKNOWN_SKILL, ERROR_TOOL_NOT_ALLOWED, ERROR_PREFILTER_FAILED, ERROR_BAD_PARAMS)

# What a turn is for: a heartbeat's tick, a task's run, a vision phase, a runtime task's run
# (`job`), a chat message answered in the agent's main conversation, an inbound message handled.
TurnPurpose = Literal["tick", "task", "vision", "job", "chat", "inbound", "machine"]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TickRef(_Message):
    """Which tick of which heartbeat: every activity of a tick carries it."""

    heartbeat_id: str  # heartbeat:{tenant}:{app}:{agent}:{slug}
    tenant: str
    app: str
    agent: str
    slug: str
    tick_id: str  # unique per heartbeat: "{run_id}/{n}"; receipts are idempotent on it
    at: datetime  # when the tick was woken (its due time for scheduled ticks)
    trigger: Trigger


class PrefilterRequest(_Message):
    tick: TickRef
    skill: str
    tool: str
    params: dict[str, Any]
    invoke_always: bool


class PrefilterResult(_Message):
    rows: list[Any]  # at most MAX_PREFILTER_ROWS rows and MAX_PREFILTER_BYTES of JSON
    truncated: bool  # more rows matched than were kept
    # When nothing matched and the heartbeat is not invoke_always, the activity wrote the
    # tick's `skipped / prefilter_empty` receipt itself: one activity for the common no-op tick.
    receipt_written: bool


class AgentTurnRequest(_Message):
    tick: TickRef
    rows: list[Any]
    truncated: bool
    prompt: str
    model_tier: ModelTier
    conversation_mode: ConversationMode


class AgentReply(_Message):
    text: str  # capped at MAX_REPLY_CHARS
    provider: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    shadow: bool = False  # a shadow run: its non-LOW tool calls were recorded, not executed


class CompleteTickRequest(_Message):
    tick: TickRef
    reply: AgentReply
    rows: int
    conversation_mode: ConversationMode
    duration_ms: int
    # A task's run: the case keys to mark processed (for `ttl_hours`) in the same transaction as the
    # receipt, and what the receipt counts.
    processed: list[str] = Field(default_factory=list)
    ttl_hours: int = 0
    cases: int = 0
    duplicates: int = 0
    forced: bool = False
    # A chat or an inbound message: stored in the conversation (as `user_role`) just before the reply,
    # in the same transaction; the reply is then never suppressed (someone is waiting for it).
    user_message: str | None = None
    user_role: Literal["user", "inbound"] = "user"


class TickCompletion(_Message):
    outcome: Outcome  # suppressed | substantive
    escalated: bool


class ReceiptRequest(_Message):
    """A receipt for a tick that ended before (or without) the agent: skipped, failed, refused."""

    tick: TickRef
    outcome: Outcome
    reason: str | None = None
    rows: int = 0
    error: str | None = None
    duration_ms: int = 0
    cases: int = 0
    duplicates: int = 0
    forced: bool = False


# --- the durable agent turn: LLM step ⇄ tool calls, each its own activity ----------------------

MAX_AGENT_STEPS = 8  # LLM calls per turn; more ends the tick as failed (reason max_steps)
# Output cap of each LLM call (thinking/reasoning tokens included on models that think);
# hitting it fails the tick with reason token_cap.
MAX_TOKENS_PER_CALL = 4096
MAX_TOOL_RESULT_CHARS = 8_000
MAX_TURN_MESSAGE_CHARS = 8_000  # any one message of the turn that enters history

ERROR_MAX_STEPS = "max_steps"
ERROR_TOKEN_CAP = "token_cap"


class AgentStepRequest(_Message):
    """One LLM call of a turn. The activity adds what is not in history: the agent's system
    prompt and tools (from the installed manifest), the conversation so far (dedicated/main
    mode), and the tenant's provider and model for the tier."""

    tick: TickRef
    step: int  # 0-based
    prompt: str
    rows: list[Any]
    truncated: bool
    model_tier: ModelTier
    conversation_mode: ConversationMode
    turn: list[Any]  # contract.llm.ChatMessage of this turn so far (as dicts)
    # The manifest version (its hash) the turn's first step read the agent from: every later step
    # and tool call of the turn reads that same version, even after a re-install. None: the current one.
    definition: str | None = None
    # What the step is for: the protocol differs for a heartbeat tick, a task's run and a vision phase.
    purpose: TurnPurpose = "tick"
    # The turn's id (workflows.turn): with `step`, the key its LLM call is charged under, the same for
    # every retry. Empty in steps recorded before it existed: the tick's ids stand in.
    turn_id: str = ""


class AgentStepResult(LlmResponse):
    """One LLM call's answer, and the manifest version it read the agent from (to pin the turn)."""

    definition: str | None = None
    shadow: bool = False  # the run is in shadow mode (set on its first step)


class ToolCallRequest(_Message):
    tick: TickRef
    call_id: str
    name: str  # "{skill}__{tool}"
    arguments: dict[str, Any]
    # "{workflow_id}/{tick_id}/{step}/{index}": a side-effecting tool given the same key twice
    # (an activity retry, a replay after a crash) does its effect once.
    idempotency_key: str
    definition: str | None = None  # the manifest version the turn is pinned to (see AgentStepRequest)
    # A task run's case keys: a shadow run's proposal belongs to its case (activities.shadow).
    case_keys: list[str] = Field(default_factory=list)


class ToolResult(_Message):
    content: str  # JSON or text, capped at MAX_TOOL_RESULT_CHARS
    is_error: bool = False


class WakeVisionRequest(_Message):
    tick: TickRef
    reason: str


# --- a task's cases: dedupe before any LLM call --------------------------------------------------

MAX_CASE_BODY_CHARS = 3_000  # a case's body as JSON, as it enters history (a longer one is cut)
# New cases one run gives the agent: so many capped bodies always fit the MAX_PREFILTER_BYTES a
# run's rows may take in history, so none is cut off and lost; more wait for the next run.
MAX_CASES_PER_RUN = 15
# Waiting pushed cases one firing takes to its dedupe: most of a flood is duplicates, dropped by
# one store read, so a firing takes many; new ones beyond MAX_CASES_PER_RUN are deferred.
MAX_CASES_PER_FIRING = 200


class TaskCase(_Message):
    key: str
    body: Any  # at most MAX_CASE_BODY_CHARS of JSON


class TaskCases(_Message):
    """The cases a firing brought that the task has not processed within its TTL (capped), and counts."""

    cases: list[TaskCase]
    total: int  # cases the firing brought
    duplicates: int  # of those, processed within the TTL (dropped before any LLM call)
    truncated: bool = False  # more new cases than fit: the rest come again with the next firing
    # Of a pushed firing's cases, the positions of new ones that did not fit this run: the workflow
    # puts them back in front of its waiting cases (a poll's rows are simply found again).
    deferred: list[int] = Field(default_factory=list)
    forced: bool = False  # dedupe was bypassed
    # Nothing new: the activity wrote the `skipped / prefilter_empty` or `skipped / duplicate` receipt.
    receipt_written: bool = False


class TaskPollRequest(_Message):
    """A task's heartbeat trigger: the pre-filter, its rows as cases, dedupe."""

    tick: TickRef
    skill: str
    tool: str
    params: dict[str, Any]
    dedupe_key: str | None
    ttl_hours: int


class TaskCasesRequest(_Message):
    """The cases a task's schedule or pushed triggers brought."""

    tick: TickRef
    cases: list[PendingCase]
    dedupe_key: str | None
    ttl_hours: int
