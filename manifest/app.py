"""The app manifest: its agents, and each agent's heartbeats and tasks.

    manifest = AppManifest.model_validate(data)     # the loader adds file:line:col to every problem
    for agent, heartbeat in manifest.heartbeats(): ...
    for agent, task in manifest.tasks(): ...

Pure domain code: no I/O, no Temporal imports. Workflows, activities and the CLI all import it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from manifest.handlers import OnChatSpec, OnInboundSpec
from manifest.machines import DocumentSpec, WorkflowSpec
from manifest.models import (
    _SKILL_NAME,
    MAX_SYSTEM_PROMPT_CHARS,
    AgentBudgetSpec,
    HeartbeatSpec,
    Identifier,
    ManifestModel,
    problem,
)
from manifest.tasks import TaskSpec


class AgentSpec(ManifestModel):
    """An agent of the app: who it is, what it may use, and what wakes it."""

    id: Identifier
    name: str = Field(default="", description="Display name; defaults to the id.")
    system_prompt: str = Field(default="")
    is_default: bool = Field(default=False)
    team: list[Identifier] = Field(default_factory=list, description="Ids of agents it may delegate to.")
    tools: list[str] = Field(default_factory=list, description="Skills this agent may call.")
    heartbeats: list[HeartbeatSpec] = Field(default_factory=list)
    tasks: list[TaskSpec] = Field(default_factory=list, description="Work with triggers; see docs/triggers.md.")
    on_chat: OnChatSpec | None = Field(default=None, description="Answer chat messages in the main conversation.")
    on_inbound: OnInboundSpec | None = Field(default=None, description="Handle inbound messages, one turn each.")
    budget: AgentBudgetSpec | None = Field(default=None, description="The agent's monthly USD ceiling.")
    shadow_mode: bool = Field(default=False, description="The default shadow_mode of its heartbeats and tasks.")

    @field_validator("system_prompt")
    @classmethod
    def _check_system_prompt(cls, value: str) -> str:
        if len(value) > MAX_SYSTEM_PROMPT_CHARS:
            raise problem(f"must be at most {MAX_SYSTEM_PROMPT_CHARS} characters (got {len(value)})")
        return value

    @field_validator("tools")
    @classmethod
    def _check_tools(cls, tools: list[str]) -> list[str]:
        for index, tool in enumerate(tools):
            if not _SKILL_NAME.fullmatch(tool):
                raise problem(f"must be a skill name like 'records' (got {tool!r})", index)
        return _unique(tools, what="skill")

    @field_validator("team")
    @classmethod
    def _check_team(cls, team: list[str]) -> list[str]:
        return _unique(team, what="team member")

    @field_validator("heartbeats")
    @classmethod
    def _unique_slugs(cls, heartbeats: list[HeartbeatSpec]) -> list[HeartbeatSpec]:
        seen: dict[str, int] = {}
        for index, heartbeat in enumerate(heartbeats):
            if heartbeat.slug in seen:
                raise problem(
                    f"duplicate slug {heartbeat.slug!r}: already used by heartbeats[{seen[heartbeat.slug]}] of this agent",
                    index,
                    "slug",
                )
            seen[heartbeat.slug] = index
        return heartbeats

    @model_validator(mode="after")
    def _slugs_unique_across_heartbeats_and_tasks(self) -> AgentSpec:
        # Heartbeats and tasks share the slug namespace: `heartbeats run-now` and the receipts name them by it.
        taken = {heartbeat.slug: f"heartbeats[{index}]" for index, heartbeat in enumerate(self.heartbeats)}
        for index, task in enumerate(self.tasks):
            if task.slug in taken:
                raise problem(f"duplicate slug {task.slug!r}: already used by {taken[task.slug]} of this agent",
                              "tasks", index, "slug")
            taken[task.slug] = f"tasks[{index}]"
        return self

    @model_validator(mode="after")
    def _not_own_teammate(self) -> AgentSpec:
        if self.id in self.team:
            raise problem(f"an agent cannot delegate to itself ({self.id!r})", "team", self.team.index(self.id))
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def routine(self, kind: str, slug: str) -> HeartbeatSpec | TaskSpec | None:
        """Its heartbeat (`kind` "heartbeat") or task ("task") `slug`; None for another kind or slug."""
        found = self.heartbeats if kind == "heartbeat" else self.tasks if kind == "task" else []
        return next((entity for entity in found if entity.slug == slug), None)


def _unique(values: list[str], *, what: str) -> list[str]:
    for index, value in enumerate(values):
        if value in values[:index]:
            raise problem(f"{what} {value!r} is listed twice", index)
    return values


def _version(value: Any) -> Any:
    # `version: 1.0` is a YAML float; keep what the author meant rather than fail on it.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class AppManifest(ManifestModel):
    """An agent app: the unit a tenant installs."""

    id: Identifier = Field(description="App id; part of every heartbeat's workflow id.")
    name: str = Field(default="", description="Display name; defaults to the id.")
    version: str = Field(default="0.0.0", description="The app's version, e.g. 1.0.0.")
    # Workflows before agents: the agents' check reads them (an app needs agents, workflows, or both).
    workflows: list[WorkflowSpec] = Field(default_factory=list, description="State-machine workflows; docs/workflows.md.")
    documents: list[DocumentSpec] = Field(default_factory=list, description="Kinds of document workflows keep.")
    agents: list[AgentSpec] = Field(default_factory=list, validate_default=True,
                                    description="At least one, unless the app has workflows.")

    @field_validator("version", mode="before")
    @classmethod
    def _coerce_version(cls, value: Any) -> Any:
        return _version(value)

    @field_validator("agents")
    @classmethod
    def _check_agents(cls, agents: list[AgentSpec], info: ValidationInfo) -> list[AgentSpec]:
        if not agents and "workflows" in info.data and not info.data["workflows"]:
            raise problem("an app needs agents, workflows, or both")
        ids: dict[str, int] = {}
        for index, agent in enumerate(agents):
            if agent.id in ids:
                raise problem(f"duplicate agent id {agent.id!r}: already used by agents[{ids[agent.id]}]", index, "id")
            ids[agent.id] = index
        defaults = [index for index, agent in enumerate(agents) if agent.is_default]
        if len(defaults) > 1:
            raise problem(
                f"only one agent may be is_default (agents {', '.join(map(str, defaults))} are)",
                defaults[1],
                "is_default",
            )
        for index, agent in enumerate(agents):
            for position, member in enumerate(agent.team):
                if member not in ids:
                    raise problem(f"no agent {member!r} in this app", index, "team", position)
            for t, task in enumerate(agent.tasks):
                for k, trigger in enumerate(task.triggers):
                    for position, member in enumerate(getattr(trigger, "from_", None) or []):
                        if member not in ids:
                            raise problem(f"no agent {member!r} in this app", index, "tasks", t, "triggers", k,
                                          "from", position)
        return agents

    @field_validator("workflows", "documents")
    @classmethod
    def _unique_names(cls, items: list[Any]) -> list[Any]:
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            if item.name in seen:
                raise problem(f"duplicate name {item.name!r}: already used by [{seen[item.name]}]", index, "name")
            seen[item.name] = index
        return items

    def workflow(self, name: str) -> WorkflowSpec | None:
        return next((workflow for workflow in self.workflows if workflow.name == name), None)

    def document(self, name: str) -> DocumentSpec | None:
        return next((document for document in self.documents if document.name == name), None)

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def default_agent(self) -> AgentSpec:
        return next((agent for agent in self.agents if agent.is_default), self.agents[0])

    def heartbeats(self) -> list[tuple[AgentSpec, HeartbeatSpec]]:
        """Every (agent, heartbeat) pair, in manifest order."""
        return [(agent, heartbeat) for agent in self.agents for heartbeat in agent.heartbeats]

    def tasks(self) -> list[tuple[AgentSpec, TaskSpec]]:
        """Every (agent, task) pair, in manifest order."""
        return [(agent, task) for agent in self.agents for task in agent.tasks]
