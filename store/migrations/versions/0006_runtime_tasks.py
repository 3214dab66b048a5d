"""Runtime tasks: one row per (tenant, app, agent, key), whatever its workflow's state.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Written by hand to match store/tables.py; tests/test_store.py checks that they agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen copies of the column types used by the table at this revision.
_ID = sa.String(63)
_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "runtime_tasks",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("task_key", _ID, nullable=False),
        sa.Column("workflow_id", sa.String(300), nullable=False),
        sa.Column("config", _JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(300), nullable=False),
        sa.Column("created_in", sa.String(400), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "app_id", "agent_id", "task_key", name="pk_runtime_tasks"),
    )
    op.create_index("ix_runtime_tasks_tenant_id_app_id_agent_id_status", "runtime_tasks",
                    ["tenant_id", "app_id", "agent_id", "status"])
    op.create_index("ix_runtime_tasks_created_in", "runtime_tasks", ["created_in"])


def downgrade() -> None:
    op.drop_table("runtime_tasks")
