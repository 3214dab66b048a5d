"""Skills: named groups of tools an agent (or a pre-filter) may call, each tool with a risk level.

    registry = default_registry()                  # records, kv, memory, team, email + app skills
    registry.register(Skill(name="x_api", description="...", tools={"search_mentions": ToolSpec(...)}))
    registry.prefilter_problem("kv", "set")        # "kv.set is MEDIUM risk; pre-filters may only ..."
    registry.tool_defs(["records", "email"])       # what the model is offered: "records__query", ...

App skills (docs/skills.md): entry points in the group `agent_heartbeats.skills` (each a zero-argument
callable returning a Skill or a list of Skills), and the modules named in HEARTBEATS_SKILL_MODULES
(comma-separated; each exposes `SKILLS` or `skills()`). `default_registry()` loads both.

Risk levels: LOW tools only read; MEDIUM tools change the app's own data; HIGH tools have effects
outside the platform (mail, posts, payments). Heartbeat pre-filters may call LOW tools only: the
platform denies every other tool there by default, so a heartbeat's look never has a side effect.

A tool's handler gets a `SkillContext` that names the tenant, app and agent of the call; the built-in
handlers only ever touch that tenant's and app's data. Nothing here imports the store or SQLAlchemy
(the store arrives in the context), so install-time validation can consult the registry cheaply.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from contract.llm import TOOL_NAME_SEPARATOR, ToolDef, tool_name
from contract.messages import TickRef

if TYPE_CHECKING:
    from contract.ports import Workflows
    from store.store import Store

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "agent_heartbeats.skills"
SKILL_MODULES_ENV = "HEARTBEATS_SKILL_MODULES"
# "{skill}__{tool}" is what the model sees; both provider APIs allow [A-Za-z0-9_-]{1,64} there.
MAX_QUALIFIED_TOOL_NAME = 64

Risk = Literal["LOW", "MEDIUM", "HIGH"]
RISKS: tuple[str, ...] = get_args(Risk)

_SKILL_NAME = re.compile(r"[a-z][a-z0-9_-]*")  # as manifest.models: an agent's `tools` entries
_TOOL_NAME = re.compile(r"[a-z][a-z0-9_]*")


class SkillError(Exception):
    """A skill or tool lookup the registry refuses; the message says what exists instead."""


class UnknownSkillError(SkillError, LookupError):
    """No skill of that name is registered."""


class UnknownToolError(SkillError, LookupError):
    """The skill exists but has no tool of that name."""


class InvalidArgumentsError(SkillError, ValueError):
    """A tool was called with arguments its JSON schema does not accept."""


class SkillLoadError(SkillError):
    """An app skill (entry point or module) could not be loaded; the message names its source."""


@dataclass(frozen=True)
class SkillContext:
    """Who is calling: every built-in handler scopes its reads and writes to tenant and app."""

    store: Store
    tenant: str
    app: str
    agent: str
    now: datetime  # aware
    # Derived from workflow, tick and step by the caller; side-effecting tools use it so a retried
    # call does its effect once. None where the caller has no stable identity (then HIGH tools refuse).
    idempotency_key: str | None = None
    workflow_id: str = ""  # the run the call serves (what an LLM call a tool makes is charged to)
    definition: str | None = None  # the manifest version the calling turn is pinned to
    run_id: str | None = None  # the calling run (workflow ID and tick): what a run created is counted by
    # Temporal, for skills that start or signal workflows (tasks, team); None where there is none.
    workflows: Workflows | None = None

    @classmethod
    def for_tick(cls, store: Store, tick: TickRef, *, now: datetime, idempotency_key: str,
                 definition: str | None = None, workflows: Workflows | None = None) -> SkillContext:
        """The context of a call made for a tick: its tenant, app, agent and workflow."""
        return cls(store=store, tenant=tick.tenant, app=tick.app, agent=tick.agent, now=now,
                   idempotency_key=idempotency_key, workflow_id=tick.heartbeat_id, definition=definition,
                   run_id=f"{tick.heartbeat_id}/{tick.tick_id}", workflows=workflows)


Handler = Callable[[SkillContext, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its risk, what it does, the JSON schema of its arguments, and its handler."""

    name: str
    risk: Risk
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    handler: Handler

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _TOOL_NAME.fullmatch(self.name):
            raise ValueError(f"tool name must match [a-z][a-z0-9_]* (got {self.name!r})")
        if self.risk not in RISKS:
            raise ValueError(f"tool {self.name}: risk must be one of {', '.join(RISKS)} (got {self.risk!r})")
        if not isinstance(self.parameters, dict) or self.parameters.get("type", "object") != "object":
            raise ValueError(f"tool {self.name}: parameters must be a JSON schema of type object")
        if not callable(self.handler):
            raise ValueError(f"tool {self.name}: handler must be an async callable (ctx, args)")


@dataclass(frozen=True)
class Skill:
    """A named set of tools, e.g. `kv` with get/list/set/delete."""

    name: str
    description: str
    tools: Mapping[str, ToolSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _SKILL_NAME.fullmatch(self.name):
            raise ValueError(f"skill name must match [a-z][a-z0-9_-]* (got {self.name!r})")
        if TOOL_NAME_SEPARATOR in self.name:
            # The model sees "{skill}__{tool}"; a "__" inside the skill name would make that ambiguous.
            raise ValueError(f"skill name must not contain {TOOL_NAME_SEPARATOR!r} (got {self.name!r})")
        for key, tool in self.tools.items():
            if not isinstance(tool, ToolSpec) or key != tool.name:
                raise ValueError(f"skill {self.name}: tools must map each tool's own name to its ToolSpec ({key!r})")
            qualified = tool_name(self.name, tool.name)
            if len(qualified) > MAX_QUALIFIED_TOOL_NAME:
                raise ValueError(
                    f"skill {self.name}: tool name {qualified!r} is longer than {MAX_QUALIFIED_TOOL_NAME}"
                    " characters (the limit of the providers' tool names)"
                )


class SkillRegistry:
    """The skills a worker knows, by name. Register at start-up; lookups are read-only after that."""

    def __init__(self, skills: list[Skill] | None = None) -> None:
        self._skills: dict[str, Skill] = {}
        self._sources: dict[str, str] = {}
        for skill in skills or []:
            self.register(skill)

    def register(self, skill: Skill, *, source: str = "registered in code") -> None:
        """Add `skill`; ValueError when a skill of that name is already registered.

        `source` says where the skill came from (e.g. "entry point x_api"), for error messages.
        """
        if not isinstance(skill, Skill):
            raise TypeError(f"expected a Skill (got {type(skill).__name__})")
        if skill.name in self._skills:
            raise ValueError(f"skill {skill.name!r} is already registered ({self._sources[skill.name]})")
        self._skills[skill.name] = skill
        self._sources[skill.name] = source

    def source(self, name: str) -> str:
        """Where the skill `name` came from ("built-in", "entry point ...", "module ...")."""
        self.get(name)
        return self._sources[name]

    def names(self) -> list[str]:
        """Registered skill names, sorted."""
        return sorted(self._skills)

    def __contains__(self, name: object) -> bool:
        return name in self._skills

    def get(self, name: str) -> Skill:
        """The skill; UnknownSkillError (listing the known ones) otherwise."""
        try:
            return self._skills[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownSkillError(f"unknown skill {name!r} (registered skills: {known})") from None

    def tool(self, skill: str, tool: str) -> ToolSpec:
        """The tool `skill.tool`; UnknownSkillError or UnknownToolError (listing the skill's tools)."""
        found = self.get(skill)
        try:
            return found.tools[tool]
        except KeyError:
            known = ", ".join(sorted(found.tools)) or "none"
            raise UnknownToolError(f"skill {skill!r} has no tool {tool!r} (its tools: {known})") from None

    def tool_defs(self, skill_names: Iterable[str]) -> list[ToolDef]:
        """The tools of `skill_names` (an agent's `tools` list) as the model is offered them.

        One ToolDef per tool, named "{skill}__{tool}", in the order the skills are listed and by tool
        name within a skill. A name that is not registered is skipped with a warning (the agent still
        runs with its other tools; a call to the missing one gets an error result).
        """

        defs: list[ToolDef] = []
        seen: set[str] = set()
        for name in skill_names:
            if name in seen:
                continue
            seen.add(name)
            skill = self._skills.get(name)
            if skill is None:
                logger.warning("agent lists skill %r, which this worker does not have (it has: %s)",
                               name, ", ".join(self.names()) or "none")
                continue
            for tool_key in sorted(skill.tools):
                spec = skill.tools[tool_key]
                defs.append(
                    ToolDef(
                        name=tool_name(skill.name, spec.name),
                        description=f"{spec.description}\n\n{skill.name}: {skill.description}\nRisk: {spec.risk}.",
                        parameters=spec.parameters,
                    )
                )
        return defs

    def workflow_tool(self, name: str) -> tuple[str, ToolSpec]:
        """The tool a state-machine workflow's `tool:` names, with its skill: `skill.tool`, or a bare
        name: a skill with exactly one tool, or a skill with a tool of its own name. SkillError
        (saying which forms exist) otherwise."""
        skill_name, dot, tool_key = name.partition(".")
        if dot:
            return skill_name, self.tool(skill_name, tool_key)
        skill = self._skills.get(name)
        if skill is None:
            known = ", ".join(self.names()) or "none"
            raise UnknownSkillError(f"no tool {name!r}: not a built-in and no skill of that name is registered"
                                    f" (registered skills: {known}; a tool is named skill.tool or by a skill's name)")
        if name in skill.tools:
            return name, skill.tools[name]
        if len(skill.tools) == 1:
            return name, next(iter(skill.tools.values()))
        raise UnknownToolError(f"skill {name!r} has {len(skill.tools)} tools: name one as {name}.TOOL"
                               f" ({', '.join(sorted(skill.tools))})")

    def prefilter_problem(self, skill: str, tool: str) -> str | None:
        """Why `skill.tool` cannot be a heartbeat pre-filter, or None when it exists and is LOW risk."""
        try:
            spec = self.tool(skill, tool)
        except SkillError as exc:
            return str(exc)
        if spec.risk != "LOW":
            return f"{skill}.{tool} is {spec.risk} risk; pre-filters may only call LOW-risk tools"
        return None


def check_arguments(spec: ToolSpec, args: Any) -> dict[str, Any]:
    """`args` after a light check against the tool's schema; InvalidArgumentsError otherwise.

    Checks what matters for a clear error before the handler runs: an object, required properties,
    unknown properties when the schema closes them (`additionalProperties: false`) and the JSON type
    of each declared property. Not a full JSON Schema validator (none is a dependency).
    """
    if not isinstance(args, dict):
        raise InvalidArgumentsError(f"{spec.name}: arguments must be an object (got {type(args).__name__})")
    properties: dict[str, Any] = spec.parameters.get("properties", {})
    missing = [name for name in spec.parameters.get("required", []) if name not in args]
    if missing:
        raise InvalidArgumentsError(f"{spec.name}: missing required argument(s): {', '.join(missing)}")
    if spec.parameters.get("additionalProperties") is False:
        unknown = sorted(name for name in args if name not in properties)
        if unknown:
            allowed = ", ".join(sorted(properties)) or "none"
            raise InvalidArgumentsError(
                f"{spec.name}: unknown argument(s): {', '.join(unknown)} (it takes: {allowed})"
            )
    for name, value in args.items():
        expected = properties.get(name, {}).get("type")
        if expected is not None and not _has_json_type(value, expected):
            raise InvalidArgumentsError(
                f"{spec.name}: argument {name!r} must be {_describe(expected)} (got {type(value).__name__})"
            )
    return args


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _has_json_type(value: Any, expected: str | list[str]) -> bool:
    types = [expected] if isinstance(expected, str) else list(expected)
    return any(_JSON_TYPES.get(name, lambda _v: True)(value) for name in types)


def _describe(expected: str | list[str]) -> str:
    return expected if isinstance(expected, str) else " or ".join(expected)


# ------------------------------------------------------------------------------ app skills


def load_app_skills(
    registry: SkillRegistry,
    *,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    modules: Iterable[str] | None = None,
) -> list[str]:
    """Register the app skills; returns their names in load order. SkillLoadError on any problem.

    - Entry points of the group `agent_heartbeats.skills` (installed distributions), by name: each
      loads to a zero-argument callable returning a Skill or a list of Skills.
    - Modules named in HEARTBEATS_SKILL_MODULES (comma-separated, e.g. "myapp.skills,other.mod"):
      each exposes `SKILLS` (a Skill or a list of Skills) or a zero-argument `skills()` returning one.

    `entry_points` and `modules` replace the discovery (tests, embedding). A skill name that is
    already registered (a built-in, or another app's) is an error naming both sources: a worker
    must not silently run a different `email` than the one the manifest author expected.
    """
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    if modules is None:
        modules = [part.strip() for part in os.environ.get(SKILL_MODULES_ENV, "").split(",") if part.strip()]
    loaded: list[str] = []
    for entry_point in sorted(entry_points, key=lambda ep: ep.name):
        source = f"entry point {entry_point.name!r} ({entry_point.value}) of group {ENTRY_POINT_GROUP}"
        try:
            factory = entry_point.load()
        except Exception as exc:
            raise SkillLoadError(f"{source}: cannot load it: {type(exc).__name__}: {exc}") from exc
        if not callable(factory):
            raise SkillLoadError(f"{source}: must be a zero-argument callable returning a Skill or a list of Skills")
        loaded += _register_all(registry, _call_factory(factory, source), source)
    for module_path in modules:
        source = f"module {module_path!r} (from {SKILL_MODULES_ENV})"
        try:
            module = importlib.import_module(module_path)
        except Exception as exc:
            raise SkillLoadError(f"{source}: cannot import it: {type(exc).__name__}: {exc}") from exc
        if hasattr(module, "SKILLS"):
            found = module.SKILLS
        elif callable(getattr(module, "skills", None)):
            found = _call_factory(module.skills, f"{source}, skills()")
        else:
            raise SkillLoadError(f"{source}: defines neither SKILLS nor skills()")
        loaded += _register_all(registry, found, source)
    if loaded:
        logger.info("app skills loaded: %s", ", ".join(loaded))
    return loaded


def _call_factory(factory: Callable[[], Any], source: str) -> Any:
    try:
        return factory()
    except Exception as exc:
        raise SkillLoadError(f"{source}: raised {type(exc).__name__}: {exc}") from exc


def _register_all(registry: SkillRegistry, found: Any, source: str) -> list[str]:
    skills = [found] if isinstance(found, Skill) else found
    if not isinstance(skills, list | tuple) or not all(isinstance(skill, Skill) for skill in skills):
        raise SkillLoadError(f"{source}: expected a Skill or a list of Skills (got {type(found).__name__})")
    for skill in skills:
        try:
            registry.register(skill, source=source)
        except ValueError as exc:
            raise SkillLoadError(f"{source}: {exc}") from None
    return [skill.name for skill in skills]
