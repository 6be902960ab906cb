"""The web-chat API over real HTTP: the DESIGN contract, hand-off to a person, and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import running_app

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live_server(module_data_dir: Path) -> Iterator[str]:
    """One real app for the module: every test talks in chat sessions of its own."""
    with running_app() as base:
        yield base


def test_chat_contract_and_message_history(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        first = client.post("/api/chat", json={"session": "s-1", "text": "Thủ tục đăng ký khai sinh"})
        assert first.status_code == 200
        body = first.json()
        assert set(body) == {"status", "ticket", "replies", "lang"}  # DESIGN's fields, and the frame's language
        assert body["status"] in {"answered", "clarify", "escalated", "declined"}
        assert body["lang"] == "vi"
        reply = body["replies"][0]
        assert set(reply) == {"id", "text", "buttons", "blocks"}
        assert reply["text"]
        assert all(set(b) == {"label", "payload"} for b in reply["buttons"])
        pressed = client.post("/api/chat", json={"session": "s-1", "button": "p:birth-registration"}).json()
        assert pressed["status"] == "answered"
        card = pressed["replies"][0]
        assert "Hồ sơ cần có" in card["text"]
        assert card["blocks"][0] == {"type": "heading", "text": "📄 Đăng ký khai sinh"}
        assert {"type": "list", "label": "Hồ sơ cần có"}.items() <= card["blocks"][2].items()
        assert card["buttons"][0] == {"label": "📋 Xem đầy đủ", "payload": "c:birth-registration:full"}
        full = client.post("/api/chat", json={"session": "s-1", "button": "c:birth-registration:full"}).json()
        assert "Căn cứ pháp lý" in full["replies"][0]["text"]
        assert len(full["replies"][0]["text"]) > 2 * len(card["text"])
        history = client.get("/api/chat/s-1/messages").json()
        assert history["lang"] == "vi"
        ids = [m["id"] for m in history["messages"]]
        assert ids == [reply["id"], card["id"], full["replies"][0]["id"]]
        assert {"id", "text", "buttons", "at", "blocks"} <= set(history["messages"][0])
        assert history["messages"][1]["blocks"] == card["blocks"]  # kept with the message, for a reload
        later = client.get(f"/api/chat/s-1/messages?after={reply['id']}").json()["messages"]
        assert [m["id"] for m in later] == ids[1:]
        assert client.get("/api/chat/nobody/messages").json() == {"messages": [], "lang": None}


def test_the_language_of_the_frame_follows_the_browser_then_the_citizen(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        hello = client.post("/api/chat", json={"session": "s-en", "text": "/start", "lang": "en"}).json()
        assert hello["lang"] == "en"
        assert hello["replies"][0]["text"].startswith("Hello!")
        asked = client.post("/api/chat", json={"session": "s-en", "text": "Thủ tục đăng ký khai sinh"}).json()
        assert asked["lang"] == "vi"  # the citizen wrote Vietnamese
        assert client.get("/api/chat/s-en/messages").json()["lang"] == "vi"
        english = client.post("/api/chat", json={"session": "s-vi", "text": "How do I register a birth?"}).json()
        assert english["lang"] == "en"


@pytest.mark.parametrize("text", ["tôi muốn gặp cán bộ", "I want to talk to an official"])
def test_asking_for_a_person_escalates_to_a_ticket(live_server: str, text: str) -> None:
    session = f"s-person-{len(text)}"  # each phrasing in a conversation of its own
    body = httpx.post(f"{live_server}/api/chat", json={"session": session, "text": text}, timeout=30).json()
    assert body["status"] == "escalated"
    assert body["ticket"]
    assert body["ticket"].startswith("MC-")
    assert body["ticket"] in body["replies"][0]["text"]


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"text": "hi"}, "session: Field required"),
        ({"session": "s", "text": "a", "button": "h"}, "send exactly one of 'text' and 'button'"),
        ({"session": "s"}, "send exactly one of 'text' and 'button'"),
        ({"session": "bad session!", "text": "a"}, "session: String should match pattern"),
        ({"session": "s", "text": 42}, "text: Input should be a valid string"),
        ({"session": "s", "text": "x" * 20_001}, "text: String should have at most 20000 characters"),
        ({"session": "s", "text": "a", "extra": 1}, "extra: Extra inputs are not permitted"),
        ({"session": "s", "text": "a", "lang": "en-US"}, "lang: String should match pattern"),
    ],
)
def test_bad_requests_get_a_clear_422(live_server: str, payload: dict, detail: str) -> None:
    response = httpx.post(f"{live_server}/api/chat", json=payload, timeout=30)
    assert response.status_code == 422
    assert detail in response.json()["detail"]


def test_malformed_json_and_unknown_routes_are_clear_4xx(live_server: str) -> None:
    broken = httpx.post(
        f"{live_server}/api/chat", content=b'{"session": "s", "text": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert "JSON" in broken.json()["detail"]
    assert httpx.get(f"{live_server}/api/nothing-here").status_code == 404
    assert httpx.get(f"{live_server}/api/chat/s/messages?after=-1").status_code == 422
    assert httpx.get(f"{live_server}/static/../app.py").status_code == 404


@pytest.mark.parametrize(
    ("text", "status"),
    [("", "empty"), ("😀😀😀", "empty"), ("\u200b\u200f", "empty"), ("x" * 10_000, "too_long"), ("مرحبا؟", None)],
)
def test_odd_messages_get_a_reply_never_a_500(live_server: str, text: str, status: str | None) -> None:
    session = f"s-odd-{status}-{len(text)}"
    response = httpx.post(f"{live_server}/api/chat", json={"session": session, "text": text}, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["replies"]
    assert body["replies"][0]["text"]
    if status:
        assert body["status"] == status


def test_health_and_readiness(live_server: str) -> None:
    assert httpx.get(f"{live_server}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live_server}/readyz").json()
    assert ready["status"] == "ready"
    assert ready["procedures"] == 43
    assert httpx.get(f"{live_server}/docs").status_code == 200
