"""ORM models of the help desk: tickets for officials and the outbox of messages to citizens."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime
from knowledge.models import utcnow


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
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    department: Mapped[str | None] = mapped_column(String(80), index=True)
    deadline: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    rating: Mapped[int | None] = mapped_column(Integer)  # the citizen's 1-5 rating of the official's reply
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


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
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
