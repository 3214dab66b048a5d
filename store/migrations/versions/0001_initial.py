"""Initial schema: tenants, apps, app records (also kv), agent memory, conversations, receipts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written by hand to match store/tables.py; tests/test_store.py checks that they agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types used by the tables at this revision.
_ID = sa.String(63)
_TIME = sa.DateTime(timezone=True)
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_KEY = sa.String(512).with_variant(sa.String(512, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", _ID, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("llm_provider", sa.String(32), nullable=True),
        sa.Column("model_cheap", sa.String(200), nullable=True),
        sa.Column("model_standard", sa.String(200), nullable=True),
        sa.Column("model_premium", sa.String(200), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
    )

    op.create_table(
        "apps",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("manifest", _JSON, nullable=False),
        sa.Column("manifest_hash", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("installed_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "app_id", name="pk_apps"),
        sa.CheckConstraint("status IN ('installed', 'uninstalled')", name="ck_apps_status"),
    )

    op.create_table(
        "app_records",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("key", _KEY, nullable=False),
        sa.Column("record_type", _KEY, nullable=False),
        sa.Column("record_id", _KEY, nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "app_id", "key", name="pk_app_records"),
    )
    op.create_index(
        "ix_app_records_tenant_id_app_id_record_type_key",
        "app_records",
        ["tenant_id", "app_id", "record_type", "key"],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_app_records_data",
            "app_records",
            ["data"],
            postgresql_using="gin",
            postgresql_ops={"data": "jsonb_path_ops"},
        )

    op.create_table(
        "agent_memory",
        sa.Column("id", _AUTO_ID, nullable=False, autoincrement=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("data", _JSON, nullable=True),
        sa.Column("due_at", _TIME, nullable=True),
        sa.Column("expires_at", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_memory"),
    )
    op.create_index(
        "ix_agent_memory_tenant_id_app_id_agent_id_kind",
        "agent_memory",
        ["tenant_id", "app_id", "agent_id", "kind"],
    )

    op.create_table(
        "conversations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.UniqueConstraint(
            "tenant_id",
            "app_id",
            "agent_id",
            "mode",
            name="uq_conversations_tenant_id_app_id_agent_id_mode",
        ),
        sa.CheckConstraint("mode IN ('dedicated', 'main')", name="ck_conversations_mode"),
    )

    op.create_table(
        "messages",
        sa.Column("id", _AUTO_ID, nullable=False, autoincrement=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_messages_conversation_id_conversations",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_messages_conversation_id_id", "messages", ["conversation_id", "id"])

    op.create_table(
        "receipts",
        sa.Column("id", _AUTO_ID, nullable=False, autoincrement=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("heartbeat_id", sa.String(300), nullable=False),
        sa.Column("tick_id", sa.String(200), nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("slug", _ID, nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_receipts"),
        sa.UniqueConstraint("heartbeat_id", "tick_id", name="uq_receipts_heartbeat_id_tick_id"),
    )
    op.create_index("ix_receipts_heartbeat_id_at", "receipts", ["heartbeat_id", "at"])


def downgrade() -> None:
    # Children before parents: messages reference conversations.
    for table in (
        "receipts",
        "messages",
        "conversations",
        "agent_memory",
        "app_records",
        "apps",
        "tenants",
    ):
        op.drop_table(table)
