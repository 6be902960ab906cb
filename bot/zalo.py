"""The Zalo Official Account channel: webhook signatures and events in, OA message API out, token refresh.

Protocol notes (Zalo OA API v3 / OAuth v4):
- Webhook calls carry `X-ZEvent-Signature: mac=<hex>`, hex = sha256(app_id + raw body + timestamp + OA secret key),
  where timestamp is the event's own `timestamp` field (milliseconds since the epoch, as sent).
- Ids (user, OA, app) exceed 2^53: they stay strings from the raw body onwards, never ints or floats.
- Replies: POST {api_base}/v3.0/oa/message/cs with header `access_token`; errors come back as HTTP 200 with
  `{"error": <negative code>, "message": ...}`.
- Access tokens live about 25 hours; the refresh token is single-use and rotates on every refresh:
  POST {oauth_base}/v4/oa/access_token (form app_id, grant_type=refresh_token, refresh_token; header secret_key).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import select

from bot.engine import Inbound
from bot.models import ChannelToken
from core.config import Settings
from core.db import session_scope
from helpdesk.outbox import OutboxWorker, Outgoing, PermanentFailure, RetryAfter
from knowledge.models import utcnow

logger = logging.getLogger(__name__)

CHANNEL = "zalo"
SIGNATURE_HEADER = "X-ZEvent-Signature"
MAX_EVENT_AGE_SECONDS = 300  # Zalo signs the event time; older calls are replays, not retries worth taking
BUTTON_PREFIX = "#p:"  # our buttons send "#p:<engine payload>" back as a user_send_text
MAX_BUTTONS = 5  # more than this goes into the text as numbered lines
BUTTON_TITLE_LIMIT = 100
TOKEN_MARGIN = dt.timedelta(minutes=5)  # refresh a little before Zalo's expiry, not after a failed send
RATE_LIMIT_WAIT = 60.0  # Zalo gives no retry hint; its limits are per minute
HTTP_TIMEOUT = 15.0

# Kinds the engine knows (text | photo | sticker | voice | location | file | other) for Zalo's event names.
EVENT_KINDS = {
    "user_send_image": "photo",
    "user_send_sticker": "sticker",
    "user_send_audio": "voice",
    "user_send_location": "location",
    "user_send_file": "file",
    "user_send_gif": "other",
    "user_send_video": "other",
    "user_send_link": "other",
    "user_send_business_card": "other",
}

# OA API error codes. Anything else that is not 0 is retried with the outbox's back-off.
TOKEN_EXPIRED = {-216, -124}  # access token invalid or expired: refresh once, then send again
RATE_LIMITED = {-32}  # calls over the per-minute limit
UNDELIVERABLE = {
    -213,  # the user does not follow the OA (or unfollowed it)
    -227,  # the user is banned or has been inactive too long
    -230,  # the user has not talked to the OA recently: replies are no longer allowed
    -207,  # no such user id
}


class ZaloError(Exception):
    """Zalo refused a call in a way that may pass (the outbox retries it)."""


# -- webhook in -----------------------------------------------------------------------------------


def verify_signature(app_id: str, raw_body: bytes, timestamp: str, oa_secret: str, signature_header: str) -> bool:
    """True when the X-ZEvent-Signature header (with or without its "mac=" prefix) signs this exact body."""
    supplied = signature_header.strip()
    if supplied[:4].lower() == "mac=":
        supplied = supplied[4:].strip()
    if not supplied or not timestamp:
        return False
    signed = app_id.encode() + raw_body + timestamp.encode() + oa_secret.encode()
    expected = hashlib.sha256(signed).hexdigest()
    return hmac.compare_digest(supplied.lower().encode(), expected.encode())


def timestamp_fresh(ts_ms: str | int, now: dt.datetime, max_age: float = MAX_EVENT_AGE_SECONDS) -> bool:
    """True when an event time in epoch milliseconds lies within max_age seconds of now (either side)."""
    try:
        sent = int(str(ts_ms).strip())
    except ValueError:
        return False
    return abs(now.timestamp() * 1000 - sent) <= max_age * 1000


def parse_event(raw_body: bytes) -> dict[str, Any]:
    """The webhook body as a dict; integers keep their exact digits as strings. ValueError if not a JSON object."""
    event = json.loads(raw_body, parse_int=str)  # JSONDecodeError and UnicodeDecodeError are ValueErrors
    if not isinstance(event, dict):
        raise ValueError("the event is not a JSON object")
    return event


def event_to_inbound(event: dict[str, Any]) -> Inbound | None:
    """A citizen's message as the engine takes it; None for events that carry none (follow, seen, OA echoes...)."""
    name = event.get("event_name")
    if name != "user_send_text" and name not in EVENT_KINDS:
        return None
    user = _id(_field(event, "sender", "id")) or _id(_field(event, "user", "id"))
    if not user:
        return None
    message = event.get("message") if isinstance(event.get("message"), dict) else {}
    msg_id = _id(message.get("msg_id"))
    if name != "user_send_text":
        return Inbound(CHANNEL, user, external_id=msg_id, kind=EVENT_KINDS[str(name)], reply_to=msg_id)
    text = message.get("text")
    text = text if isinstance(text, str) else ""
    if text.startswith(BUTTON_PREFIX):
        return Inbound(CHANNEL, user, button=text[len(BUTTON_PREFIX) :].strip(), external_id=msg_id, reply_to=msg_id)
    return Inbound(CHANNEL, user, text=text, external_id=msg_id, reply_to=msg_id)


def _field(event: dict[str, Any], outer: str, inner: str) -> Any:
    value = event.get(outer)
    return value.get(inner) if isinstance(value, dict) else None


def _id(value: Any) -> str | None:
    """An id as its exact digits; floats are refused because they have already lost them."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    text = str(value).strip()
    return text or None


# -- tokens ---------------------------------------------------------------------------------------


class ZaloTokenStore:
    """The OA access token and its single-use refresh token, stored together and replaced in one transaction."""

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        oauth_base: str,
        seed_refresh_token: str | None = None,
        http: httpx.Client | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.app_id = app_id
        self.oauth_url = oauth_base.rstrip("/") + "/v4/oa/access_token"
        self._app_secret = app_secret
        self._seed = seed_refresh_token
        self._http = http or httpx.Client(timeout=HTTP_TIMEOUT)
        self._own_http = http is None
        self.clock = clock
        self._lock = asyncio.Lock()
        self._cached: tuple[str, dt.datetime] | None = None

    async def access_token(self) -> str:
        """A valid access token: remembered, stored, or refreshed now."""
        now = self.clock()
        if self._cached and self._cached[1] - TOKEN_MARGIN > now:
            return self._cached[0]
        stored = await asyncio.to_thread(self._load)
        if stored and stored[1] - TOKEN_MARGIN > now:
            self._cached = stored
            return stored[0]
        return await self.refresh(stale=stored[0] if stored else None)

    async def refresh(self, stale: str | None = None) -> str:
        """Trade the stored refresh token for a new pair, unless someone already replaced the `stale` token."""
        async with self._lock:  # one refresh at a time in this process; FOR UPDATE across processes
            self._cached = await asyncio.to_thread(self._refresh_in_transaction, stale)
            return self._cached[0]

    def close(self) -> None:
        """Close the HTTP client this store made for itself."""
        if self._own_http:
            self._http.close()

    def _load(self) -> tuple[str, dt.datetime] | None:
        with session_scope() as session:
            row = session.get(ChannelToken, CHANNEL)
            return (row.access_token, row.expires_at) if row else None

    def _refresh_in_transaction(self, stale: str | None) -> tuple[str, dt.datetime]:
        # The row stays locked through the HTTP call, and both tokens change in the same commit: a
        # failure before the commit leaves the old pair, never a new access token beside a used refresh token.
        with session_scope() as session:
            row = session.scalar(select(ChannelToken).where(ChannelToken.channel == CHANNEL).with_for_update())
            now = self.clock()
            if row is not None and row.access_token != stale and row.expires_at - TOKEN_MARGIN > now:
                return row.access_token, row.expires_at  # another worker refreshed while we waited
            refresh_token = row.refresh_token if row is not None else self._seed
            if not refresh_token:
                raise ZaloError("no Zalo refresh token: set MOTCUA_ZALO_REFRESH_TOKEN")
            access, new_refresh, expires_in = self._exchange(refresh_token)
            if row is None:
                row = ChannelToken(channel=CHANNEL)
                session.add(row)
            row.access_token = access
            row.refresh_token = new_refresh
            row.expires_at = now + dt.timedelta(seconds=expires_in)
            session.flush()
            logger.info("zalo access token refreshed; valid for %s s", expires_in)
            return row.access_token, row.expires_at

    def _exchange(self, refresh_token: str) -> tuple[str, str, int]:
        response = self._http.post(
            self.oauth_url,
            data={"app_id": self.app_id, "grant_type": "refresh_token", "refresh_token": refresh_token},
            headers={"secret_key": self._app_secret},
        )
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code != 200 or not isinstance(data, dict):
            raise ZaloError(f"token refresh failed with HTTP {response.status_code}")
        access, rotated = data.get("access_token"), data.get("refresh_token")
        if not access or not rotated:
            reason = data.get("error_name") or data.get("error_description") or data.get("message") or "no tokens"
            raise ZaloError(f"token refresh refused ({data.get('error')}): {reason}")
        try:
            expires_in = int(str(data.get("expires_in") or 3600))  # Zalo sends it as a string
        except ValueError:
            expires_in = 3600
        return str(access), str(rotated), expires_in


# -- replies out ----------------------------------------------------------------------------------


def message_body(message: Outgoing) -> dict[str, Any]:
    """The OA API request for one queued message: text, the quoted citizen message, buttons."""
    text = message.text
    buttons = message.buttons[:MAX_BUTTONS]
    overflow = message.buttons[MAX_BUTTONS:]
    if overflow:
        lines = [
            f"{n}. {b['label']} — reply with {BUTTON_PREFIX}{b['payload']}"
            for n, b in enumerate(overflow, start=len(buttons) + 1)
        ]
        text = text + "\n\n" + "\n".join(lines)
    body: dict[str, Any] = {"text": text}
    if message.reply_to:
        body["quote_message_id"] = message.reply_to
    if buttons:
        body["attachment"] = {
            "type": "template",
            "payload": {
                "buttons": [
                    {
                        "title": b["label"][:BUTTON_TITLE_LIMIT],
                        "type": "oa.query.hide",
                        "payload": BUTTON_PREFIX + b["payload"],
                    }
                    for b in buttons
                ]
            },
        }
    return {"recipient": {"user_id": message.recipient}, "message": body}


class ZaloSender:
    """Delivers outbox messages through the OA message API; maps Zalo's error codes to the outbox's terms."""

    def __init__(self, http: httpx.AsyncClient, tokens: ZaloTokenStore, api_base: str) -> None:
        self.http = http
        self.tokens = tokens
        self.url = api_base.rstrip("/") + "/v3.0/oa/message/cs"

    async def send(self, message: Outgoing) -> None:
        """Send one message; an expired token is refreshed once and the message sent again."""
        body = message_body(message)
        token = await self.tokens.access_token()
        code, reason = await self._post(token, body)
        if code in TOKEN_EXPIRED:
            token = await self.tokens.refresh(stale=token)
            code, reason = await self._post(token, body)
        if code == 0:
            return
        if code in RATE_LIMITED:
            raise RetryAfter(RATE_LIMIT_WAIT)
        if code in UNDELIVERABLE:
            raise PermanentFailure(f"zalo error {code}: {reason}")
        raise ZaloError(f"zalo error {code}: {reason}")

    async def _post(self, token: str, body: dict[str, Any]) -> tuple[int, str]:
        response = await self.http.post(self.url, json=body, headers={"access_token": token})
        if response.status_code == 429:
            raise RetryAfter(RATE_LIMIT_WAIT)
        if response.status_code != 200:
            raise ZaloError(f"OA API answered HTTP {response.status_code}")
        try:
            data = response.json()
            return int(data.get("error", 0)), str(data.get("message", ""))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ZaloError("OA API answered something that is not its JSON") from exc


@asynccontextmanager
async def delivering(settings: Settings) -> AsyncIterator[OutboxWorker | None]:
    """Drain queued Zalo replies while the block runs; does nothing when Zalo is not configured."""
    if not settings.zalo_app_id:
        yield None
        return
    tokens = ZaloTokenStore(
        app_id=settings.zalo_app_id,
        app_secret=settings.zalo_app_secret.get_secret_value() if settings.zalo_app_secret else "",
        oauth_base=settings.zalo_oauth_base,
        seed_refresh_token=settings.zalo_refresh_token.get_secret_value() if settings.zalo_refresh_token else None,
    )
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        worker = OutboxWorker({CHANNEL: ZaloSender(http, tokens, settings.zalo_api_base)})
        task = asyncio.create_task(worker.run(stop), name="zalo-outbox")
        try:
            yield worker
        finally:
            stop.set()
            await task
            tokens.close()
