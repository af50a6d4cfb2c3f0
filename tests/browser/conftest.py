"""A real headless Chromium (Debian's package) driven by Playwright: no browser download."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # scripts/bootstrap.sh installs Debian's chromium; without it this fails (never skips).
    # No sandbox: as root Chromium refuses to start with one, and Playwright then adds
    # --no-sandbox itself when chromium_sandbox is False.
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, chromium_sandbox=False
    )
    yield browser
    browser.close()
