"""The widget gallery in real Chromium on a server started with `lifeaccount demo`'s seeding:
every widget works live on the demo brand, and axe-core (from npm) finds no serious or
critical accessibility violation — widgets' shadow roots included."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from tests.e2e.support import Servers, screenshot

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SETTLED = re.compile(r"^(ready|anonymous|ended)$")
TAGS = [
    "la-follow",
    "la-like",
    "la-comments",
    "la-poll",
    "la-content-card",
    "la-live",
    "la-red-packet",
    "la-coupon",
    "la-search-box",
]


def serious(violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]} "
        + v["nodes"][0].get("failureSummary", "")[:300]
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def test_the_gallery_shows_every_widget_live_and_accessible(
    browser: Browser, servers: Servers, tmp_path: Path
) -> None:
    demo = servers.start(tmp_path / "data", env={"LIFEACCOUNT_DEMO": "1"})
    context = browser.new_context(base_url=demo.base_url, viewport={"width": 1100, "height": 900})
    try:
        page = context.new_page()
        page.goto("/developers/widgets")
        for tag in TAGS:
            widget = page.locator(f".widget-live {tag}")
            expect(widget).to_have_count(1)
            # Shown from the demo brand's data, as a guest: read-only, never an error.
            expect(widget).to_have_attribute("data-state", SETTLED, timeout=15_000)
        expect(page.locator(".widget-live la-follow")).to_contain_text("Demo Tea House")
        expect(page.locator(".widget-live la-poll")).to_contain_text("Which tea")
        expect(page.locator(".widget-live la-search-box")).to_contain_text("Demo Tea House")
        expect(page.locator(".widget-live la-live")).to_contain_text("Coming up")
        page.add_script_tag(path=str(AXE))
        found = page.evaluate("async () => (await axe.run(document)).violations")
        assert serious(found) == []
        screenshot(page, "widget-gallery")
    finally:
        context.close()
