"""ORM models of conversations: who talks to us on which channel, every update and message, feedback."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime
from knowledge.models import utcnow


class Conversation(Base):
    """One citizen on one channel; its state survives restarts."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "user_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    user_key: Mapped[str] = mapped_column(String(120))  # ids as strings: Zalo's exceed 2^53
    lang: Mapped[str | None] = mapped_column(String(8))  # chosen with /lang; None: the question's language
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class InboundUpdate(Base):
    """An update as it arrived, stored before processing; (channel, external_id) deduplicates retries."""

    __tablename__ = "inbound_updates"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str | None] = mapped_column(String(120))
    user_key: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class ChatMessage(Base):
    """Every message in or out of a conversation, timed: the response-time log reports read."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        # reports read the bot's replies in a period from this index alone (migration 0007)
        Index("ix_chat_messages_author_at", "author", "at", "status", "latency_ms", "procedure"),
        # and find the exact latency at a rank by walking one histogram bucket in latency order (migration 0008)
        Index("ix_chat_messages_author_latency", "author", "latency_ms", "at", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    author: Mapped[str] = mapped_column(String(20), default="citizen")  # citizen | bot | official
    text: Mapped[str] = mapped_column(Text, default="")
    buttons: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_updates.id", ondelete="SET NULL"))
    status: Mapped[str | None] = mapped_column(String(20))  # answered | clarify | escalated | declined | ...
    procedure: Mapped[str | None] = mapped_column(String(120))
    latency_ms: Mapped[float | None] = mapped_column(Float)  # inbound stored -> this reply queued
    ticket_code: Mapped[str | None] = mapped_column(String(40))
    # The reply's structure (bot/cards.py blocks) for channels that format it; text is its plain rendering.
    blocks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class Feedback(Base):
    """A citizen's 👍 / 👎 on one answer."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("message_id"),
        Index("ix_feedback_at", "at"),
        Index("ix_feedback_report", "at", "value", "answer_status", "answer_procedure"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("chat_messages.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    value: Mapped[int] = mapped_column(Integer)  # +1 or -1
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    # The judged answer's status and procedure, copied by a database trigger (migration 0011) whoever writes the
    # row: a report groups a year of feedback by them without looking each answer up in the chat log.
    answer_status: Mapped[str | None] = mapped_column(String(20))
    answer_procedure: Mapped[str | None] = mapped_column(String(120))


class ChannelToken(Base):
    """A channel's API access token with its single-use refresh token; both change in one transaction."""

    __tablename__ = "channel_tokens"

    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)  # of the access token
