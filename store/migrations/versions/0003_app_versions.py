"""Every manifest an app was installed from, by hash, so a pinned run keeps its definition.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Written by hand to match store/tables.py; tests/test_store.py checks that they agree. The current
manifest of every recorded app becomes its first kept version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copies of the column types used by the tables at this revision.
_ID = sa.String(63)
_TIME = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "app_versions",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("app_id", _ID, nullable=False),
        sa.Column("manifest_hash", sa.String(128), nullable=False),
        sa.Column("manifest", _JSON, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "app_id", "manifest_hash", name="pk_app_versions"),
    )
    op.execute(
        "INSERT INTO app_versions (tenant_id, app_id, manifest_hash, manifest, created_at)"
        " SELECT tenant_id, app_id, manifest_hash, manifest, updated_at FROM apps"
    )


def downgrade() -> None:
    op.drop_table("app_versions")
