"""The web chat on a phone in real chromium: cards drawn from their blocks, the newest reply in view, the frame in
the citizen's language, WCAG AA contrast, hostile knowledge-base text shown as text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from bot.models import ChatMessage, Conversation
from bot.web import CHANNEL
from core.db import session_scope
from knowledge.models import Procedure
from tests.conftest import running_app
from tests.e2e.conftest import contrast_problems

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT_MS = 10_000
PHONE = {"width": 375, "height": 740}
HOSTILE = "<b>x</b> & <script>alert(1)</script> <img src=x onerror=alert(2)>"
LABELS = {"vi": "Câu hỏi của bạn", "en": "Your question"}

# The newest bot reply in view, against the window and the conversation pane: all of it, or, when it is taller
# than the pane, from its top (which sits at the top of the pane).
NEWEST_IN_VIEW = """
() => {
  const bots = document.querySelectorAll("#messages .msg--bot");
  if (!bots.length) return false;
  const r = bots[bots.length - 1].getBoundingClientRect();
  const pane = document.getElementById("conversation").getBoundingClientRect();
  const top = Math.max(pane.top, 0), bottom = Math.min(pane.bottom, window.innerHeight);
  if (r.top < top - 1) return false;
  return r.height > bottom - top ? r.top <= top + 40 : r.bottom <= bottom + 1;
}
"""
WIDER_THAN_THE_WINDOW = """
() => [...document.querySelectorAll("body *")]
  .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
  .filter((el) => ![...el.children].some((c) => c.getBoundingClientRect().right > window.innerWidth + 1))
  .map((el) => `<${el.tagName.toLowerCase()} class="${el.className}"> ${el.textContent.trim().slice(0, 40)}`)
"""
PLACEHOLDER_CONTRAST = """
() => {
  const lum = (c) => {
    const [r, g, b] = (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number).map((v) => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const box = document.getElementById("question");
  const [hi, lo] = [lum(getComputedStyle(box, "::placeholder").color), lum(getComputedStyle(box).backgroundColor)]
    .sort((a, b) => b - a);
  return (hi + 0.05) / (lo + 0.05);
}
"""


@pytest.fixture(scope="module")
def live_server(module_data_dir: Path) -> Iterator[str]:
    """One real app for the module: each test's browser context is a new chat session."""
    with running_app() as base:
        yield base


def phone(browser: Browser, locale: str) -> Iterator[tuple[Page, list[str]]]:
    """A 375 px wide phone with the given browser language, and the page's script errors."""
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, locale=locale, timezone_id="Asia/Ho_Chi_Minh", has_touch=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))
    page.on("dialog", lambda dialog: errors.append(f"dialog opened: {dialog.message}"))
    yield page, errors
    context.close()


@pytest.fixture
def vi_phone(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    yield from phone(browser, "vi-VN")


@pytest.fixture
def en_phone(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    yield from phone(browser, "en-US")


def open_chat(page: Page, base: str, greeting: str) -> None:
    page.goto(f"{base}/chat")
    expect(page.locator("#messages .msg--bot").first).to_contain_text(greeting, timeout=WAIT_MS)


def answered(page: Page, before: int) -> None:
    """Wait for the bot's next reply and for the scrolling to put it in view."""
    expect(page.locator("#messages .msg--bot")).to_have_count(before + 1, timeout=WAIT_MS)
    expect(page.locator("#typing")).to_be_hidden(timeout=WAIT_MS)
    page.wait_for_function(NEWEST_IN_VIEW, timeout=WAIT_MS)


def ask(page: Page, text: str, lang: str) -> None:
    before = page.locator("#messages .msg--bot").count()
    box = page.get_by_label(LABELS[lang])
    box.fill(text)
    box.press("Enter")
    answered(page, before)


def press(page: Page, chip: str) -> str:
    """Press a chip under the newest reply by its payload's start; returns its label."""
    button = page.locator("#messages .msg--bot").last.locator(f".chip[data-payload^='{chip}']").first
    label = button.inner_text()
    before = page.locator("#messages .msg--bot").count()
    button.click()
    expect(page.locator("#messages .msg--citizen .bubble").last).to_have_text(label)
    answered(page, before)
    return label


def to_a_card(page: Page) -> None:
    """A clarifying question is answered with its first procedure: the newest reply is then a card."""
    if page.locator("#messages .msg--bot").last.locator(".chip[data-payload^='p:']").count():
        press(page, "p:")
    expect(page.locator("#messages .msg--bot").last.locator(".card-title")).to_be_visible()


def in_view(page: Page) -> bool:
    return bool(page.evaluate(NEWEST_IN_VIEW))


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_three_turns_in_vietnamese_on_a_phone_keep_the_newest_reply_in_view(
    live_server: str, vi_phone: tuple[Page, list[str]]
) -> None:
    page, errors = vi_phone
    open_chat(page, live_server, "Xin chào! Tôi là trợ lý Một cửa")
    greeting = page.locator("#messages .msg--bot").first
    expect(greeting.locator(".chip[data-payload^='q:']")).to_have_count(3)
    expect(greeting.locator(".chip[data-payload='t:identity']")).to_contain_text("Căn cước, hộ chiếu")
    screenshot(page, "web_chat_phone_greeting_vi.png")

    press(page, "q:0")  # 1: an example question of the greeting, answered as if typed
    to_a_card(page)
    card = page.locator("#messages .msg--bot").last
    expect(card.locator("h2.card-title")).to_have_count(1)
    expect(card.locator(".label", has_text="Hồ sơ cần có:")).to_be_visible()
    expect(card.locator(".card-list li").first).to_be_visible()
    expect(card.locator("a[href^='https://']")).to_have_attribute("rel", re.compile("noopener"))
    expect(card.locator(".label", has_text="Căn cứ pháp lý")).to_have_count(0)  # behind a button
    short_height = card.bounding_box()["height"]
    screenshot(page, "web_chat_phone_card_vi.png")

    press(page, "c:")  # 2: 📋 the full card, taller than the screen: its top is what comes into view
    full = page.locator("#messages .msg--bot").last
    expect(full.locator(".label", has_text="Căn cứ pháp lý")).to_be_visible()
    assert full.bounding_box()["height"] > max(short_height, PHONE["height"])
    pane_top = page.locator("#conversation").bounding_box()["y"]
    assert pane_top - 1 <= full.bounding_box()["y"] <= pane_top + 40  # from its title
    screenshot(page, "web_chat_phone_full_vi.png")

    ask(page, "Lệ phí làm hộ chiếu", "vi")  # 3
    assert in_view(page)
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    screenshot(page, "web_chat_phone_vi.png")
    assert page.evaluate(WIDER_THAN_THE_WINDOW) == []  # nothing scrolls sideways on a 375 px screen
    assert errors == []


def test_an_english_browser_gets_the_frame_and_three_turns_in_english(
    live_server: str, en_phone: tuple[Page, list[str]]
) -> None:
    page, errors = en_phone
    open_chat(page, live_server, "Hello! I am the One-Stop assistant")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Một cửa — Administrative procedures help desk")
    expect(page.get_by_label("Your question")).to_have_attribute("placeholder", "Ask about a procedure…")
    expect(page.locator(".hint")).to_contain_text("Enter to send")
    expect(page.get_by_role("button", name="Send question")).to_be_visible()
    assert page.title() == "Một cửa — Administrative procedures help desk"

    press(page, "q:0")  # "How do I replace a lost ID card?"
    to_a_card(page)
    expect(page.locator("#messages .msg--bot").last.locator(".label", has_text="Documents:")).to_be_visible()
    ask(page, "What is the fee for a passport?", "en")
    ask(page, "Where do I register the birth of my baby?", "en")
    assert in_view(page)
    screenshot(page, "web_chat_phone_en.png")

    ask(page, "Thủ tục đăng ký kết hôn", "en")  # the citizen switches to Vietnamese: the frame follows
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.get_by_label("Câu hỏi của bạn")).to_be_visible()
    assert errors == []


def test_bubbles_buttons_and_frame_meet_wcag_aa(live_server: str, vi_phone: tuple[Page, list[str]]) -> None:
    page, errors = vi_phone
    open_chat(page, live_server, "Xin chào! Tôi là trợ lý Một cửa")
    ask(page, "Thủ tục đăng ký khai sinh", "vi")
    to_a_card(page)
    sid = page.evaluate("() => window.localStorage.getItem('motcua.session')")
    with session_scope() as session:
        conversation_id = session.scalar(
            select(Conversation.id).where(Conversation.channel == CHANNEL, Conversation.user_key == sid)
        )
        session.add(ChatMessage(conversation_id=conversation_id, direction="out", author="official", text="Đã rõ."))
    expect(page.locator("#messages .msg--official")).to_be_visible(timeout=WAIT_MS)
    page.wait_for_function(NEWEST_IN_VIEW.replace(".msg--bot", ".msg--official"), timeout=WAIT_MS)  # in view too

    assert contrast_problems(page) == []  # header, bubbles (the citizen's on its gradient's light end), chips
    assert page.evaluate(PLACEHOLDER_CONTRAST) >= 4.5
    chips = page.locator(".chip").all_inner_texts()
    assert chips
    assert all(re.search(r"[^\W\d_]", label) for label in chips)  # words on every button, emoji drawn or not
    if page.evaluate("() => document.documentElement.classList.contains('no-emoji')"):
        assert not any(re.match(r"[^\w\s]", label) for label in chips)  # no empty boxes where emoji would be
    screenshot(page, "web_chat_phone_contrast.png")
    assert errors == []


def test_hostile_knowledge_base_text_shows_as_text_in_a_card(
    live_server: str, vi_phone: tuple[Page, list[str]]
) -> None:
    page, errors = vi_phone
    with session_scope() as session:
        text = session.scalar(select(Procedure).where(Procedure.slug == "enterprise-registration")).text("vi")
        saved = (text.title, text.fees)
        text.title, text.fees = HOSTILE, f'{HOSTILE} https://dichvucong.gov.vn/x" onmouseover="alert(3)'
    try:
        open_chat(page, live_server, "Xin chào! Tôi là trợ lý Một cửa")
        ask(page, "/topics", "vi")
        press(page, "t:business")
        page.locator("#messages .msg--bot").last.locator(".chip[data-payload='p:enterprise-registration']").click()
        card = page.locator("#messages .msg--bot").last.locator(".bubble--card")
        expect(card.locator(".card-title")).to_contain_text(HOSTILE, timeout=WAIT_MS)
        expect(card.locator(".card-field", has_text="Lệ phí")).to_contain_text(HOSTILE)
        messages = page.locator("#messages")
        expect(messages.locator("script, img, b")).to_have_count(0)  # nothing in the text became an element
        links = card.locator("a").evaluate_all(
            "els => els.map((a) => [a.getAttribute('href'), a.getAttributeNames().sort().join(' ')])"
        )
        assert ["https://dichvucong.gov.vn/x", "href rel target"] in links  # the URL, cut before the quote
        assert all(href.startswith("https://") and names == "href rel target" for href, names in links)
        page.wait_for_timeout(300)  # time for an onerror to fire, were there an image
    finally:
        with session_scope() as session:
            text = session.scalar(select(Procedure).where(Procedure.slug == "enterprise-registration")).text("vi")
            text.title, text.fees = saved
    assert errors == []
