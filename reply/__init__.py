"""The agent reply protocol: HEARTBEAT_OK suppression and vision escalation. Pure."""

from reply.protocol import (
    ESCALATE_TO_VISION,
    HEARTBEAT_OK,
    MAX_OTHER_CHARS,
    ReplyVerdict,
    classify_reply,
)

__all__ = ["ESCALATE_TO_VISION", "HEARTBEAT_OK", "MAX_OTHER_CHARS", "ReplyVerdict", "classify_reply"]
