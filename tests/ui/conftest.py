"""Browser tests of the web console: Playwright driving the machine's Chromium.

Browser downloads are not possible here, so the tests launch Debian's `chromium` package by
path (JOBBIE_CHROMIUM overrides it) and never run `playwright install`. Without Chromium they
skip, saying how to enable them; in CI (CI=true) a missing browser is a failure instead.
Every test fails on a console error or an uncaught exception in the page, and leaves a
screenshot of its last page under tests/ui/artifacts/ (ignored by git).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serverproc import ServerProcess

CHROMIUM = Path(os.environ.get("JOBBIE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ENABLE_HINT = (
    "browser tests need Chromium at /usr/bin/chromium (Debian: apt-get install -y chromium;"
    " or set JOBBIE_CHROMIUM to another Chromium binary)"
)


def _require_browser() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser tests: {ENABLE_HINT}")
    pytest.skip(ENABLE_HINT)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the browser tests (without keys); tests isolate by queue name."""
    _require_browser()
    proc = ServerProcess(tmp_path_factory.mktemp("ui") / "data", extra_args=("--test-clock",))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def api(console_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console_server.url, timeout=60.0) as client:
        yield client


class PageErrors:
    """Console errors and uncaught exceptions seen by a page."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def watch(self, page: Any) -> None:
        page.on(
            "console",
            lambda msg: (
                self.messages.append(f"console.{msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: self.messages.append(f"uncaught: {exc}"))


@pytest.fixture
def new_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Open pages in a fresh browser context; each gets error watching and a final screenshot.
    Pages expecting an error status (a refused POST, a 404) pass `allow_errors=True`."""
    contexts: list[Any] = []
    watched: list[tuple[Any, PageErrors, bool]] = []

    def make(*, allow_errors: bool = False, context: Any = None, **options: Any) -> Any:
        if context is None:
            context = browser.new_context(accept_downloads=True, **options)
            contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("dialog", lambda dialog: dialog.accept())
        errors = PageErrors()
        errors.watch(page)
        watched.append((page, errors, allow_errors))
        return page

    yield make
    ARTIFACTS.mkdir(exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
    for i, (page, _, _) in enumerate(watched):
        if not page.is_closed():
            suffix = "" if i == 0 else f"-{i}"
            page.screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"), full_page=True)
    for context in contexts:
        context.close()
    problems = [m for _, errors, allowed in watched if not allowed for m in errors.messages]
    assert not problems, f"errors in the page: {problems}"


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()
