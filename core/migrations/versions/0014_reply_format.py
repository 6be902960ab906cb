"""Replies keep their structure (headings, lists, links as bot/cards.py blocks) beside their plain text: the chat
log for the web chat, each outbox part for Telegram's formatting. Null for plain messages.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable columns (plain ALTER TABLE: nothing is copied)."""
    op.add_column("chat_messages", sa.Column("blocks", sa.JSON, nullable=True))
    op.add_column("outbox", sa.Column("blocks", sa.JSON, nullable=True))


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_column("outbox", "blocks")
    op.drop_column("chat_messages", "blocks")
