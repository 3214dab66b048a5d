"""Documents: the versioned documents state-machine workflows create, load and update.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

Written by hand to match store/tables.py; tests/test_store.py checks that they agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen copies of the column types used by the tables at this revision.
_ID = sa.String(63)
_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("name", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", _JSON, nullable=False),
        sa.Column("created_by", sa.String(500), nullable=False),
        sa.Column("idempotency_key", sa.String(600), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.CheckConstraint("version >= 1", name="ck_documents_version"),
        sa.UniqueConstraint("tenant_id", "app_id", "name", "version",
                            name="uq_documents_tenant_id_app_id_name_version"),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_documents_tenant_id_idempotency_key"),
        sa.PrimaryKeyConstraint("id", name="pk_documents"),
    )


def downgrade() -> None:
    op.drop_table("documents")
