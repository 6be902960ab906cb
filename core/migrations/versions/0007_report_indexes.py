"""Reports: indexes for the accountability figures — range scans by time that never touch the table rows.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Open tickets only (a small, partial index): what is overdue now, by department, official or category.
OPEN_TICKETS = "status IN ('new', 'acknowledged', 'reopened', 'transferred')"

# (name, table, columns): the same Index entries are declared on the models.
INDEXES = (
    # the bot's replies in a period: counts by status, latency percentiles, answers by procedure — index only
    ("ix_chat_messages_author_at", "chat_messages", ["author", "at", "status", "latency_ms", "procedure"]),
    ("ix_feedback_at", "feedback", ["at"]),
    # tickets created / first answered / resolved in a period, with every column the figures group or add up
    (
        "ix_tickets_created_report",
        "tickets",
        ["created_at", "department", "assignee_id", "category", "resolved_at", "apologies"],
    ),
    (
        "ix_tickets_first_response_report",
        "tickets",
        ["first_response_at", "department", "assignee_id", "category", "first_response_hours"],
    ),
    (
        "ix_tickets_resolved_report",
        "tickets",
        ["resolved_at", "department", "assignee_id", "category", "apologies", "rating", "resolution_hours"],
    ),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    op.create_index(
        "ix_tickets_open_deadline",
        "tickets",
        ["deadline", "paused_at", "department", "assignee_id", "category"],
        sqlite_where=sa.text(OPEN_TICKETS),
        postgresql_where=sa.text(OPEN_TICKETS),
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_open_deadline", table_name="tickets")
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
