"""The platform's closed sets of words, each defined once.

A manifest's own words (model tiers, conversation modes) are defined by the manifest models and
re-exported here, so that code which never reads a manifest has one place to import them from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, get_args

from manifest.models import ConversationMode, ModelTier

Status = Literal["active", "paused", "disabled"]
# What woke a tick: a heartbeat's schedule or run-now, a task's trigger (`manual` is a task's
# run-now), `escalation` (a vision pass woken by a heartbeat's reply), a runtime task's due time
# (`job`), a chat message, an inbound message.
Trigger = Literal["schedule", "run_now", "escalation", "heartbeat", "event", "threshold", "a2a", "manual", "job", "machine",
                  "chat", "inbound"]
Outcome = Literal["skipped", "suppressed", "substantive", "failed", "refused"]
ProviderName = Literal["anthropic", "openai", "offline"]
# Conversations the store keeps: `isolated` turns keep none.
StoredConversationMode = Literal["dedicated", "main"]

STATUSES: tuple[Status, ...] = get_args(Status)
TRIGGERS: tuple[Trigger, ...] = get_args(Trigger)
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)
TIERS: tuple[ModelTier, ...] = get_args(ModelTier)
CONVERSATION_MODES: tuple[ConversationMode, ...] = get_args(ConversationMode)
STORED_CONVERSATION_MODES: tuple[StoredConversationMode, ...] = get_args(StoredConversationMode)

__all__ = [
    "CONVERSATION_MODES",
    "OUTCOMES",
    "PROVIDERS",
    "STATUSES",
    "STORED_CONVERSATION_MODES",
    "TIERS",
    "TRIGGERS",
    "ConversationMode",
    "ModelTier",
    "Outcome",
    "ProviderName",
    "Status",
    "StoredConversationMode",
    "Trigger",
    "iso_utc",
]


def iso_utc(instant: datetime | None) -> str | None:
    """ISO 8601 UTC with `Z`, to the second: the time format of statuses and previews."""
    if instant is None:
        return None
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
