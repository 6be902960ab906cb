"""The web chat page in a real browser against the real app: greeting, answers, chips, escaping, polling."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect
from sqlalchemy import select

from bot.models import ChatMessage, Conversation
from bot.web import CHANNEL
from core.db import session_scope
from tests.conftest import running_app

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CARD_LABEL = re.compile(r"Hồ sơ cần có|Lệ phí")
GREETING = "Xin chào! Tôi là trợ lý Một cửa"
INJECTION = "Thủ tục <img src=x onerror=alert(1)> **bold** là gì?"
WAIT_MS = 10_000


@pytest.fixture(scope="module")
def live_server(module_data_dir: Path) -> Iterator[str]:
    """One real app for the module: each test's browser context is a new chat session."""
    with running_app() as base:
        yield base


def open_chat(page: Page, base: str) -> None:
    """Load /chat and wait for the bot's greeting (a new session sends /start once)."""
    page.goto(f"{base}/chat")
    expect(page.locator("#messages .msg--bot").first).to_contain_text(GREETING, timeout=WAIT_MS)


def ask(page: Page, text: str) -> None:
    """Type a question and press Enter; wait until the bot answered it."""
    bot = page.locator("#messages .msg--bot")
    before = bot.count()
    page.get_by_label("Câu hỏi của bạn").fill(text)
    page.get_by_label("Câu hỏi của bạn").press("Enter")
    expect(bot).to_have_count(before + 1, timeout=WAIT_MS)
    expect(page.locator("#typing")).to_be_hidden(timeout=WAIT_MS)


def session_id(page: Page) -> str:
    """The chat session the page keeps in localStorage."""
    sid = page.evaluate("() => window.localStorage.getItem('motcua.session')")
    assert isinstance(sid, str)
    assert sid
    return sid


def test_question_chips_and_procedure_card(live_server: str, page: Page, page_errors: list[str]) -> None:
    """Greeting on load; a question gets an answer; a procedure chip opens the procedure's card."""
    open_chat(page, live_server)
    expect(page.get_by_role("heading", name="Một cửa — Hỏi đáp thủ tục hành chính")).to_be_visible()

    ask(page, "Thủ tục đăng ký khai sinh")
    expect(page.locator("#messages .msg--citizen .bubble").last).to_have_text("Thủ tục đăng ký khai sinh")
    reply = page.locator("#messages .msg--bot").last
    procedure_chips = reply.locator(".chip[data-payload^='p:']")
    if procedure_chips.count() > 0:
        label = procedure_chips.first.inner_text()
        bot = page.locator("#messages .msg--bot")
        before = bot.count()
        procedure_chips.first.click()
        expect(page.locator("#messages .msg--citizen .bubble").last).to_have_text(label)
        expect(bot).to_have_count(before + 1, timeout=WAIT_MS)
        reply = bot.last
    expect(reply.locator(".bubble")).to_contain_text(CARD_LABEL)
    expect(reply.locator(".chip").first).to_be_visible()  # 👍 / 👎 / talk to an official under the card

    # The greeting came once: later polls skip messages already shown.
    with page.expect_response(lambda r: "/messages?after=" in r.url, timeout=WAIT_MS):
        pass
    expect(page.locator("#messages .msg--bot", has_text=GREETING)).to_have_count(1)

    ARTIFACTS.mkdir(exist_ok=True)
    # From the top: the greeting, the question, the chips offered and the start of the card.
    page.locator("#conversation").evaluate("el => el.scrollTo({top: 0, behavior: 'instant'})")
    page.screenshot(path=str(ARTIFACTS / "web_chat.png"))
    assert page_errors == []


def test_topic_chips_lead_to_a_procedure_card(live_server: str, page: Page, page_errors: list[str]) -> None:
    """/topics offers topic chips; a topic chip offers procedure chips; a procedure chip shows its card."""
    open_chat(page, live_server)
    ask(page, "/topics")
    bot = page.locator("#messages .msg--bot")
    for prefix in ("t:", "p:"):
        chip = bot.last.locator(f".chip[data-payload^='{prefix}']").first
        expect(chip).to_be_visible()
        label = chip.inner_text()
        before = bot.count()
        chip.click()
        expect(page.locator("#messages .msg--citizen .bubble").last).to_have_text(label)
        expect(bot).to_have_count(before + 1, timeout=WAIT_MS)
    expect(bot.last.locator(".bubble")).to_contain_text(CARD_LABEL)
    assert page_errors == []


def test_typing_indicator_and_errors(live_server: str, page: Page, page_errors: list[str]) -> None:
    """While the answer is on its way "typing…" shows; a failed request says so and keeps the text."""
    open_chat(page, live_server)
    seen: dict[str, bool] = {}

    def hold(route: Route) -> None:
        # The request is held here, mid-flight: the page must show that an answer is on its way.
        seen["typing"] = page.locator("#typing").is_visible()
        seen["send disabled"] = page.get_by_role("button", name="Gửi câu hỏi").is_disabled()
        route.fulfill(status=422, json={"detail": "text: too long"})

    page.route("**/api/chat", hold)
    box = page.get_by_label("Câu hỏi của bạn")
    box.fill("Lệ phí làm hộ chiếu")
    box.press("Enter")
    expect(page.locator("#messages .msg--system")).to_be_visible()
    assert seen == {"typing": True, "send disabled": True}
    expect(page.locator("#typing")).to_be_hidden()
    expect(page.locator("#messages .msg--system")).to_contain_text("(422): text: too long")
    expect(page.locator("#messages .msg--citizen").last).to_have_class(re.compile("msg--failed"))
    expect(box).to_have_value("Lệ phí làm hộ chiếu")
    assert page_errors == []


def test_html_and_markdown_show_as_text(live_server: str, page: Page, page_errors: list[str]) -> None:
    """Markup typed by a citizen is shown literally, never parsed: no <img>, no onerror, no bold."""
    open_chat(page, live_server)
    ask(page, INJECTION)

    messages = page.locator("#messages")
    mine = messages.locator(".msg--citizen .bubble").last
    expect(mine).to_have_text(INJECTION)
    expect(mine).to_be_visible()
    expect(messages.locator("img")).to_have_count(0)
    expect(messages.locator("strong, b, em")).to_have_count(0)
    assert page_errors == []


def test_official_reply_arrives_by_polling(live_server: str, page: Page, page_errors: list[str]) -> None:
    """A message stored server-side later (an official's reply) shows within one poll, exactly once."""
    open_chat(page, live_server)
    sid = session_id(page)
    text = (
        "Chào bạn, hồ sơ của bạn <b>đã đủ</b>.\n"
        "Xem thêm: https://dichvucong.gov.vn/p/home/dvc-trang-chu.html. (javascript:alert(1) is no link)"
    )
    with session_scope() as session:
        conversation_id = session.scalar(
            select(Conversation.id).where(Conversation.channel == CHANNEL, Conversation.user_key == sid)
        )
        assert conversation_id is not None, "the greeting should have created the web conversation"
        message = ChatMessage(conversation_id=conversation_id, direction="out", author="official", text=text)
        session.add(message)
        session.flush()
        message_id = message.id

    official = page.locator(f"#messages .msg--official[data-id='{message_id}']")
    expect(official).to_be_visible(timeout=WAIT_MS)
    expect(official.locator(".badge")).to_have_text("Cán bộ trả lời")
    expect(official.locator(".bubble")).to_have_text(text)
    link = official.locator("a")
    expect(link).to_have_attribute("href", "https://dichvucong.gov.vn/p/home/dvc-trang-chu.html")
    expect(link).to_have_attribute("rel", re.compile("noopener"))
    expect(official.locator("b")).to_have_count(0)

    with page.expect_response(lambda r: f"/messages?after={message_id}" in r.url, timeout=WAIT_MS):
        pass
    expect(page.locator(f"#messages [data-id='{message_id}']")).to_have_count(1)
    assert page_errors == []
