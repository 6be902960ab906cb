"""Officials' workspace: reply templates, who is viewing a ticket, once-only form submissions, staff Telegram
links, the deadline-soon warning, and a folded search text of each ticket.

Revision ID: 0012
Revises: 0011
"""

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

from core.db import UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def fold_for_search(text: str) -> str:
    """Lower case, no diacritics, đ as d, single spaces: retrieval.normalize.fold as of this revision (frozen)."""
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip().lower().replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def upgrade() -> None:
    """Add the tables and columns, and fill each ticket's search text."""
    op.create_table(
        "reply_templates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "department",
            sa.String(80),
            sa.ForeignKey("departments.slug", ondelete="CASCADE", name="fk_reply_templates_department_departments"),
            nullable=False,
        ),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_by", sa.String(80), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("department", "title", name="uq_reply_templates_department_title"),
    )
    op.create_table(
        "ticket_viewers",
        sa.Column(
            "ticket_id",
            sa.Integer,
            sa.ForeignKey("tickets.id", ondelete="CASCADE", name="fk_ticket_viewers_ticket_id_tickets"),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_ticket_viewers_user_id_users"),
            primary_key=True,
        ),
        sa.Column("seen_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "form_submissions",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_form_submissions_user_id_users"),
            nullable=False,
        ),
        sa.Column("at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_form_submissions_at", "form_submissions", ["at"])
    op.create_index("ix_notifications_unread", "notifications", ["user_id", "read_at", "id"])
    # Plain ALTER TABLE, never a batch copy: copying `tickets` on SQLite would drop its report triggers, and
    # dropping the old `users` would cascade to every table that points at it. Unique indexes instead of
    # constraints for the same reason (SQLite adds no constraint to an existing table).
    for column in (
        sa.Column("telegram_chat_id", sa.String(40), nullable=True),
        sa.Column("telegram_link_code", sa.String(16), nullable=True),
        sa.Column("telegram_link_expires_at", UtcDateTime(), nullable=True),
    ):
        op.add_column("users", column)
    op.create_index("uq_users_telegram_chat_id", "users", ["telegram_chat_id"], unique=True)
    op.create_index("uq_users_telegram_link_code", "users", ["telegram_link_code"], unique=True)
    op.add_column("tickets", sa.Column("deadline_warned_at", UtcDateTime(), nullable=True))
    op.add_column("tickets", sa.Column("search_text", sa.Text, nullable=False, server_default=""))
    tickets = sa.table("tickets", sa.column("id", sa.Integer), sa.column("code"), sa.column("question"))
    bind = op.get_bind()
    rows = bind.execute(sa.select(tickets.c.id, tickets.c.code, tickets.c.question)).all()
    if rows:
        stmt = sa.text("UPDATE tickets SET search_text = :text WHERE id = :id")
        bind.execute(stmt, [{"id": r.id, "text": fold_for_search(f"{r.code} {r.question}")} for r in rows])


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_column("tickets", "search_text")
    op.drop_column("tickets", "deadline_warned_at")
    op.drop_index("uq_users_telegram_link_code", "users")
    op.drop_index("uq_users_telegram_chat_id", "users")
    for name in ("telegram_link_expires_at", "telegram_link_code", "telegram_chat_id"):
        op.drop_column("users", name)
    op.drop_index("ix_notifications_unread", "notifications")
    op.drop_index("ix_form_submissions_at", "form_submissions")
    op.drop_table("form_submissions")
    op.drop_table("ticket_viewers")
    op.drop_table("reply_templates")
