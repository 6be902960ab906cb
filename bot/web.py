"""The web-chat channel: thin calls from HTTP routes into the engine, and the session's message list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.engine import ConversationEngine, Inbound, Outcome
from bot.models import ChatMessage, Conversation
from bot.texts import ui_lang

CHANNEL = "web"
PAGE_LIMIT = 200


def post_message(
    engine: ConversationEngine,
    session: Session,
    sid: str,
    text: str | None,
    button: str | None,
    lang_hint: str | None = None,
) -> Outcome:
    """Hand a web-chat message to the engine; lang_hint is the browser's language, used by a new conversation."""
    return engine.handle(session, Inbound(channel=CHANNEL, user=sid, text=text, button=button, lang_hint=lang_hint))


def frame_lang(session: Session, sid: str) -> str | None:
    """The language the bot now speaks to the session ("vi" or "en"), for the page around it; None before any."""
    conv = session.scalar(select(Conversation).where(Conversation.channel == CHANNEL, Conversation.user_key == sid))
    if conv is None:
        return None
    return ui_lang(conv.lang or conv.state.get("last_lang") or "vi")


def messages_for(session: Session, sid: str, after: int | None) -> list[dict[str, Any]]:
    """Everything sent to the session (bot and officials), after a message id, oldest first."""
    conv_id = session.scalar(
        select(Conversation.id).where(Conversation.channel == CHANNEL, Conversation.user_key == sid)
    )
    if conv_id is None:
        return []
    stmt = (
        select(ChatMessage)
        .where(ChatMessage.conversation_id == conv_id, ChatMessage.direction == "out")
        .order_by(ChatMessage.id)
        .limit(PAGE_LIMIT)
    )
    if after is not None:
        stmt = stmt.where(ChatMessage.id > after)
    return [
        {
            "id": str(m.id),
            "text": m.text,
            "buttons": m.buttons,
            "blocks": m.blocks,
            "at": m.at.isoformat(),
            "author": m.author,
        }
        for m in session.scalars(stmt)
    ]
