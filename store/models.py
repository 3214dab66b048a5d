"""What the store hands back: frozen values with aware datetimes, never live ORM rows or loose dicts.

Each has `to_json()`: the JSON-ready form the CLI prints and the agents' tools return (times as
ISO 8601 UTC with `Z`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Self

from sqlalchemy.engine import Row

from contract.budget import usd
from store.types import iso_z


class JsonForm:
    """`to_json()`: every field by name, times as ISO 8601 UTC with `Z`."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        return {f.name: _json_value(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


class FromRow(JsonForm):
    """`from_row()` for results whose fields are named like their table's columns."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]


def _json_value(value: Any) -> Any:
    return iso_z(value) if isinstance(value, datetime) else value


@dataclass(frozen=True, slots=True)
class Tenant(JsonForm):
    """A tenant's settings. `provider` and the models are None until set (callers pick defaults)."""

    id: str
    timezone: str
    provider: str | None
    model_cheap: str | None
    model_standard: str | None
    model_premium: str | None
    created_at: datetime
    updated_at: datetime
    # Its own prices for models the pricing library lacks: {model: [input, output]} (strings, USD per Mtok).
    prices: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Row[Any]) -> Tenant:
        return cls(
            id=row.id,
            timezone=row.timezone,
            provider=row.llm_provider,
            model_cheap=row.model_cheap,
            model_standard=row.model_standard,
            model_premium=row.model_premium,
            created_at=row.created_at,
            updated_at=row.updated_at,
            prices=dict(row.prices or {}),
        )


@dataclass(frozen=True, slots=True)
class AppSummary(JsonForm):
    """An installed app as a list shows it: without its manifest (which may be large)."""

    tenant: str
    id: str
    name: str
    version: str
    installed_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class App(JsonForm):
    """An app recorded for a tenant, with the manifest (as a dict) it was last installed from."""

    tenant: str
    id: str
    name: str
    version: str
    manifest: dict[str, Any]
    manifest_hash: str
    status: str
    installed_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> App:
        return cls(
            tenant=row.tenant_id,
            id=row.app_id,
            name=row.name,
            version=row.version,
            manifest=row.manifest,
            manifest_hash=row.manifest_hash,
            status=row.status,
            installed_at=row.installed_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True, slots=True)
class AppVersion:
    """One manifest an app was ever installed from, by its hash: what a pinned run reads."""

    tenant: str
    app: str
    manifest_hash: str
    manifest: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Record(JsonForm):
    """An app record: its type, id and data (the kv entry `{record_type}:{id}`)."""

    record_type: str
    id: str
    data: Any
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> Record:
        return cls(row.record_type, row.record_id, row.data, row.created_at, row.updated_at)


@dataclass(frozen=True, slots=True)
class KvEntry:
    """A kv key, with its value when it was asked for (`has_value`)."""

    key: str
    value: Any = None
    has_value: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value} if self.has_value else {"key": self.key}


@dataclass(frozen=True, slots=True)
class MemoryEntry(FromRow):
    """Something an agent wrote down: a note, a summary, a commitment with a due time."""

    id: int
    kind: str
    content: str
    data: Any
    due_at: datetime | None
    expires_at: datetime | None
    created_at: datetime
    done_at: datetime | None


@dataclass(frozen=True, slots=True)
class Message(FromRow):
    """A message of a conversation."""

    id: int
    role: str
    content: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxEmail(JsonForm):
    """An email an agent queued (nothing is sent by the platform itself)."""

    id: int
    app: str
    agent: str
    idempotency_key: str
    to: str
    subject: str
    body: str
    status: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> OutboxEmail:
        return cls(row.id, row.app_id, row.agent_id, row.idempotency_key, row.to_address, row.subject, row.body,
                   row.status, row.created_at)


@dataclass(frozen=True, slots=True)
class Receipt(FromRow):
    """What one woken tick did: the fields of `heartbeats runs --json`."""

    tick_id: str
    at: datetime
    trigger: str
    outcome: str
    reason: str | None
    rows: int
    escalated: bool
    provider: str | None
    model: str | None
    tokens_in: int
    tokens_out: int
    duration_ms: int
    error: str | None
    reply: str | None
    cases: int = 0  # a task's: what the firing brought, how many were already processed, dedupe bypassed
    duplicates: int = 0
    forced: bool = False
    nano_usd: int | None = None  # what its LLM calls cost; None: none made, or one unpriced

    def to_json(self) -> dict[str, Any]:
        body = JsonForm.to_json(self)
        nano = body.pop("nano_usd")
        body["usd"] = None if nano is None else f"{usd(nano):.6f}"
        return body




@dataclass(frozen=True, slots=True)
class Document(JsonForm):
    """One version of a document of an app (`documents:` in its manifest): its content as written."""

    app: str
    name: str
    version: int
    content: dict[str, Any]
    created_at: datetime
    created_by: str  # the workflow run / call that wrote it; "" when not said

    @classmethod
    def from_row(cls, row: Row[Any]) -> Document:
        return cls(row.app_id, row.name, row.version, row.content, row.created_at, row.created_by)


@dataclass(frozen=True, slots=True)
class DocumentSummary(JsonForm):
    """A document of an app: its latest version and when that was written."""

    app: str
    name: str
    version: int
    updated_at: datetime
