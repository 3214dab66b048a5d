"""Closed sets of values shared by the store and the CLI (kept free of heavy imports)."""

from __future__ import annotations

PROVIDERS = frozenset({"anthropic", "openai", "offline"})
CONVERSATION_MODES = frozenset({"dedicated", "main"})
OUTCOMES = frozenset({"skipped", "suppressed", "substantive", "failed", "refused"})
