"""The Zalo OA webhook: check the signature and freshness, answer 200 at once, let the engine work right after."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from bot import inbox, zalo
from core.config import get_settings
from core.errors import NotFound, PermissionDenied
from knowledge.models import utcnow


def install(app: FastAPI) -> None:
    """Add POST /zalo/webhook to the app."""

    @app.post("/zalo/webhook")
    async def zalo_webhook(request: Request) -> JSONResponse:
        """Receive a Zalo OA event: 403 unless signed and fresh; the reply goes out through the outbox."""
        settings = get_settings()
        if not settings.zalo_app_id or settings.zalo_oa_secret is None:
            raise NotFound("the Zalo channel is not configured")
        raw = await request.body()
        try:
            event = zalo.parse_event(raw)
        except ValueError:
            raise HTTPException(400, "malformed JSON: expected one Zalo event object") from None
        # Zalo signs the event's own timestamp field, so the body must parse before it can be checked.
        timestamp = str(event.get("timestamp") or "")
        signature = request.headers.get(zalo.SIGNATURE_HEADER, "")
        secret = settings.zalo_oa_secret.get_secret_value()
        if not zalo.verify_signature(settings.zalo_app_id, raw, timestamp, secret, signature):
            raise PermissionDenied(f"invalid or missing {zalo.SIGNATURE_HEADER}")
        if not zalo.timestamp_fresh(timestamp, utcnow()):
            raise PermissionDenied("stale event timestamp")
        inbound = zalo.event_to_inbound(event)
        if inbound is None:
            return JSONResponse({"status": "ignored"})
        engine = request.app.state.engine
        if engine is None:
            raise HTTPException(503, "starting up; Zalo will retry")
        # Stored before the 200 (a crash afterwards leaves it in the inbox for the next start), answered
        # in a worker thread after the response; Zalo's retries are deduplicated by msg_id.
        update_id = await asyncio.to_thread(inbox.accept_inbound, engine, inbound)
        if update_id is None:
            return JSONResponse({"status": "duplicate"})
        return JSONResponse({"status": "accepted"}, background=BackgroundTask(inbox.process_stored, engine, update_id))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Deliver queued Zalo replies while the app runs (only when MOTCUA_ZALO_APP_ID is set)."""
    async with zalo.delivering(get_settings()) as worker:
        app.state.zalo_outbox = worker
        yield
