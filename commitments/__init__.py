"""Commitments: what an agent said it will do later ("I'll follow up on Tuesday"), with a due time.

Pure domain code (no I/O, no Temporal): the commitment post-pass of a substantive tick
(activities.ticks) extracts them with `extract_commitments` and writes them to the agent's memory
as kind `commitment`; a heartbeat whose pre-filter is `_internal_agent_memory` with
`kind: commitment` then wakes the agent when they fall due. The rules (docs/skills.md,
"Commitments"):

- due at DUE_HOUR:00 local time (the tenant's zone) on the day the phrase names;
- expire COMMITMENT_EXPIRY after they fall due (never fed after that);
- at most MAX_COMMITMENTS_PER_DAY inferred per agent per local day (the excess is dropped, logged);
- re-checked when fed: only due, unexpired, not-done entries reach the agent, and the tick that
  was fed them marks them done when it completes.
"""

from __future__ import annotations

from datetime import timedelta

from commitments.extract import DUE_HOUR, MAX_COMMITMENT_CHARS, Commitment, extract_commitments, local_day

COMMITMENT_KIND = "commitment"
COMMITMENT_EXPIRY = timedelta(days=7)
MAX_COMMITMENTS_PER_DAY = 5



def commitment_claim(heartbeat_id: str, tick_id: str) -> str:
    """The claim a tick puts on the commitments its pre-filter fed it: "{heartbeat_id}/{tick_id}"."""
    return f"{heartbeat_id}/{tick_id}"


__all__ = [
    "COMMITMENT_EXPIRY",
    "COMMITMENT_KIND",
    "DUE_HOUR",
    "MAX_COMMITMENTS_PER_DAY",
    "MAX_COMMITMENT_CHARS",
    "Commitment",
    "commitment_claim",
    "extract_commitments",
    "local_day",
]
