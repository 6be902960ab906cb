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
