"""The officials' ticket API over real HTTP: the full loop, the authorization matrix, and bad input."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from admin_api.tickets_routes import TicketOut
from bot.models import Conversation
from core.db import session_scope
from helpdesk.accounts import create_user, issue_token, revoke_token
from helpdesk.models import Department, Ticket
from helpdesk.service import open_ticket
from knowledge.models import utcnow

pytestmark = pytest.mark.e2e
PASSWORD = "a long enough password"
_users = itertools.count()


@dataclass
class People:
    """Tokens of one user per role and department."""

    tokens: dict[str, str]  # official-a, official-b, supervisor-a, supervisor-b, admin


@pytest.fixture
def people(database_url: str, live_server: str) -> People:
    """Two departments of our own, with an official and a supervisor each, and an admin."""
    with session_scope() as session:
        session.add_all([Department(slug="dept-a", name="Phòng A"), Department(slug="dept-b", name="Phòng B")])
    tokens = {}
    with session_scope() as session:
        for key, role, department in [
            ("official-a", "official", "dept-a"),
            ("official-b", "official", "dept-b"),
            ("supervisor-a", "supervisor", "dept-a"),
            ("supervisor-b", "supervisor", "dept-b"),
            ("admin", "admin", None),
        ]:
            user = create_user(
                session, username=f"{key}.{next(_users)}", password=PASSWORD, role=role, department=department
            )
            session.flush()
            tokens[key] = issue_token(session, user, name="test", now=utcnow())[1]
    return People(tokens)


def make_ticket(department: str = "dept-a", *, channel: str = "web", user: str | None = None) -> str:
    """A new ticket of `department`, straight through the help-desk service."""
    with session_scope() as session:
        conversation = Conversation(channel=channel, user_key=user or f"u-{next(_users)}", state={})
        session.add(conversation)
        session.flush()
        ticket = open_ticket(
            session,
            conversation_id=conversation.id,
            channel=channel,
            question="Hỏi thử",
            reason="asked_for_person",
            lang="vi",
            now=utcnow(),
        )
        ticket.department = department
        return ticket.code


@pytest.fixture
def client(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=30) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_full_loop_citizen_to_official_and_back(people: People, client: httpx.Client) -> None:
    """Citizen asks for a person on the web chat → ticket → official logs in, claims, replies → citizen rates."""
    asked = client.post("/api/chat", json={"session": "loop-1", "text": "tôi muốn gặp cán bộ"}).json()
    assert asked["status"] == "escalated"
    code = asked["ticket"]
    with session_scope() as session:  # the seeded default desk got it; hand it to our department
        session.scalar(select(Ticket).where(Ticket.code == code)).department = "dept-a"
    with session_scope() as session:
        create_user(session, username="loop.official", password=PASSWORD, role="official", department="dept-a")
    login = client.post("/api/auth/token", data={"username": "loop.official", "password": PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    queue = client.get("/api/tickets", headers=bearer(token)).json()
    assert code in [t["code"] for t in queue["data"]]
    assert queue["count"] >= 1
    for item in queue["data"]:  # the queue skips response validation: its shape is checked here
        TicketOut.model_validate(item)
        assert set(item) == set(TicketOut.model_fields)
    claimed = client.post(f"/api/tickets/{code}/claim", headers=bearer(token))
    assert claimed.status_code == 200
    assert claimed.json()["assignee"] == "loop.official"
    replied = client.post(
        f"/api/tickets/{code}/reply",
        headers=bearer(token),
        json={"text": "Chào bạn, mời bạn mang CCCD đến bộ phận một cửa."},
    )
    assert replied.status_code == 200, replied.text
    assert replied.json()["ticket"]["status"] == "answered"
    messages = client.get("/api/chat/loop-1/messages").json()["messages"]
    official = messages[-1]
    assert official["text"].startswith("Chào bạn, mời bạn")
    assert official["author"] == "official"
    rate = next(b["payload"] for b in official["buttons"] if b["payload"] == f"r:{code}:5")
    assert client.post("/api/chat", json={"session": "loop-1", "button": rate}).json()["status"] == "rated"
    detail = client.get(f"/api/tickets/{code}", headers=bearer(token)).json()
    assert detail["rating"] == 5
    assert [e["kind"] for e in detail["history"]] == ["created", "claimed", "replied", "rated"]
    assert detail["history"][1]["actor"] == "loop.official"
    assert list(detail["deliveries"].values()) == ["shown"]  # web chat: read from the log


def test_a_telegram_reply_is_queued_and_its_delivery_visible(people: People, client: httpx.Client) -> None:
    code = make_ticket(channel="telegram", user="4242")
    headers = bearer(people.tokens["official-a"])
    body = client.post(f"/api/tickets/{code}/reply", headers=headers, json={"text": "Xin chào"}).json()
    assert body["delivery"] == "pending"
    detail = client.get(f"/api/tickets/{code}", headers=headers).json()
    assert detail["deliveries"] == {str(body["message_id"]): "pending"}  # no Telegram token here: it waits


# -- the authorization matrix -----------------------------------------------------------------------------

ACTIONS = {
    "view": ("GET", "/api/tickets/{code}", None),
    "claim": ("POST", "/api/tickets/{code}/claim", None),
    "reply": ("POST", "/api/tickets/{code}/reply", {"text": "Trả lời"}),
    "note": ("POST", "/api/tickets/{code}/note", {"text": "Ghi chú nội bộ"}),
    "transfer": ("POST", "/api/tickets/{code}/transfer", {"department": "dept-b", "reason": "Sai phòng"}),
    "close": ("POST", "/api/tickets/{code}/close", None),
    "reopen": ("POST", "/api/tickets/{code}/reopen", None),
    "urgency": ("POST", "/api/tickets/{code}/urgency", {"urgency": "urgent"}),
}
ROLES = {  # who acts on a dept-a ticket → allowed?
    "official-a": True,
    "supervisor-a": True,
    "admin": True,
    "official-b": False,
    "supervisor-b": False,
}


def test_every_endpoint_for_every_role_and_department(people: People, client: httpx.Client) -> None:
    for (action, (method, path, body)), (role, allowed) in itertools.product(ACTIONS.items(), ROLES.items()):
        code = make_ticket("dept-a")
        if action == "reopen":  # only answered or closed tickets reopen: close it first as the admin
            client.post(f"/api/tickets/{code}/close", headers=bearer(people.tokens["admin"])).raise_for_status()
        response = client.request(method, path.format(code=code), json=body, headers=bearer(people.tokens[role]))
        assert response.status_code == (200 if allowed else 403), (action, role, response.text)
        payload = response.json()
        assert ("detail" not in payload) if allowed else ("dept-a" in payload["detail"]), (action, role, payload)
    for role, allowed in ROLES.items():
        response = client.get("/api/tickets?department=dept-a", headers=bearer(people.tokens[role]))
        assert response.status_code == (200 if allowed else 403), (role, response.text)
    # refused attempts are in the audit trail of the ticket
    code = make_ticket("dept-a")
    client.post(f"/api/tickets/{code}/claim", headers=bearer(people.tokens["official-b"]))
    history = client.get(f"/api/tickets/{code}", headers=bearer(people.tokens["admin"])).json()["history"]
    assert [(e["kind"], e["data"].get("action")) for e in history] == [("created", None), ("denied", "claim")]


def test_missing_malformed_revoked_and_expired_tokens_get_401(people: People, client: httpx.Client) -> None:
    code = make_ticket("dept-a")
    with session_scope() as session:
        user = create_user(session, username="short.lived", password=PASSWORD, role="admin")
        session.flush()
        past = utcnow() - dt.timedelta(days=2)
        expired = issue_token(session, user, name="old", expires_at=past + dt.timedelta(days=1), now=past)[1]
        revoked_row, revoked = issue_token(session, user, name="gone", now=utcnow())
        session.flush()
        revoke_token(session, revoked_row.prefix, utcnow())
    cases = {
        "missing": {},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "scheme": {"Authorization": "Basic x"},
        "expired": bearer(expired),
        "revoked": bearer(revoked),
        "forged jwt": bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"),
    }
    for name, headers in cases.items():
        for method, path, body in ACTIONS.values():
            response = client.request(method, path.format(code=code), json=body, headers=headers)
            assert response.status_code == 401, (name, path, response.text)
            assert response.json()["detail"]
        assert client.get("/api/tickets", headers=headers).status_code == 401


# -- bad input ---------------------------------------------------------------------------------------------


def test_bad_input_gets_clear_4xx_never_500(people: People, client: httpx.Client) -> None:
    admin = bearer(people.tokens["admin"])
    code = make_ticket("dept-a")
    cases = [
        ("GET", "/api/tickets/MC-NOPE00", None, 404, "no ticket"),
        ("GET", "/api/tickets?limit=1000000000", None, 422, "limit"),
        ("GET", "/api/tickets?limit=abc", None, 422, "limit"),
        ("GET", "/api/tickets?offset=-1", None, 422, "offset"),
        ("GET", "/api/tickets?status=lost", None, 422, "status"),
        ("GET", "/api/tickets?overdue=maybe", None, 422, "overdue"),
        ("GET", "/api/tickets?assignee=nobody.here", None, 422, "assignee"),
        ("POST", f"/api/tickets/{code}/reply", {"text": 42}, 422, "text"),
        ("POST", f"/api/tickets/{code}/reply", {"text": ""}, 422, "text"),
        ("POST", f"/api/tickets/{code}/reply", {"text": "x" * 9000}, 422, "text"),
        ("POST", f"/api/tickets/{code}/reply", {"txt": "typo"}, 422, "txt"),
        ("POST", f"/api/tickets/{code}/transfer", {"department": "moon", "reason": "r"}, 422, "moon"),
        ("POST", f"/api/tickets/{code}/transfer", {"department": "dept-a"}, 422, "reason"),
        ("POST", f"/api/tickets/{code}/urgency", {"urgency": "panic"}, 422, "urgency"),
    ]
    for method, path, body, status, word in cases:
        response = client.request(method, path, json=body, headers=admin)
        assert response.status_code == status, (path, body, response.text)
        assert word in response.json()["detail"], (path, response.json())
    broken = client.post(
        f"/api/tickets/{code}/reply", content=b"{not json", headers={**admin, "Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    huge = client.post(
        f"/api/tickets/{code}/note", content=b"x" * 2_000_000, headers={**admin, "Content-Type": "application/json"}
    )
    assert huge.status_code == 413
    assert "too large" in huge.json()["detail"]
    # invalid transitions
    assert client.post(f"/api/tickets/{code}/close", headers=admin).status_code == 200
    closed = client.post(f"/api/tickets/{code}/reply", json={"text": "late"}, headers=admin)
    assert closed.status_code == 409
    assert "closed" in closed.json()["detail"]
    assert client.post(f"/api/tickets/{code}/claim", headers=admin).status_code == 409
    assert client.post(f"/api/tickets/{code}/reopen", headers=admin).status_code == 200
    assert client.post(f"/api/tickets/{code}/reopen", headers=admin).status_code == 409


def test_two_officials_claiming_over_http_one_gets_409(people: People, client: httpx.Client) -> None:
    code = make_ticket("dept-a")
    with session_scope() as session:
        other = create_user(
            session, username="second.official", password=PASSWORD, role="official", department="dept-a"
        )
        session.flush()
        second = issue_token(session, other, name="t", now=utcnow())[1]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(
            pool.map(
                lambda t: client.post(f"/api/tickets/{code}/claim", headers=bearer(t)).status_code,
                [people.tokens["official-a"], second],
            )
        )
    assert statuses == [200, 409]
