"""The dashboard in a real browser against the real app: log in, charts drawn, figures lead to their tickets, 403s."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import select

from bot.models import Conversation
from core.db import session_scope
from helpdesk import tickets
from helpdesk.accounts import Actor, create_user, get_user
from helpdesk.models import Department, TicketEvent
from helpdesk.service import open_ticket, rate_ticket, start_clock
from helpdesk.sla import VN
from knowledge.models import utcnow
from tests.conftest import running_app

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "dashboard test password"
WAIT_MS = 10_000
_citizens = itertools.count()


@dataclass
class History:
    """What was seeded: ticket codes by what they are, and the month their replies fell in."""

    opened: dict[str, list[str]] = field(default_factory=dict)  # department → every ticket opened in the period
    overdue: dict[str, list[str]] = field(default_factory=dict)
    answered: dict[str, list[str]] = field(default_factory=dict)
    reply_month: str = ""
    late_day: str = ""  # the Vietnam day the overdue ticket was opened, as the chart labels it (dd/mm)


def _open(department: str, at: dt.datetime, question: str) -> tuple[str, int]:
    """A ticket opened by the help-desk service at `at`, in `department`; returns its code and conversation."""
    with session_scope() as session:
        conversation = Conversation(channel="web", user_key=f"dash-{next(_citizens)}", state={})
        session.add(conversation)
        session.flush()
        ticket = open_ticket(
            session,
            conversation_id=conversation.id,
            channel="web",
            question=question,
            reason="asked_for_person",
            lang="vi",
            now=at,
        )
        ticket.department = department
        start_clock(session, ticket, at)  # deadlines of its department's policy
        return ticket.code, conversation.id


def _actor(username: str) -> Actor:
    with session_scope() as session:
        return Actor.of(get_user(session, username))


@pytest.fixture(scope="module")
def live_server(module_data_dir: Path) -> Iterator[str]:
    """One real app for the module: its tests only read the history below."""
    with running_app() as base:
        yield base


@pytest.fixture(scope="module")
def history(live_server: str) -> History:
    """Two departments with a supervisor each, an official and an admin; tickets with known figures.

    dept-alpha: four tickets opened over the last days — two answered by the official (one rated 5), one still
    open and overdue (opened ten days ago), one open and within its deadline. dept-beta: one answered ticket.
    """
    with session_scope() as session:
        session.add_all(
            [
                Department(slug="dept-alpha", name="Phòng Hộ tịch thử", name_en="Test civil status"),
                Department(slug="dept-beta", name="Phòng Đất đai thử", name_en="Test land office"),
            ]
        )
    with session_scope() as session:
        for username, role, department in [
            ("sup.alpha", "supervisor", "dept-alpha"),
            ("sup.beta", "supervisor", "dept-beta"),
            ("off.alpha", "official", "dept-alpha"),
            ("off.beta", "official", "dept-beta"),
            ("chief.admin", "admin", None),
        ]:
            create_user(
                session,
                username=username,
                password=PASSWORD,
                role=role,
                department=department,
                full_name=username.replace(".", " ").title(),
            )
    now = utcnow()
    seeded = History()
    late, _ = _open("dept-alpha", now - dt.timedelta(days=10), "Hồ sơ khai sinh nộp lâu chưa có kết quả")
    today = now.astimezone(VN).date()  # the default period: the 30 days up to today
    same_year = (today - dt.timedelta(days=29)).year == today.year
    seeded.late_day = (now - dt.timedelta(days=10)).astimezone(VN).strftime("%d/%m" if same_year else "%d/%m/%y")
    fresh, _ = _open("dept-alpha", now - dt.timedelta(minutes=5), "Cho hỏi lệ phí trích lục")
    answered = []
    for days, department, official in [
        (3, "dept-alpha", "off.alpha"),
        (2, "dept-alpha", "off.alpha"),
        (4, "dept-beta", "off.beta"),
    ]:
        code, conversation = _open(department, now - dt.timedelta(days=days), "Tôi muốn gặp cán bộ")
        replied_at = now - dt.timedelta(days=days - 1)
        with session_scope() as session:
            tickets.reply(
                session, _actor(official), code, "Chào bạn, mời bạn mang CCCD tới bộ phận một cửa.", replied_at
            )
        if department == "dept-alpha" and days == 3:
            with session_scope() as session:
                rate_ticket(session, code, conversation, 5)
        answered.append((department, code, replied_at))
    seeded.opened = {
        "dept-alpha": sorted([late, fresh, *(c for d, c, _ in answered if d == "dept-alpha")]),
        "dept-beta": [c for d, c, _ in answered if d == "dept-beta"],
    }
    seeded.overdue = {"dept-alpha": [late], "dept-beta": []}
    seeded.answered = {d: sorted(c for dd, c, _ in answered if dd == d) for d in ("dept-alpha", "dept-beta")}
    seeded.reply_month = max(at for _, _, at in answered).astimezone(VN).strftime("%Y-%m")
    return seeded


@pytest.fixture
def desk(browser: Browser) -> Iterator[Page]:
    """A desktop-sized page: the dashboard is used at a desk."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == []


def log_in(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    """Sign in through the form, as a person would."""
    page.goto(f"{base}/dashboard")
    expect(page).to_have_url(f"{base}/dashboard/login?next=%2Fdashboard")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(password)
    page.get_by_role("button", name="Đăng nhập").click()


def shot(page: Page, name: str) -> None:
    """Keep a full-page screenshot in test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard_{name}.png"), full_page=True)


def assert_drawn(chart: Locator, selector: str) -> None:
    """The chart has at least one `selector` element with a non-zero drawn size."""
    expect(chart).to_be_visible()
    shapes = chart.locator(selector)
    assert shapes.count() > 0
    sizes = [shapes.nth(i).bounding_box() for i in range(shapes.count())]
    assert any(box is not None and box["width"] > 0 and box["height"] > 0 for box in sizes), sizes


def codes_listed(page: Page) -> list[str]:
    """The ticket codes of the ticket list on the page, sorted."""
    return sorted(page.locator("table.tickets a.ticket-code").all_inner_texts())


def test_wrong_password_shows_the_form_again(live_server: str, history: History, desk: Page) -> None:
    """A wrong password: 401, the form again with a clear message, and no session cookie (only the CSRF one)."""
    with desk.expect_response(lambda r: r.url.endswith("/dashboard/login") and r.request.method == "POST") as sent:
        log_in(desk, live_server, "sup.alpha", "not the password")
    assert sent.value.status == 401
    expect(desk.get_by_role("alert")).to_contain_text("Sai tên đăng nhập hoặc mật khẩu")
    expect(desk.get_by_label("Tên đăng nhập")).to_have_value("sup.alpha")
    assert [c["name"] for c in desk.context.cookies()] == ["motcua_csrf"]


def test_admin_overview_charts_and_figures_lead_to_tickets(live_server: str, history: History, desk: Page) -> None:
    """The admin sees every department with drawn charts; a figure opens exactly the tickets it counts."""
    log_in(desk, live_server, "chief.admin")
    expect(desk).to_have_url(f"{live_server}/dashboard")
    cookie = next(c for c in desk.context.cookies() if c["name"] == "motcua_dashboard")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Tổng quan các phòng")

    # the ranking of the month the replies fell in, through the month form
    month = desk.get_by_role("textbox", name="Tháng Month")
    month.fill(history.reply_month)
    month.press("Enter")
    expect(desk.locator("svg.chart--bar")).to_be_visible()
    assert_drawn(desk.locator("svg.chart--line").first, "path.chart-line")
    assert_drawn(desk.locator("svg.chart--line").nth(1), "circle")
    assert_drawn(desk.locator("svg.chart--bar"), "rect")
    expect(desk.locator("svg.chart--bar")).to_contain_text("Phòng Hộ tịch thử")
    shot(desk, "overview")

    row = desk.locator("table.departments tr", has=desk.get_by_role("link", name="Phòng Hộ tịch thử"))
    row.locator("td").first.get_by_role("link").click()  # "Opened" of dept-alpha
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Yêu cầu mới")
    assert codes_listed(desk) == history.opened["dept-alpha"]

    desk.get_by_role("link", name=history.overdue["dept-alpha"][0]).click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text(history.overdue["dept-alpha"][0])
    expect(desk.locator("blockquote.question")).to_have_text("Hồ sơ khai sinh nộp lâu chưa có kết quả")
    expect(desk.locator(".conversation .mark").first).to_contain_text("Tạo yêu cầu")
    desk.locator("details summary").click()  # the full audit trail, folded under the conversation
    expect(desk.locator(".timeline .event--created")).to_be_visible()
    shot(desk, "ticket")


def test_supervisor_sees_their_department_only(live_server: str, history: History, desk: Page) -> None:
    """A supervisor lands on their department: charts, figures that open their tickets; another one is 403."""
    log_in(desk, live_server, "sup.alpha")
    expect(desk).to_have_url(f"{live_server}/dashboard/departments/dept-alpha")
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Phòng Hộ tịch thử")
    assert_drawn(desk.locator("svg.chart--line").first, "path.chart-line")
    assert_drawn(desk.locator("svg.chart--line").first, "circle")
    expect(desk.locator("table.officials")).to_contain_text("off.alpha")
    shot(desk, "department")

    # a point of the volume chart opens the tickets opened that day
    desk.locator(f'svg.chart--line a[aria-label^="Mới · Opened · {history.late_day}:"]').click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Yêu cầu mới")
    assert codes_listed(desk) == history.overdue["dept-alpha"]
    desk.go_back()

    tile = desk.locator(".figure--overdue a")
    expect(tile.locator(".value")).to_have_text(str(len(history.overdue["dept-alpha"])))
    tile.click()
    assert codes_listed(desk) == history.overdue["dept-alpha"]
    desk.go_back()
    desk.locator(".figure--resolved a").click()
    assert codes_listed(desk) == history.answered["dept-alpha"]
    shot(desk, "tickets")

    response = desk.goto(f"{live_server}/dashboard/departments/dept-beta")
    assert response is not None
    assert response.status == 403
    expect(desk.get_by_role("alert")).to_contain_text("Không có quyền truy cập")
    shot(desk, "forbidden")
    with session_scope() as session:
        denied = session.scalars(
            select(TicketEvent).where(TicketEvent.kind == "denied", TicketEvent.actor == "sup.alpha")
        ).all()
    assert [(e.department, e.data["action"]) for e in denied] == [("dept-beta", "dashboard:department")]

    # nor may the supervisor list or open the other department's tickets
    assert desk.goto(f"{live_server}/dashboard/tickets?figure=volume&department=dept-beta").status == 403
    assert desk.goto(f"{live_server}/dashboard/tickets/{history.answered['dept-beta'][0]}").status == 403


def test_official_sees_overdue_and_tickets_but_no_reports(live_server: str, history: History, desk: Page) -> None:
    """An official lands on their department's inbox; the overdue list is theirs too; report pages are refused."""
    log_in(desk, live_server, "off.alpha")
    expect(desk).to_have_url(f"{live_server}/dashboard/inbox")
    open_codes = sorted(desk.locator("table.inbox a.ticket-code").all_inner_texts())
    assert open_codes == sorted(set(history.opened["dept-alpha"]) - set(history.answered["dept-alpha"]))
    desk.goto(f"{live_server}/dashboard/overdue")
    assert sorted(desk.locator("table.overdue a.ticket-code").all_inner_texts()) == history.overdue["dept-alpha"]
    expect(desk.locator("main")).to_contain_text("báo cáo số liệu dành cho giám sát và quản trị viên")
    assert desk.goto(f"{live_server}/dashboard/departments/dept-alpha").status == 403
    assert desk.goto(f"{live_server}/dashboard/tickets?figure=volume").status == 200
    assert codes_listed(desk) == history.opened["dept-alpha"]


def test_logout_forgets_the_session(live_server: str, history: History, desk: Page) -> None:
    """After logging out, the dashboard asks to log in again."""
    log_in(desk, live_server, "sup.beta")
    expect(desk).to_have_url(f"{live_server}/dashboard/departments/dept-beta")
    desk.get_by_role("button", name="Đăng xuất").click()
    expect(desk).to_have_url(f"{live_server}/dashboard/login")
    desk.goto(f"{live_server}/dashboard/departments/dept-beta")
    expect(desk).to_have_url(f"{live_server}/dashboard/login?next=%2Fdashboard%2Fdepartments%2Fdept-beta")


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token a dashboard page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def test_login_refuses_foreign_redirects_and_cross_site_posts(live_server: str, history: History) -> None:
    """After login only a dashboard path is followed; a sign-in posted from another site is refused."""
    with httpx.Client(base_url=live_server, timeout=30, follow_redirects=False) as client:
        form = {"username": "chief.admin", "password": PASSWORD, "csrf": csrf_of(client.get("/dashboard/login"))}
        for target in ("https://evil.example/", "//evil.example/dashboard", "/api/tickets", "/dashboard/overdue"):
            response = client.post("/dashboard/login", data={**form, "next": target})
            assert response.status_code == 303
            assert response.headers["location"] == (target if target == "/dashboard/overdue" else "/dashboard")
        foreign = client.post("/dashboard/login", data=form, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        assert "set-cookie" not in foreign.headers
        client.cookies.set("motcua_dashboard", "not a token")
        page = client.get("/dashboard/overdue")
        assert page.status_code == 303
        assert page.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Foverdue"
