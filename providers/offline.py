"""The `offline` provider: deterministic, no network, no key. Named `offline` in every receipt.

It keeps `heartbeats demo` and the tests working when no provider is configured, and is never
mistaken for a model: its models are `offline-cheap`, `offline-standard`, `offline-premium`.

What it answers, from the latest user message of the request:

- `HEARTBEAT_OK` when that message carries no pre-filter rows (an `invoke_always` tick with
  nothing found, or a message with no rows block at all);
- "Pre-filter rows matched but none fit the size cap; nothing to show." when the rows block is
  empty but marked truncated;
- otherwise one short substantive line naming the row count and summarising the first rows:
  "3 rows to review: signups: value 182, target 250; ...".

It never calls tools. Token counts are estimates (about four characters per token: len // 4), not
counts: no tokenizer runs offline.

The rows travel in the user message as a block made by `format_rows` (the agent turn uses it for
every provider, so a real model sees the same context):

    <rows count="2" truncated="false">
    [{"metric": "signups", "value": 182}, ...]
    </rows>

A fenced ```json block holding a list is accepted too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from contract.llm import ChatMessage, LlmRequest, LlmResponse
from providers.base import STOP_END_TURN
from reply.protocol import HEARTBEAT_OK

PROVIDER = "offline"
MAX_OFFLINE_REPLY_CHARS = 4_000
ROWS_SUMMARISED = 3
FIELDS_PER_ROW = 3
MAX_VALUE_CHARS = 60
# A row's label: the first of these fields it has (memory entries have `content`).
_LABEL_FIELDS = ("name", "metric", "title", "subject", "content", "id", "key")
# Bookkeeping fields that say nothing about the row's substance.
_SKIPPED_FIELDS = frozenset({"created_at", "updated_at", "expires_at"})

_ROWS_BLOCK = re.compile(r"<rows\b(?P<attrs>[^>]*)>(?P<body>.*?)</rows>", re.DOTALL)
_TRUNCATED_ATTR = re.compile(r"""\btruncated\s*=\s*["']?true\b""", re.IGNORECASE)
_JSON_FENCE = re.compile(r"```json[^\n]*\n(?P<body>.*?)```", re.DOTALL)


def offline_model(tier: str) -> str:
    """The offline provider's model name for a tier: `offline-cheap` etc."""
    return f"offline-{tier}"


def format_rows(rows: Sequence[Any], *, truncated: bool) -> str:
    """The pre-filter rows as the `<rows>` block of a user message (compact JSON, one line)."""
    body = json.dumps(list(rows), separators=(",", ":"), ensure_ascii=False, default=str)
    body = body.replace("</", "<\\/")  # valid JSON ("\/" is "/"), and no row can close the block early
    flag = "true" if truncated else "false"
    return f'<rows count="{len(rows)}" truncated="{flag}">\n{body}\n</rows>'


def extract_rows(text: str) -> tuple[list[Any] | None, bool]:
    """(rows, truncated) from the last rows block of `text`; (None, False) when there is none."""
    blocks = list(_ROWS_BLOCK.finditer(text))
    if blocks:
        block = blocks[-1]
        rows = _json_list(block.group("body"))
        return (rows if rows is not None else []), bool(_TRUNCATED_ATTR.search(block.group("attrs")))
    for fence in reversed(list(_JSON_FENCE.finditer(text))):
        rows = _json_list(fence.group("body"))
        if rows is not None:
            return rows, False
    return None, False


def _json_list(text: str) -> list[Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(value, dict) and isinstance(value.get("rows"), list):
        return value["rows"]
    return value if isinstance(value, list) else None


def offline_text(rows: list[Any] | None, *, truncated: bool) -> str:
    """The offline reply for these rows."""
    if not rows and not truncated:
        return HEARTBEAT_OK
    if not rows:
        return "Pre-filter rows matched but none fit the size cap; nothing to show."
    count = f"{len(rows)}+" if truncated else str(len(rows))
    noun = "row" if len(rows) == 1 and not truncated else "rows"
    summary = "; ".join(summarise_row(row) for row in rows[:ROWS_SUMMARISED])
    more = len(rows) - ROWS_SUMMARISED
    text = f"{count} {noun} to review: {summary}" + (f"; and {more} more" if more > 0 else "") + "."
    return text[:MAX_OFFLINE_REPLY_CHARS]


async def complete(request: LlmRequest) -> LlmResponse:
    """The offline provider's deterministic answer to `request` (async to match the real providers)."""
    return complete_sync(request)


def complete_sync(request: LlmRequest) -> LlmResponse:
    latest = _latest_user_message(request.messages)
    rows, truncated = extract_rows(latest.content) if latest is not None else (None, False)
    text = offline_text(rows, truncated=truncated)
    return LlmResponse(
        text=text,
        stop_reason=STOP_END_TURN,
        provider=PROVIDER,
        model=request.model,
        # Estimates, not counts: about four characters per token.
        tokens_in=estimate_tokens(_request_text(request)),
        tokens_out=estimate_tokens(text),
    )


def _latest_user_message(messages: Sequence[ChatMessage]) -> ChatMessage | None:
    return next((m for m in reversed(messages) if m.role == "user"), None)


def _request_text(request: LlmRequest) -> str:
    parts = [request.system]
    for message in request.messages:
        parts.append(message.content)
        parts.extend(_compact(call.arguments) for call in message.tool_calls)
    parts.extend(f"{t.name} {t.description} {_compact(t.parameters)}" for t in request.tools)
    return "\n".join(parts)


def estimate_tokens(text: str) -> int:
    """A rough token estimate (len // 4), for the offline provider's receipts."""
    return len(text) // 4


def summarise_row(row: Any) -> str:
    """One row in a few words: its label, then up to three other scalar fields as `field value`."""
    if not isinstance(row, dict):
        return _short(row)
    label_field = next((f for f in _LABEL_FIELDS if isinstance(row.get(f), str | int | float)), None)
    parts = [
        f"{field} {_short(value)}"
        for field, value in row.items()
        if field != label_field and field not in _SKIPPED_FIELDS and _is_scalar(value) and value is not None
    ][:FIELDS_PER_ROW]
    if label_field is None:
        return ", ".join(parts) or "(no fields)"
    label = _short(row[label_field])
    return f"{label}: {', '.join(parts)}" if parts else label


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else _compact(value)
    text = " ".join(text.split())  # one line
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
