"""Checks of manifests and ids before anything is installed: each names the file, line and field.

    loaded = load_manifests([Path("manifests/sales.yaml")])     # ManifestsInvalid lists every problem
    problems = never_firing(loaded, tenant="acme", tenant_timezone="Europe/Berlin")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from contract.errors import InvalidInput, NotFound
from manifest.app import AppManifest
from manifest.ids import id_problem
from manifest.loader import ManifestError, Problem, load_manifest, locator
from manifest.machine_checks import workflow_problems
from manifest.machines import BUILTIN_DOCUMENT_TOOLS
from manifest.models import INTERNAL_SOURCES
from schedule import heartbeat_zone, next_fire
from skills.catalog import default_registry
from skills.registry import SkillError, SkillRegistry
from store.models import Tenant
from store.store import Areas


class ManifestsInvalid(InvalidInput):
    """Manifests that cannot be installed; `problems` holds one `file:line:col: field: message` each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = len(problems)
        super().__init__(f"nothing installed: {count} problem{'s' * (count != 1)}\n" + "\n".join(problems))


@dataclass(frozen=True)
class LoadedManifest:
    path: Path
    manifest: AppManifest


class _Located:
    """`file:line:col: field: message` lines, each file read and parsed once however many problems
    it has (once per problem, a manifest with hundreds of them took minutes)."""

    def __init__(self) -> None:
        self._files: dict[Path, Callable[[tuple, str], Problem]] = {}

    def __call__(self, item: LoadedManifest, loc: tuple, message: str) -> str:
        if item.path not in self._files:
            self._files[item.path] = locator(item.path)
        return str(self._files[item.path](loc, message))


def check_manifests(paths: Sequence[Path], registry: SkillRegistry | None = None) -> tuple[list[LoadedManifest], list[str]]:
    """Every check that needs no server, of every file: the manifest rules, app ids unique across
    the files, and the skill registry (tools registered, pre-filters LOW risk). Returns the
    manifests that loaded and every problem found (`file:line:col: field: message`)."""
    loaded: list[LoadedManifest] = []
    problems: list[str] = []
    for path in paths:
        try:
            loaded.append(LoadedManifest(path, load_manifest(path)))
        except ManifestError as exc:
            problems.extend(str(problem) for problem in exc.problems)
    seen: dict[str, Path] = {}
    for item in loaded:
        if item.manifest.id in seen:
            problems.append(f"{item.path}:1:1: id: app {item.manifest.id!r} is also defined in {seen[item.manifest.id]}")
        seen.setdefault(item.manifest.id, item.path)
    problems.extend(registry_problems(loaded, registry))
    problems.extend(found for found, warning in machine_findings(loaded, registry) if not warning)
    return loaded, problems


def machine_findings(loaded: Iterable[LoadedManifest], registry: SkillRegistry | None = None) -> list[tuple[str, bool]]:
    """The graph and expression checks of every state-machine workflow, and each tool it calls
    resolved against the registry: (`file:line:col: field: message`, is_warning) each."""
    registry = registry or default_registry()
    located = _Located()
    found: list[tuple[str, bool]] = []
    for item in loaded:
        for problem in workflow_problems(item.manifest):
            found.append((located(item, problem.at, problem.message), problem.warning))
        for i, workflow in enumerate(item.manifest.workflows):
            for j, transition in enumerate(workflow.transitions):
                for k, call in enumerate(transition.call):
                    singles = [(("call", k), call)] if call.parallel is None else [
                        (("call", k, "parallel", n), inner) for n, inner in enumerate(call.parallel)]
                    if call.compensate is not None:
                        singles.append((("call", k, "compensate"), call.compensate))
                    for where, single in singles:
                        if single.tool is None:
                            continue
                        reason = resolve_tool_problem(registry, single.tool)
                        if reason:
                            found.append((located(item, ("workflows", i, "transitions", j, *where, "tool"), reason),
                                          False))
    return found


def resolve_tool_problem(registry: SkillRegistry, tool: str) -> str | None:
    """Why a workflow's `tool:` names nothing this worker can run, or None."""
    if tool in BUILTIN_DOCUMENT_TOOLS:
        return None
    try:
        registry.workflow_tool(tool)
    except SkillError as exc:
        return str(exc)
    return None


def load_manifests(paths: Sequence[Path]) -> list[LoadedManifest]:
    """`check_manifests`, all-or-nothing: ManifestsInvalid listing every problem of every file."""
    loaded, problems = check_manifests(paths)
    if problems:
        raise ManifestsInvalid(problems)
    return loaded


def registry_problems(loaded: Iterable[LoadedManifest], registry: SkillRegistry | None = None) -> list[str]:
    """What the skill registry refuses: pre-filters that are not LOW-risk tools of a registered
    skill, and agent `tools` that name no registered skill. One file:line:col line each.

    Needs no server: `heartbeats validate` runs it as well as `install`."""
    registry = registry or default_registry()
    located = _Located()
    problems: list[str] = []
    for item in loaded:
        for i, agent in enumerate(item.manifest.agents):
            for k, skill in enumerate(agent.tools):
                if skill not in registry:
                    known = ", ".join(sorted(registry.names()))
                    problems.append(located(item, ("agents", i, "tools", k),
                                            f"no skill {skill!r} is registered (known: {known})"))
            prefilters = [(("heartbeats", j), heartbeat) for j, heartbeat in enumerate(agent.heartbeats)]
            prefilters += [(("tasks", t, "triggers", k), trigger) for t, task in enumerate(agent.tasks)
                           for k, trigger in enumerate(task.triggers) if trigger.type == "heartbeat"]
            for where, prefilter in prefilters:
                if prefilter.skill in INTERNAL_SOURCES or prefilter.skill.startswith("_internal_"):
                    continue  # the internal sources are checked by the manifest rules
                reason = registry.prefilter_problem(prefilter.skill, prefilter.tool)
                if reason:
                    problems.append(located(item, ("agents", i, *where, "skill"), reason))
    return problems


def never_firing(loaded: Iterable[LoadedManifest], *, tenant: str, tenant_timezone: str) -> list[str]:
    """Heartbeats and task polls that would never fire for this tenant: an interval grid (salted per tenant, read
    in the tenant's zone) that never falls inside its active hours. Validation cannot know the
    tenant, so calendar schedules are checked there and interval ones here."""
    now = datetime.now(UTC)
    located = _Located()
    problems = []
    for item in loaded:
        for i, agent in enumerate(item.manifest.agents):
            for j, heartbeat in enumerate(agent.heartbeats):
                if heartbeat.active_hours is None:
                    continue
                if next_fire(heartbeat, tenant_id=tenant, tenant_timezone=tenant_timezone, after=now) is None:
                    zone = heartbeat_zone(heartbeat, tenant_timezone)
                    problems.append(located(
                        item, ("agents", i, "heartbeats", j, "active_hours"),
                        f"for tenant {tenant!r} ({zone}) no due time of this schedule ever falls inside"
                        f" {heartbeat.active_hours.start}-{heartbeat.active_hours.end}: it would never fire"
                        " (`heartbeats preview` shows its times)"))
            for t, task in enumerate(agent.tasks):
                for schedule in task.time_schedules():
                    if task.active_hours is None or schedule.schedule_type != "interval":
                        continue
                    if next_fire(schedule, tenant_id=tenant, tenant_timezone=tenant_timezone, after=now) is None:
                        where = task.triggers.index(schedule.trigger)
                        problems.append(located(
                            item, ("agents", i, "tasks", t, "triggers", where, "interval_minutes"),
                            f"for tenant {tenant!r} no poll of this trigger ever falls inside active_hours"
                            f" {task.active_hours.start}-{task.active_hours.end}: it would never fire"))
    return problems


def require_id(value: str, what: str) -> str:
    """`value` when it is a valid id; InvalidInput naming `what` (e.g. "--tenant") otherwise."""
    reason = id_problem(value)
    if reason:
        raise InvalidInput(f"{what} {reason}")
    return value


async def require_tenant(store: Areas, tenant: str) -> Tenant:
    """The tenant; NotFound telling how to create it when it does not exist."""
    found = await store.tenants.get(tenant=tenant)
    if found is None:
        raise NotFound(f"unknown tenant {tenant!r}; create it first: heartbeats tenant set {tenant}")
    return found
