"""Shadow mode: what a shadow run proposes, what a human decided, and when the two agree.

A case's proposal is the list of non-LOW tool calls the agent asked for in its shadow run (none:
"no action"); a human decision is the same kind of list. They agree when they hold the same tools
the same number of times, comparing for each tool only the argument fields the task names in
`shadow.compare` (e.g. `{email.send: [to]}`: the same recipients; the subject may differ).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_DECISION_ACTIONS = 50
HEARTBEAT_CASE_PREFIX = "tick:"  # a heartbeat's tick is its case: `tick:{tick_id}`
PROMOTE_BELOW = 0.05  # the disagreement rate a promotion needs (strictly below)
QUEUE_SHADOW_REVIEW = "shadow_review"  # the operator-queue item of a heartbeat or task with shadow runs to review


class ShadowAction(BaseModel):
    """One tool call, proposed by the agent or decided by a human. `tool` is `skill.tool`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str = Field(min_length=3, max_length=130, pattern=r"^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_]*$")
    arguments: dict[str, Any] = Field(default_factory=dict)


class ShadowDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    actions: list[ShadowAction] = Field(max_length=MAX_DECISION_ACTIONS)


def _signature(action: ShadowAction, compare: Mapping[str, Sequence[str]]) -> str:
    fields = compare.get(action.tool, ())
    compared = {name: action.arguments.get(name) for name in fields}
    return json.dumps([action.tool, compared], sort_keys=True, default=str)


def actions_agree(proposed: Sequence[ShadowAction], decided: Sequence[ShadowAction],
                  compare: Mapping[str, Sequence[str]]) -> bool:
    """The same multiset of tools, each compared on its `compare` fields."""
    return Counter(_signature(a, compare) for a in proposed) == Counter(_signature(a, compare) for a in decided)


def not_executed(tool: str, decision: Sequence[ShadowAction] | None) -> dict[str, Any]:
    """What the model is told instead of a non-LOW tool's result in a shadow run."""
    if decision is None:
        return {"shadow": True, "executed": False,
                "note": f"{tool} was recorded as a proposal and not executed (shadow mode); continue as if it"
                        " had been done"}
    return {"shadow": True, "executed": False,
            "note": f"{tool} was not executed (shadow mode); a human decided this case: follow that decision",
            "human_decision": [action.model_dump() for action in decision]}
