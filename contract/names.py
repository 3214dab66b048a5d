"""Names that operators type and that processes look each other up by.

Workflow IDs are typeable in a shell: every part is a `[a-z][a-z0-9_-]*` id (manifest.ids), joined
by `:`, so an ID parses back into its parts unambiguously.
"""

from __future__ import annotations

import hashlib

from manifest.ids import id_problem

TASK_QUEUE = "heartbeats"
# The model calls of agent turns, on a queue of their own: workflow workers (CPU and memory: every
# cached heartbeat) and LLM workers (waiting on providers, their keys and rate limits) are then run
# and sized apart. Workflows schedule the calls here; `heartbeats worker --role` picks the queues.
LLM_TASK_QUEUE = "heartbeats-llm"

# Workflow types: registered by the worker under these names; clients start and list them by name.
HEARTBEAT_WORKFLOW = "HeartbeatWorkflow"
TASK_WORKFLOW = "TaskWorkflow"
JOB_WORKFLOW = "JobWorkflow"  # a runtime task: created by an agent (tasks.create), the CLI or the API
VISION_WORKFLOW = "VisionWorkflow"
CHAT_WORKFLOW = "ChatWorkflow"  # an agent's main conversation: one chat message per update
INBOUND_WORKFLOW = "InboundWorkflow"  # one inbound message handled by the agent's on_inbound
MACHINE_WORKFLOW = "MachineWorkflow"  # one run of a state-machine workflow of an app

# Signals and the query of a heartbeat, by the names operators type into `temporal workflow signal/query`.
SIGNAL_RUN_NOW = "run_now"
SIGNAL_PAUSE = "pause"
SIGNAL_RESUME = "resume"
SIGNAL_ENABLE = "enable"
SIGNAL_RECONFIGURE = "reconfigure"
QUERY_STATUS = "status"
HEARTBEAT_SIGNALS = (SIGNAL_RUN_NOW, SIGNAL_PAUSE, SIGNAL_RESUME, SIGNAL_ENABLE, SIGNAL_RECONFIGURE)

# A task takes the heartbeat's signals (run_now with an optional payload and `force`), and the
# cases its pushed triggers bring.
SIGNAL_EVENT = "event"
SIGNAL_THRESHOLD = "threshold"
SIGNAL_A2A = "a2a"
TASK_SIGNALS = (*HEARTBEAT_SIGNALS, SIGNAL_EVENT, SIGNAL_THRESHOLD, SIGNAL_A2A)

# The vision workflow's signal: a heartbeat's reply asked for deeper re-planning.
SIGNAL_ESCALATE = "escalate"

# The chat workflow's update: one chat message in, the agent's reply out.
UPDATE_CHAT = "chat"

# A state-machine run's updates (a manual transition; resume a failed run) and its query.
UPDATE_TRANSITION = "transition"
UPDATE_RETRY = "retry"
QUERY_MACHINE = "machine"

# Activity names (registered by worker.py).
PREFILTER = "prefilter"
AGENT_TURN = "agent_turn"  # the single-activity turn of ticks that started before the durable turn
AGENT_STEP = "agent_step"
TOOL_CALL = "tool_call"
COMPLETE_TICK = "complete_tick"
RECORD_RECEIPT = "record_receipt"
WAKE_VISION = "wake_vision"
RECORD_VISION_PLAN = "record_vision_plan"
TASK_POLL = "task_poll"  # a task's heartbeat trigger: pre-filter, case keys, dedupe
TASK_CASES = "task_cases"  # the cases its pushed triggers brought: bodies, keys, dedupe
JOB_ENDED = "job_ended"  # a runtime task's workflow ends: its row says done (one-shot) or cancelled
MACHINE_CALL = "machine_call"  # one tool call of a state-machine transition

HEARTBEAT_ID_PREFIX = "heartbeat"
TASK_ID_PREFIX = "task"
JOB_ID_PREFIX = "job"
VISION_ID_PREFIX = "vision"
CHAT_ID_PREFIX = "chat"
INBOUND_ID_PREFIX = "inbound"
MACHINE_ID_PREFIX = "machine"
# The long-lived entities operators list, signal and read the receipts of, by ID prefix.
ENTITY_ID_PREFIXES = (HEARTBEAT_ID_PREFIX, TASK_ID_PREFIX, JOB_ID_PREFIX)
# Every workflow that writes receipts: the entities, and the event handlers (chat, inbound).
RECEIPT_ID_PREFIXES = (*ENTITY_ID_PREFIXES, CHAT_ID_PREFIX, INBOUND_ID_PREFIX)


def heartbeat_workflow_id(tenant: str, app: str, agent: str, slug: str) -> str:
    """`heartbeat:{tenant}:{app}:{agent}:{slug}`; ValueError naming the part that is not an id."""
    _check_parts(tenant=tenant, app=app, agent=agent, slug=slug)
    return f"{HEARTBEAT_ID_PREFIX}:{tenant}:{app}:{agent}:{slug}"


def parse_heartbeat_workflow_id(value: str) -> tuple[str, str, str, str]:
    """(tenant, app, agent, slug) of a heartbeat workflow ID; ValueError if it is not one."""
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 5 or parts[0] != HEARTBEAT_ID_PREFIX or any(id_problem(p) for p in parts[1:]):
        raise ValueError(f"not a heartbeat workflow ID: {value!r} (expected heartbeat:TENANT:APP:AGENT:SLUG)")
    return parts[1], parts[2], parts[3], parts[4]


def task_workflow_id(tenant: str, app: str, agent: str, slug: str) -> str:
    """`task:{tenant}:{app}:{agent}:{slug}`; ValueError naming the part that is not an id."""
    _check_parts(tenant=tenant, app=app, agent=agent, slug=slug)
    return f"{TASK_ID_PREFIX}:{tenant}:{app}:{agent}:{slug}"


def job_workflow_id(tenant: str, app: str, agent: str, key: str) -> str:
    """`job:{tenant}:{app}:{agent}:{key}`: a runtime task; ValueError naming the part that is not an id."""
    _check_parts(tenant=tenant, app=app, agent=agent, key=key)
    return f"{JOB_ID_PREFIX}:{tenant}:{app}:{agent}:{key}"


def parse_entity_workflow_id(value: str) -> tuple[str, str, str, str, str]:
    """(kind, tenant, app, agent, slug or key) of a heartbeat's, a task's or a runtime task's workflow
    ID (kind `heartbeat`, `task` or `job`); ValueError if it is none of them."""
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 5 or parts[0] not in ENTITY_ID_PREFIXES or any(id_problem(p) for p in parts[1:]):
        raise ValueError(f"not a heartbeat or task workflow ID: {value!r} (expected heartbeat:TENANT:APP:AGENT:SLUG,"
                         " task:TENANT:APP:AGENT:SLUG or job:TENANT:APP:AGENT:KEY)")
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def parse_receipt_workflow_id(value: str) -> tuple[str, str, str, str, str]:
    """(kind, tenant, app, agent, last part) of any workflow ID that writes receipts: an entity's, an
    agent's chat (`chat:{tenant}:{app}:{agent}:main`) or an inbound message's; ValueError otherwise."""
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 5 or parts[0] not in RECEIPT_ID_PREFIXES or any(id_problem(p) for p in parts[1:]):
        raise ValueError(f"not the workflow ID of a heartbeat, task, runtime task, chat or inbound message: {value!r}")
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def chat_workflow_id(tenant: str, app: str, agent: str) -> str:
    """`chat:{tenant}:{app}:{agent}:main`: the workflow that answers chat messages in the agent's main
    conversation, one at a time."""
    _check_parts(tenant=tenant, app=app, agent=agent)
    return f"{CHAT_ID_PREFIX}:{tenant}:{app}:{agent}:main"


def inbound_workflow_id(tenant: str, app: str, agent: str, message_id: str) -> str:
    """`inbound:{tenant}:{app}:{agent}:m{digest}`: the one workflow that handles an inbound message.

    The sender's message id may be any text (an email's Message-ID has `<`, `@`, `>`): the last part
    is a digest of it, so the ID stays typeable and one message id always maps to one workflow."""
    _check_parts(tenant=tenant, app=app, agent=agent)
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:32]
    return f"{INBOUND_ID_PREFIX}:{tenant}:{app}:{agent}:m{digest}"


def machine_workflow_id(tenant: str, app: str, workflow: str, key: str) -> str:
    """`machine:{tenant}:{app}:{workflow}:{key}`: one run of a state-machine workflow."""
    _check_parts(tenant=tenant, app=app, workflow=workflow, key=key)
    return f"{MACHINE_ID_PREFIX}:{tenant}:{app}:{workflow}:{key}"


def parse_machine_workflow_id(value: str) -> tuple[str, str, str, str]:
    """(tenant, app, workflow, key) of a state-machine run's ID; ValueError if it is not one."""
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 5 or parts[0] != MACHINE_ID_PREFIX or any(id_problem(p) for p in parts[1:]):
        raise ValueError(f"not a workflow run ID: {value!r} (expected machine:TENANT:APP:WORKFLOW:KEY)")
    return parts[1], parts[2], parts[3], parts[4]


def vision_workflow_id(tenant: str, app: str, agent: str) -> str:
    """`vision:{tenant}:{app}:{agent}`: one vision loop per agent."""
    _check_parts(tenant=tenant, app=app, agent=agent)
    return f"{VISION_ID_PREFIX}:{tenant}:{app}:{agent}"


def _check_parts(**parts: str) -> None:
    for what, value in parts.items():
        reason = id_problem(value)
        if reason:
            raise ValueError(f"{what} {reason}")
