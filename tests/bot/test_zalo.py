"""The Zalo channel end to end: signed and forged webhook calls against the running app over HTTP,
replies delivered to a local stand-in of the OA message API and OAuth endpoint.

One app and one stand-in serve the whole module (per database): seeding the knowledge base takes seconds,
so each test keeps to its own citizen ids and msg_ids instead of a fresh server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, func, select, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from admin_api.app import create_app, load_engine
from bot.engine import Inbound
from bot.inbox import accept_inbound, finish_pending, process_stored
from bot.models import ChannelToken, ChatMessage, Conversation, InboundUpdate
from bot.texts import say
from bot.zalo import (
    ZaloSender,
    ZaloTokenStore,
    event_to_inbound,
    timestamp_fresh,
    verify_signature,
)
from core.config import get_settings
from core.db import dispose_engines, session_scope
from helpdesk.models import OutboxMessage
from helpdesk.outbox import Outgoing, PermanentFailure, RetryAfter
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.e2e

APP_ID = "2553928453557884079"
OA_ID = "3662729599332560487"
OA_SECRET = "oa-secret-key-for-tests"
APP_SECRET = "app-secret-key-for-tests"
SEED_REFRESH = "refresh-0"
BIG_USER = "8765432109876543210"  # beyond 2^53: as a float it would become 8765432109876543000
STARTUP_SECONDS = 60


class ZaloStandin:
    """`POST /v3.0/oa/message/cs` and `POST /v4/oa/access_token`, keeping Zalo's rules that matter here.

    Access tokens are checked (-216 once revoked); refresh tokens are single-use and rotate; the next sends
    can be scripted to fail with an error code (rate limit, user not a follower). Every call is recorded.
    """

    def __init__(self) -> None:
        self.sends: list[dict[str, Any]] = []  # every message call: {"token", "body", "error"}
        self.oauth: list[dict[str, str]] = []  # every refresh call's form, plus its secret_key header
        self.issued: list[tuple[str, str]] = []
        self._access = {"access-0"}
        self._refresh = {SEED_REFRESH}
        self._script: list[int] = []
        self._lock = threading.Lock()

    def delivered(self, user: str) -> list[dict[str, Any]]:
        """Message bodies accepted for a user, in order."""
        with self._lock:
            return [s["body"] for s in self.sends if s["error"] == 0 and s["body"]["recipient"]["user_id"] == user]

    def revoke_access_tokens(self) -> None:
        """Every access token issued so far now answers -216 (expired)."""
        with self._lock:
            self._access.clear()

    def fail_next(self, *codes: int) -> None:
        """Answer the next message calls with these Zalo error codes."""
        with self._lock:
            self._script.extend(codes)

    def app(self) -> Starlette:
        """The stand-in as an ASGI app."""
        return Starlette(
            routes=[
                Route("/v3.0/oa/message/cs", self._message, methods=["POST"]),
                Route("/v4/oa/access_token", self._token, methods=["POST"]),
            ]
        )

    async def _message(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        token = request.headers.get("access_token", "")
        with self._lock:
            if token not in self._access:
                error, message = -216, "Access token is invalid"
            elif self._script:
                error, message = self._script.pop(0), "scripted failure"
            else:
                error, message = 0, "Success"
            self.sends.append({"token": token, "body": body, "error": error})
        if error:
            return JSONResponse({"error": error, "message": message})
        user = body["recipient"]["user_id"]
        return JSONResponse(
            {"error": 0, "message": "Success", "data": {"message_id": uuid.uuid4().hex, "user_id": user}}
        )

    async def _token(self, request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode()))
        with self._lock:
            self.oauth.append({**form, "secret_key": request.headers.get("secret_key", "")})
            valid = (
                request.headers.get("secret_key") == APP_SECRET
                and form.get("app_id") == APP_ID
                and form.get("grant_type") == "refresh_token"
                and form.get("refresh_token") in self._refresh
            )
            if not valid:
                return JSONResponse({"error": -14014, "error_name": "Invalid refresh token"})
            self._refresh.discard(form["refresh_token"])  # single use
            n = len(self.issued) + 1
            pair = (f"access-{n}", f"refresh-{n}")
            self.issued.append(pair)
            self._access.add(pair[0])
            self._refresh.add(pair[1])
        return JSONResponse({"access_token": pair[0], "refresh_token": pair[1], "expires_in": "90000"})


@dataclass
class Stack:
    """The running app and the stand-in it talks to."""

    app_url: str
    zalo: ZaloStandin
    zalo_url: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Any, name: str) -> Iterator[str]:
    """Run an ASGI app on uvicorn in a background thread until the block ends; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive():
            pytest.fail(f"{name} stopped during start-up; see the captured log")
        if time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail(f"{name} did not start within {STARTUP_SECONDS} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def database(kind: str, data_dir: Path) -> Iterator[str]:
    """An empty SQLite file, or a throw-away PostgreSQL database (as in tests/conftest.py)."""
    if kind == "sqlite":
        yield f"sqlite:///{data_dir / 'test.db'}"
        return
    name = f"motcua_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means no server here
        admin.dispose()
        pytest.fail(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stand-in, and the real app configured for Zalo against it (hash embedder, fresh database)."""
    zalo = ZaloStandin()
    data_dir = tmp_path_factory.mktemp("zalo") / "var"
    with (
        pytest.MonkeyPatch.context() as env,
        serve(zalo.app(), "zalo-standin") as zalo_url,
        database(request.param, data_dir) as url,
    ):
        for name, value in {
            "DATA_DIR": str(data_dir),
            "EMBEDDER": "hash",
            "DATABASE_URL": url,
            "ZALO_APP_ID": APP_ID,
            "ZALO_OA_SECRET": OA_SECRET,
            "ZALO_APP_SECRET": APP_SECRET,
            "ZALO_REFRESH_TOKEN": SEED_REFRESH,
            "ZALO_API_BASE": zalo_url,
            "ZALO_OAUTH_BASE": zalo_url,
        }.items():
            env.setenv(f"MOTCUA_{name}", value)
        get_settings.cache_clear()
        try:
            with serve(create_app(), "motcua-app") as app_url:
                yield Stack(app_url, zalo, zalo_url)
        finally:
            dispose_engines()
            get_settings.cache_clear()


# -- helpers ----------------------------------------------------------------------------------------


def now_ms(shift_seconds: float = 0) -> str:
    return str(int((time.time() + shift_seconds) * 1000))


def event_body(
    user: str,
    msg_id: str,
    text: str | None = None,
    *,
    name: str = "user_send_text",
    timestamp: str | None = None,
    user_as_number: bool = False,
) -> tuple[bytes, str]:
    """A raw webhook body as Zalo writes it (the user id may come as a bare JSON number), and its timestamp."""
    timestamp = timestamp or now_ms()
    message: dict[str, Any] = {"msg_id": msg_id}
    if text is not None:
        message["text"] = text
    else:
        message["attachments"] = [{"type": "image", "payload": {"url": "https://zalo.example/p.jpg"}}]
    sender = user if user_as_number else json.dumps(user)
    raw = (
        f'{{"app_id":"{APP_ID}","user_id_by_app":"1234","event_name":"{name}","timestamp":"{timestamp}",'
        f'"sender":{{"id":{sender}}},"recipient":{{"id":"{OA_ID}"}},'
        f'"message":{json.dumps(message, ensure_ascii=False)}}}'
    )
    return raw.encode(), timestamp


def sign(raw: bytes, timestamp: str, secret: str = OA_SECRET) -> str:
    """X-ZEvent-Signature as Zalo computes it."""
    return "mac=" + hashlib.sha256(APP_ID.encode() + raw + timestamp.encode() + secret.encode()).hexdigest()


def post(stack: Stack, raw: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-ZEvent-Signature"] = signature
    return httpx.post(f"{stack.app_url}/zalo/webhook", content=raw, headers=headers, timeout=10)


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.05)


def stored(msg_id: str) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count(InboundUpdate.id)).where(InboundUpdate.external_id == msg_id)) or 0


def new_user() -> str:
    """A fresh citizen id past 2^53, written with all its digits."""
    return str(9_000_000_000_000_000_000 + uuid.uuid4().int % 10**17)


# -- the webhook against the running app ----------------------------------------------------------------------


def test_signed_text_is_answered_to_the_exact_big_user_id_quoting_the_message(stack: Stack) -> None:
    raw, ts = event_body(BIG_USER, "msg-big-1", "Thủ tục đăng ký khai sinh cho con", user_as_number=True)
    assert f'"id":{BIG_USER}' in raw.decode()  # a bare JSON number, as a careless sender might write it

    response = post(stack, raw, sign(raw, ts))

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    first = wait_for(lambda: stack.zalo.delivered(BIG_USER))[0]
    assert first["recipient"]["user_id"] == BIG_USER  # a string with every digit
    assert first["message"]["quote_message_id"] == "msg-big-1"
    assert first["message"]["text"]
    with session_scope() as session:
        assert (
            session.scalar(
                select(Conversation.user_key).where(Conversation.channel == "zalo", Conversation.user_key == BIG_USER)
            )
            == BIG_USER
        )


def test_buttons_go_out_as_oa_query_buttons_and_a_press_comes_back_as_the_payload(stack: Stack) -> None:
    user = new_user()
    raw, ts = event_body(user, "msg-topics-1", "/topics")
    assert post(stack, raw, sign(raw, ts)).status_code == 200
    topics = wait_for(lambda: stack.zalo.delivered(user))[0]["message"]
    buttons = topics["attachment"]["payload"]["buttons"]
    assert 0 < len(buttons) <= 5
    assert all(b["type"] == "oa.query.hide" and b["payload"].startswith("#p:t:") for b in buttons)

    # Zalo sends an oa.query.hide press back as a user_send_text carrying the payload.
    raw, ts = event_body(user, "msg-topics-2", buttons[0]["payload"])
    assert post(stack, raw, sign(raw, ts)).status_code == 200
    topic = wait_for(lambda: stack.zalo.delivered(user)[1:])[0]["message"]
    assert topic["text"] == say("topic", "vi")
    assert topic["quote_message_id"] == "msg-topics-2"


@pytest.mark.parametrize(
    ("signature", "secret"),
    [("forged", OA_SECRET), (None, OA_SECRET), ("signed", "not-the-oa-secret")],
    ids=["tampered-body", "no-header", "wrong-secret"],
)
def test_unsigned_or_forged_calls_are_refused_and_nothing_is_stored(
    stack: Stack, signature: str | None, secret: str
) -> None:
    user = new_user()
    msg_id = f"msg-forged-{uuid.uuid4().hex[:8]}"
    raw, ts = event_body(user, msg_id, "xin chào")
    header = None if signature is None else sign(raw, ts, secret)
    if signature == "forged":
        raw = raw.replace("xin chào".encode(), "chuyển tiền".encode())  # signed body, then tampered with

    response = post(stack, raw, header)

    assert response.status_code == 403
    assert "X-ZEvent-Signature" in response.json()["detail"]
    time.sleep(0.3)  # were anything accepted, it would be stored by now
    assert stored(msg_id) == 0
    assert stack.zalo.delivered(user) == []


def test_a_stale_timestamp_is_refused_even_when_signed(stack: Stack) -> None:
    msg_id = "msg-stale-1"
    raw, ts = event_body(new_user(), msg_id, "xin chào", timestamp=now_ms(-600))

    response = post(stack, raw, sign(raw, ts))

    assert response.status_code == 403
    assert response.json() == {"detail": "stale event timestamp"}
    assert stored(msg_id) == 0


def test_malformed_json_is_a_400_never_a_500(stack: Stack) -> None:
    ts = now_ms()
    for raw in (b'{"event_name": "user_send_text", "sender": {', b"[1, 2]", "\xff\xfe".encode("latin-1"), b""):
        response = post(stack, raw, sign(raw, ts))
        assert response.status_code == 400, raw
        assert "malformed JSON" in response.json()["detail"]


def test_events_without_a_citizen_message_are_acknowledged_and_ignored(stack: Stack) -> None:
    raw, ts = event_body(new_user(), "msg-follow-1", "x", name="follow")
    response = post(stack, raw, sign(raw, ts))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    assert stored("msg-follow-1") == 0


def test_the_same_msg_id_delivered_twice_gets_one_reply(stack: Stack) -> None:
    user = new_user()
    raw, ts = event_body(user, "msg-dup-1", "lệ phí cấp lại căn cước")
    signature = sign(raw, ts)

    assert post(stack, raw, signature).status_code == 200
    assert post(stack, raw, signature).status_code == 200  # Zalo's retry: answered 200 as well

    wait_for(lambda: stack.zalo.delivered(user))
    time.sleep(1.0)  # time for a second reply, were one coming
    assert stored("msg-dup-1") == 1
    with session_scope() as session:
        incoming = session.scalar(
            select(func.count(ChatMessage.id))
            .join(Conversation)
            .where(Conversation.user_key == user, ChatMessage.direction == "in")
        )
        queued = session.scalars(select(OutboxMessage.status).where(OutboxMessage.recipient == user)).all()
    assert incoming == 1
    assert queued
    assert set(queued) == {"sent"}
    assert len(stack.zalo.delivered(user)) == len(queued)  # every part of the one reply, once


def test_a_retry_racing_the_first_delivery_is_dropped_quietly(stack: Stack) -> None:
    engine = load_engine()  # the module's database is seeded: this only opens the index
    inbound = Inbound("zalo", new_user(), text="/help", external_id="msg-race-1", reply_to="msg-race-1")

    with ThreadPoolExecutor(max_workers=4) as pool:
        update_ids = list(pool.map(lambda _: accept_inbound(engine, inbound), range(4)))

    assert stored("msg-race-1") == 1
    accepted = [i for i in update_ids if i is not None]
    assert len(accepted) == 1
    assert process_stored(engine, accepted[0]).status == "help"
    assert process_stored(engine, accepted[0]).duplicate  # processing twice answers once
    with session_scope() as session:
        assert session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.recipient == inbound.user)) == 1


def test_an_image_gets_the_text_only_reply(stack: Stack) -> None:
    user = new_user()
    raw, ts = event_body(user, "msg-image-1", name="user_send_image")
    assert post(stack, raw, sign(raw, ts)).status_code == 200
    reply = wait_for(lambda: stack.zalo.delivered(user))[0]["message"]
    assert reply["text"] == say("unsupported", "vi")
    assert reply["quote_message_id"] == "msg-image-1"


def test_an_expired_access_token_is_refreshed_once_and_both_tokens_replaced(stack: Stack) -> None:
    user = new_user()
    raw, ts = event_body(user, "msg-token-1", "/help")
    assert post(stack, raw, sign(raw, ts)).status_code == 200
    wait_for(lambda: stack.zalo.delivered(user))  # the app holds a working token now
    with session_scope() as session:
        before = session.get(ChannelToken, "zalo")
        assert before is not None
        old_access, old_refresh = before.access_token, before.refresh_token
    refreshes = len(stack.zalo.oauth)

    stack.zalo.revoke_access_tokens()
    raw, ts = event_body(user, "msg-token-2", "/help")
    assert post(stack, raw, sign(raw, ts)).status_code == 200
    reply = wait_for(lambda: stack.zalo.delivered(user)[1:])[0]

    assert reply["message"]["quote_message_id"] == "msg-token-2"
    assert len(stack.zalo.oauth) == refreshes + 1
    call = stack.zalo.oauth[-1]
    assert (call["refresh_token"], call["app_id"], call["grant_type"], call["secret_key"]) == (
        old_refresh,
        APP_ID,
        "refresh_token",
        APP_SECRET,
    )
    new_access, new_refresh = stack.zalo.issued[-1]
    with session_scope() as session:
        after = session.get(ChannelToken, "zalo")
        assert after is not None
        assert (after.access_token, after.refresh_token) == (new_access, new_refresh)
        assert after.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(hours=24)
    assert (new_access, new_refresh) != (old_access, old_refresh)
    attempts = [s for s in stack.zalo.sends if s["body"]["message"].get("quote_message_id") == "msg-token-2"]
    assert [(s["token"], s["error"]) for s in attempts] == [(old_access, -216), (new_access, 0)]


# -- the sender's error mapping, over HTTP to the stand-in ------------------------------------------------------


def send_directly(stack: Stack, user: str) -> None:
    async def run() -> None:
        tokens = ZaloTokenStore(
            app_id=APP_ID, app_secret=APP_SECRET, oauth_base=stack.zalo_url, seed_refresh_token=SEED_REFRESH
        )
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                await ZaloSender(http, tokens, stack.zalo_url).send(Outgoing(1, "zalo", user, "xin chào"))
        finally:
            tokens.close()

    asyncio.run(run())


def test_a_rate_limit_asks_the_outbox_to_wait_a_minute(stack: Stack) -> None:
    stack.zalo.fail_next(-32)
    with pytest.raises(RetryAfter) as info:
        send_directly(stack, new_user())
    assert info.value.seconds == 60


def test_a_user_who_does_not_follow_the_oa_is_given_up_at_once(stack: Stack) -> None:
    stack.zalo.fail_next(-213)
    with pytest.raises(PermanentFailure, match="-213"):
        send_directly(stack, new_user())


# -- protocol helpers -------------------------------------------------------------------------------------------


def test_signature_accepts_the_header_with_or_without_mac_prefix_and_nothing_else() -> None:
    raw, ts = event_body(BIG_USER, "m1", "xin chào")
    header = sign(raw, ts)
    assert verify_signature(APP_ID, raw, ts, OA_SECRET, header)
    assert verify_signature(APP_ID, raw, ts, OA_SECRET, header.removeprefix("mac="))
    assert not verify_signature(APP_ID, raw + b" ", ts, OA_SECRET, header)
    assert not verify_signature(APP_ID, raw, str(int(ts) + 1), OA_SECRET, header)
    assert not verify_signature(APP_ID, raw, ts, OA_SECRET, "")


def test_timestamp_freshness_is_five_minutes_either_way() -> None:
    now = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
    ms = int(now.timestamp() * 1000)
    assert timestamp_fresh(str(ms - 299_000), now)
    assert timestamp_fresh(ms + 299_000, now)
    assert not timestamp_fresh(str(ms - 301_000), now)
    assert not timestamp_fresh(str(ms + 301_000), now)
    assert not timestamp_fresh("yesterday", now)


def test_events_map_to_inbound_messages() -> None:
    base = {"sender": {"id": BIG_USER}, "message": {"msg_id": "m1"}}
    text = event_to_inbound({**base, "event_name": "user_send_text", "message": {"msg_id": "m1", "text": "hỏi"}})
    assert text is not None
    assert (text.user, text.text, text.button, text.external_id, text.reply_to) == (BIG_USER, "hỏi", None, "m1", "m1")
    button = event_to_inbound({**base, "event_name": "user_send_text", "message": {"msg_id": "m2", "text": "#p:h"}})
    assert button is not None
    assert (button.text, button.button) == (None, "h")
    kinds = {
        name: event_to_inbound({**base, "event_name": name})
        for name in (
            "user_send_image",
            "user_send_sticker",
            "user_send_audio",
            "user_send_location",
            "user_send_file",
            "user_send_gif",
        )
    }
    assert {name: i.kind for name, i in kinds.items() if i} == {
        "user_send_image": "photo",
        "user_send_sticker": "sticker",
        "user_send_audio": "voice",
        "user_send_location": "location",
        "user_send_file": "file",
        "user_send_gif": "other",
    }
    assert event_to_inbound({**base, "event_name": "oa_send_text"}) is None
    assert event_to_inbound({"event_name": "user_send_text", "sender": "nobody"}) is None


def test_a_message_stored_before_a_crash_is_answered_on_the_next_start(stack: Stack) -> None:
    engine = load_engine()
    user = new_user()
    update_id = accept_inbound(engine, Inbound("zalo", user, text="/help", external_id="msg-crash-1"))
    assert update_id is not None  # stored, then the process "died" before answering
    assert finish_pending(engine, ["zalo"]) >= 1
    with session_scope() as session:
        queued = session.scalars(select(OutboxMessage.text).where(OutboxMessage.recipient == user)).all()
    assert len(queued) == 1
    assert finish_pending(engine, ["zalo"]) == 0
