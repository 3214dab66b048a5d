"""Idempotent requests: the first answer to each HTTP request that carried an Idempotency-Key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08

Written by hand to match store/tables.py; tests/test_store.py checks that they agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen copies of the column types used by the table at this revision.
_ID = sa.String(63)
_TIME = sa.DateTime(timezone=True)
_NULLABLE_JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "idempotent_requests",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("answer", _NULLABLE_JSON, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "app_id", "route", "idempotency_key", name="pk_idempotent_requests"),
    )
    op.create_index("ix_idempotent_requests_expires_at", "idempotent_requests", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotent_requests")
