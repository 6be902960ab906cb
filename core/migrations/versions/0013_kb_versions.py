"""Knowledge base kept while it runs: every change a version (draft, then published), retired procedures with their
successor, and the published revision of each procedure for optimistic concurrency.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

from core.db import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns (plain ALTER TABLE: nothing is copied) and the versions table."""
    op.add_column("procedures", sa.Column("status", sa.String(10), nullable=False, server_default="published"))
    op.add_column("procedures", sa.Column("successor_slug", sa.String(120), nullable=True))
    op.add_column("procedures", sa.Column("revision", sa.Integer, nullable=False, server_default="0"))
    op.add_column("procedures", sa.Column("retired_at", UtcDateTime(), nullable=True))
    op.create_table(
        "procedure_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(120), nullable=False),
        sa.Column("number", sa.Integer, nullable=True),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("base_revision", sa.Integer, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("diff", sa.JSON, nullable=False),
        sa.Column("author", sa.String(80), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("published_by", sa.String(80), nullable=True),
        sa.Column("published_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_procedure_versions_slug_id", "procedure_versions", ["slug", "id"])
    op.create_index("ix_procedure_versions_published_at", "procedure_versions", ["published_at"])
    op.create_index("ix_procedure_versions_state", "procedure_versions", ["state", "id"])


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_index("ix_procedure_versions_state", "procedure_versions")
    op.drop_index("ix_procedure_versions_published_at", "procedure_versions")
    op.drop_index("ix_procedure_versions_slug_id", "procedure_versions")
    op.drop_table("procedure_versions")
    for name in ("retired_at", "revision", "successor_slug", "status"):
        op.drop_column("procedures", name)
