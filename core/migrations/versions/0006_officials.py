"""Officials: departments, routing, SLA policies, users and API tokens, the ticket audit trail.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from core.db import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TICKET_TIMES = (
    "ack_deadline",
    "resolve_deadline",
    "acknowledged_at",
    "first_response_at",
    "closed_at",
    "paused_at",
    "ack_breached_at",
    "resolve_breached_at",
    "expected_at",
)


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(80), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200), nullable=False, server_default=""),
        sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("department", sa.String(80), sa.ForeignKey("departments.slug", ondelete="CASCADE"), nullable=False),
        sa.UniqueConstraint("kind", "value", name="uq_routing_rules_kind_value"),
    )
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("department", sa.String(80), sa.ForeignKey("departments.slug", ondelete="CASCADE"), nullable=False),
        sa.Column("category", sa.String(200), nullable=False, server_default="*"),
        sa.Column("urgency", sa.String(10), nullable=False, server_default="normal"),
        sa.Column("ack_hours", sa.Float(), nullable=False),
        sa.Column("resolve_hours", sa.Float(), nullable=False),
        sa.UniqueConstraint("department", "category", "urgency", name="uq_sla_policies_scope"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(80), nullable=False, unique=True),
        sa.Column("full_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("department", sa.String(80), sa.ForeignKey("departments.slug", ondelete="SET NULL"), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_users_department", "users", ["department"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False, server_default=""),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("department", sa.String(80), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_ticket_events_ticket_at", "ticket_events", ["ticket_id", "at"])
    op.create_index("ix_ticket_events_at", "ticket_events", ["at"])
    op.create_index("ix_ticket_events_kind", "ticket_events", ["kind"])
    op.create_index("ix_ticket_events_user_id", "ticket_events", ["user_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("read_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_notifications_user_id", "notifications", ["user_id"])
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("procedure_slug", sa.String(120), nullable=True))
        batch_op.add_column(sa.Column("urgency", sa.String(10), nullable=False, server_default="normal"))
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        for name in TICKET_TIMES:
            batch_op.add_column(sa.Column(name, UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("apologies", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("resolved_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("first_response_hours", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("resolution_hours", sa.Float(), nullable=True))
        batch_op.create_foreign_key(
            "fk_tickets_assignee_id_users", "users", ["assignee_id"], ["id"], ondelete="SET NULL"
        )
        # The queue walks these in deadline order and finds its filters in them (no sort, no table reads).
        batch_op.drop_index("ix_tickets_deadline")
        batch_op.drop_index("ix_tickets_status")  # alone it misleads SQLite into sorting half the table
        batch_op.create_index("ix_tickets_department_queue", ["department", "deadline", "status", "paused_at"])
        batch_op.create_index("ix_tickets_deadline_queue", ["deadline", "status", "paused_at", "department"])
        batch_op.create_index(
            "ix_tickets_assignee_queue", ["assignee_id", "deadline", "status", "department", "paused_at"]
        )
        batch_op.create_index("ix_tickets_ack_watch", ["ack_breached_at", "paused_at", "status", "deadline"])
        batch_op.create_index("ix_tickets_resolve_watch", ["resolve_breached_at", "paused_at", "status", "deadline"])
        batch_op.create_index("ix_tickets_department_created_at", ["department", "created_at"])
        batch_op.create_index("ix_tickets_resolved_at", ["resolved_at"])


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_resolved_at")
        batch_op.drop_index("ix_tickets_department_created_at")
        batch_op.drop_index("ix_tickets_resolve_watch")
        batch_op.drop_index("ix_tickets_ack_watch")
        batch_op.drop_index("ix_tickets_assignee_queue")
        batch_op.drop_index("ix_tickets_deadline_queue")
        batch_op.drop_index("ix_tickets_department_queue")
        batch_op.create_index("ix_tickets_deadline", ["deadline"])
        batch_op.create_index("ix_tickets_status", ["status"])
        batch_op.drop_constraint("fk_tickets_assignee_id_users", type_="foreignkey")
        for name in (
            "resolution_hours",
            "first_response_hours",
            "resolved_at",
            "apologies",
            *TICKET_TIMES,
            "assignee_id",
            "urgency",
            "procedure_slug",
            "category",
        ):
            batch_op.drop_column(name)
    for table in (
        "notifications",
        "ticket_events",
        "api_tokens",
        "users",
        "sla_policies",
        "routing_rules",
        "departments",
    ):
        op.drop_table(table)
