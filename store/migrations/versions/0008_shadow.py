"""Shadow mode: shadow runs per case, the proposals they recorded, human decisions, promotions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Written by hand to match store/tables.py; tests/test_store.py checks that they agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Frozen copies of the column types used by the tables at this revision.
_ID = sa.String(63)
_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "shadow_runs",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("workflow_id", sa.String(300), nullable=False),
        sa.Column("case_key", sa.String(400), nullable=False),
        sa.Column("tick_id", sa.String(200), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "workflow_id", "case_key", name="pk_shadow_runs"),
    )
    op.create_table(
        "shadow_proposals",
        sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("workflow_id", sa.String(300), nullable=False),
        sa.Column("case_key", sa.String(400), nullable=False),
        sa.Column("tick_id", sa.String(200), nullable=False),
        sa.Column("call_key", sa.String(500), nullable=False),
        sa.Column("tool", sa.String(130), nullable=False),
        sa.Column("arguments", _JSON, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.UniqueConstraint("tenant_id", "call_key", name="uq_shadow_proposals_tenant_id_call_key"),
        sa.PrimaryKeyConstraint("id", name="pk_shadow_proposals"),
    )
    op.create_index("ix_shadow_proposals_tenant_id_workflow_id_case_key", "shadow_proposals",
                    ["tenant_id", "workflow_id", "case_key"])
    op.create_table(
        "shadow_decisions",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("workflow_id", sa.String(300), nullable=False),
        sa.Column("case_key", sa.String(400), nullable=False),
        sa.Column("actions", _JSON, nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("decided_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "workflow_id", "case_key", name="pk_shadow_decisions"),
    )
    op.create_table(
        "shadow_promotions",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("workflow_id", sa.String(300), nullable=False),
        sa.Column("promoted_by", sa.String(200), nullable=False),
        sa.Column("promoted_at", _TIME, nullable=False),
        sa.Column("report", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "workflow_id", name="pk_shadow_promotions"),
    )


def downgrade() -> None:
    op.drop_table("shadow_promotions")
    op.drop_table("shadow_decisions")
    op.drop_table("shadow_proposals")
    op.drop_table("shadow_runs")
