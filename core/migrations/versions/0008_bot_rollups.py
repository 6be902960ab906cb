"""Reports: per-day rollups of the bot's replies, and indexes that read an exact percentile inside one histogram
bucket (bot latencies, tickets' first-response and resolution hours).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from core.db import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# (name, table, columns): the same Index entries are declared on the models.
INDEXES = (
    ("ix_chat_messages_author_latency", "chat_messages", ["author", "latency_ms", "at", "status"]),
    (
        "ix_tickets_first_response_hours",
        "tickets",
        ["first_response_hours", "first_response_at", "department", "assignee_id", "category"],
    ),
    (
        "ix_tickets_resolution_hours",
        "tickets",
        ["resolution_hours", "resolved_at", "department", "assignee_id", "category"],
    ),
)


def upgrade() -> None:
    op.create_table(
        "bot_reply_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("procedure", sa.String(120), primary_key=True),
        sa.Column("replies", sa.Integer(), nullable=False),
    )
    op.create_table(
        "bot_latency_days",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("bucket", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("replies", sa.Integer(), nullable=False),
    )
    op.create_table(
        "report_rollups",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("through", sa.Date(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("built_at", UtcDateTime(), nullable=False),
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("report_rollups")
    op.drop_table("bot_latency_days")
    op.drop_table("bot_reply_days")
