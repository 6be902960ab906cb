"""Telegram on the FastAPI app: the webhook route and the bot's life inside the app's lifespan."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from telegram import Bot, Update

from bot import telegram as channel
from core.config import get_settings
from core.errors import NotFound, PermissionDenied

logger = logging.getLogger(__name__)

SecretHeader = Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")]


def install(app: FastAPI) -> None:
    """Add POST /telegram/webhook to the app."""
    app.state.telegram = None

    @app.post("/telegram/webhook", include_in_schema=False)
    async def telegram_webhook(request: Request, secret: SecretHeader = None) -> JSONResponse:
        """One update from Telegram: secret checked, stored and answered (replies queued) before the 200."""
        expected = get_settings().telegram_webhook_secret
        if (
            expected is None
            or secret is None
            or not hmac.compare_digest(secret.encode(), expected.get_secret_value().encode())
        ):
            raise PermissionDenied("wrong or missing X-Telegram-Bot-Api-Secret-Token")
        application = request.app.state.telegram
        if application is None:
            raise NotFound("the Telegram bot is not running in webhook mode")
        update = _parse(await request.body(), application.bot)
        # Processed here, not queued in memory: by the 200 the update is stored and its replies queued
        # (or the failure logged by the bot's error handler). If the process dies first, Telegram retries
        # with the same update_id, which the engine deduplicates.
        await application.process_update(update)
        return JSONResponse({"ok": True})


def _parse(body: bytes, bot: Bot) -> Update:
    """The update in a webhook body; anything else is a 400, never a 500."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise HTTPException(400, f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise HTTPException(400, "not a Telegram update: an object with an integer update_id is expected")
    try:
        return Update.de_json(data, bot)
    except Exception as exc:  # noqa: BLE001 - PTB raises KeyError, TypeError... on a malformed update
        raise HTTPException(400, f"not a Telegram update: {type(exc).__name__}") from exc


@asynccontextmanager
async def lifespan(app: FastAPI, *, leader: bool = True) -> AsyncIterator[None]:
    """Run the bot and its outbox worker while the app runs, when MOTCUA_TELEGRAM_TOKEN is set.

    A worker that is not the leader only processes the webhook updates it receives (their replies go to the
    outbox, which the leader delivers); it neither polls nor registers the webhook.
    """
    settings = get_settings()
    if settings.telegram_token is None or (not leader and not settings.telegram_webhook_url):
        yield
        return
    application = channel.build_application(
        settings.telegram_token.get_secret_value(), app.state.engine, base_url=settings.telegram_base_url
    )
    if not leader:
        async with channel.processing_only(application):
            app.state.telegram = application
            try:
                yield
            finally:
                app.state.telegram = None
        return
    secret = settings.telegram_webhook_secret
    async with channel.running(
        application,
        webhook_url=settings.telegram_webhook_url,
        webhook_secret=secret.get_secret_value() if secret is not None else None,
    ):
        app.state.telegram = application if settings.telegram_webhook_url else None
        try:
            yield
        finally:
            app.state.telegram = None
