"""A LOW-risk pre-filter skill for the crash drills, loaded by the worker through
HEARTBEATS_SKILL_MODULES=drills.skills. `drill.slow` touches a marker file when it starts (so the
drill knows the pre-filter is in flight) and then takes DRILL_PREFILTER_SECONDS to answer."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from skills.registry import Skill, ToolSpec


async def _slow(ctx, args: dict[str, Any]) -> list[dict[str, Any]]:
    marker_dir = os.environ.get("DRILL_MARKER_DIR")
    if marker_dir:
        Path(marker_dir, f"prefilter-{os.getpid()}").touch()
    await asyncio.sleep(float(os.environ.get("DRILL_PREFILTER_SECONDS", "3")))
    return [{"metric": "signups", "value": 182, "tenant": ctx.tenant}]


SKILLS = [Skill(name="drill", description="crash-drill probe", tools={
    "slow": ToolSpec(name="slow", risk="LOW", description="a slow read for crash drills",
                     parameters={"type": "object"}, handler=_slow)})]
