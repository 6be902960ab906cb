"""End-to-end fixtures: Debian chromium (the live app fixture is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; scripts/test.sh installs it, never a downloaded one
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian chromium driven by Playwright; a missing browser fails the run, it is never skipped.

    Module scope, not session: the sync API keeps an event loop marked running on the main thread
    while it is open, and later tests calling asyncio.run() would fail.
    """
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; "
            "scripts/test.sh does it). Playwright's downloaded browsers are not used."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh phone-sized browser context (empty localStorage: a new chat session) and its page."""
    context = browser.new_context(
        viewport={"width": 412, "height": 915},
        device_scale_factor=2,
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
    )
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def page_errors(page: Page) -> list[str]:
    """Uncaught script errors and dialogs (alert, confirm) of the page; a test asserts it stays empty."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"script error: {exc}"))
    page.on("dialog", lambda dialog: errors.append(f"dialog opened: {dialog.message}"))
    return errors


# WCAG 2.1 contrast of every visible text element's colour against the background it is painted on (the nearest
# ancestor with an opaque background), computed in the browser; normal text needs 4.5:1, large text 3:1.
CONTRAST_SCRIPT = """
() => {
  const lum = (rgb) => {
    const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c.length >= 3 && (c.length === 3 || c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const problems = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].filter((n) => n.nodeType === 3 && n.textContent.trim());
    const text = own.map((n) => n.textContent.trim()).join(" ");
    if (!text || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || Number(style.opacity) === 0) continue;
    const fg = parse(style.color).slice(0, 3), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const where = `<${el.tagName.toLowerCase()} class="${el.className}">`;
    if (ratio < needed) problems.push(`${ratio.toFixed(2)} < ${needed}: ${where} ${text.slice(0, 40)}`);
  }
  return problems;
}
"""


def contrast_problems(page: Page) -> list[str]:
    """Text on the page whose contrast with its background is below WCAG AA."""
    return list(page.evaluate(CONTRAST_SCRIPT))
