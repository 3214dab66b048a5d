"""Budgets: the spend ledger, operators' budget overrides, the operator queue, the audit log,
tenants' own model prices, and what each receipt's tick cost.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Written by hand to match store/tables.py; tests/test_store.py checks that they agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen copies of the column types used by the tables at this revision.
_ID = sa.String(63)
_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_NULLABLE_JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("tenants", sa.Column("prices", _NULLABLE_JSON, nullable=True))
    op.add_column("receipts", sa.Column("nano_usd", sa.BigInteger(), nullable=True))
    op.create_table(
        "spend_ledger",
        sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("workflow_id", sa.String(300), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("call_key", sa.String(500), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reserved_nano_usd", sa.BigInteger(), nullable=False),
        sa.Column("nano_usd", sa.BigInteger(), nullable=True),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("cache_read_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_write_tokens", sa.Integer(), nullable=False),
        sa.Column("local_day", sa.String(10), nullable=False),
        sa.Column("local_month", sa.String(7), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("settled_at", _TIME, nullable=True),
        sa.UniqueConstraint("tenant_id", "call_key", name="uq_spend_ledger_tenant_id_call_key"),
        sa.CheckConstraint("status IN ('reserved', 'settled')", name="ck_spend_ledger_status"),
        sa.PrimaryKeyConstraint("id", name="pk_spend_ledger"),
    )
    op.create_index("ix_spend_ledger_tenant_id_app_id_agent_id_local_month", "spend_ledger",
                    ["tenant_id", "app_id", "agent_id", "local_month"])
    op.create_index("ix_spend_ledger_tenant_id_workflow_id_local_day", "spend_ledger",
                    ["tenant_id", "workflow_id", "local_day"])
    op.create_index("ix_spend_ledger_tenant_id_local_day", "spend_ledger", ["tenant_id", "local_day"])
    op.create_table(
        "budget_overrides",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("monthly_nano_usd", sa.BigInteger(), nullable=True),
        sa.Column("waived_month", sa.String(7), nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "app_id", "agent_id", name="pk_budget_overrides"),
    )
    op.create_table(
        "operator_queue",
        sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("open_key", sa.String(400), nullable=True),
        sa.Column("detail", _JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        sa.Column("resolution", _NULLABLE_JSON, nullable=True),
        sa.UniqueConstraint("tenant_id", "open_key", name="uq_operator_queue_tenant_id_open_key"),
        sa.CheckConstraint("status IN ('open', 'approved', 'rejected')", name="ck_operator_queue_status"),
        sa.PrimaryKeyConstraint("id", name="pk_operator_queue"),
    )
    op.create_index("ix_operator_queue_tenant_id_status", "operator_queue", ["tenant_id", "status"])
    op.create_table(
        "audit_log",
        sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("detail", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_tenant_id_at", "audit_log", ["tenant_id", "at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("operator_queue")
    op.drop_table("budget_overrides")
    op.drop_table("spend_ledger")
    with op.batch_alter_table("receipts") as batch:
        batch.drop_column("nano_usd")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("prices")
