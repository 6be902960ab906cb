"""Queue: tickets per department and status, kept exact by triggers, so a queue page's total is a lookup.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# SQLite: one trigger per change; an UPSERT creates the (department, status) row the first time it is needed.
SQLITE_BUMP = """
INSERT INTO ticket_counts (department, status, n) VALUES (coalesce({row}.department, ''), {row}.status, {delta})
ON CONFLICT (department, status) DO UPDATE SET n = n + excluded.n;
"""
SQLITE_TRIGGERS = (
    f"CREATE TRIGGER ticket_counts_insert AFTER INSERT ON tickets BEGIN {SQLITE_BUMP.format(row='NEW', delta=1)} END",
    f"CREATE TRIGGER ticket_counts_delete AFTER DELETE ON tickets BEGIN {SQLITE_BUMP.format(row='OLD', delta=-1)} END",
    "CREATE TRIGGER ticket_counts_update AFTER UPDATE OF department, status ON tickets"
    " WHEN OLD.department IS NOT NEW.department OR OLD.status IS NOT NEW.status BEGIN"
    f" {SQLITE_BUMP.format(row='OLD', delta=-1)} {SQLITE_BUMP.format(row='NEW', delta=1)} END",
)

# PostgreSQL: one function for the three events. The two rows a move touches are locked in key order, so two
# transactions moving tickets in opposite directions wait for each other instead of deadlocking.
POSTGRES_FUNCTION = """
CREATE FUNCTION ticket_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_key text[];
    new_key text[];
BEGIN
    IF TG_OP <> 'INSERT' THEN old_key := ARRAY[coalesce(OLD.department, ''), OLD.status]; END IF;
    IF TG_OP <> 'DELETE' THEN new_key := ARRAY[coalesce(NEW.department, ''), NEW.status]; END IF;
    IF old_key IS NOT DISTINCT FROM new_key THEN RETURN NULL; END IF;
    INSERT INTO ticket_counts (department, status, n)
    SELECT k[1], k[2], d FROM (VALUES (old_key, -1), (new_key, 1)) AS change (k, d)
    WHERE k IS NOT NULL ORDER BY 1, 2
    ON CONFLICT (department, status) DO UPDATE SET n = ticket_counts.n + excluded.n;
    RETURN NULL;
END $$
"""
POSTGRES_TRIGGER = (
    "CREATE TRIGGER ticket_counts_keep AFTER INSERT OR DELETE OR UPDATE OF department, status ON tickets"
    " FOR EACH ROW EXECUTE FUNCTION ticket_counts_keep()"
)


def upgrade() -> None:
    """Create the table, fill it from the tickets there are, and keep it by triggers from now on."""
    op.create_table(
        "ticket_counts",
        sa.Column("department", sa.String(80), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("department", "status", name=op.f("pk_ticket_counts")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("LOCK TABLE tickets IN SHARE MODE")  # no ticket may change between the count and the trigger
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
    op.execute(
        "INSERT INTO ticket_counts (department, status, n)"
        " SELECT coalesce(department, ''), status, count(*) FROM tickets GROUP BY coalesce(department, ''), status"
    )


def downgrade() -> None:
    """Drop the triggers and the table."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ticket_counts_keep ON tickets")
        op.execute("DROP FUNCTION ticket_counts_keep()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER ticket_counts_{name}")
    op.drop_table("ticket_counts")
