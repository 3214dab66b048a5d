"""A state-machine run: what it starts with, the state it carries, what it answers, and its messages.

    MachineInput(tenant=..., app=..., workflow=..., key=..., definition=..., definition_hash=..., state=MachineState())
    MachineView: the `machine` query's answer (place, status, variables, the transitions taken)

The run carries its pinned definition (the workflow as resolved when it started, and its hash): a
re-install changes the runs started after it, never a running one. Statuses:

    pending     started, no transition fired yet
    running     a transition's calls are running
    waiting     at a place whose only ways on are manual transitions (an Update) or a deadline
    completed   reached `end`
    failed      a transition failed with no onError (or a compensation failed): `retry` resumes it
    compensated a failure for good ran the completed calls' compensations, last first
    cancelled   cancelled by an operator
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.errors import NotFound
from contract.names import machine_workflow_id
from manifest.app import AppManifest
from manifest.machines import WorkflowSpec, pinned_definition, resolve_workflow

MachineStatus = Literal["pending", "running", "waiting", "completed", "failed", "compensated", "cancelled"]
MACHINE_STATUSES: tuple[str, ...] = ("pending", "running", "waiting", "completed", "failed", "compensated",
                                     "cancelled")
OPEN_STATUSES = ("pending", "running", "waiting", "failed")

MAX_STEPS_KEPT = 100  # the transitions a run's state keeps (its count keeps counting)
MAX_RESULT_BYTES = 256 * 1024  # a call's result, as JSON: bigger data belongs in a document
MAX_FOREACH_ITEMS = 1_000
MAX_TRANSITIONS_PER_RUN = 200  # then continue-as-new, carrying place and variables


class _Model(BaseModel):
    model_config = ConfigDict(frozen=False, extra="forbid")


class Step(_Model):
    """One transition taken (or attempted): from where, to where, and how it went."""

    transition: str
    source: str
    target: str | None = None  # None when it failed with nowhere to go
    outcome: Literal["ok", "error", "deadline", "compensated"] = "ok"
    at: datetime
    error: str | None = None
    manual: bool = False


class Compensation(_Model):
    """A completed call's undo, its arguments already evaluated: run last-in first-out on failure."""

    transition: str
    call: str  # the call it undoes (its tool)
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    key: str  # idempotency key of the compensating call


class Checkpoint(_Model):
    """A transition that failed with no onError: what it was given and which calls completed, so
    `retry` runs it again without repeating them. `done` maps a call's index ("2", or "2.7" for item
    7 of a group) to its result."""

    transition: str
    source: str
    payload: Any = None
    done: dict[str, Any] = Field(default_factory=dict)
    firing: int = 0  # the firing number whose idempotency keys the retry reuses


class MachineState(_Model):
    """What a run carries across continue-as-new."""

    place: str = "start"
    status: MachineStatus = "pending"
    variables: dict[str, Any] = Field(default_factory=dict)  # the `as` variables
    context_variables: dict[str, Any] = Field(default_factory=dict)  # context.variables (--var)
    context_custom: dict[str, Any] = Field(default_factory=dict)  # context.custom (--context)
    error: dict[str, Any] | None = None  # the last error, readable as ${ error.message }
    steps: list[Step] = Field(default_factory=list)
    steps_total: int = 0
    firings: int = 0  # transitions fired, for idempotency keys unique within the run
    checkpoint: Checkpoint | None = None
    compensations: list[Compensation] = Field(default_factory=list)
    compensating: bool = False  # a failure for good is being (or must be, after a retry) compensated
    waiting_since: datetime | None = None
    started_at: datetime | None = None


class MachineInput(_Model):
    tenant: str
    app: str
    workflow: str
    key: str
    definition: dict[str, Any]  # the WorkflowSpec as resolved and pinned at start
    definition_hash: str
    manifest_hash: str  # the app version it came from (store.apps keeps every version by hash)
    documents: dict[str, dict[str, Any]] = Field(default_factory=dict)  # document name → JSON Schema
    state: MachineState = Field(default_factory=MachineState)

    @property
    def workflow_id(self) -> str:
        return machine_workflow_id(self.tenant, self.app, self.workflow, self.key)


def resolved_workflow(manifest: AppManifest, workflow: str) -> WorkflowSpec:
    """The app's workflow `workflow` with its template merged in; NotFound naming the app's workflows."""
    if manifest.workflow(workflow) is None:
        known = ", ".join(spec.name for spec in manifest.workflows) or "none"
        raise NotFound(f"app {manifest.id!r} has no workflow {workflow!r} (its workflows: {known})")
    return resolve_workflow(manifest.workflows, workflow)


def new_run(manifest: AppManifest, *, manifest_hash: str, tenant: str, app: str, workflow: str, key: str,
            variables: dict[str, Any] | None = None, custom: dict[str, Any] | None = None) -> MachineInput:
    """The input of a new run of `workflow` of the installed `manifest`: the workflow resolved against
    its template and pinned by hash, with the app's document schemas. NotFound for an unknown workflow."""
    definition, digest = pinned_definition(resolved_workflow(manifest, workflow))
    return MachineInput(
        tenant=tenant, app=app, workflow=workflow, key=key, definition=definition, definition_hash=digest,
        manifest_hash=manifest_hash,
        documents={document.name: document.content_schema for document in manifest.documents},
        state=MachineState(context_variables=variables or {}, context_custom=custom or {}))


class ManualOption(_Model):
    """A manual transition the run waits for: its payload's schema, and its deadline if any."""

    transition: str
    targets: list[str]
    payload_schema: dict[str, Any] | None = None
    deadline_at: datetime | None = None
    on_deadline: str | None = None


class MachineView(_Model):
    """The `machine` query's answer: everything `heartbeats workflow show` prints."""

    id: str
    tenant: str
    app: str
    workflow: str
    key: str
    definition_hash: str
    place: str
    status: MachineStatus
    variables: dict[str, Any]
    context: dict[str, Any]
    error: dict[str, Any] | None = None
    steps: list[Step]
    steps_total: int
    waiting_for: list[ManualOption] = Field(default_factory=list)
    failed_transition: str | None = None
    compensations_pending: list[str] = Field(default_factory=list)
    started_at: datetime | None = None


class TransitionRequest(_Model):
    """A manual transition, by name, with its payload (checked against its payload_schema)."""

    transition: str
    payload: Any = None


class MachineCallRequest(_Model):
    """One tool call of a transition, run by the `machine_call` activity."""

    tenant: str
    app: str
    workflow: str
    workflow_id: str
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str
    documents: dict[str, dict[str, Any]] = Field(default_factory=dict)


class MachineCallResult(_Model):
    result: Any = None


# The type of a tool's own failure (bad arguments, the tool raising, a document refused): not
# retried, the transition fails (→ onError, or the run stops `failed`).
MACHINE_TOOL_ERROR = "MachineToolError"
# An Update the run's state does not allow (not waiting, not failed, moved on first): a conflict,
# where a bad payload or an unknown transition is the request's own mistake.
MACHINE_STATE_ERROR = "MachineStateError"
