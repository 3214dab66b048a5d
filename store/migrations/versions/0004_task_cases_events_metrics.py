"""Tasks: receipts count cases, processed case keys, events, metrics, threshold states, webhook secrets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Written by hand to match store/tables.py; tests/test_store.py checks that they agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copies of the column types used by the tables at this revision.
_ID = sa.String(63)
_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_NULLABLE_JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
_KEY = sa.String(512).with_variant(sa.String(512, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("receipts") as batch:
        batch.add_column(sa.Column("cases", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("duplicates", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("forced", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "processed_cases",
        sa.Column("task_id", sa.String(300), nullable=False),
        sa.Column("case_key", _KEY, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("processed_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("task_id", "case_key", name="pk_processed_cases"),
    )
    op.create_index("ix_processed_cases_expires_at", "processed_cases", ["expires_at"])
    op.create_table(
        "events",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("body", _JSON, nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.Column("tasks", _NULLABLE_JSON, nullable=True),
        sa.Column("delivered_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "app_id", "event_id", name="pk_events"),
    )
    op.create_table(
        "metrics",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "app_id", "metric", name="pk_metrics"),
    )
    op.create_table(
        "threshold_states",
        sa.Column("task_id", sa.String(300), nullable=False),
        sa.Column("trigger", sa.Integer(), nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("crossed_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("task_id", "trigger", name="pk_threshold_states"),
    )
    op.create_table(
        "webhook_secrets",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "app_id", name="pk_webhook_secrets"),
    )


def downgrade() -> None:
    for table in ("webhook_secrets", "threshold_states", "metrics", "events", "processed_cases"):
        op.drop_table(table)
    with op.batch_alter_table("receipts") as batch:
        batch.drop_column("forced")
        batch.drop_column("duplicates")
        batch.drop_column("cases")
