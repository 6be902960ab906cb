"""The FastAPI app: web chat, health checks (and, as they land, admin API, webhooks, dashboard)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import anyio.to_thread
from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from admin_api import (
    auth_routes,
    dashboard,
    dashboard_gaps,
    dashboard_inbox,
    dashboard_kb,
    dashboard_notifications,
    dashboard_staff,
    departments_routes,
    errors,
    improvement_routes,
    kb_routes,
    metrics,
    reports_routes,
    telegram_routes,
    tickets_routes,
    zalo_routes,
)
from admin_api.schemas import ChatIn, ChatOut, MessagesOut, SessionId
from bot import inbox, web
from bot.engine import ConversationEngine
from bot.telegram import CHANNEL as CHANNEL_TELEGRAM
from bot.zalo import CHANNEL as CHANNEL_ZALO
from core.config import get_settings
from core.db import get_engine, session_scope
from core.errors import NotFound
from core.leader import become_leader, step_down
from core.logging import configure_logging
from helpdesk.breaches import BreachScheduler
from helpdesk.departments import ensure_departments_seeded
from helpdesk.rollups import RollupScheduler
from knowledge.service import ensure_national_seeded, ensure_seeded
from retrieval.live import LiveIndex
from retrieval.service import AskService, open_retriever

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 1_000_000  # no API call needs more; larger bodies are refused before they are read


class BodySizeLimit:
    """Refuses oversized request bodies with 413 by their Content-Length (fields have their own length limits).

    Plain ASGI rather than @app.middleware("http"): that wrapper costs about a millisecond per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on unless it announces a body over the limit."""
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                detail = f"request body too large: at most {MAX_BODY_BYTES} bytes"
                await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def load_engine() -> ConversationEngine:
    """Seed the knowledge base if needed, load (or build) the index once, and make the engine."""
    settings = get_settings()
    with session_scope() as session:
        if settings.seed_curated:
            ensure_seeded(session)
    if settings.seed_national:
        with session_scope() as session:
            ensure_national_seeded(session)
    with session_scope() as session:
        ensure_departments_seeded(session, settings)
    with session_scope() as session:
        retriever = open_retriever(session)
    return ConversationEngine(AskService(retriever))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Heavy things load once, at start-up, never per message."""
    if getattr(app.state, "engine", None) is None:
        app.state.engine = await asyncio.to_thread(load_engine)
    settings = get_settings()
    # Sync endpoints run on these threads; past a few per core they only fight over the GIL (233 vs 195 req/s
    # on the ticket queue with 8 rather than anyio's 40, BENCHMARKS.md).
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.http_threads
    # With several workers (`motcua serve --workers N`) one of them runs the background jobs: Telegram polling,
    # the outboxes, the deadline scheduler, the reports' rollups. Every worker answers HTTP, webhooks included.
    app.state.leader = leader = become_leader(settings.data_dir)
    # Every worker follows the knowledge base: a publication is answered by all of them within seconds.
    app.state.live_index = live = LiveIndex(app.state.engine, poll=settings.kb_poll_seconds)
    following = asyncio.Event()
    follower = asyncio.create_task(live.run(following))
    try:
        async with _leader_jobs(app, leader):
            yield
    finally:
        following.set()
        await follower


@asynccontextmanager
async def _leader_jobs(app: FastAPI, leader: bool) -> AsyncIterator[None]:
    """The background jobs only one worker runs (the leader); the others only serve."""
    settings = get_settings()
    if not leader:
        async with telegram_routes.lifespan(app, leader=False):
            yield
        return
    # Messages a previous run stored but never answered (it died in between) are answered first.
    await asyncio.to_thread(inbox.finish_pending, app.state.engine, [CHANNEL_TELEGRAM, CHANNEL_ZALO])
    stop = asyncio.Event()
    breaches = asyncio.create_task(BreachScheduler(poll=settings.breach_check_seconds).run(stop))
    rollups = asyncio.create_task(RollupScheduler().run(stop))
    try:
        async with telegram_routes.lifespan(app), zalo_routes.lifespan(app):
            yield
    finally:
        stop.set()
        await breaches
        await rollups
        step_down(settings.data_dir)


def create_app(engine: ConversationEngine | None = None) -> FastAPI:
    """The app; tests may hand in a ready engine."""
    app = FastAPI(title="motcua", description="One-stop help desk in a chat", lifespan=lifespan)
    app.state.engine = engine
    errors.install(app)
    app.add_middleware(BodySizeLimit)
    metrics.install(app)  # added after the other middleware: outermost, so it times refused requests too
    app.include_router(auth_routes.router)
    app.include_router(tickets_routes.router)
    app.include_router(departments_routes.router)
    app.include_router(kb_routes.router)
    app.include_router(improvement_routes.router)
    app.include_router(dashboard.router)
    app.include_router(dashboard_inbox.router)
    app.include_router(dashboard_gaps.router)  # before dashboard_kb: /kb/gaps, not the procedure 'gaps'
    app.include_router(dashboard_kb.router)
    app.include_router(dashboard_notifications.router)
    app.include_router(dashboard_staff.router)
    app.include_router(reports_routes.router)
    telegram_routes.install(app)
    zalo_routes.install(app)

    @app.post("/api/chat", response_model=ChatOut)
    def chat(body: ChatIn, request: Request) -> ChatOut:
        """Send a web-chat message (text or button payload) and get the bot's replies."""
        with session_scope() as session:
            engine = request.app.state.engine
            outcome = web.post_message(engine, session, body.session, body.text, body.button, body.lang)
            lang = web.frame_lang(session, body.session)
        replies = [
            {"id": str(r.message_id), "text": r.text, "buttons": [b.__dict__ for b in r.buttons], "blocks": r.blocks}
            for r in outcome.replies
        ]
        return ChatOut.model_validate(
            {"status": outcome.status, "ticket": outcome.ticket, "replies": replies, "lang": lang}
        )

    @app.get("/api/chat/{sid}/messages", response_model=MessagesOut)
    def chat_messages(sid: SessionId, after: Annotated[int | None, Query(ge=0)] = None) -> MessagesOut:
        """Everything sent to a web-chat session, including officials' later replies."""
        with session_scope() as session:
            messages = web.messages_for(session, sid, after)
            return MessagesOut.model_validate({"messages": messages, "lang": web.frame_lang(session, sid)})

    @app.get("/chat", include_in_schema=False)
    def chat_page() -> FileResponse:
        """The web chat page."""
        return FileResponse(STATIC / "chat.html", media_type="text/html; charset=utf-8")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        """The chat page's script and styles."""
        path = (STATIC / name).resolve()
        if path.parent != STATIC or not path.is_file():
            raise NotFound(f"no static file {name!r}")
        return FileResponse(path)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        """The database answers and the retrieval index is loaded."""
        try:
            with get_engine().connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any database failure means not ready
            return JSONResponse({"status": "database unavailable", "detail": str(exc)[:200]}, status_code=503)
        engine = request.app.state.engine
        if engine is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        retriever = engine.asker.retriever
        return JSONResponse(
            {
                "status": "ready",
                "index": retriever.version,
                "procedures": len(retriever.procedures),
                "worker": os.getpid(),
                "leader": getattr(request.app.state, "leader", None),
            }
        )

    return app


def create_worker_app() -> FastAPI:
    """The app in a worker process of `motcua serve --workers N`: logging set up (and masked) as in the CLI."""
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return create_app()
