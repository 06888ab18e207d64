"""Headless Debian Chromium driven by Playwright for Python, for tests of the HTML reports.

Playwright cannot download its own browser on our machines, so it launches the distribution's ``chromium``
(the README's test command installs the package). A page that needs the network to render is a defect: every
request leaving ``file://`` is recorded so a test can assert there was none.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

# Chromium's background services try Google hosts at start; the closed network refuses them by the dozen.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_executable() -> str:
    """The path of Debian's chromium; a missing browser fails the test (the test command installs it)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: the README's test command installs Debian's chromium package")
    return path


@dataclass
class OpenedPage:
    """A page opened from a file, with what the browser reported while loading it."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session; registered once, in ``tests/conftest.py``: a second copy
    imported into a test module would start a second Playwright while the first still runs, which fails."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_file(browser: Browser, path: Path) -> OpenedPage:
    """Open ``path`` in a fresh context, recording console errors, page errors and non-file requests."""
    context = browser.new_context()
    page = context.new_page()
    opened = OpenedPage(page)
    page.on("console", lambda message: opened.console_errors.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: opened.console_errors.append(str(error)))
    page.on("request", lambda request: opened.network_requests.append(request.url)
            if not request.url.startswith(("file://", "data:")) else None)
    page.goto(path.resolve().as_uri(), wait_until="load")
    return opened
