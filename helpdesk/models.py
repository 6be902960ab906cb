"""ORM models of the help desk: departments, officials, tickets with their audit trail, and the outbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime
from knowledge.models import utcnow

# The open statuses (helpdesk.service.OPEN_STATUSES) as SQL, for the partial index of open tickets.
OPEN_TICKETS = "status IN ('new', 'acknowledged', 'reopened', 'transferred')"


class Ticket(Base):
    """A question the bot could not answer, owned by a department until an official replies."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    lang: Mapped[str] = mapped_column(String(8), default="vi")
    question: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # last messages before it
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(String(40))  # low_confidence | asked_for_person | thumbs_down
    status: Mapped[str] = mapped_column(String(20), default="new")  # indexed inside the queue indexes
    department: Mapped[str | None] = mapped_column(String(80), index=True)
    deadline: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    rating: Mapped[int | None] = mapped_column(Integer)  # the citizen's 1-5 rating of the official's reply
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    # Routing and deadlines (issue 4). `deadline` is the one running now: acknowledgement until an official
    # claims the ticket, then resolution; the queue is ordered by it.
    category: Mapped[str | None] = mapped_column(String(200))
    procedure_slug: Mapped[str | None] = mapped_column(String(120))
    urgency: Mapped[str] = mapped_column(String(10), default="normal")  # normal | urgent
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ack_deadline: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    resolve_deadline: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    paused_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)  # waiting for the citizen: clock stopped
    ack_breached_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    resolve_breached_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    expected_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)  # promised in the apology
    apologies: Mapped[int] = mapped_column(Integer, default=0)  # one per missed deadline, never reset
    # For the reports (aggregated in SQL): working hours from opening to the first answer and to resolution.
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, index=True)  # answered or closed
    first_response_hours: Mapped[float | None] = mapped_column(Float)
    resolution_hours: Mapped[float | None] = mapped_column(Float)
    # Officials' workspace (migration 0012): the running deadline's one-hour warning was sent; the code and the
    # question folded (lower case, no diacritics) for the inbox's search.
    deadline_warned_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")

    __table_args__ = (
        # The queue's indexes are walked in deadline order and cover its filters (status, paused_at for
        # "overdue"): a page never sorts, and counting never reads the table.
        Index("ix_tickets_department_queue", "department", "deadline", "status", "paused_at"),
        Index("ix_tickets_deadline_queue", "deadline", "status", "paused_at", "department"),
        Index("ix_tickets_assignee_queue", "assignee_id", "deadline", "status", "department", "paused_at"),
        # The breach scheduler's two watches: deadlines of each stage not yet marked missed.
        Index("ix_tickets_ack_watch", "ack_breached_at", "paused_at", "status", "deadline"),
        Index("ix_tickets_resolve_watch", "resolve_breached_at", "paused_at", "status", "deadline"),
        Index("ix_tickets_department_created_at", "department", "created_at"),
        # reports (migration 0007): tickets created / first answered / resolved in a period, covered
        Index(
            "ix_tickets_created_report",
            "created_at",
            "department",
            "assignee_id",
            "category",
            "resolved_at",
            "apologies",
        ),
        Index(
            "ix_tickets_first_response_report",
            "first_response_at",
            "department",
            "assignee_id",
            "category",
            "first_response_hours",
        ),
        Index(
            "ix_tickets_resolved_report",
            "resolved_at",
            "department",
            "assignee_id",
            "category",
            "apologies",
            "rating",
            "resolution_hours",
        ),
        # reports (migration 0008): the exact median or p90 inside one histogram bucket, walked in value order
        Index(
            "ix_tickets_first_response_hours",
            "first_response_hours",
            "first_response_at",
            "department",
            "assignee_id",
            "category",
        ),
        Index(
            "ix_tickets_resolution_hours",
            "resolution_hours",
            "resolved_at",
            "department",
            "assignee_id",
            "category",
        ),
        # reports (migration 0010): a group's exact median or p90 over a long period, walked in value order
        Index("ix_tickets_department_first_walk", "department", "first_response_hours", "first_response_at"),
        Index("ix_tickets_department_resolution_walk", "department", "resolution_hours", "resolved_at"),
        Index(
            "ix_tickets_assignee_first_walk", "assignee_id", "first_response_hours", "first_response_at", "department"
        ),
        Index("ix_tickets_assignee_resolution_walk", "assignee_id", "resolution_hours", "resolved_at", "department"),
        Index("ix_tickets_category_first_walk", "category", "first_response_hours", "first_response_at", "department"),
        Index("ix_tickets_category_resolution_walk", "category", "resolution_hours", "resolved_at", "department"),
        Index(
            "ix_tickets_open_deadline",
            "deadline",
            "paused_at",
            "department",
            "assignee_id",
            "category",
            sqlite_where=text(OPEN_TICKETS),
            postgresql_where=text(OPEN_TICKETS),
        ),
    )


class TicketCount(Base):
    """How many tickets each department has in each status, kept by database triggers (migration 0009).

    The total under a queue page is read from here: counting thousands of tickets per request was most of the
    queue's cost. Tickets without a department count under "".
    """

    __tablename__ = "ticket_counts"

    department: Mapped[str] = mapped_column(String(80), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class TicketStat(Base):
    """Tickets created, first answered and resolved per Vietnam day and department, and per month, department,
    assignee and category, with the sums the reports need; kept exact by database triggers (migration 0010).

    A ticket counts under the day (month) of each of its three moments, in its current department, assignee and
    category; a change to any of those moves its counts at once, so a report over a year adds up a few thousand
    rows instead of grouping ~100,000 tickets. "" / 0 stand for no department, category or assignee; day rows
    carry no assignee or category (0 and "").
    """

    __tablename__ = "ticket_stats"

    grain: Mapped[str] = mapped_column(String(5), primary_key=True)  # day | month
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # created | first | resolved
    start: Mapped[dt.date] = mapped_column(Date, primary_key=True)  # the day, or the month's first day
    department: Mapped[str] = mapped_column(String(80), primary_key=True)
    assignee_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)  # tickets
    hours_n: Mapped[int] = mapped_column(Integer, default=0)  # of them with first-response / resolution hours
    late: Mapped[int] = mapped_column(Integer, default=0)  # of them with a missed deadline (apologies > 0)
    open_late: Mapped[int] = mapped_column(Integer, default=0)  # of them unresolved with a missed deadline
    apologies: Mapped[int] = mapped_column(Integer, default=0)
    ratings: Mapped[int] = mapped_column(Integer, default=0)
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)


class Department(Base):
    """A unit that answers tickets: civil status, residence and identity police, land…"""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)  # gets what no routing rule matches
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class RoutingRule(Base):
    """Sends tickets about a procedure category, authority or procedure to a department (admins edit it)."""

    __tablename__ = "routing_rules"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_routing_rules_kind_value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # procedure | category | authority (most specific first)
    value: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(ForeignKey("departments.slug", ondelete="CASCADE"))


class SlaPolicy(Base):
    """Acknowledgement and resolution targets in working hours for a department, category and urgency."""

    __tablename__ = "sla_policies"
    __table_args__ = (UniqueConstraint("department", "category", "urgency", name="uq_sla_policies_scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    department: Mapped[str] = mapped_column(ForeignKey("departments.slug", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(200), default="*")  # "*": every category
    urgency: Mapped[str] = mapped_column(String(10), default="normal")
    ack_hours: Mapped[float] = mapped_column(Float)
    resolve_hours: Mapped[float] = mapped_column(Float)


class User(Base):
    """An official, supervisor or admin of the admin API and dashboard."""

    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_telegram_chat_id", "telegram_chat_id", unique=True),
        Index("uq_users_telegram_link_code", "telegram_link_code", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))  # official | supervisor | admin
    department: Mapped[str | None] = mapped_column(ForeignKey("departments.slug", ondelete="SET NULL"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Staff notifications on Telegram (migration 0012): the linked chat, and the one-time code that links it.
    telegram_chat_id: Mapped[str | None] = mapped_column(String(40))
    telegram_link_code: Mapped[str | None] = mapped_column(String(16))
    telegram_link_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class ApiToken(Base):
    """A personal API token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a token in lists
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class TicketEvent(Base):
    """One entry of the audit trail: who did what to which ticket, when (refused attempts included)."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_at", "ticket_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(30), index=True)
    actor: Mapped[str] = mapped_column(String(80))  # a username, or citizen / bot / system
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    department: Mapped[str | None] = mapped_column(String(80))  # the ticket's department at that moment
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Notification(Base):
    """A message for an official or supervisor inside motcua (a missed deadline, a transfer)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_unread", "user_id", "read_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class OutboxMessage(Base):
    """A message waiting to reach a citizen on Telegram or Zalo; retried with back-off until sent."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), index=True)
    recipient: Mapped[str] = mapped_column(String(120))
    chat_message_id: Mapped[int | None] = mapped_column(ForeignKey("chat_messages.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    reply_to: Mapped[str | None] = mapped_column(String(120))  # Zalo quotes the citizen's message_id
    blocks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # this part's structure, sent formatted
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class BotReplyDay(Base):
    """The bot's replies of one Vietnam day by status and answered procedure (a rollup of the chat log)."""

    __tablename__ = "bot_reply_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)  # "" when the reply had none
    procedure: Mapped[str] = mapped_column(String(120), primary_key=True)  # "" unless answered
    replies: Mapped[int] = mapped_column(Integer)


class BotLatencyDay(Base):
    """How many of the bot's replies of one kind and Vietnam day took `bucket` (latency_ms // 8) (a rollup)."""

    __tablename__ = "bot_latency_days"

    # kind and bucket first: a histogram over a period is read in group order, without sorting
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # a question status, or "other"
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    replies: Mapped[int] = mapped_column(Integer)


class ReportRollup(Base):
    """How far a rollup goes: it summarises the rows with id ≤ `last_id` of the Vietnam days before `through`."""

    __tablename__ = "report_rollups"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    through: Mapped[dt.date] = mapped_column(Date)
    last_id: Mapped[int] = mapped_column(Integer)
    built_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class ReplyTemplate(Base):
    """A canned reply of a department, kept by its supervisors, inserted into an official's answer."""

    __tablename__ = "reply_templates"
    __table_args__ = (UniqueConstraint("department", "title", name="uq_reply_templates_department_title"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    department: Mapped[str] = mapped_column(ForeignKey("departments.slug", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class TicketViewer(Base):
    """Who has a ticket's page open, as of their page's last heartbeat: the collision notice reads it."""

    __tablename__ = "ticket_viewers"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class FormSubmission(Base):
    """A dashboard form's one-time key, stored with the action it carried: a second press does nothing."""

    __tablename__ = "form_submissions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
