"""A local stand-in of the Telegram Bot API: a real HTTP server speaking the methods the bot uses."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT_ID = 777000111
MAX_LONG_POLL = 10.0
MESSAGE_LIMIT = 4096  # UTF-16 units of the text after entities are parsed
CALLBACK_DATA_LIMIT = 64  # bytes

# Telegram's HTML: these tags (a with its href only), the four named entities and numeric ones; any other <, >
# or & is an error, as are unknown or unbalanced tags (https://core.telegram.org/bots/api#html-style).
HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
}
HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
HTML_TOKEN = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)([^<>]*)>|&(#[0-9]+|#x[0-9A-Fa-f]+|[A-Za-z]+);|[<>&]")
HREF = re.compile(r'\s+href="([^"]*)"\s*')


def utf16_len(text: str) -> int:
    """Telegram's unit of offsets and lengths."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """A message's text and entities as Telegram parses parse_mode=HTML; ValueError as Telegram's 400 says it."""
    pieces: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int, str | None]] = []
    offset = 0
    position = 0
    for match in HTML_TOKEN.finditer(source):
        before = source[position : match.start()]
        pieces.append(before)
        offset += utf16_len(before)
        position = match.end()
        closing, name, attrs, entity = match.groups()
        if name is not None:
            name = name.lower()
            if name not in HTML_TAGS:
                raise ValueError(f'can\'t parse entities: unsupported start tag "{name}" at offset {match.start()}')
            if closing:
                if not stack or stack[-1][0] != name:
                    raise ValueError(f'can\'t parse entities: unmatched end tag "{name}" at offset {match.start()}')
                tag, start, url = stack.pop()
                if offset > start:
                    entities.append({"type": HTML_TAGS[tag], "offset": start, "length": offset - start, "url": url})
                continue
            url = None
            if name == "a":
                href = HREF.fullmatch(attrs)
                if href is None:
                    raise ValueError(f'can\'t parse entities: bad attributes of "a" at offset {match.start()}')
                url = href.group(1)
            elif attrs.strip():
                raise ValueError(f"can't parse entities: unsupported attributes at offset {match.start()}")
            stack.append((name, offset, url))
        elif entity is not None:
            if entity.startswith("#x"):
                char = chr(int(entity[2:], 16))
            elif entity.startswith("#"):
                char = chr(int(entity[1:]))
            elif entity in HTML_ENTITIES:
                char = HTML_ENTITIES[entity]
            else:
                raise ValueError(f'can\'t parse entities: unsupported HTML entity "&{entity};"')
            pieces.append(char)
            offset += utf16_len(char)
        else:
            raise ValueError(f'can\'t parse entities: unexpected "{match.group(0)}" at offset {match.start()}')
    pieces.append(source[position:])
    if stack:
        raise ValueError(f"can't parse entities: can't find end tag corresponding to start tag \"{stack[-1][0]}\"")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(pieces), [{k: v for k, v in e.items() if v is not None} for e in entities]


class BotApiStandin:
    """`POST /bot{token}/{method}` for getMe, getUpdates, sendMessage, answerCallbackQuery and the webhook methods.

    Records every call; serves queued updates to getUpdates (long polling, `offset` confirms);
    can answer the next sendMessage calls with a 429, and chats can be blocked (403) or unknown (400).
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.webhook_url = ""
        self._updates: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._closing = False
        self._throttle: list[int] = []  # retry_after of the next 429s
        self._refuse_html = 0  # how many of the next HTML messages to refuse as unparsable
        self._blocked: set[str] = set()
        self._unknown: set[str] = set()
        self._message_id = 1000
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, name="bot-api-standin", daemon=True)

    # -- control -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What PTB's `base_url` needs: the token is appended to it."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/bot"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Wake long polls and shut the server down."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def push(self, *updates: dict[str, Any]) -> None:
        """Queue updates for getUpdates, in order (the same one twice is a redelivery)."""
        with self._cond:
            self._updates.extend(updates)
            self._cond.notify_all()

    def throttle(self, times: int, retry_after: int = 1) -> None:
        """Answer the next `times` sendMessage calls with 429 Too Many Requests."""
        with self._cond:
            self._throttle.extend([retry_after] * times)

    def refuse_html(self, times: int) -> None:
        """Answer the next `times` messages with parse_mode HTML with 400 can't parse entities."""
        with self._cond:
            self._refuse_html += times

    def block(self, chat_id: int | str) -> None:
        """The citizen blocked the bot: sendMessage to this chat answers 403."""
        self._blocked.add(str(chat_id))

    def forget(self, chat_id: int | str) -> None:
        """sendMessage to this chat answers 400 chat not found."""
        self._unknown.add(str(chat_id))

    def requests(self, method: str) -> list[dict[str, Any]]:
        """Parameters of every call of a method, oldest first (failed ones included)."""
        with self._cond:
            return [params for name, params in self.calls if name == method]

    def sent(self, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        """Messages sendMessage accepted, optionally for one chat."""
        with self._cond:
            return [
                p
                for name, p in self.calls
                if name == "sendMessage" and p.get("_ok") and (chat_id is None or p["chat_id"] == str(chat_id))
            ]

    # -- the API -----------------------------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one Bot API call: (HTTP status, JSON body)."""
        with self._cond:
            params = {**params, "_at": time.monotonic()}
            self.calls.append((method, params))
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        return handler(params)

    def _getMe(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802 - Bot API names
        return 200, {
            "ok": True,
            "result": {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Một cửa",
                "username": "motcua_test_bot",
                "can_join_groups": False,
            },
        }

    def _getUpdates(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), MAX_LONG_POLL)
        with self._cond:
            while True:
                # Like Telegram: an offset confirms every update below it, and they are gone.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                left = deadline - time.monotonic()
                if self._updates or left <= 0 or self._closing:
                    return 200, {"ok": True, "result": self._updates[:limit]}
                self._cond.wait(left)

    def _sendMessage(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        chat_id = str(params.get("chat_id"))
        with self._cond:
            retry_after = self._throttle.pop(0) if self._throttle else None
        if retry_after is not None:
            return 429, {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            }
        if chat_id in self._blocked:
            return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
        if chat_id in self._unknown:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        if "reply_markup" in params:
            params["reply_markup"] = json.loads(params["reply_markup"])
        text, entities = str(params.get("text", "")), []
        if str(params.get("parse_mode", "")).lower() == "html":
            with self._cond:
                refuse, self._refuse_html = self._refuse_html > 0, max(self._refuse_html - 1, 0)
            if refuse:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: can't parse entities: x"}
            try:
                text, entities = parse_html(text)
            except ValueError as exc:
                return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
            params["_parsed"] = {"text": text, "entities": entities}
        problem = _message_problem(text, params.get("reply_markup"))
        if problem:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {problem}"}
        with self._cond:
            self._message_id += 1
            params["_ok"] = True
            message_id = self._message_id
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "text": text,
            **({"entities": entities} if entities else {}),
            "chat": {"id": int(chat_id), "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Một cửa"},
        }
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        return 200, {"ok": True, "result": message}

    def _answerCallbackQuery(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        return 200, {"ok": True, "result": True}

    def _setWebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        self.webhook_url = params.get("url", "")
        return 200, {"ok": True, "result": True, "description": "Webhook was set"}

    def _deleteWebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        self.webhook_url = ""
        return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}

    def _getWebhookInfo(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        with self._cond:
            pending = len(self._updates)
        return 200, {
            "ok": True,
            "result": {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": pending},
        }

    # -- HTTP ------------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                prefix = f"/bot{standin.token}/"
                if not self.path.startswith(prefix):
                    self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    params = json.loads(body or b"{}")
                else:
                    params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                self._reply(*standin.call(self.path[len(prefix) :], params))

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except ConnectionError:
                    self.close_connection = True  # the bot gave up on a long poll while stopping

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                """Quiet: the test reads `calls`, not stderr."""

        return Handler


def _message_problem(text: str, markup: dict[str, Any] | None) -> str | None:
    """What Telegram would refuse in a message: empty or too long a text, too long a button's data."""
    if not text.strip():
        return "message text is empty"
    if utf16_len(text) > MESSAGE_LIMIT:
        return "message is too long"
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            if len(str(button.get("callback_data", "")).encode()) > CALLBACK_DATA_LIMIT:
                return "BUTTON_DATA_INVALID"
    return None


@contextmanager
def running_standin(token: str) -> Iterator[BotApiStandin]:
    """A started stand-in, stopped on exit."""
    standin = BotApiStandin(token)
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


# -- updates as Telegram sends them --------------------------------------------------------------


def _user(chat_id: int, lang: str) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "Dân", "language_code": lang}


def message_update(update_id: int, chat_id: int, lang: str = "vi", **content: Any) -> dict[str, Any]:
    """An update with a private-chat message; content is e.g. text=... or photo=[...]."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": _user(chat_id, lang),
            **content,
        },
    }


def text_update(update_id: int, chat_id: int, text: str, lang: str = "vi") -> dict[str, Any]:
    """A citizen typed text."""
    return message_update(update_id, chat_id, lang, text=text)


def callback_update(update_id: int, chat_id: int, data: str, query_id: str, lang: str = "vi") -> dict[str, Any]:
    """A citizen pressed an inline button under one of the bot's messages."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id,
            "from": _user(chat_id, lang),
            "chat_instance": f"ci-{chat_id}",
            "data": data,
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Một cửa"},
                "text": "…",
            },
        },
    }


PHOTO = {"photo": [{"file_id": "AgADphoto", "file_unique_id": "p1", "width": 90, "height": 90}]}
STICKER = {
    "sticker": {
        "file_id": "CAADsticker",
        "file_unique_id": "s1",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
}
VOICE = {"voice": {"file_id": "AwADvoice", "file_unique_id": "v1", "duration": 3}}
LOCATION = {"location": {"latitude": 21.0285, "longitude": 105.8542}}
DOCUMENT = {"document": {"file_id": "BQADdoc", "file_unique_id": "d1", "file_name": "don.pdf"}}
CONTACT = {"contact": {"phone_number": "0912345678", "first_name": "Dân"}}
