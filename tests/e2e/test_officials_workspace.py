"""Officials work tickets in the dashboard, in Debian chromium against the real app: a citizen's hand-off appears in
the watching official's inbox without reload, the official claims it, inserts a template, replies; the citizen's chat
shows the reply and the citizen rates it; the official sees the rating. Two officials on one ticket see each other,
and the second claim is refused on the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from bot.models import Conversation
from core.db import session_scope
from helpdesk.accounts import Actor, create_user, get_user
from helpdesk.models import Ticket
from helpdesk.reply_templates import save_template
from helpdesk.service import open_ticket
from knowledge.models import utcnow
from tests.e2e.conftest import contrast_problems

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "workspace test password"
WAIT_MS = 12_000  # polling is every 3 s (dashboard.js) and 4 s (chat.js); a new ticket must show within 5 s
TEMPLATE = "Chào anh/chị, bộ phận Hộ tịch đã nhận câu hỏi."


def people() -> None:
    """Officials and a supervisor of the seeded civil-status department, and a template of theirs."""
    with session_scope() as session:
        for username, role, full_name in [
            ("lan.hotich", "official", "Nguyễn Thị Lan"),
            ("minh.hotich", "official", "Trần Văn Minh"),
            ("thu.truong", "supervisor", "Lê Thu"),
        ]:
            create_user(
                session, username=username, password=PASSWORD, role=role, department="civil-status", full_name=full_name
            )
    with session_scope() as session:
        supervisor = Actor.of(get_user(session, "thu.truong"))
        save_template(session, supervisor, "civil-status", "Đã nhận", TEMPLATE, utcnow())


@pytest.fixture
def staffed(live_server: str) -> str:
    """The live app (its start-up seeded the bundled departments) with our people in civil status."""
    people()
    return live_server


@pytest.fixture
def pages(browser: Browser) -> Iterator[dict[str, Page]]:
    """Named pages whose script errors fail the test."""
    opened: dict[str, Page] = {}
    errors: list[str] = []

    def open_page(name: str, phone: bool = False) -> Page:
        size = {"width": 412, "height": 915} if phone else {"width": 1280, "height": 900}
        context = browser.new_context(viewport=size, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{name}: {exc}"))
        opened[name] = page
        return page

    yield open_page  # type: ignore[misc]
    for page in opened.values():
        page.context.close()
    assert errors == []


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/dashboard/login")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"workspace_{name}.png"), full_page=True)


def test_a_hand_off_reaches_the_official_live_and_the_reply_and_rating_go_round(staffed: str, pages) -> None:  # noqa: ANN001
    base = staffed
    official = pages("official")
    log_in(official, base, "lan.hotich")
    expect(official).to_have_url(f"{base}/dashboard/inbox")
    expect(official.locator(".tab--open .count")).to_have_text("0")

    citizen = pages("citizen", phone=True)
    citizen.goto(f"{base}/chat")
    bot = citizen.locator("#messages .msg--bot")
    expect(bot.first).to_contain_text("Xin chào", timeout=WAIT_MS)
    citizen.get_by_label("Câu hỏi của bạn").fill("Thủ tục đăng ký khai sinh cho con")
    citizen.get_by_label("Câu hỏi của bạn").press("Enter")
    expect(bot).to_have_count(2, timeout=WAIT_MS)
    birth = citizen.locator(".chip[data-payload='p:birth-registration']")
    if birth.count():  # the bot asked which procedure: pick birth registration
        birth.first.click()
        expect(bot).to_have_count(3, timeout=WAIT_MS)
    expect(bot.last).to_contain_text("Đăng ký khai sinh")
    bot.last.locator(".chip[data-payload='h']").click()  # 👤 talk to an official
    handed = bot.last
    expect(handed).to_contain_text("Mã yêu cầu", timeout=WAIT_MS)
    code = re.search(r"MC-[A-Z0-9]{6}", handed.inner_text()).group(0)
    shot(citizen, "citizen_handed_off")
    with session_scope() as session:
        assert session.scalar(select(Ticket.department).where(Ticket.code == code)) == "civil-status"

    # the official's inbox shows it without a reload
    row = official.locator("table.inbox tr", has=official.get_by_role("link", name=code))
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row).to_contain_text("Đăng ký khai sinh")  # the procedure
    expect(official.locator(".tab--unassigned .count")).to_have_text("1")
    shot(official, "inbox_live")
    assert contrast_problems(official) == []

    arrived = official.locator(".arrivals").get_by_role("link", name=code)  # also listed as just arrived
    expect(arrived).to_be_visible()
    arrived.click()
    expect(official.get_by_role("heading", level=1)).to_contain_text(code)
    expect(official.locator("#conversation")).to_contain_text("Thủ tục đăng ký khai sinh cho con")
    official.get_by_role("button", name="Nhận yêu cầu").click()
    expect(official.get_by_role("status")).to_contain_text("Bạn đã nhận yêu cầu này")
    expect(official.locator("#assignee")).to_have_text("lan.hotich")

    official.locator("#template-choice").select_option(label="Đã nhận")
    official.get_by_role("button", name="Chèn mẫu").click()
    box = official.locator("#reply-text")
    expect(box).to_have_value(TEMPLATE)
    assert "template=" not in official.url  # inserted in place by the script, no round trip
    box.press("End")
    box.type("\nMời anh/chị mang CCCD và giấy chứng sinh đến UBND xã.")
    shot(official, "reply_drafted")
    official.get_by_role("button", name="Gửi trả lời").click()
    expect(official.get_by_role("status")).to_contain_text("Đã gửi trả lời")
    reply = official.locator("#conversation .msg--official")
    expect(reply).to_contain_text("Mời anh/chị mang CCCD")
    expect(reply.locator(".delivery")).to_contain_text("Đã hiện trong web chat")

    # the citizen's chat shows the reply (its own polling) and the citizen rates it
    answer = citizen.locator("#messages .msg--official")
    expect(answer).to_contain_text(TEMPLATE, timeout=WAIT_MS)
    expect(answer).to_contain_text("Mời anh/chị mang CCCD")
    shot(citizen, "citizen_reply")
    answer.locator(".chip[data-payload$=':5']").click()
    expect(bot.last).to_contain_text("Cảm ơn", timeout=WAIT_MS)

    # ... and the official sees the rating without a reload
    expect(official.locator("#rating")).to_contain_text("5/5", timeout=WAIT_MS)
    expect(official.locator("#conversation .mark").last).to_contain_text("Công dân đánh giá")
    shot(official, "ticket_rated")
    assert contrast_problems(official) == []


def test_two_officials_on_one_ticket_see_each_other_and_the_second_claim_is_refused(staffed: str, pages) -> None:  # noqa: ANN001
    base = staffed
    with session_scope() as session:
        conversation = Conversation(channel="web", user_key="two-officials-citizen", state={})
        session.add(conversation)
        session.flush()
        ticket = open_ticket(
            session,
            conversation_id=conversation.id,
            channel="web",
            question="Cho hỏi trích lục khai sinh bản sao <b>ở đâu</b>?",
            reason="asked_for_person",
            lang="vi",
            now=utcnow(),
            procedure_slug="civil-status-extract-copy",
        )
        code = ticket.code
        assert ticket.department == "civil-status"
    lan, minh, thu = pages("lan"), pages("minh"), pages("thu")
    log_in(thu, base, "thu.truong")  # the supervisor watches the department's inbox
    thu.goto(f"{base}/dashboard/inbox")
    watched = thu.locator("table.inbox tr", has=thu.get_by_role("link", name=code))
    expect(watched.locator("td[data-label^='Cán bộ']")).to_have_text("—")
    for page, username in ((lan, "lan.hotich"), (minh, "minh.hotich")):
        log_in(page, base, username)
        page.goto(f"{base}/dashboard/tickets/{code}")
        expect(page.locator("blockquote.question")).to_have_text("Cho hỏi trích lục khai sinh bản sao <b>ở đâu</b>?")
    expect(lan.locator("#viewers")).to_contain_text("Trần Văn Minh", timeout=WAIT_MS)
    expect(minh.locator("#viewers")).to_contain_text("Nguyễn Thị Lan", timeout=WAIT_MS)
    shot(minh, "being_viewed")

    lan.get_by_role("button", name="Nhận yêu cầu").click()
    expect(lan.get_by_role("status")).to_contain_text("Bạn đã nhận yêu cầu này")
    # Minh's page still offers the claim (he pressed before seeing the change): the server refuses it, on the page
    expect(minh.locator("#assignee")).to_have_text("lan.hotich", timeout=WAIT_MS)  # the live part caught up
    expect(watched.locator("td[data-label^='Cán bộ']")).to_have_text("lan.hotich", timeout=WAIT_MS)  # and the inbox
    with minh.expect_response(lambda r: r.url.endswith(f"/tickets/{code}/claim")) as answered:
        minh.get_by_role("button", name="Nhận yêu cầu").click()
    assert answered.value.status == 409
    alert = minh.get_by_role("alert")
    expect(alert).to_contain_text("held by lan.hotich")
    expect(alert).to_contain_text("Không thực hiện được")
    shot(minh, "claim_conflict")
    assert contrast_problems(minh) == []


def test_waiting_for_the_citizen_then_their_answer_shows_live_and_the_card_goes_in_one_click(
    staffed: str, pages  # noqa: ANN001
) -> None:
    base = staffed
    session_id = "citizen-awaiting-reply-0001"
    with session_scope() as session:
        conversation = Conversation(channel="web", user_key=session_id, state={})
        session.add(conversation)
        session.flush()
        code = open_ticket(
            session,
            conversation_id=conversation.id,
            channel="web",
            question="Bản sao trích lục khai sinh cần giấy tờ gì?",
            reason="asked_for_person",
            lang="vi",
            now=utcnow(),
            procedure_slug="civil-status-extract-copy",
        ).code
    lan = pages("lan")
    log_in(lan, base, "lan.hotich")
    lan.goto(f"{base}/dashboard/tickets/{code}")
    lan.get_by_role("link", name="Chèn thẻ thủ tục").click()  # the procedure's card, in the citizen's language
    box = lan.locator("#reply-text")
    expect(box).to_have_value(re.compile(r"^📄 .*trích lục", re.I | re.S))
    assert "insert=card" not in lan.url  # inserted by the script, the page stayed
    box.fill("Anh/chị cho biết năm sinh của người được trích lục?")
    lan.get_by_label("Chờ công dân bổ sung (dừng đồng hồ)").check()
    lan.get_by_role("button", name="Gửi trả lời").click()
    expect(lan.get_by_role("status")).to_contain_text("Đã gửi trả lời")
    expect(lan.locator("dl.facts")).to_contain_text("tạm dừng, chờ công dân")

    import httpx  # the citizen answers in the web chat, through the real API

    answer = httpx.post(
        f"{base}/api/chat", json={"session": session_id, "text": "Dạ, sinh năm 1990 ạ"}, timeout=30
    ).json()
    assert answer["status"] == "forwarded"
    citizen_says = lan.locator("#conversation .msg--citizen", has_text="Dạ, sinh năm 1990 ạ")
    expect(citizen_says).to_be_visible(timeout=WAIT_MS)  # without a reload
    expect(lan.locator("dl.facts")).not_to_contain_text("tạm dừng", timeout=WAIT_MS)  # the clock runs again
    shot(lan, "citizen_answered_live")
