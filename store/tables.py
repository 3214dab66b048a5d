"""The store's tables. Every row carries `tenant_id`, and every query of the data areas filters on it.

The migrations in migrations/versions/ (0001_initial.py, 0002_memory_done_and_outbox.py, ...) are
written by hand to match this file; tests/test_store.py checks that a migrated database has exactly
these tables and indexes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.types import JSONData, NullableJSONData, UTCDateTime, utcnow

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

# App data keys sort and prefix-match byte by byte on both backends: SQLite's default (BINARY)
# and PostgreSQL's "C" collation agree, and "C" lets a LIKE 'prefix%' use the primary key index.
KeyString = String(512).with_variant(String(512, collation="C"), "postgresql")

# Identifier-sized strings: tenant/app/agent ids are at most 63 characters (manifest.ids).
IdString = String(63)

# Stable constraint names, so the hand-written migration and later ones can refer to them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING)


class TenantRow(Base):
    """A tenant: its time zone and LLM settings."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(IdString, primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    llm_provider: Mapped[str | None] = mapped_column(String(32))
    model_cheap: Mapped[str | None] = mapped_column(String(200))
    model_standard: Mapped[str | None] = mapped_column(String(200))
    model_premium: Mapped[str | None] = mapped_column(String(200))
    # The tenant's own prices for models the pricing library lacks: {model: [in, out]} USD per Mtok.
    prices: Mapped[Any | None] = mapped_column(NullableJSONData)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppRow(Base):
    """An app installed (or once installed) for a tenant, with the manifest it came from."""

    __tablename__ = "apps"
    __table_args__ = (CheckConstraint("status IN ('installed', 'uninstalled')", name="status"),)

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    app_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONData)
    manifest_hash: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppVersionRow(Base):
    """Every manifest an app was installed from, by hash: a run pinned to one keeps reading it."""

    __tablename__ = "app_versions"

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    app_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    manifest_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONData)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppRecordRow(Base):
    """App data. One table backs "records" and ctx.kv: kv key `{record_type}:{id}` IS the record.

    `record_type` and `record_id` are derived from `key` (split at the first ':'; a key without ':'
    has record_type ''), so a pre-filter over records also sees what an app wrote through kv.
    """

    __tablename__ = "app_records"
    __table_args__ = (
        # Serves "records of one type, ordered by key" (list/query with LIMIT) without a sort.
        Index(None, "tenant_id", "app_id", "record_type", "key"),
        # PostgreSQL only: makes `data @> {...}` filters index-assisted on large tables.
        Index(
            "ix_app_records_data",
            "data",
            postgresql_using="gin",
            postgresql_ops={"data": "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    app_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    key: Mapped[str] = mapped_column(KeyString, primary_key=True)
    record_type: Mapped[str] = mapped_column(KeyString)
    record_id: Mapped[str] = mapped_column(KeyString)
    data: Mapped[Any] = mapped_column(JSONData)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MemoryRow(Base):
    """Something an agent wrote down: a summary, a note, a commitment with a due time.

    Commitments have a life cycle (revision 0002): `claimed_by` names the tick whose pre-filter fed
    the entry to the agent, `done_at` when that tick completed (a done entry is never fed again).
    `dedupe_key`, when set, is unique per agent: a retried writer finds its entry instead of adding
    a second one.
    """

    __tablename__ = "agent_memory"
    __table_args__ = (
        Index(None, "tenant_id", "app_id", "agent_id", "kind"),
        # A unique index, not a constraint: SQLite can add one without rebuilding the table. NULLs
        # never collide, so entries without a key are unconstrained (both backends).
        Index(None, "tenant_id", "app_id", "agent_id", "dedupe_key", unique=True),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(IdString)
    app_id: Mapped[str] = mapped_column(IdString)
    agent_id: Mapped[str] = mapped_column(IdString)
    kind: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    data: Mapped[Any | None] = mapped_column(NullableJSONData)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(520))  # "{heartbeat_id}/{tick_id}"
    dedupe_key: Mapped[str | None] = mapped_column(String(600))


class ConversationRow(Base):
    """One conversation per (tenant, app, agent, mode): the agent's own thread or the main one."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "app_id", "agent_id", "mode"),
        CheckConstraint("mode IN ('dedicated', 'main')", name="mode"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(IdString)
    app_id: Mapped[str] = mapped_column(IdString)
    agent_id: Mapped[str] = mapped_column(IdString)
    mode: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessageRow(Base):
    """A message in a conversation."""

    __tablename__ = "messages"
    __table_args__ = (Index(None, "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(IdString)
    conversation_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReceiptRow(Base):
    """What one woken tick of a heartbeat did: the fields of `heartbeats runs --json`."""

    __tablename__ = "receipts"
    __table_args__ = (
        # An activity retried by Temporal must not write the same tick's receipt twice.
        UniqueConstraint("heartbeat_id", "tick_id"),
        Index(None, "heartbeat_id", "at"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(IdString)
    heartbeat_id: Mapped[str] = mapped_column(String(300))
    tick_id: Mapped[str] = mapped_column(String(200))
    app_id: Mapped[str] = mapped_column(IdString)
    agent_id: Mapped[str] = mapped_column(IdString)
    slug: Mapped[str] = mapped_column(IdString)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    trigger: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # What the agent said (an excerpt, capped by Receipts.add), so operators can read it.
    reply: Mapped[str | None] = mapped_column(Text)
    # A task's run: how many cases the firing brought, how many of those were already processed,
    # and whether an operator forced it past dedupe.
    cases: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    duplicates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    forced: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # What the tick's LLM calls cost (nano-USD, from the spend ledger); None: no call, or one unpriced.
    nano_usd: Mapped[int | None] = mapped_column(BigInteger)


class OutboxRow(Base):
    """An email the `email.send` skill queued. Nothing here is ever sent by the platform itself.

    One row per (tenant, app, idempotency key): a tool call retried with the same key (activity
    retry, replay after a crash) finds its row and queues nothing new.
    """

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("tenant_id", "app_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(IdString)
    app_id: Mapped[str] = mapped_column(IdString)
    agent_id: Mapped[str] = mapped_column(IdString)
    idempotency_key: Mapped[str] = mapped_column(String(600))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProcessedCaseRow(Base):
    """A case a task has processed, by key, until `expires_at` (the task's dedupe TTL)."""

    __tablename__ = "processed_cases"
    __table_args__ = (Index(None, "expires_at"),)

    task_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    case_key: Mapped[str] = mapped_column(KeyString, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(IdString)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EventRow(Base):
    """An event posted to an app, once per id: its body, and which tasks it was delivered to."""

    __tablename__ = "events"

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    app_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    body: Mapped[Any] = mapped_column(JSONData)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    tasks: Mapped[Any | None] = mapped_column(NullableJSONData)  # task workflow ids, once delivered
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MetricRow(Base):
    """A metric's last value, per app."""

    __tablename__ = "metrics"

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    app_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    metric: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ThresholdStateRow(Base):
    """Whether a task's threshold trigger is armed: it fires once per crossing into its condition."""

    __tablename__ = "threshold_states"

    task_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    trigger: Mapped[int] = mapped_column(Integer, primary_key=True)  # the trigger's index in the task
    tenant_id: Mapped[str] = mapped_column(IdString)
    armed: Mapped[bool] = mapped_column(Boolean, default=True)
    crossed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookSecretRow(Base):
    """The secret outside senders sign an app's events with (Standard Webhooks)."""

    __tablename__ = "webhook_secrets"

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    app_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotentRequestRow(Base):
    """The first answer to a request that carried an `Idempotency-Key`, so a retry gets it again.

    One row per (tenant, app, route, key). `status` is NULL while the first request still runs;
    `request_hash` tells a retry from a different request reusing the key.
    """

    __tablename__ = "idempotent_requests"
    __table_args__ = (Index(None, "expires_at"),)

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    app_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    route: Mapped[str] = mapped_column(String(200), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    answer: Mapped[Any | None] = mapped_column(NullableJSONData)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RuntimeTaskRow(Base):
    """A runtime task (`job:` workflow): its key is unique per agent; the row outlives its run so a
    second create with the key finds it, and lists show what ran."""

    __tablename__ = "runtime_tasks"
    __table_args__ = (Index(None, "tenant_id", "app_id", "agent_id", "status"), Index(None, "created_in"))

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    app_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    agent_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    task_key: Mapped[str] = mapped_column(IdString, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(300))
    config: Mapped[Any] = mapped_column(JSONData)
    status: Mapped[str] = mapped_column(String(16))  # active | done | cancelled
    created_by: Mapped[str] = mapped_column(String(300))
    created_in: Mapped[str | None] = mapped_column(String(400))  # the agent run that created it, if one did
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SpendRow(Base):
    """The spend ledger: one row per LLM call (its `call_key`), reserved before the call and settled
    with the provider's usage after it. Amounts are integer nano-USD: sums are exact."""

    __tablename__ = "spend_ledger"
    __table_args__ = (
        UniqueConstraint("tenant_id", "call_key"),
        CheckConstraint("status IN ('reserved', 'settled')", name="status"),
        Index(None, "tenant_id", "app_id", "agent_id", "local_month"),
        Index(None, "tenant_id", "workflow_id", "local_day"),
        Index(None, "tenant_id", "local_day"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(IdString)
    app_id: Mapped[str] = mapped_column(IdString)
    agent_id: Mapped[str] = mapped_column(IdString)
    workflow_id: Mapped[str] = mapped_column(String(300))  # the heartbeat, task, runtime task, chat ... charged
    purpose: Mapped[str] = mapped_column(String(32))
    call_key: Mapped[str] = mapped_column(String(500))  # one logical call: retries of it share the key
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    reserved_nano_usd: Mapped[int] = mapped_column(BigInteger, default=0)
    nano_usd: Mapped[int | None] = mapped_column(BigInteger)  # settled cost; None: no price known
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    local_day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the tenant's zone
    local_month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BudgetOverrideRow(Base):
    """An operator's decision on an agent's monthly ceiling: raised, or waived for one month."""

    __tablename__ = "budget_overrides"

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    app_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    agent_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    monthly_nano_usd: Mapped[int | None] = mapped_column(BigInteger)  # replaces the manifest's monthly_usd
    waived_month: Mapped[str | None] = mapped_column(String(7))  # approved once: no ceiling in this month
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QueueItemRow(Base):
    """The operator queue: what waits for a human. `open_key` is set while the item is open and is
    unique: one open item per subject (a held agent is one item, not one per tick)."""

    __tablename__ = "operator_queue"
    __table_args__ = (
        UniqueConstraint("tenant_id", "open_key"),
        CheckConstraint("status IN ('open', 'approved', 'rejected')", name="status"),
        Index(None, "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(IdString)
    app_id: Mapped[str] = mapped_column(IdString)
    agent_id: Mapped[str] = mapped_column(IdString)
    kind: Mapped[str] = mapped_column(String(32))  # budget_monthly | ...
    subject: Mapped[str] = mapped_column(String(300))  # what it is about: an agent, a workflow ID
    open_key: Mapped[str | None] = mapped_column(String(400))
    detail: Mapped[Any] = mapped_column(JSONData)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[Any | None] = mapped_column(NullableJSONData)


class AuditRow(Base):
    """The audit log: every budget decision and operator action, who, when and what."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "tenant_id", "at"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(IdString)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))  # "operator:cli", "api", "system"
    action: Mapped[str] = mapped_column(String(64))  # pause, resume, budget_monthly, queue_resolve, ...
    target: Mapped[str] = mapped_column(String(300))
    detail: Mapped[Any] = mapped_column(JSONData)


class ShadowRunRow(Base):
    """A case's shadow run (the latest): the run the proposals of the case belong to."""

    __tablename__ = "shadow_runs"

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    case_key: Mapped[str] = mapped_column(String(400), primary_key=True)
    tick_id: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ShadowProposalRow(Base):
    """A non-LOW tool call a shadow run asked for and did not execute; `call_key` is the tool call's
    idempotency key (a retried activity records it once)."""

    __tablename__ = "shadow_proposals"
    __table_args__ = (UniqueConstraint("tenant_id", "call_key"), Index(None, "tenant_id", "workflow_id", "case_key"))

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(IdString)
    workflow_id: Mapped[str] = mapped_column(String(300))
    case_key: Mapped[str] = mapped_column(String(400))
    tick_id: Mapped[str] = mapped_column(String(200))
    call_key: Mapped[str] = mapped_column(String(500))
    tool: Mapped[str] = mapped_column(String(130))
    arguments: Mapped[Any] = mapped_column(JSONData)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ShadowDecisionRow(Base):
    """What a human decided for a case: the tool calls that should happen (`[]`: no action)."""

    __tablename__ = "shadow_decisions"

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    case_key: Mapped[str] = mapped_column(String(400), primary_key=True)
    actions: Mapped[Any] = mapped_column(JSONData)
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ShadowPromotionRow(Base):
    """A heartbeat or task whose shadow mode an operator switched off for this tenant."""

    __tablename__ = "shadow_promotions"

    tenant_id: Mapped[str] = mapped_column(IdString, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    promoted_by: Mapped[str] = mapped_column(String(200))
    promoted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    report: Mapped[Any] = mapped_column(JSONData)


class DocumentRow(Base):
    """One version of a document a state-machine workflow keeps (the app's `documents:`).

    A write adds a row, version = the previous + 1: (tenant, app, name, version) is unique, so two
    writers never both get one version. `idempotency_key` is the writing tool call's key: a retried
    call finds its row and writes nothing (NULL for writes without one; NULLs never collide).
    """

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("tenant_id", "app_id", "name", "version"),
        UniqueConstraint("tenant_id", "idempotency_key"),
        CheckConstraint("version >= 1", name="version"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(IdString)
    app_id: Mapped[str] = mapped_column(IdString)
    name: Mapped[str] = mapped_column(IdString)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[Any] = mapped_column(JSONData)
    created_by: Mapped[str] = mapped_column(String(500), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(600))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
