"""Reports: tickets per day and department, and per month, department, assignee and category, kept exact by
triggers; indexes that walk a group's tickets in order of their hours.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# (name, columns) on tickets: the same Index entries are declared on the model.
INDEXES = (
    ("ix_tickets_department_first_walk", ["department", "first_response_hours", "first_response_at"]),
    ("ix_tickets_department_resolution_walk", ["department", "resolution_hours", "resolved_at"]),
    ("ix_tickets_assignee_first_walk", ["assignee_id", "first_response_hours", "first_response_at", "department"]),
    ("ix_tickets_assignee_resolution_walk", ["assignee_id", "resolution_hours", "resolved_at", "department"]),
    ("ix_tickets_category_first_walk", ["category", "first_response_hours", "first_response_at", "department"]),
    ("ix_tickets_category_resolution_walk", ["category", "resolution_hours", "resolved_at", "department"]),
)
KEY = ("grain", "kind", "start", "department", "assignee_id", "category")
SUMS = ("n", "hours_n", "late", "open_late", "apologies", "ratings", "rating_sum")
# kind: (the moment it counts under, the hours it measures)
KINDS = {
    "created": ("created_at", None),
    "first": ("first_response_at", "first_response_hours"),
    "resolved": ("resolved_at", "resolution_hours"),
}
# The columns a ticket's counts depend on: an update of any other column leaves them alone.
WATCHED = (
    "created_at",
    "first_response_at",
    "resolved_at",
    "department",
    "assignee_id",
    "category",
    "apologies",
    "rating",
    "first_response_hours",
    "resolution_hours",
)


def _start(dialect: str, grain: str, moment: str) -> str:
    """The Vietnam day (or the first day of the Vietnam month) of a UTC moment; Vietnam is UTC+7 all year."""
    if dialect == "postgresql":
        local = f"(({moment} AT TIME ZONE 'UTC') + interval '7 hours')"
        return f"{local}::date" if grain == "day" else f"date_trunc('month', {local})::date"
    return f"date({moment}, '+7 hours')" if grain == "day" else f"strftime('%Y-%m-01', {moment}, '+7 hours')"


def _contributions(dialect: str, row: str, sign: int) -> list[str]:
    """SELECTs of what one ticket (`row`: NEW, OLD or a table alias) adds (sign 1) or takes away (-1)."""

    def flag(condition: str) -> str:
        return f"{sign} * CASE WHEN {condition} THEN 1 ELSE 0 END"

    selects = []
    for grain in ("day", "month"):
        for kind, (moment, hours) in KINDS.items():
            assignee = f"coalesce({row}.assignee_id, 0)" if grain == "month" else "0"
            category = f"coalesce({row}.category, '')" if grain == "month" else "''"
            values = [
                f"'{grain}'",
                f"'{kind}'",
                _start(dialect, grain, f"{row}.{moment}"),
                f"coalesce({row}.department, '')",
                assignee,
                category,
                str(sign),
                flag(f"{row}.{hours} IS NOT NULL") if hours else "0",
                flag(f"{row}.apologies > 0"),
                flag(f"{row}.resolved_at IS NULL AND {row}.apologies > 0"),
                f"{sign} * {row}.apologies",
                flag(f"{row}.rating IS NOT NULL"),
                f"{sign} * coalesce({row}.rating, 0)",
            ]
            columns = ", ".join(f"{value} AS {name}" for value, name in zip(values, KEY + SUMS, strict=True))
            selects.append(f"SELECT {columns}")
    return selects


def _add(selects: list[str], source: str = "") -> str:
    """One statement adding the contributions up by key into ticket_stats. The rows are written in key order, so
    two PostgreSQL transactions touching the same rows wait for each other instead of deadlocking."""
    key = ", ".join(KEY)
    summed = ", ".join(f"sum({name})" for name in SUMS)
    changed = " OR ".join(f"sum({name}) <> 0" for name in SUMS)
    updates = ", ".join(f"{name} = ticket_stats.{name} + excluded.{name}" for name in SUMS)
    union = " UNION ALL ".join(f"{select} {source}" for select in selects)
    # every name in it is a constant of this file
    return (
        f"INSERT INTO ticket_stats ({key}, {', '.join(SUMS)}) SELECT {key}, {summed} FROM ({union}) AS change"  # noqa: S608
        f" WHERE start IS NOT NULL GROUP BY {key} HAVING {changed} ORDER BY {key}"
        f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _changed(dialect: str) -> str:
    """An update touches a watched column."""
    differs = "IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM"
    return " OR ".join(f"OLD.{name} {differs} NEW.{name}" for name in WATCHED)


def _sqlite_triggers() -> list[str]:
    new, old = _contributions("sqlite", "NEW", 1), _contributions("sqlite", "OLD", -1)
    return [
        f"CREATE TRIGGER ticket_stats_insert AFTER INSERT ON tickets BEGIN {_add(new)}; END",
        f"CREATE TRIGGER ticket_stats_delete AFTER DELETE ON tickets BEGIN {_add(old)}; END",
        f"CREATE TRIGGER ticket_stats_update AFTER UPDATE OF {', '.join(WATCHED)} ON tickets"
        f" WHEN {_changed('sqlite')} BEGIN {_add(old + new)}; END",
    ]


def _postgres_triggers() -> list[str]:
    new, old = _contributions("postgresql", "NEW", 1), _contributions("postgresql", "OLD", -1)
    function = f"""
CREATE FUNCTION ticket_stats_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN {_add(new)};
    ELSIF TG_OP = 'DELETE' THEN {_add(old)};
    ELSE {_add(old + new)};
    END IF;
    RETURN NULL;
END $$
"""
    return [
        function,
        "CREATE TRIGGER ticket_stats_keep AFTER INSERT OR DELETE ON tickets"
        " FOR EACH ROW EXECUTE FUNCTION ticket_stats_keep()",
        f"CREATE TRIGGER ticket_stats_keep_update AFTER UPDATE OF {', '.join(WATCHED)} ON tickets"
        f" FOR EACH ROW WHEN ({_changed('postgresql')}) EXECUTE FUNCTION ticket_stats_keep()",
    ]


def upgrade() -> None:
    """Create the table, fill it from the tickets there are, keep it by triggers from now on; add the indexes."""
    dialect = op.get_bind().dialect.name
    op.create_table(
        "ticket_stats",
        sa.Column("grain", sa.String(5), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("department", sa.String(80), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(200), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in SUMS),
        sa.PrimaryKeyConstraint(*KEY, name=op.f("pk_ticket_stats")),
    )
    if dialect == "postgresql":
        op.execute("LOCK TABLE tickets IN SHARE MODE")  # no ticket may change between the fill and the trigger
        for statement in _postgres_triggers():
            op.execute(statement)
    else:
        for statement in _sqlite_triggers():
            op.execute(statement)
    op.execute(_add(_contributions(dialect, "t", 1), "FROM tickets AS t"))
    for name, columns in INDEXES:
        op.create_index(name, "tickets", columns)


def downgrade() -> None:
    """Drop the indexes, the triggers and the table."""
    for name, _ in INDEXES:
        op.drop_index(name, "tickets")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ticket_stats_keep_update ON tickets")
        op.execute("DROP TRIGGER ticket_stats_keep ON tickets")
        op.execute("DROP FUNCTION ticket_stats_keep()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER ticket_stats_{name}")
    op.drop_table("ticket_stats")
