"""Knowledge base: procedures, their texts, FAQ entries.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "faq_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=80), nullable=True),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faq_entries")),
        sa.UniqueConstraint("external_id", name=op.f("uq_faq_entries_external_id")),
    )
    op.create_table(
        "procedures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("category", sa.String(length=200), nullable=False),
        sa.Column("authority", sa.Text(), nullable=False),
        sa.Column("online_link", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("ministry", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=200), nullable=False),
        sa.Column("last_verified", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procedures")),
        sa.UniqueConstraint("code", name=op.f("uq_procedures_code")),
        sa.UniqueConstraint("slug", name=op.f("uq_procedures_slug")),
    )
    op.create_table(
        "faq_procedures",
        sa.Column("faq_id", sa.Integer(), nullable=False),
        sa.Column("procedure_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["faq_id"],
            ["faq_entries.id"],
            name=op.f("fk_faq_procedures_faq_id_faq_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["procedure_id"],
            ["procedures.id"],
            name=op.f("fk_faq_procedures_procedure_id_procedures"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("faq_id", "procedure_id", name=op.f("pk_faq_procedures")),
    )
    with op.batch_alter_table("faq_procedures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_faq_procedures_procedure_id"), ["procedure_id"], unique=False)

    op.create_table(
        "procedure_texts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("procedure_id", sa.Integer(), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("documents", sa.JSON(), nullable=False),
        sa.Column("fees", sa.Text(), nullable=False),
        sa.Column("processing_time", sa.Text(), nullable=False),
        sa.Column("where_to_file", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.JSON(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["procedure_id"],
            ["procedures.id"],
            name=op.f("fk_procedure_texts_procedure_id_procedures"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procedure_texts")),
        sa.UniqueConstraint("procedure_id", "lang", name=op.f("uq_procedure_texts_procedure_id")),
    )
    with op.batch_alter_table("procedure_texts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_procedure_texts_procedure_id"), ["procedure_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("procedure_texts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_procedure_texts_procedure_id"))

    op.drop_table("procedure_texts")
    with op.batch_alter_table("faq_procedures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_faq_procedures_procedure_id"))

    op.drop_table("faq_procedures")
    op.drop_table("procedures")
    op.drop_table("faq_entries")
