"""End-to-end fixtures: the real ``lifeaccount serve`` in a child process, a real Chromium.

Chromium is Debian's (``/usr/bin/chromium``), never one downloaded by ``playwright install``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.e2e.support import Server, start_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class Servers:
    """Starts extra servers for one test (e.g. a restart) and stops them afterwards."""

    def __init__(self) -> None:
        self.started: list[Server] = []

    def start(self, data_dir: Path) -> Server:
        running = start_server(data_dir)
        self.started.append(running)
        return running

    def log(self) -> str:
        return "\n".join(s.log() for s in self.started)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("e2e") / "data")
    yield running
    running.stop()


@pytest.fixture
def servers() -> Iterator[Servers]:
    spawned = Servers()
    yield spawned
    for running in spawned.started:
        running.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the servers' stdout and stderr to a failing e2e test's report."""
    report = yield
    if report.failed:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        for value in funcargs.values():
            if isinstance(value, Server | Servers):
                report.sections.append(("lifeaccount serve output", value.log()))
    return report


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        yield client


# Module scope, not session: the sync Playwright API runs its own event loop, which must not
# stay alive while pytest-asyncio runs the in-process tests of other packages.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=server.base_url, viewport={"width": 1100, "height": 800})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
