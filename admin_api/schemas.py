"""Request and response shapes of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

SessionId = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.:-]+$")]


class ChatIn(BaseModel):
    """A web-chat message: text typed, or a button pressed."""

    model_config = ConfigDict(extra="forbid")

    session: SessionId
    text: Annotated[str, Field(max_length=20_000)] | None = None
    button: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    lang: Annotated[str, Field(pattern=r"^[a-z]{2}$")] | None = None  # the browser's language, a new chat's first

    @model_validator(mode="after")
    def _one_of(self) -> ChatIn:
        """Exactly one of text and button."""
        if (self.text is None) == (self.button is None):
            raise ValueError("send exactly one of 'text' and 'button'")
        return self


class ButtonOut(BaseModel):
    """A button under a message."""

    label: str
    payload: str


# A reply's structure (bot/cards.py): heading, paragraph, field, list, link and note blocks; null for plain text.
Blocks = list[dict[str, Any]] | None


class ReplyOut(BaseModel):
    """One reply message: its plain text, and its blocks for a client that formats."""

    id: str
    text: str
    buttons: list[ButtonOut]
    blocks: Blocks = None


class ChatOut(BaseModel):
    """What the bot answered."""

    status: str
    ticket: str | None
    replies: list[ReplyOut]
    lang: str | None = None  # "vi" or "en": the language the bot speaks to this session now


class MessageOut(BaseModel):
    """A message sent to a web-chat session."""

    id: str
    text: str
    buttons: list[ButtonOut]
    blocks: Blocks = None
    at: str
    author: str


class MessagesOut(BaseModel):
    """Messages sent to a session, oldest first."""

    messages: list[MessageOut]
    lang: str | None = None  # as in ChatOut; null for a session that has not talked yet
