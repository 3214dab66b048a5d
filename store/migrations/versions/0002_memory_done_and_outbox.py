"""Commitment life cycle on agent memory (done_at, claimed_by, dedupe_key) and the email outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02

Written by hand to match store/tables.py; tests/test_store.py checks that they agree. Only
additions: nullable columns, a unique index and a new table, so no SQLite table rebuild is needed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the column types used by the tables at this revision.
_ID = sa.String(63)
_TIME = sa.DateTime(timezone=True)
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("agent_memory", sa.Column("done_at", _TIME, nullable=True))
    op.add_column("agent_memory", sa.Column("claimed_by", sa.String(520), nullable=True))
    op.add_column("agent_memory", sa.Column("dedupe_key", sa.String(600), nullable=True))
    op.create_index(
        "ix_agent_memory_tenant_id_app_id_agent_id_dedupe_key",
        "agent_memory",
        ["tenant_id", "app_id", "agent_id", "dedupe_key"],
        unique=True,
    )

    op.create_table(
        "outbox",
        sa.Column("id", _AUTO_ID, nullable=False, autoincrement=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("agent_id", _ID, nullable=False),
        sa.Column("idempotency_key", sa.String(600), nullable=False),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint(
            "tenant_id", "app_id", "idempotency_key", name="uq_outbox_tenant_id_app_id_idempotency_key"
        ),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_index("ix_agent_memory_tenant_id_app_id_agent_id_dedupe_key", table_name="agent_memory")
    # SQLite drops columns only by rebuilding the table; batch mode does that.
    with op.batch_alter_table("agent_memory") as batch:
        batch.drop_column("dedupe_key")
        batch.drop_column("claimed_by")
        batch.drop_column("done_at")
