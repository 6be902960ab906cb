"""The Telegram channel: updates in through the engine, replies out by the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import traceback
import warnings
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.error import RetryAfter as TelegramRetryAfter
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters
from telegram.warnings import PTBDeprecationWarning

from bot import inbox
from bot.cards import telegram_html
from bot.engine import ConversationEngine, Inbound, Outcome
from core.errors import Invalid
from core.logging import mask_sensitive
from helpdesk.outbox import OutboxWorker, Outgoing, PermanentFailure, RetryAfter

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "callback_query"]  # edits, channel posts, inline queries: not a conversation
CONCURRENT_UPDATES = 32  # across chats; within one chat a lock keeps updates in order
# Telegram's own rule for setWebhook's secret_token; a bad one would only fail later, at setWebhook.
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Message attributes in the order they are checked; a venue also carries a location, an animation a document.
_KINDS = (
    ("photo", "photo"),
    ("sticker", "sticker"),
    ("voice", "voice"),
    ("location", "location"),
    ("animation", "file"),
    ("video", "file"),
    ("video_note", "file"),
    ("audio", "file"),
    ("document", "file"),
)


def update_to_inbound(update: Update) -> Inbound | None:
    """The engine's view of a Telegram update; None for updates that are not a citizen talking to us."""
    chat = update.effective_chat
    user = update.effective_user
    lang = user.language_code[:2] if user is not None and user.language_code else None
    common = {"channel": CHANNEL, "external_id": str(update.update_id), "lang_hint": lang}
    if update.callback_query is not None:
        query = update.callback_query
        if not query.data:
            return None  # game buttons carry no data
        # A button under an old, inaccessible message has no chat; in a private chat the ids are equal.
        chat_id = chat.id if chat is not None else query.from_user.id
        return Inbound(user=str(chat_id), button=query.data, **common)
    message = update.message
    if message is None or chat is None:
        return None
    if message.text is not None:
        return Inbound(user=str(chat.id), text=message.text, **common)
    return Inbound(user=str(chat.id), kind=_kind(message), **common)


def _kind(message: Message) -> str:
    for attribute, kind in _KINDS:
        if getattr(message, attribute):
            return kind
    return "other"


class TelegramSender:
    """Delivers outbox messages with sendMessage, buttons one per row.

    A message with blocks goes as HTML (bold headings and labels, every value escaped: text from the knowledge
    base never becomes markup); one without them as plain text, with no parse_mode at all.
    """

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, message: Outgoing) -> None:
        """Send one message; 429 becomes RetryAfter, a blocked or unknown chat a PermanentFailure."""
        markup = None
        if message.buttons:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(b["label"], callback_data=b["payload"])] for b in message.buttons]
            )
        chat_id = _chat_id(message.recipient)
        try:
            if message.blocks:
                await self._send_formatted(chat_id, message, markup)
            else:
                await self.bot.send_message(chat_id, message.text, reply_markup=markup)
        except TelegramRetryAfter as exc:
            raise RetryAfter(_retry_seconds(exc)) from exc
        except Forbidden as exc:
            raise PermanentFailure(exc.message) from exc
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                raise PermanentFailure(exc.message) from exc
            raise

    async def _send_formatted(self, chat_id: int | str, message: Outgoing, markup: InlineKeyboardMarkup | None) -> None:
        assert message.blocks is not None
        try:
            await self.bot.send_message(
                chat_id, telegram_html(message.blocks), parse_mode=ParseMode.HTML, reply_markup=markup
            )
        except BadRequest as exc:
            if "can't parse entities" not in exc.message.lower():
                raise
            # Our HTML is escaped and balanced; should Telegram still refuse it, the same words go as plain text.
            logger.warning("telegram refused the HTML of outbox message %s (%s); sent as plain text", message.id, exc)
            await self.bot.send_message(chat_id, message.text, reply_markup=markup)


def _chat_id(recipient: str) -> int | str:
    """Numeric chat ids as numbers; '@channelname' stays a string."""
    return int(recipient) if recipient.lstrip("-").isdigit() else recipient


def _retry_seconds(exc: TelegramRetryAfter) -> float:
    """retry_after as float seconds, whether PTB hands out an int (deprecated) or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class UpdateHandler:
    """Runs each update through the engine in a worker thread: one at a time per chat, chats in parallel."""

    def __init__(self, engine: ConversationEngine) -> None:
        self.engine = engine
        # A lock lives while some update of its chat holds or awaits it, then it is dropped.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def __call__(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Convert, store and answer one update; the replies leave through the outbox."""
        inbound = update_to_inbound(update)
        if inbound is None:
            return
        if update.callback_query is not None:
            # Stop the button's spinner at once, without awaiting here: an await before taking the
            # chat's lock could let a later update of the same chat overtake this one.
            context.application.create_task(_answer(update), update=update)
        lock = self._locks.get(inbound.user)
        if lock is None:
            lock = self._locks[inbound.user] = asyncio.Lock()
        async with lock:
            outcome = await asyncio.to_thread(self._handle, inbound)
        logger.debug("telegram update %s: %s", inbound.external_id, outcome.status)

    def _handle(self, inbound: Inbound) -> Outcome:
        """Stored first, then answered: an update that fails to be answered stays in the inbox."""
        return inbox.receive(self.engine, inbound)


async def _answer(update: Update) -> None:
    """Answer a callback query; a second answer to a redelivered update fails harmlessly."""
    try:
        await update.callback_query.answer()  # type: ignore[union-attr]
    except TelegramError as exc:
        logger.info("could not answer callback query of update %s: %s", update.update_id, exc)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log a failed update, masked; the bot keeps running."""
    update_id = update.update_id if isinstance(update, Update) else None
    error = context.error
    detail = "".join(traceback.format_exception(error)) if error is not None else "no exception"
    logger.error("telegram update %s failed: %s", update_id, mask_sensitive(detail))


def build_application(
    token: str,
    engine: ConversationEngine,
    *,
    base_url: str | None = None,
    concurrency: int = CONCURRENT_UPDATES,
) -> Application:
    """The bot: every message and button press goes to one handler; one error handler logs failures."""
    # Opt in to PTB 23's time periods (timedelta): reading RetryAfter.retry_after as a deprecated int warns
    # on every 429, and PTB itself reads it while building the exception.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    builder = Application.builder().token(token).concurrent_updates(concurrency)
    if base_url:
        builder = builder.base_url(base_url)
    application = builder.build()
    handler = UpdateHandler(engine)
    application.add_handler(MessageHandler(filters.UpdateType.MESSAGE, handler))
    application.add_handler(CallbackQueryHandler(handler))
    application.add_error_handler(on_error)
    return application


async def start(application: Application, *, webhook_url: str | None = None, webhook_secret: str | None = None) -> None:
    """Start the bot: register the webhook when a URL is given, else long-poll. Pending updates are kept."""
    if webhook_url and not (webhook_secret and SECRET_TOKEN.fullmatch(webhook_secret)):
        raise Invalid("a Telegram webhook needs MOTCUA_TELEGRAM_WEBHOOK_SECRET: 1-256 of A-Z a-z 0-9 _ -")
    await application.initialize()
    try:
        await application.start()
        if webhook_url:
            await application.bot.set_webhook(
                webhook_url,
                secret_token=webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
            )
        else:
            assert application.updater is not None  # built with the default updater
            await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
    except BaseException:
        await stop(application)
        raise
    logger.info(
        "telegram bot @%s receives updates by %s",
        application.bot.username,
        "webhook" if webhook_url else "long polling",
    )


async def stop(application: Application) -> None:
    """Stop fetching, finish every update already fetched, close the connections."""
    try:
        await _finish_updates(application)
    finally:
        await application.shutdown()


async def _finish_updates(application: Application) -> None:
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()  # processes what was fetched: its replies are queued after this


@asynccontextmanager
async def processing_only(application: Application) -> AsyncIterator[Application]:
    """The bot able to process updates handed to it (webhook calls), without fetching or delivering anything."""
    await application.initialize()
    await application.start()
    try:
        yield application
    finally:
        await stop(application)


@asynccontextmanager
async def running(
    application: Application, *, webhook_url: str | None = None, webhook_secret: str | None = None
) -> AsyncIterator[Application]:
    """The bot and its outbox worker, from start to a clean stop (a webhook stays set for the next start)."""
    await start(application, webhook_url=webhook_url, webhook_secret=webhook_secret)
    stop_worker = asyncio.Event()
    worker = asyncio.create_task(OutboxWorker({CHANNEL: TelegramSender(application.bot)}).run(stop_worker))
    try:
        yield application
    finally:
        try:
            await _finish_updates(application)
        finally:
            stop_worker.set()
            await worker
            await application.shutdown()
