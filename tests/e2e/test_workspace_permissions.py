"""Every page and form of the officials' workspace for every kind of visitor, over real HTTP on SQLite and PostgreSQL:
who may see and do what, CSRF tokens, a double press, escaping, bad input."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import func, select

from bot.models import ChatMessage, Conversation
from core.db import session_scope
from helpdesk import tickets
from helpdesk.accounts import Actor, create_user, get_user
from helpdesk.models import Department, Ticket, TicketEvent
from helpdesk.service import open_ticket
from knowledge.models import utcnow
from tests.conftest import running_app

pytestmark = pytest.mark.e2e
PASSWORD = "permissions test password"
ROLES = {  # who → (role, department)
    "official": ("official", "dept-own"),
    "foreign_official": ("official", "dept-other"),
    "supervisor": ("supervisor", "dept-own"),
    "foreign_supervisor": ("supervisor", "dept-other"),
    "admin": ("admin", None),
}
_tickets = itertools.count()


@pytest.fixture(scope="module")
def base(module_database: str) -> Iterator[str]:
    """One app for the module; each test makes its own tickets."""
    with session_scope() as session:
        session.add_all([Department(slug="dept-own", name="Phòng Một"), Department(slug="dept-other", name="Phòng 2")])
    with session_scope() as session:
        for who, (role, department) in ROLES.items():
            create_user(session, username=who.replace("_", "."), password=PASSWORD, role=role, department=department)
    with running_app() as url:
        yield url


def actor(who: str) -> Actor:
    with session_scope() as session:
        return Actor.of(get_user(session, who.replace("_", ".")))


@pytest.fixture(scope="module")
def clients(base: str) -> Iterator[dict[str, httpx.Client]]:
    """A signed-in browser-like client per kind of visitor (anonymous: none)."""
    made = {}
    for who in [*ROLES, "anonymous"]:
        client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
        if who != "anonymous":
            page = client.get("/dashboard/login")
            signed_in = client.post(
                "/dashboard/login",
                data={"username": who.replace("_", "."), "password": PASSWORD, "csrf": token_in(page)},
            )
            assert signed_in.status_code == 303, signed_in.text[:300]
        made[who] = client
    yield made
    for client in made.values():
        client.close()


def token_in(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def key_in(page: httpx.Response, action: str) -> str:
    """The one-time key of the page's form for this action."""
    form = re.search(rf'action="/dashboard/tickets/[^/"]+/{action}"[^>]*>(.*?)</form>', page.text, re.S)
    assert form, f"no {action} form on the page"
    return re.search(r'name="submission" value="([^"]+)"', form.group(1)).group(1)


def new_ticket(question: str = "Câu hỏi thử", *, department: str = "dept-own", holder: str | None = None) -> str:
    with session_scope() as session:
        conversation = Conversation(channel="web", user_key=f"perm-{next(_tickets)}", state={})
        session.add(conversation)
        session.flush()
        made = open_ticket(
            session,
            conversation_id=conversation.id,
            channel="web",
            question=question,
            reason="asked_for_person",
            lang="vi",
            now=utcnow(),
        )
        made.department = department
        code = made.code
    if holder:
        with session_scope() as session:
            tickets.claim(session, actor(holder), code, utcnow())
    return code


# Each action: the form fields it sends, and how to put a fresh ticket in the state the action needs.
ACTIONS: dict[str, tuple[dict[str, str], Callable[[str], None]]] = {
    "claim": ({}, lambda code: None),
    "release": ({}, lambda code: None),  # prepared below: held by the visitor
    "reply": ({"text": "Chào bạn"}, lambda code: None),
    "note": ({"text": "ghi chú"}, lambda code: None),
    "transfer": ({"department": "dept-other", "reason": "sai phòng"}, lambda code: None),
    "urgency": ({"urgency": "urgent"}, lambda code: None),
    "close": ({"reason": ""}, lambda code: None),
    "reopen": ({"reason": "chưa đủ"}, lambda code: _close(code)),
}


EVENT_OF = {
    "claim": "claimed",
    "release": "released",
    "reply": "replied",
    "note": "note",
    "transfer": "transferred",
    "urgency": "urgency",
    "close": "closed",
    "reopen": "reopened",
}


def _close(code: str) -> None:
    with session_scope() as session:
        tickets.close(session, actor("admin"), code, utcnow())


@pytest.mark.parametrize("who", [*ROLES, "anonymous"])
def test_pages_for_every_visitor(clients: dict[str, httpx.Client], who: str) -> None:
    code = new_ticket()
    client = clients[who]
    own = who in ("official", "supervisor", "admin")
    pages = [
        "/dashboard/inbox",
        "/dashboard/inbox/live",
        "/dashboard/inbox?view=mine",
        f"/dashboard/tickets/{code}",
        f"/dashboard/tickets/{code}/live",
    ]
    for path in pages:
        response = client.get(path)
        if who == "anonymous":
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/dashboard/login?next="), path
            continue
        expected = 200 if own or "/tickets/" not in path else 403
        assert response.status_code == expected, (path, response.text[:300])
    if who == "anonymous":
        return
    inbox = client.get("/dashboard/inbox").text
    assert (code in inbox) == own  # a foreign department's inbox lists its own tickets, not ours
    foreign_inbox = client.get("/dashboard/inbox?department=dept-own")
    assert foreign_inbox.status_code == (200 if own else 403)
    if not own:
        with session_scope() as session:
            denials = session.scalars(
                select(TicketEvent.data).where(TicketEvent.kind == "denied", TicketEvent.actor == who.replace("_", "."))
            ).all()
        assert {d["action"] for d in denials} >= {"view", "inbox"}  # refusals are in the audit trail


@pytest.mark.parametrize("who", [*ROLES, "anonymous"])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_action_for_every_visitor(clients: dict[str, httpx.Client], who: str, action: str) -> None:
    own = who in ("official", "supervisor", "admin")
    fields, prepare = ACTIONS[action]
    code = new_ticket(holder=(who if own else "official") if action == "release" else None)
    prepare(code)
    page_of = clients[who] if own else clients["official"]
    page = page_of.get(f"/dashboard/tickets/{code}")
    form = {**fields, "csrf": token_in(page), "submission": key_in(page, action)}
    if who != "anonymous" and not own:  # a foreign visitor sends their own token with a form key they copied
        form["csrf"] = token_in(clients[who].get("/dashboard/inbox"))
    response = clients[who].post(f"/dashboard/tickets/{code}/{action}", data=form)
    if who == "anonymous":
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/login")
        return
    if not own:
        assert response.status_code == 403, response.text[:300]
        with session_scope() as session:
            state = session.scalars(select(Ticket).where(Ticket.code == code)).one()
            unchanged = {"reopen": "closed", "release": "acknowledged"}.get(action, "new")
            assert state.status == unchanged  # nothing happened
        return
    assert response.status_code == 303, response.text[:500]
    assert response.headers["location"] == f"/dashboard/tickets/{code}?done={action}"
    with session_scope() as session:
        done = session.scalars(select(Ticket).where(Ticket.code == code)).one()
        expected = {
            "claim": lambda t: t.status == "acknowledged" and t.assignee_id is not None,
            "release": lambda t: t.assignee_id is None,
            "reply": lambda t: t.status == "answered",
            "note": lambda t: True,
            "transfer": lambda t: t.department == "dept-other",
            "urgency": lambda t: t.urgency == "urgent",
            "close": lambda t: t.status == "closed",
            "reopen": lambda t: t.status == "reopened",
        }[action]
        assert expected(done), (action, done.status)
        kinds = session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == done.id)).all()
        assert EVENT_OF[action] in kinds


def test_csrf_missing_or_wrong_is_refused_and_nothing_changes(clients: dict[str, httpx.Client]) -> None:
    code = new_ticket()
    client = clients["official"]
    page = client.get(f"/dashboard/tickets/{code}")
    for csrf in ("", "forged-token", token_in(clients["supervisor"].get("/dashboard/inbox"))):
        for action, (fields, _) in ACTIONS.items():
            response = client.post(
                f"/dashboard/tickets/{code}/{action}", data={**fields, "csrf": csrf, "submission": key_in(page, "note")}
            )
            assert response.status_code == 403, (action, csrf)
            assert "security token" in response.text
    presence = client.post(f"/dashboard/tickets/{code}/presence")
    assert presence.status_code == 403  # the script's heartbeat carries the token in a header
    cross = client.post(
        f"/dashboard/tickets/{code}/claim",
        data={"csrf": token_in(page), "submission": key_in(page, "claim")},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    with session_scope() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.code == code)).one()
        assert (ticket.status, ticket.urgency, ticket.department) == ("new", "normal", "dept-own")


def test_a_double_press_sends_one_reply(clients: dict[str, httpx.Client]) -> None:
    code = new_ticket()
    client = clients["official"]
    page = client.get(f"/dashboard/tickets/{code}")
    form = {"text": "Một lần thôi", "csrf": token_in(page), "submission": key_in(page, "reply")}
    first = client.post(f"/dashboard/tickets/{code}/reply", data=form)
    second = client.post(f"/dashboard/tickets/{code}/reply", data=form)
    assert first.headers["location"] == f"/dashboard/tickets/{code}?done=reply"
    assert second.headers["location"] == f"/dashboard/tickets/{code}?done=reply&again=true"
    with session_scope() as session:
        conversation_id = session.scalar(select(Ticket.conversation_id).where(Ticket.code == code))
        replies = session.scalar(
            select(func.count()).where(ChatMessage.conversation_id == conversation_id, ChatMessage.author == "official")
        )
    assert replies == 1
    again = client.get(second.headers["location"])
    assert "lần bấm thứ hai không làm gì thêm" in again.text


def test_citizen_text_is_escaped_and_bad_input_is_explained(clients: dict[str, httpx.Client]) -> None:
    code = new_ticket('<script>alert("x")</script> & <b>bold</b>')
    client = clients["official"]
    for path in (f"/dashboard/inbox?q={code}", f"/dashboard/tickets/{code}", f"/dashboard/tickets/{code}/live"):
        html = client.get(path).text
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    page = client.get(f"/dashboard/tickets/{code}")
    form = {"text": "   ", "csrf": token_in(page), "submission": key_in(page, "reply")}
    empty = client.post(f"/dashboard/tickets/{code}/reply", data=form)
    assert empty.status_code == 422
    assert "the reply is empty" in empty.text
    nowhere = client.post(
        f"/dashboard/tickets/{code}/transfer",
        data={"department": "nowhere", "reason": "x", "csrf": token_in(page), "submission": key_in(page, "transfer")},
    )
    assert nowhere.status_code == 422
    assert "no department &#39;nowhere&#39;" in nowhere.text  # the message, escaped like everything
    assert client.get("/dashboard/inbox?view=everything").status_code == 422
    assert client.get("/dashboard/inbox?page=0").status_code == 422
    assert client.get("/dashboard/tickets/MC-NOPE00").status_code == 404
    assert client.get("/dashboard/inbox?q=" + "%25" * 50).status_code == 200
