"""State-machine workflows and documents of an app manifest (top-level `workflows:`, `documents:`).

    spec = manifest.workflow("document_processor")      # as written (may `extends` a template)
    resolved = resolve_workflow(manifest, "document_processor")  # template merged, options filled in
    definition, digest = pinned_definition(resolved)     # what a run carries, and its hash

A workflow is a directed graph of places. Each transition goes `from` one or more places `to` one or
more; it fires on entry to its place (the first automatic one whose `when` guard holds), or by hand
(`when: manual`, with a payload checked against `payload_schema`). Its `call` list runs in order:
tools, agent turns, and fan-out groups (`parallel:` a fixed list, `foreach:` over a list) whose
results are collected into one variable. `onError` names where a failed transition goes;
`compensate:` what undoes a call when the run fails for good.

Pure domain code: the graph checks (`manifest.machine_checks`) and the interpreter
(`workflows.machine`) both read these models.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from manifest.expressions import ExpressionError, check, strings_in, templates
from manifest.models import MAX_PROMPT_CHARS, Identifier, ManifestModel, ModelTier, problem

START, END = "start", "end"
ON_ENTRY, MANUAL = "onEntry", "manual"
STATE_MACHINE = "stateMachine"
# Names an expression reads besides the `as` variables; no `as` may take them.
SCOPE_NAMES = ("context", "options", "transition", "error")
COMPENSATE_RESULT = "result"  # what a compensate's arguments also read: the result of the call it undoes
BUILTIN_DOCUMENT_TOOLS = ("create_document", "load_document", "update_document")

MAX_TRANSITIONS = 200
MAX_CALLS = 50
MAX_FAN_OUT_LIMIT = 100
DEFAULT_FAN_OUT_LIMIT = 10
MAX_DEADLINE = timedelta(days=365)
MAX_TIMEOUT = timedelta(days=1)
DEFAULT_TIMEOUT = timedelta(minutes=5)

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_TOOL = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_]*)?")
_DURATION = re.compile(r"(\d{1,6})(s|m|h|d|w)")
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def parse_duration(text: str) -> timedelta:
    """`30s`, `5m`, `48h`, `7d`, `1w` as a timedelta; ValueError otherwise."""
    found = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"must be a whole number and a unit s, m, h, d or w, such as 30s, 5m or 48h (got {text!r})")
    return timedelta(seconds=int(found[1]) * _UNITS[found[2]])


def _name_problem(value: str) -> str | None:
    if not _NAME.fullmatch(value):
        return f"must be a name of letters, digits, _ and -, starting with a letter (got {value!r})"
    return None


def _name(value: str) -> str:
    reason = _name_problem(value)
    if reason:
        raise problem(reason)
    return value


def _places(value: Any) -> Any:
    """A place or a non-empty list of distinct places, checked before pydantic tries the union's
    branches: a bad name is one problem at the very entry, not one per branch at internal paths."""
    if isinstance(value, str):
        return _name(value)
    if not isinstance(value, list):
        shown = "a mapping" if isinstance(value, dict) else json.dumps(value)
        raise problem(f"must be a place name or a list of place names (got {shown})")
    if not value:
        raise problem("must name at least one place")
    for index, place in enumerate(value):
        reason = _name_problem(place) if isinstance(place, str) else f"must be a place name (got {place!r})"
        if reason:
            raise problem(reason, index)
        if place in value[:index]:
            raise problem(f"place {place!r} is listed twice", index)
    return value


def _variable(value: str) -> str:
    if not _VARIABLE.fullmatch(value):
        raise problem(f"must be a variable name of letters, digits and _ (got {value!r})")
    if value in SCOPE_NAMES:
        raise problem(f"{value!r} is taken: expressions read {', '.join(SCOPE_NAMES)} themselves")
    return value


def _duration(limit: timedelta):
    def check_duration(value: str) -> str:
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            raise problem(str(exc)) from None
        if not timedelta(seconds=1) <= parsed <= limit:
            raise problem(f"must be between 1s and {limit.days}d (got {value})")
        return value

    return check_duration


def _expression(value: str) -> str:
    try:
        sources = templates(value)
        for source in sources:
            check(source)
    except ExpressionError as exc:
        raise problem(str(exc)) from None
    return value


_PLACE_SCHEMA = {"type": "string", "pattern": f"^{_NAME.pattern}$"}
PlaceName = Annotated[str, AfterValidator(_name), WithJsonSchema(_PLACE_SCHEMA)]
VariableName = Annotated[str, AfterValidator(_variable),
                         WithJsonSchema({"type": "string", "pattern": f"^{_VARIABLE.pattern}$"})]
Places = Annotated[str | list[str], BeforeValidator(_places),
                   WithJsonSchema({"anyOf": [_PLACE_SCHEMA, {"type": "array", "items": _PLACE_SCHEMA, "minItems": 1}]})]
DeadlineText = Annotated[str, AfterValidator(_duration(MAX_DEADLINE)),
                         WithJsonSchema({"type": "string", "pattern": r"^\d+(s|m|h|d|w)$"})]
TimeoutText = Annotated[str, AfterValidator(_duration(MAX_TIMEOUT)),
                        WithJsonSchema({"type": "string", "pattern": r"^\d+(s|m|h|d|w)$"})]
Expression = Annotated[str, AfterValidator(_expression),
                       WithJsonSchema({"type": "string", "pattern": r"^\s*\$\{.*\}\s*$"})]


def json_schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a JSON Schema (draft 2020-12), or None."""
    if not isinstance(schema, dict):
        return "must be a JSON Schema (a mapping such as {type: object, properties: ...})"
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        return f"is not a valid JSON Schema{f' at {where}' if where else ''}: {exc.message}"
    return None


def _json_schema(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        reason = json_schema_problem(value)
        if reason:
            raise problem(reason)
    return value


JsonSchema = Annotated[dict[str, Any], AfterValidator(_json_schema)]


def as_list(places: str | list[str] | None) -> list[str]:
    if places is None:
        return []
    return [places] if isinstance(places, str) else list(places)


# --- documents ----------------------------------------------------------------------------------


# Models with an aliased field (`from`, `as`, `schema`) also take the field's own name: the store
# keeps manifests as dumped by field name.
_ALIASED = ConfigDict(**ManifestModel.model_config, populate_by_name=True)


class DocumentSpec(ManifestModel):
    """A kind of document workflows create, load and update: versioned, per tenant and app."""

    model_config = _ALIASED

    name: Identifier
    title: str = Field(default="")
    description: str = Field(default="")
    content_schema: JsonSchema = Field(default_factory=lambda: {"type": "object"}, alias="schema",
                                       description="JSON Schema every version's content must satisfy.")


# --- calls --------------------------------------------------------------------------------------


class RetrySpec(ManifestModel):
    """How often each call of a transition is tried before the transition fails."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    initial_interval: TimeoutText = Field(default="1s")
    backoff: float | int = Field(default=2.0, ge=1, le=10)
    max_interval: TimeoutText = Field(default="1m")


class AgentCallSpec(ManifestModel):
    """An agent turn as a call: the agent answers `prompt` (with expressions), and may pick the next place."""

    id: Identifier
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="What the agent is asked; may hold ${ }.")
    model_tier: ModelTier = Field(default="standard")


class CompensateSpec(ManifestModel):
    """What undoes a call: a tool called, with these arguments, if the run fails for good after it."""

    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tool")
    @classmethod
    def _check_tool(cls, value: str) -> str:
        return _tool_name(value)


def _tool_name(value: str) -> str:
    if not _TOOL.fullmatch(value):
        raise problem(f"must be a tool: a built-in ({', '.join(BUILTIN_DOCUMENT_TOOLS)}), a skill, or skill.tool"
                      f" (got {value!r})")
    return value


class CallSpec(ManifestModel):
    """One step of a transition: `tool`, `agent`, or `parallel:` (a group); `foreach:` repeats a tool
    or agent call per item of a list. `as` names the variable its result (a group's: the list of
    results, in order) is kept in."""

    model_config = _ALIASED

    tool: str | None = Field(default=None, description="A built-in, a skill with one tool, or skill.tool.")
    agent: AgentCallSpec | None = Field(default=None, description="An agent turn; its reply may pick the next place.")
    parallel: list[CallSpec] | None = Field(default=None, description="Calls run at once, `limit` at a time.")
    foreach: Expression | None = Field(default=None, description="${ list }: the call runs once per item.")
    item: VariableName = Field(default="ITEM", description="The variable holding the current item of a foreach.")
    limit: int | None = Field(default=None, ge=1, le=MAX_FAN_OUT_LIMIT,
                              description=f"At most this many at once (default {DEFAULT_FAN_OUT_LIMIT}).")
    settle: Literal["all", "settled"] | None = Field(
        default=None, description="all (default): the first failure fails the group; settled: every outcome is kept.")
    arguments: dict[str, Any] = Field(default_factory=dict)
    as_: VariableName | None = Field(default=None, alias="as")
    compensate: CompensateSpec | None = Field(default=None, description="Undoes this call if the run fails for good.")

    @field_validator("tool")
    @classmethod
    def _check_tool(cls, value: str | None) -> str | None:
        return None if value is None else _tool_name(value)

    @field_validator("arguments")
    @classmethod
    def _check_arguments(cls, value: dict[str, Any]) -> dict[str, Any]:
        for where, text in strings_in(value):
            try:
                for source in templates(text):
                    check(source)
            except ExpressionError as exc:
                raise problem(str(exc), *where) from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> CallSpec:
        kinds = [name for name in ("tool", "agent", "parallel") if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise problem("give exactly one of tool, agent or parallel" + (f" (got {', '.join(kinds)})" if kinds else ""))
        group = self.parallel is not None or self.foreach is not None
        if self.parallel is not None:
            if self.foreach is not None:
                raise problem("foreach repeats one tool or agent call; a parallel group cannot repeat", "foreach")
            if self.arguments:
                raise problem("a parallel group takes no arguments: give them to each call in it", "arguments")
            for index, inner in enumerate(self.parallel):
                if inner.parallel is not None or inner.foreach is not None:
                    raise problem("groups do not nest: each call of a parallel group is a tool or agent call",
                                  "parallel", index)
                if inner.as_ is not None:
                    raise problem("a call inside a parallel group keeps no variable: give `as` to the group,"
                                  " which keeps the list of its results in order", "parallel", index, "as")
        if not group:
            for field in ("limit", "settle"):
                if getattr(self, field) is not None:
                    raise problem(f"{field} applies to parallel and foreach groups only", field)
        if self.compensate is not None and (group or self.tool is None):
            raise problem("compensate applies to a single tool call", "compensate")
        return self

    @property
    def kind(self) -> str:
        if self.parallel is not None:
            return "parallel"
        if self.foreach is not None:
            return "foreach"
        return "agent" if self.agent is not None else "tool"

    @property
    def settles(self) -> bool:
        """A group that keeps every outcome ({ok, result|error}) instead of failing on the first."""
        return self.settle == "settled"

    @property
    def fan_out_limit(self) -> int:
        return self.limit or DEFAULT_FAN_OUT_LIMIT

    def label(self) -> str:
        """How the call is named in summaries and errors: its tool, `agent x`, or its group."""
        if self.parallel is not None:
            return "parallel(" + ", ".join(inner.label() for inner in self.parallel) + ")"
        single = f"agent {self.agent.id}" if self.agent is not None else str(self.tool)
        return f"foreach {single}" if self.foreach is not None else single


CallSpec.model_rebuild()


# --- transitions and workflows ------------------------------------------------------------------


class TransitionSpec(ManifestModel):
    """An edge of the graph and the work done crossing it."""

    model_config = _ALIASED

    name: PlaceName
    title: str = Field(default="")
    from_: Places | None = Field(default=None, alias="from", description="The place(s) it leaves.")
    to: Places | None = Field(default=None, description="The place(s) it may reach; the first unless a call picks.")
    on_error: PlaceName | None = Field(default=None, alias="onError", description="Where a failure goes.")
    when: str = Field(default=ON_ENTRY, description="onEntry (default), manual, or a guard ${ expr }.")
    call: list[CallSpec] = Field(default_factory=list, max_length=MAX_CALLS)
    payload_schema: JsonSchema | None = Field(default=None, description="JSON Schema of a manual transition's payload.")
    deadline: DeadlineText | None = Field(default=None, description="A manual transition's wait, e.g. 48h.")
    on_deadline: PlaceName | None = Field(default=None, description="Where the run goes when the deadline passes.")
    timeout: TimeoutText | None = Field(default=None, description="Each call's limit (default 5m); a timeout is an error.")
    retry: RetrySpec | None = Field(default=None, description="Attempts of each call (default 3, backing off from 1s).")

    @field_validator("when")
    @classmethod
    def _check_when(cls, value: str) -> str:
        if value in (ON_ENTRY, MANUAL):
            return value
        if "${" not in value:
            raise problem(f"must be onEntry, manual, or a guard such as ${{ size(ITEMS) > 0 }} (got {value!r})")
        return _expression(value)

    @model_validator(mode="after")
    def _manual_fields(self) -> TransitionSpec:
        manual = self.when == MANUAL
        for field in ("payload_schema", "deadline"):
            if getattr(self, field) is not None and not manual:
                raise problem(f"{field} applies to manual transitions (when: manual) only", field)
        if (self.deadline is None) != (self.on_deadline is None):
            given, missing = ("deadline", "on_deadline") if self.deadline is not None else ("on_deadline", "deadline")
            raise problem(f"deadline and on_deadline go together: give {missing} too", given)
        return self

    @property
    def sources(self) -> list[str]:
        return as_list(self.from_)

    @property
    def targets(self) -> list[str]:
        return as_list(self.to)

    @property
    def manual(self) -> bool:
        return self.when == MANUAL

    @property
    def guard(self) -> str | None:
        return None if self.when in (ON_ENTRY, MANUAL) else self.when

    @property
    def call_timeout(self) -> timedelta:
        return parse_duration(self.timeout) if self.timeout else DEFAULT_TIMEOUT


class WorkflowSpec(ManifestModel):
    """A state-machine workflow: places `start` to `end`, and the transitions between them."""

    name: Identifier = Field(description="Unique in the app; part of each run's workflow ID.")
    title: str = Field(default="")
    description: str = Field(default="")
    type: Literal["stateMachine"] = Field(description="The kind of workflow; stateMachine is the one there is.")
    extends: Identifier | None = Field(default=None, description="A workflow of this app used as a template.")
    options: dict[str, Any] = Field(default_factory=dict, description="Values the template reads as ${ options.x }.")
    places: list[PlaceName] | None = Field(default=None, description="Declare the places to have every name checked.")
    transitions: list[TransitionSpec] = Field(default_factory=list, max_length=MAX_TRANSITIONS)

    @model_validator(mode="after")
    def _transitions_complete(self) -> WorkflowSpec:
        if self.extends is None:
            if not self.transitions:
                raise problem("a workflow needs transitions (or `extends` a template that has them)", "transitions")
            for index, transition in enumerate(self.transitions):
                for field, key in (("from_", "from"), ("to", "to")):
                    if getattr(transition, field) is None:
                        raise problem(f"transition {transition.name!r} needs {key}", "transitions", index)
        return self

    def transition(self, name: str) -> TransitionSpec | None:
        return next((transition for transition in self.transitions if transition.name == name), None)


# --- templates and pinning ----------------------------------------------------------------------


class TemplateError(ValueError):
    """`extends` that cannot be resolved; `at` is the field of the extending workflow it is about."""

    def __init__(self, message: str, *at: str | int) -> None:
        super().__init__(message)
        self.at = at


def resolve_workflow(workflows: list[WorkflowSpec], name: str) -> WorkflowSpec:
    """The workflow `name` with its template (and the template's, in turn) merged in: each of its
    transitions replaces the fields it gives of the template's transition of that name, and its
    options are laid over the template's. TemplateError for an unknown template, a cycle, or an
    override of a transition the template lacks."""
    by_name = {workflow.name: workflow for workflow in workflows}
    spec = by_name[name]
    chain = [spec]
    while chain[-1].extends is not None:
        parent = by_name.get(chain[-1].extends)
        if parent is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise TemplateError(f"extends unknown workflow {chain[-1].extends!r} (workflows: {known})", "extends")
        if parent in chain:
            raise TemplateError(f"extends makes a cycle: {' → '.join(w.name for w in [*chain, parent])}", "extends")
        chain.append(parent)
    merged = chain[-1]
    for child in reversed(chain[:-1]):
        merged = _merge(merged, child)
    return merged


def _merge(template: WorkflowSpec, child: WorkflowSpec) -> WorkflowSpec:
    transitions = list(template.transitions)
    for index, override in enumerate(child.transitions):
        position = next((i for i, t in enumerate(transitions) if t.name == override.name), None)
        if position is None:
            names = ", ".join(t.name for t in template.transitions) or "none"
            raise TemplateError(f"template {template.name!r} has no transition {override.name!r} to override"
                                f" (its transitions: {names})", "transitions", index, "name")
        fields = {field: getattr(override, field) for field in override.model_fields_set}
        transitions[position] = transitions[position].model_copy(update=fields)
    return child.model_copy(update={
        "extends": None,
        "options": {**template.options, **child.options},
        "places": child.places if child.places is not None else template.places,
        "transitions": transitions,
    })


def pinned_definition(resolved: WorkflowSpec) -> tuple[dict[str, Any], str]:
    """The resolved workflow as plain JSON (what a run carries) and its hash (`sha256:` + hex): two
    runs with the same hash run the same graph."""
    definition = resolved.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return definition, "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def load_definition(definition: dict[str, Any]) -> WorkflowSpec:
    """A pinned definition back as a WorkflowSpec (it validated when installed)."""
    return WorkflowSpec.model_validate(definition)


def mermaid(workflow: WorkflowSpec, *, current: str | None = None) -> str:
    """The graph as a Mermaid state diagram: transitions as labelled edges (manual ones marked
    `(manual)`, guards in brackets), an error edge labelled `NAME fails`, a deadline edge `NAME after
    48h`; `current` highlighted. A place whose name is not a Mermaid id as it stands (`a-b`), or
    whose id another place took (`a-b` beside `a_b`), gets an id of its own and its name as label."""
    ids = _mermaid_ids(workflow)
    lines = ["stateDiagram-v2"]
    lines += [f'    state "{place}" as {ident}' for place, ident in ids.items() if ident != place]
    lines += [f"    [*] --> {ids[START]}", f"    {ids[END]} --> [*]"]
    for transition in workflow.transitions:
        label = transition.name + (" (manual)" if transition.manual else "")
        if transition.guard:
            label += f" [{transition.guard.strip()[2:-1].strip()}]"
        label = label.replace(":", "∶")
        for source in transition.sources:
            for target in transition.targets:
                lines.append(f"    {ids[source]} --> {ids[target]}: {label}")
            if transition.on_error:
                lines.append(f"    {ids[source]} --> {ids[transition.on_error]}: {transition.name} fails")
            if transition.on_deadline:
                lines.append(f"    {ids[source]} --> {ids[transition.on_deadline]}:"
                             f" {transition.name} after {transition.deadline}")
    if current and current in ids:
        lines += ["    classDef current fill:#ffd54f,stroke:#333,stroke-width:2px",
                  f"    class {ids[current]} current"]
    return "\n".join(lines) + "\n"


def _mermaid_ids(workflow: WorkflowSpec) -> dict[str, str]:
    """Each place's Mermaid id, in order of first appearance: its name with `-` as `_`, numbered
    when another place has that id already."""
    ids: dict[str, str] = {}
    places = [START] + [place for transition in workflow.transitions
                        for place in (*transition.sources, *transition.targets, transition.on_error,
                                      transition.on_deadline) if place] + [END]
    for place in places:
        if place in ids:
            continue
        base = candidate = place.replace("-", "_")
        number = 2
        while candidate in ids.values():
            candidate, number = f"{base}_{number}", number + 1
        ids[place] = candidate
    return ids


__all__ = [
    "BUILTIN_DOCUMENT_TOOLS", "COMPENSATE_RESULT", "END", "MANUAL", "START", "AgentCallSpec", "CallSpec",
    "CompensateSpec", "DocumentSpec", "RetrySpec", "TemplateError", "TransitionSpec", "WorkflowSpec", "as_list", "json_schema_problem",
    "load_definition", "mermaid", "parse_duration", "pinned_definition", "resolve_workflow",
]
