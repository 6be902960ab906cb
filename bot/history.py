"""A conversation as officials read it: every message in and out, with what the bot offered and answered."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import ChatMessage

MAX_MESSAGES = 200  # the latest ones; a ticket's conversation is rarely longer
PRESSED = {"h": "👤 gặp cán bộ · talk to an official", "f:+": "👍", "f:-": "👎", "t": "📚 chủ đề · topics"}


def pressed_label(text: str) -> str | None:
    """What a stored button press ("[p:birth-registration]", "[h]") meant, in words; None for typed text."""
    if not (text.startswith("[") and text.endswith("]")):
        return None
    payload = text[1:-1]
    kind, _, value = payload.partition(":")
    if payload in PRESSED:
        return PRESSED[payload]
    if kind == "p":
        return f"chọn thủ tục · chose {value}"
    if kind == "r":
        return "★" * int(value.rsplit(":", 1)[-1]) if value.rsplit(":", 1)[-1].isdigit() else None
    if kind == "o":
        return f"mở lại · reopened {value}"
    if kind == "t":
        return f"📚 {value}"
    return None


def conversation_log(session: Session, conversation_id: int, limit: int = MAX_MESSAGES) -> list[dict[str, Any]]:
    """The conversation's messages, oldest first: author, text, the bot's status and the procedures it offered."""
    latest = (
        select(ChatMessage)
        .where(ChatMessage.conversation_id == conversation_id)
        .order_by(ChatMessage.id.desc())
        .limit(limit)
    )
    messages = list(reversed(session.scalars(latest).all()))
    return [
        {
            "id": m.id,
            "at": m.at,
            "direction": m.direction,
            "author": m.author,
            "text": m.text,
            "pressed": pressed_label(m.text) if m.direction == "in" else None,
            "status": m.status,
            "procedure": m.procedure,
            # the procedures a clarifying question offered, as the citizen saw them
            "offered": [b.get("label", "") for b in m.buttons or [] if str(b.get("payload", "")).startswith("p:")],
        }
        for m in messages
    ]


def last_message_id(session: Session, conversation_id: int) -> int:
    """The newest message's id (0 for none): what a page compares to notice that the conversation moved on."""
    newest = select(ChatMessage.id).where(ChatMessage.conversation_id == conversation_id)
    return session.scalar(newest.order_by(ChatMessage.id.desc()).limit(1)) or 0
