"""The improvement loop over real HTTP on SQLite and PostgreSQL: the gap report's page and API for every kind of
visitor, its "add as an FAQ variant" form, and "propose as FAQ" on the ticket page — CSRF, a double press, escaping."""

from __future__ import annotations

import datetime as dt
import html
import itertools
import re
from collections.abc import Iterator
from urllib.parse import quote_plus

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from bot.models import ChatMessage, Conversation, InboundUpdate
from core.db import session_scope
from helpdesk import tickets
from helpdesk.accounts import Actor, create_user, get_user
from helpdesk.models import Department
from helpdesk.service import open_ticket
from helpdesk.sla import VN
from knowledge.models import ProcedureVersion, utcnow
from tests.conftest import running_app
from tests.e2e.conftest import contrast_problems

pytestmark = pytest.mark.e2e
PASSWORD = "gaps pages test password"
ROLES = {  # who → (role, department)
    "official": ("official", "dept-own"),
    "foreign_official": ("official", "dept-other"),
    "supervisor": ("supervisor", "dept-own"),
    "admin": ("admin", None),
}
XSS = '<script>alert("x")</script> thời tiết & <b>đậm</b>'
DOGS = ["Đăng ký nuôi chó cảnh ở phường", "thủ tục đăng ký nuôi chó cảnh", "đăng ký nuôi chó cảnh cần giấy tờ gì"]
WINE = ["xin giấy phép bán lẻ rượu", "thủ tục xin giấy phép bán lẻ rượu"]
_users = itertools.count()


def username(who: str) -> str:
    return "gaps." + who.replace("_", ".")


def seed_turn(text: str, status: str) -> None:
    """A citizen's question and the bot's reply, as the engine logs them, a few minutes ago."""
    at = utcnow() - dt.timedelta(minutes=5)
    with session_scope() as session:
        conv = Conversation(channel="web", user_key=f"gaps-citizen-{next(_users)}", state={})
        session.add(conv)
        session.flush()
        update = InboundUpdate(channel="web", user_key=conv.user_key, payload={}, received_at=at, processed_at=at)
        session.add(update)
        session.flush()
        session.add_all(
            [
                ChatMessage(
                    conversation_id=conv.id, direction="in", author="citizen", text=text, at=at, inbound_id=update.id
                ),
                ChatMessage(
                    conversation_id=conv.id,
                    direction="out",
                    author="bot",
                    text="…",
                    at=at,
                    inbound_id=update.id,
                    status=status,
                ),
            ]
        )


@pytest.fixture(scope="module")
def base(module_database: str) -> Iterator[str]:
    """One app for the module, with a chat log of questions the bot failed on."""
    with session_scope() as session:
        session.add_all([Department(slug="dept-own", name="Phòng Một"), Department(slug="dept-other", name="Phòng 2")])
    with session_scope() as session:
        for who, (role, department) in ROLES.items():
            create_user(session, username=username(who), password=PASSWORD, role=role, department=department)
    for text in [*DOGS, DOGS[0], XSS]:
        seed_turn(text, "declined")
    for text in WINE:
        seed_turn(text, "clarify")
    seed_turn("tôi muốn gặp cán bộ", "escalated")  # a request for a person: not a gap
    seed_turn("đăng ký khai sinh cho con", "answered")  # answered: not a gap
    with running_app() as url:
        yield url


def actor(who: str) -> Actor:
    with session_scope() as session:
        return Actor.of(get_user(session, username(who)))


@pytest.fixture(scope="module")
def clients(base: str) -> Iterator[dict[str, httpx.Client]]:
    """A signed-in browser-like client per kind of visitor (anonymous: none)."""
    made = {}
    for who in [*ROLES, "anonymous"]:
        client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
        if who != "anonymous":
            page = client.get("/dashboard/login")
            signed_in = client.post(
                "/dashboard/login", data={"username": username(who), "password": PASSWORD, "csrf": token_in(page)}
            )
            assert signed_in.status_code == 303, signed_in.text[:300]
        made[who] = client
    yield made
    for client in made.values():
        client.close()


@pytest.fixture(scope="module")
def bearer(base: str) -> dict[str, dict[str, str]]:
    """An Authorization header per kind of visitor (anonymous: none)."""
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for who in ROLES:
        token = httpx.post(f"{base}/api/auth/token", data={"username": username(who), "password": PASSWORD})
        assert token.status_code == 200, token.text
        headers[who] = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return headers


def token_in(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def form_fields(page: httpx.Response, action: str, index: int = 0) -> list[tuple[str, str]]:
    """The hidden fields of the page's index-th form posting to action, as a browser would send them."""
    forms = re.findall(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', page.text, re.S)
    assert len(forms) > index, f"no form to {action} on the page"
    return [
        (name, html.unescape(value))
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', forms[index])
    ]


def as_form(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Fields as httpx sends them, repeated names (the group's questions) included."""
    form: dict[str, list[str]] = {}
    for name, value in fields:
        form.setdefault(name, []).append(value)
    return form


def replaced(fields: list[tuple[str, str]], name: str, value: str | None) -> dict[str, list[str]]:
    """The form with one field changed (None: left out)."""
    kept = [(k, v) for k, v in fields if k != name]
    return as_form(kept if value is None else [*kept, (name, value)])


def versions_where(slug: str | None = None, reason: str = "") -> int:
    with session_scope() as session:
        stmt = select(func.count()).select_from(ProcedureVersion).where(ProcedureVersion.reason.startswith(reason))
        if slug:
            stmt = stmt.where(ProcedureVersion.slug == slug)
        return session.scalar(stmt) or 0


def answered_ticket(question: str, *, procedure: str | None = "birth-registration") -> tuple[str, int]:
    """A ticket of dept-own answered by its official; the code and the reply's message id."""
    with session_scope() as session:
        conv = Conversation(channel="web", user_key=f"gaps-ticket-{next(_users)}", state={})
        session.add(conv)
        session.flush()
        made = open_ticket(
            session,
            conversation_id=conv.id,
            channel="web",
            question=question,
            reason="low_confidence",
            lang="vi",
            now=utcnow(),
        )
        made.department, made.procedure_slug = "dept-own", procedure
        code = made.code
    with session_scope() as session:
        _, message_id = tickets.reply(session, actor("official"), code, "Mang giấy chứng sinh đến UBND xã.", utcnow())
    return code, message_id


# -- the gap report --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", [*ROLES, "anonymous"])
def test_the_gap_page_for_every_visitor(clients: dict[str, httpx.Client], who: str) -> None:
    response = clients[who].get("/dashboard/kb/gaps")
    if who == "anonymous":
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/login?next=")
        return
    if who in ("official", "foreign_official"):
        assert response.status_code == 403
        assert "the gap report is for supervisors and admins" in response.text
        assert clients[who].get("/dashboard/kb/gaps/proposed?slug=x").status_code == 403
        return
    assert response.status_code == 200, response.text[:500]
    page = response.text
    groups = re.findall(r'<li class="panel gap" id="gap-\d+">(.*?)</li>\s*(?=<li class="panel gap"|</ol>)', page, re.S)
    first = groups[0]
    assert '<span class="gap-count">4</span>' in first  # the most asked phrasing twice, two more like it
    assert all(html.escape(text, quote=False) in first for text in DOGS)
    assert all(html.escape(text, quote=False) in page for text in WINE)
    assert "gặp cán bộ</q>" not in page
    assert "khai sinh cho con" not in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; thời tiết &amp; &lt;b&gt;đậm&lt;/b&gt;" in page
    assert re.search(r'<a href="/dashboard/kb/[a-z0-9-]+">', first)  # nearest procedures, linked
    assert f'href="/dashboard/kb/new?title={quote_plus(DOGS[0])}"' in first
    assert first.count('action="/dashboard/kb/gaps/faq"') == 3
    assert "Ngoài phạm vi" in first  # the reason
    for bad in ("?from=2026-01-01&to=2026-12-31", "?from=yesterday", "?to=2026-13-01"):
        assert clients[who].get(f"/dashboard/kb/gaps{bad}").status_code == 422, bad


@pytest.mark.parametrize("who", [*ROLES, "anonymous"])
def test_the_gap_api_for_every_visitor(base: str, bearer: dict[str, dict[str, str]], who: str) -> None:
    response = httpx.get(f"{base}/api/kb/gaps", headers=bearer[who], timeout=60)
    expected = {"anonymous": 401, "official": 403, "foreign_official": 403}.get(who, 200)
    assert response.status_code == expected, response.text
    if expected != 200:
        assert response.json()["detail"]
        return
    body = response.json()
    assert body["to"] == utcnow().astimezone(VN).date().isoformat()
    first = body["groups"][0]
    assert first["count"] == 4
    assert first["phrasings"] == 3
    assert first["examples"][0] == {"text": DOGS[0], "count": 2, "reasons": {"declined": 2}}
    assert len(first["nearest"]) == 3
    assert {"slug", "title", "title_en", "score"} <= set(first["nearest"][0])
    assert body["questions"] == 6
    assert body["asked"] == 7
    too_long = httpx.get(f"{base}/api/kb/gaps?from=2026-01-01&to=2026-06-30", headers=bearer[who], timeout=60)
    assert too_long.status_code == 422
    assert "at most 92 days" in too_long.json()["detail"]


def test_a_group_becomes_an_faq_variant_once(clients: dict[str, httpx.Client]) -> None:
    client = clients["supervisor"]
    page = client.get("/dashboard/kb/gaps")
    fields = form_fields(page, "/dashboard/kb/gaps/faq")
    slug = dict(fields)["slug"]
    assert [v for k, v in fields if k == "question"] == [DOGS[0], *sorted(DOGS[1:])]
    before = versions_where(slug, "FAQ variants")
    for csrf in (None, "forged-token", token_in(clients["admin"].get("/dashboard/kb/gaps"))):
        refused = client.post("/dashboard/kb/gaps/faq", data=replaced(fields, "csrf", csrf))
        assert refused.status_code == 403, csrf
        assert "security token" in refused.text
    official = clients["official"]
    foreign = official.post(
        "/dashboard/kb/gaps/faq", data=replaced(fields, "csrf", token_in(official.get("/dashboard/inbox")))
    )
    assert foreign.status_code == 403
    anonymous = clients["anonymous"].post("/dashboard/kb/gaps/faq", data=as_form(fields))
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/dashboard/login")
    assert versions_where(slug, "FAQ variants") == before  # nothing stored by the refused ones
    first = client.post("/dashboard/kb/gaps/faq", data=as_form(fields))
    second = client.post("/dashboard/kb/gaps/faq", data=as_form(fields))
    assert first.status_code == 303, first.text[:500]
    assert first.headers["location"] == f"/dashboard/kb/gaps/proposed?slug={slug}"
    assert second.headers["location"] == f"/dashboard/kb/gaps/proposed?slug={slug}&again=true"
    assert versions_where(slug, "FAQ variants") == before + 1  # one draft for two presses
    shown = client.get(second.headers["location"])
    assert shown.status_code == 200
    assert "Đã lưu thành bản nháp" in shown.text
    assert "lần bấm thứ hai không làm gì thêm" in shown.text
    assert f"<q>{DOGS[0]}</q>" in shown.text
    with session_scope() as session:
        draft = session.scalars(
            select(ProcedureVersion).where(ProcedureVersion.slug == slug, ProcedureVersion.state == "draft")
        ).one()
        assert draft.record["faq"][-1] == {"lang": "vi", "questions": [DOGS[0], *sorted(DOGS[1:])]}
        assert draft.author == username("supervisor")
    # the same questions again, with a new key: nothing new to add, said so
    again = client.post(
        "/dashboard/kb/gaps/faq", data=as_form(form_fields(client.get("/dashboard/kb/gaps"), "/dashboard/kb/gaps/faq"))
    )
    assert again.status_code == 409
    assert "already has every one" in again.text


# -- from a ticket ---------------------------------------------------------------------------------------------

PROPOSE = "/dashboard/tickets/{code}/propose-faq"


def test_propose_from_the_ticket_page(clients: dict[str, httpx.Client]) -> None:
    question = "<b>Con</b> sinh ở nước ngoài & khai sinh?"
    code, message_id = answered_ticket(question)
    client = clients["official"]
    page = client.get(f"/dashboard/tickets/{code}")
    action = PROPOSE.format(code=code)
    fields = form_fields(page, action)
    assert dict(fields)["message_id"] == str(message_id)
    assert action in client.get(f"/dashboard/tickets/{code}/live").text  # the live part carries it too
    assert action in clients["supervisor"].get(f"/dashboard/tickets/{code}").text
    reason = f"FAQ from ticket {code}"
    for csrf in (None, "forged-token"):
        assert client.post(action, data=replaced(fields, "csrf", csrf)).status_code == 403
    foreign = clients["foreign_official"]
    refused = foreign.post(action, data=replaced(fields, "csrf", token_in(foreign.get("/dashboard/inbox"))))
    assert refused.status_code == 403
    assert "belongs to department dept-own" in refused.text
    assert foreign.get(action).status_code == 403
    assert clients["anonymous"].post(action, data=as_form(fields)).headers["location"].startswith("/dashboard/login")
    assert versions_where(reason=reason) == 0
    first = client.post(action, data=as_form(fields))
    second = client.post(action, data=as_form(fields))
    assert first.status_code == 303, first.text[:500]
    assert first.headers["location"] == f"{action}?slug=birth-registration"
    assert second.headers["location"] == f"{action}?again=true"  # the page finds the ticket's procedure itself
    repeated = client.get(second.headers["location"]).text
    assert "lần bấm thứ hai không làm gì thêm" in repeated
    assert 'href="/dashboard/kb/birth-registration"' in repeated
    assert versions_where("birth-registration", reason) == 1
    shown = client.get(first.headers["location"])
    assert shown.status_code == 200
    assert "&lt;b&gt;Con&lt;/b&gt; sinh ở nước ngoài &amp; khai sinh?" in shown.text
    assert "<b>Con</b>" not in shown.text
    assert "Mang giấy chứng sinh đến UBND xã." in shown.text
    assert f'href="/dashboard/tickets/{code}"' in shown.text


def test_a_ticket_without_procedure_offers_a_choice(clients: dict[str, httpx.Client]) -> None:
    code, _ = answered_ticket("Nuôi chó cảnh có phải đăng ký không?", procedure=None)
    client = clients["official"]
    page = client.get(f"/dashboard/tickets/{code}")
    action = PROPOSE.format(code=code)
    assert re.search(rf'action="{action}".*?<input name="slug" required', page.text, re.S)
    fields = form_fields(page, action)
    empty = client.post(action, data=as_form([*fields, ("slug", "")]))
    assert empty.status_code == 422
    assert "names no procedure; choose" in empty.text
    page = client.get(f"/dashboard/tickets/{code}")
    chosen = client.post(action, data=as_form([*form_fields(page, action), ("slug", "marriage-registration")]))
    assert chosen.headers["location"] == f"{action}?slug=marriage-registration"
    assert versions_where("marriage-registration", f"FAQ from ticket {code}") == 1


def test_propose_through_the_api(base: str, bearer: dict[str, dict[str, str]]) -> None:
    code, message_id = answered_ticket("Khai sinh muộn có bị phạt không?")
    other_code, other_message = answered_ticket("Khai sinh cho con nuôi thế nào?")
    url = f"{base}/api/tickets/{code}/propose-faq"
    assert httpx.post(url, json={"message_id": message_id}).status_code == 401
    foreign = httpx.post(url, json={"message_id": message_id}, headers=bearer["foreign_official"])
    assert foreign.status_code == 403
    wrong = httpx.post(url, json={"message_id": other_message}, headers=bearer["official"])
    assert wrong.status_code == 422
    assert f"not an official's reply on ticket {code}" in wrong.json()["detail"]
    typo = httpx.post(url, json={"message_id": message_id, "slugg": "x"}, headers=bearer["official"])
    assert typo.status_code == 422
    made = httpx.post(url, json={"message_id": message_id}, headers=bearer["official"])
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["slug"], body["state"], body["author"]) == ("birth-registration", "draft", username("official"))
    assert body["faq"] == {
        "lang": "vi",
        "questions": ["Khai sinh muộn có bị phạt không?"],
        "answer": "Mang giấy chứng sinh đến UBND xã.",
    }
    assert f"proposed by official {username('official')}" in body["reason"]
    repeat = httpx.post(url, json={"message_id": message_id}, headers=bearer["supervisor"])
    assert repeat.status_code == 409
    assert other_code != code


# -- in a browser ----------------------------------------------------------------------------------------------


def sign_in(page: Page, base: str, who: str, then: str) -> None:
    """Sign in through the form, as a person would, and go on to `then`."""
    page.goto(f"{base}/dashboard/login?next={then}")
    page.get_by_label("Tên đăng nhập").fill(username(who))
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page).to_have_url(f"{base}{then}")


def test_in_chromium_the_report_and_the_propose_button(base: str, page: Page, page_errors: list[str]) -> None:
    sign_in(page, base, "supervisor", "/dashboard/kb/gaps")
    expect(page.locator(".gap").first).to_contain_text(DOGS[0])
    assert contrast_problems(page) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    page.context.clear_cookies()
    code, _ = answered_ticket("Khai sinh cho con sinh đôi thế nào?")
    sign_in(page, base, "official", f"/dashboard/tickets/{code}")
    assert contrast_problems(page) == []
    page.locator(".propose-faq").get_by_role("button", name="Đề xuất làm FAQ").click()
    expect(page.locator(".done")).to_contain_text("Đã lưu thành bản nháp của thủ tục birth-registration")
    expect(page.locator(".gap-examples")).to_contain_text("Khai sinh cho con sinh đôi thế nào?")
    assert contrast_problems(page) == []
    assert page_errors == []
