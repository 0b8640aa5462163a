"""End-to-end fixtures: the real ``lifeaccount serve`` in a child process, a real Chromium.

Chromium is Debian's (``/usr/bin/chromium``), never one downloaded by ``playwright install``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    sync_playwright,
)

from tests.e2e.host_origin import Origin, serve_origin
from tests.e2e.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Owner,
    Server,
    Servers,
    sign_up_api,
    start_server,
)


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


# Chromium logs every 4xx answer to fetch() as a console error; the tests ask for some.
HTTP_STATUS_NOISE = "Failed to load resource: the server responded with a status of 4"


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails its test on uncaught script errors and console errors (e.g. CSP)."""
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(f"{error.name}: {error.message}"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(HTTP_STATUS_NOISE):
            errors.append(f"console: {message.text}")

    opened.on("console", on_console)
    yield opened
    assert not errors, f"script errors on {opened.url}: {errors}"


@pytest.fixture
def owner(api: httpx.Client) -> Owner:
    return sign_up_api(api)


@pytest.fixture
def host_page(context: BrowserContext, server: Server, owner: Owner) -> Iterator[Page]:
    """The owner's console session in a page of its own (the host page's side)."""
    context.add_cookies([{"name": "la_session", "value": owner.session, "url": server.base_url}])
    opened = context.new_page()
    yield opened
    opened.close()


def _another_origin(folder: Path) -> Iterator[Origin]:
    with serve_origin(folder) as origin:
        # The same machine under another name: another origin, and another host for the channel.
        origin.url = origin.url.replace("127.0.0.1", "localhost")
        yield origin


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Origin]:
    """A brand's own web site on another origin (the tests list it in embed_origins)."""
    yield from _another_origin(tmp_path / "shop")


@pytest.fixture
def stranger(tmp_path: Path) -> Iterator[Origin]:
    """A site on another origin that no account lists."""
    yield from _another_origin(tmp_path / "stranger")
