"""Shadow mode from the outside: record a human decision for a case, compare, promote.

    await decide(store, workflow_id="task:acme:support:reviewer:review_cases", case="c-42",
                 actions=[{"tool": "email.send", "arguments": {"to": "ada@example.com"}}], actor="operator:cli")
    report = await shadow_report(store, workflow_id=...)
    await promote(store, workflow_id=..., actor="operator:cli")      # Conflict saying why, when it may not

A promotion switches shadow mode off for that heartbeat or task of that tenant only (its next
run executes its tools), and is audited with the report that allowed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from client.checks import require_tenant
from client.operations import check_entity_id
from contract.errors import Conflict, InvalidInput, NotFound
from contract.names import JOB_ID_PREFIX
from contract.shadow import PROMOTE_BELOW, ShadowAction, ShadowDecision, actions_agree
from manifest.app import AgentSpec
from manifest.models import HeartbeatSpec
from manifest.tasks import TaskSpec
from store import Store
from store.installed import installed_app

MAX_CASE_KEY_CHARS = 400
MAX_UNDECIDED_SHOWN = 100


@dataclass(frozen=True)
class ShadowDay:
    """The compared cases whose shadow run fell on `day` (the tenant's calendar), and how many agreed."""

    day: str
    compared: int
    agree: int

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day, "compared": self.compared, "agree": self.agree}


@dataclass(frozen=True)
class ShadowReport:
    workflow_id: str
    shadow: bool  # in shadow mode now (declared and not promoted)
    promoted: bool
    min_cases: int
    cases: int  # cases with a shadow run
    compared: int  # of those, decided by a human
    agree: int
    disagree: int
    disagreeing: list[dict[str, Any]] = field(default_factory=list)
    by_day: list[ShadowDay] = field(default_factory=list)  # agreement over time, oldest day first
    undecided: list[dict[str, Any]] = field(default_factory=list)  # run in shadow, no human decision yet

    @property
    def disagreement_rate(self) -> float:
        return self.disagree / self.compared if self.compared else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"workflow_id": self.workflow_id, "shadow": self.shadow, "promoted": self.promoted,
                "min_cases": self.min_cases, "cases": self.cases, "compared": self.compared, "agree": self.agree,
                "disagree": self.disagree, "disagreement_rate": round(self.disagreement_rate, 4),
                "disagreeing": self.disagreeing, "by_day": [day.to_json() for day in self.by_day],
                "undecided": self.undecided}


async def decide(store: Store, *, workflow_id: str, case: str, actions: Any, actor: str) -> None:
    """Record (or replace) the human decision for `case`: a list of {tool, arguments}, [] = no action."""
    tenant, _, _ = await _routine(store, workflow_id)
    if not isinstance(case, str) or not case.strip() or len(case) > MAX_CASE_KEY_CHARS:
        raise InvalidInput(f"case: must be a case key of 1 to {MAX_CASE_KEY_CHARS} characters")
    try:
        decision = ShadowDecision(actions=actions)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]).removeprefix("actions").lstrip(".")
        raise InvalidInput(f"decision{'[' + where + ']' if where else ''}: {problem['msg']}") from None
    await store.shadow.decide(tenant=tenant, workflow_id=workflow_id, case_key=case,
                              actions=[action.model_dump() for action in decision.actions], decided_by=actor)
    await store.audit.add(tenant=tenant, actor=actor, action="shadow_decide", target=workflow_id,
                          detail={"case": case, "actions": len(decision.actions)})


async def shadow_report(store: Store, *, workflow_id: str) -> ShadowReport:
    tenant, agent, routine = await _routine(store, workflow_id)
    compare = dict(routine.shadow.compare) if routine.shadow else {}
    min_cases = routine.shadow.min_cases if routine.shadow else 20
    promoted = await store.shadow.promoted(tenant=tenant, workflow_id=workflow_id)
    declared = routine.shadow_mode if routine.shadow_mode is not None else agent.shadow_mode
    zone = ZoneInfo((await require_tenant(store, tenant)).timezone)
    ran = agree = disagree = 0
    disagreeing: list[dict[str, Any]] = []
    days: dict[str, list[int]] = {}  # day -> [compared, agree]
    undecided: list[dict[str, Any]] = []
    for case in await store.shadow.cases(tenant=tenant, workflow_id=workflow_id):
        if case.tick_id is None:
            continue  # decided, not yet run in shadow
        ran += 1
        if case.decided is None:
            if len(undecided) < MAX_UNDECIDED_SHOWN:
                undecided.append({"case": case.case_key, "tick_id": case.tick_id, "proposed": case.proposed})
            continue
        proposed = [ShadowAction.model_validate(a) for a in case.proposed]
        decided = [ShadowAction.model_validate(a) for a in case.decided]
        agreed = actions_agree(proposed, decided, compare)
        if case.ran_at is not None:
            day = days.setdefault(case.ran_at.astimezone(zone).date().isoformat(), [0, 0])
            day[0] += 1
            day[1] += agreed
        if agreed:
            agree += 1
        else:
            disagree += 1
            disagreeing.append({"case": case.case_key, "tick_id": case.tick_id, "proposed": case.proposed,
                                "decided": case.decided})
    return ShadowReport(workflow_id=workflow_id, shadow=bool(declared) and not promoted, promoted=promoted,
                        min_cases=min_cases, cases=ran, compared=agree + disagree, agree=agree, disagree=disagree,
                        disagreeing=disagreeing,
                        by_day=[ShadowDay(day, *counts) for day, counts in sorted(days.items())], undecided=undecided)


async def promote(store: Store, *, workflow_id: str, actor: str) -> ShadowReport:
    """Switch shadow mode off for the heartbeat or task (this tenant only): Conflict, saying why, unless
    `compared >= min_cases` and the disagreement rate is below 5%."""
    report = await shadow_report(store, workflow_id=workflow_id)
    if report.promoted:
        raise Conflict(f"{workflow_id} was promoted already")
    if not report.shadow:
        raise Conflict(f"{workflow_id} is not in shadow mode")
    if report.compared < report.min_cases:
        raise Conflict(f"not enough compared cases: {report.compared} of the {report.min_cases} needed (decide more"
                       f" cases: heartbeats shadow decide {workflow_id} --case KEY --decision JSON)")
    if report.disagreement_rate >= PROMOTE_BELOW:
        raise Conflict(f"disagreement rate {report.disagreement_rate:.1%} is not below {PROMOTE_BELOW:.0%}"
                       f" ({report.disagree} of {report.compared} cases; heartbeats shadow report {workflow_id})")
    tenant = workflow_id.split(":")[1]
    summary = {k: v for k, v in report.to_json().items() if k not in ("disagreeing", "by_day", "undecided")}
    if not await store.shadow.promote(tenant=tenant, workflow_id=workflow_id, promoted_by=actor, report=summary):
        raise Conflict(f"{workflow_id} was promoted already")
    await store.audit.add(tenant=tenant, actor=actor, action="shadow_promote", target=workflow_id, detail=summary)
    return replace(report, promoted=True, shadow=False)


async def _routine(store: Store, workflow_id: str) -> tuple[str, AgentSpec, HeartbeatSpec | TaskSpec]:
    kind, tenant, app, agent_id, slug = check_entity_id(workflow_id)
    if kind == JOB_ID_PREFIX:
        raise InvalidInput(f"{workflow_id} is a runtime task: shadow mode applies to heartbeats and tasks")
    await require_tenant(store, tenant)
    installed = await installed_app(store, tenant=tenant, app=app)
    agent = installed.agent(agent_id) if installed is not None else None
    routine = agent.routine(kind, slug) if agent is not None else None
    if agent is None or routine is None:
        raise NotFound(f"no installed heartbeat or task {workflow_id}")
    return tenant, agent, routine
