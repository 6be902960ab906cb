"""The notifications page over real HTTP and in a real browser: each role's own list, CSRF, once-only forms, the
unread count, escaping, Telegram link codes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from markupsafe import escape
from playwright.sync_api import Browser, ConsoleMessage, expect
from sqlalchemy import select

from bot.models import Conversation
from core.db import session_scope
from helpdesk import tickets
from helpdesk.accounts import Actor, create_user, get_user
from helpdesk.models import Department, Notification, User
from helpdesk.notifications import link_telegram
from helpdesk.service import open_ticket
from knowledge.models import utcnow
from tests.conftest import running_app

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "notifications test password"
PAGE = "/dashboard/notifications"
SCRIPT = '<script>alert("x")</script> & <b>đất</b>'


@dataclass
class Seeded:
    """Ticket codes: two opened in dept-a, one of them (moved) sent to dept-b and back with a hostile reason."""

    first: str
    moved: str


def actor(username: str) -> Actor:
    with session_scope() as session:
        return Actor.of(get_user(session, username))


def open_one(question: str) -> str:
    """A ticket opened by the help-desk service now; the default desk (dept-a) gets it."""
    with session_scope() as session:
        conversation = Conversation(channel="web", user_key=f"w-{question}", state={})
        session.add(conversation)
        session.flush()
        ticket = open_ticket(
            session,
            conversation_id=conversation.id,
            channel="web",
            question=question,
            reason="asked_for_person",
            lang="vi",
            now=utcnow(),
        )
        return ticket.code


@pytest.fixture
def base(database_url: str) -> Iterator[str]:
    """The real app on a database whose departments are ours (so the bundled ones are not seeded)."""
    with session_scope() as session:
        session.add_all(
            [
                Department(slug="dept-a", name="Phòng A", is_default=True),
                Department(slug="dept-b", name="Phòng B"),
            ]
        )
    with session_scope() as session:
        for username, role, department in [
            ("off.a", "official", "dept-a"),
            ("sup.a", "supervisor", "dept-a"),
            ("off.b", "official", "dept-b"),
            ("sup.b", "supervisor", "dept-b"),
            ("root", "admin", None),
        ]:
            create_user(session, username=username, password=PASSWORD, role=role, department=department)
    with running_app() as url:
        yield url


@pytest.fixture
def seeded(base: str) -> Seeded:
    """Real events: off.a hears of two new tickets and of one coming back; sup.a of it coming back."""
    first = open_one("Hỏi lần một")
    moved = open_one("Hỏi lần hai")
    now = utcnow()
    with session_scope() as session:
        tickets.transfer(session, actor("sup.a"), moved, "dept-b", "Không thuộc phòng A", now)
    with session_scope() as session:
        tickets.transfer(session, actor("sup.b"), moved, "dept-a", SCRIPT, now)
    return Seeded(first, moved)


@contextmanager
def login(base: str, username: str) -> Iterator[httpx.Client]:
    """A client signed in through the login form, as a browser would be."""
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client:
        page = client.get("/dashboard/login")
        response = client.post(
            "/dashboard/login", data={"username": username, "password": PASSWORD, "csrf": field(page.text, "csrf")}
        )
        assert response.status_code == 303, response.text
        yield client


def field(page: str, name: str) -> str:
    """The first value of a hidden field on the page."""
    found = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert found, f"no {name} field on the page"
    return found.group(1)


def forms(page: str, action: str) -> list[dict[str, str]]:
    """The hidden fields of each POST form on the page with this action."""
    found = []
    for body in re.findall(rf'<form method="post" action="{re.escape(action)}">(.*?)</form>', page, re.S):
        found.append(dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body)))
    return found


def unread(client: httpx.Client) -> int:
    response = client.get(f"{PAGE}/unread")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    return response.json()["unread"]


def kinds_listed(page: str) -> list[str]:
    return re.findall(r'<li class="notification notification--([a-z_]+)', page)


def test_signed_out_visitors_go_to_the_login_form_and_the_count_is_401(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client:
        page = client.get(PAGE)
        assert page.status_code == 303
        assert page.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fnotifications"
        count = client.get(f"{PAGE}/unread")
        assert (count.status_code, count.json()) == (401, {"detail": "sign in to the dashboard"})
        for action in ("/read", "/telegram", "/telegram/unlink"):
            posted = client.post(PAGE + action, data={"csrf": "x", "submission": "y" * 24})
            assert posted.status_code == 303
            assert posted.headers["location"].startswith("/dashboard/login?next=")


def test_each_role_sees_its_own_notifications_newest_first(base: str, seeded: Seeded) -> None:
    expected = {
        "off.a": ["transferred", "new_ticket", "new_ticket"],
        "sup.a": ["transferred"],
        "off.b": ["transferred"],
        "root": [],
    }
    for username, kinds in expected.items():
        with login(base, username) as client:
            page = client.get(PAGE)
            assert page.status_code == 200
            assert kinds_listed(page.text) == kinds
            assert page.text.count("notification--unread") == len(kinds)  # all unread, all highlighted
            assert unread(client) == len(kinds)
            if kinds:
                link = f'<a class="ticket-code" href="/dashboard/tickets/{seeded.moved}">{seeded.moved}</a>'
                assert link in page.text
                assert f'<span class="badge" id="unread" aria-label="{len(kinds)} chưa đọc · unread">' in page.text
                assert len(forms(page.text, f"{PAGE}/read")) == len(kinds) + 1  # one per item, and "all"
            else:
                assert "Chưa có thông báo nào." in page.text
                assert 'id="unread"' not in page.text
    with login(base, "off.a") as client:
        page = client.get(PAGE).text
    assert f'href="/dashboard/tickets/{seeded.first}"' in page
    ids = [int(i) for i in re.findall(r'id="n(\d+)"', page)]
    assert ids == sorted(ids, reverse=True)


def test_notification_text_is_escaped(base: str, seeded: Seeded) -> None:
    with login(base, "off.a") as client:
        page = client.get(PAGE).text
    assert SCRIPT not in page
    assert str(escape(SCRIPT)) in page
    assert "<script>alert" not in page


def test_forms_without_the_right_csrf_token_are_refused(base: str, seeded: Seeded) -> None:
    with login(base, "off.a") as client:
        page = client.get(PAGE).text
        good = forms(page, f"{PAGE}/read")[0]
        code_form = forms(page, f"{PAGE}/telegram")[0]
        attempts = [
            client.post(f"{PAGE}/read", data={k: v for k, v in good.items() if k != "csrf"}),
            client.post(f"{PAGE}/read", data={**good, "csrf": "forged-token"}),
            client.post(f"{PAGE}/read", data=good, headers={"Origin": "https://evil.example"}),
            client.post(f"{PAGE}/telegram", data={**code_form, "csrf": ""}),
            client.post(f"{PAGE}/telegram/unlink", data={**code_form, "csrf": "forged-token"}),
        ]
        assert [r.status_code for r in attempts] == [403] * 5
        assert all("Không có quyền truy cập" in r.text for r in attempts)
        assert unread(client) == 3
    with session_scope() as session:
        assert get_user(session, "off.a").telegram_link_code is None


def test_mark_read_acts_once_per_form(base: str, seeded: Seeded) -> None:
    with login(base, "off.a") as client:
        page = client.get(PAGE).text
        everything, newest, *_ = forms(page, f"{PAGE}/read")  # "mark all read" heads the list
        assert "notification" in newest
        assert "notification" not in everything  # "mark all read" names none
        done = client.post(f"{PAGE}/read", data=newest)
        assert (done.status_code, done.headers["location"]) == (303, PAGE)
        assert unread(client) == 2
        page = client.get(PAGE).text
        assert page.count("notification--unread") == 2
        assert not page.split("</li>")[0].count("notification--unread")  # the newest is read now

        assert client.post(f"{PAGE}/read", data=everything).status_code == 303
        assert unread(client) == 0
        open_one("Hỏi lần ba")  # news after the press
        assert unread(client) == 1
        again = client.post(f"{PAGE}/read", data=everything)  # the same form sent twice (a double press, a resend)
        assert again.status_code == 303
        assert unread(client) == 1  # acted once

        bad = client.post(f"{PAGE}/read", data={**everything, "submission": "short"})
        assert bad.status_code == 422
        theirs = client.post(f"{PAGE}/read", data={**forms(page, f"{PAGE}/read")[0], "notification": str(other())})
        assert theirs.status_code == 404
        assert unread(client) == 1


def other() -> int:
    """A notification of somebody else (sup.a)."""
    with session_scope() as session:
        owner = get_user(session, "sup.a").id
        found = session.scalar(select(Notification.id).where(Notification.user_id == owner))
        assert found is not None
        return found


def test_telegram_link_code_then_unlink(base: str, seeded: Seeded) -> None:
    with login(base, "sup.a") as client:
        page = client.get(PAGE).text
        assert "Chưa liên kết." in page
        assert 'class="link-code"' not in page  # no code yet
        ask = forms(page, f"{PAGE}/telegram")[0]
        got = client.post(f"{PAGE}/telegram", data=ask)
        assert (got.status_code, got.headers["location"]) == (303, f"{PAGE}#telegram")
        with session_scope() as session:
            code = get_user(session, "sup.a").telegram_link_code
        assert code is not None
        page = client.get(PAGE).text
        assert f"<code>/link {code}</code>" in page
        assert client.post(f"{PAGE}/telegram", data=ask).status_code == 303  # the same form again: same code
        with session_scope() as session:
            assert get_user(session, "sup.a").telegram_link_code == code
            link_telegram(session, code, "31337", utcnow())  # what the bot does on "/link CODE"
        page = client.get(PAGE).text
        assert "Đã liên kết." in page
        assert f"/link {code}" not in page
        unlink = forms(page, f"{PAGE}/telegram/unlink")[0]
        assert client.post(f"{PAGE}/telegram/unlink", data=unlink).status_code == 303
        assert "Chưa liên kết." in client.get(PAGE).text
    with session_scope() as session:
        assert session.scalar(select(User.telegram_chat_id).where(User.username == "sup.a")) is None


def console_error(message: ConsoleMessage) -> bool:
    """An error on the console (a CSP violation, a failed script), but not the browser's own favicon request."""
    return message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico")


def test_in_the_browser_the_badge_follows_mark_read(base: str, seeded: Seeded, browser: Browser) -> None:
    """A real browser under the page's CSP: unread highlighted, a press marks one read, the badge counts down."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: errors.append(message.text) if console_error(message) else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        page.goto(f"{base}{PAGE}")
        page.get_by_label("Tên đăng nhập").fill("off.a")
        page.get_by_label("Mật khẩu").fill(PASSWORD)
        page.get_by_role("button", name="Đăng nhập").click()
        expect(page).to_have_url(f"{base}{PAGE}")
        expect(page.locator("#unread")).to_have_text("3")
        expect(page.locator(".notification--unread")).to_have_count(3)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard_notifications.png"), full_page=True)
        page.locator(".notification").first.get_by_role("button", name="Đánh dấu đã đọc").click()
        expect(page.locator(".notification--unread")).to_have_count(2)
        expect(page.locator("#unread")).to_have_text("2")
        page.get_by_role("button", name="Đánh dấu tất cả đã đọc").click()
        expect(page.locator(".notification--unread")).to_have_count(0)
        expect(page.locator("#unread")).to_have_count(0)
        page.get_by_role("button", name="Lấy mã liên kết").click()
        expect(page.locator(".link-code code")).to_have_text(re.compile(r"^/link [A-Z2-9]{8}$"))
    finally:
        context.close()
    assert errors == []
