"""Reports: each feedback carries the judged answer's status and procedure, copied by a trigger, so that a report
groups a year of feedback without looking each answer up in the chat log.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COPY = (
    "answer_status = (SELECT status FROM chat_messages WHERE chat_messages.id = {row}.message_id),"
    " answer_procedure = (SELECT procedure FROM chat_messages WHERE chat_messages.id = {row}.message_id)"
)
# SQLite cannot change NEW before the write: the row is completed right after it
SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER feedback_answer_{event} AFTER {clause} ON feedback"  # noqa: S608 - constant SQL
    f" BEGIN UPDATE feedback SET {COPY.format(row='NEW')} WHERE id = NEW.id; END"
    for event, clause in (("insert", "INSERT"), ("update", "UPDATE OF message_id"))
)
POSTGRES_FUNCTION = """
CREATE FUNCTION feedback_answer_copy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT status, procedure INTO NEW.answer_status, NEW.answer_procedure
    FROM chat_messages WHERE chat_messages.id = NEW.message_id;
    RETURN NEW;
END $$
"""
POSTGRES_TRIGGER = (
    "CREATE TRIGGER feedback_answer_copy BEFORE INSERT OR UPDATE OF message_id ON feedback"
    " FOR EACH ROW EXECUTE FUNCTION feedback_answer_copy()"
)


def upgrade() -> None:
    """Add the two columns, fill them for the feedback there is, keep them by trigger, index them for reports."""
    op.add_column("feedback", sa.Column("answer_status", sa.String(20), nullable=True))
    op.add_column("feedback", sa.Column("answer_procedure", sa.String(120), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("LOCK TABLE feedback IN SHARE MODE")  # no feedback may be written between the fill and the trigger
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
    op.execute(f"UPDATE feedback SET {COPY.format(row='feedback')}")  # noqa: S608 - constant SQL
    op.create_index("ix_feedback_report", "feedback", ["at", "value", "answer_status", "answer_procedure"])


def downgrade() -> None:
    """Drop the index, the trigger and the columns."""
    op.drop_index("ix_feedback_report", "feedback")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER feedback_answer_copy ON feedback")
        op.execute("DROP FUNCTION feedback_answer_copy()")
    else:
        for name in ("insert", "update"):
            op.execute(f"DROP TRIGGER feedback_answer_{name}")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("answer_procedure")
        batch.drop_column("answer_status")
