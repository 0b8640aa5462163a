"""bench.widgets: the widget SDK's weight and how soon it is usable.

The bundle's size gzipped (level 9, as a server would) against the budget of 25 KB for every
widget; and, in headless Chromium against the real ``lifeaccount serve``, the time from the
start of a brand page's navigation (on another origin, listed in the account's embed_origins)
to a follow button a fan can press — ``<la-follow>`` loaded from ``/sdk/lifeaccount.js``, with
the fan's token — beside a baseline page in the same run that does the least the same result
needs with no SDK: one cross-origin fetch of the same account with the same token, then a plain
``<button>``. Each page is loaded ``--loads`` times in a fresh browser context (no cache, as a
first visit); the medians are compared.

    .venv/bin/python -m bench.widgets              # ~30 s: 20 loads of each page
    .venv/bin/python -m bench.widgets --loads 5    # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from bench.report import machine, machine_line
from bench.servers import FAST_HASHING, ServerProcess, child_env, lifeaccount_command
from tests.e2e.host_origin import serve_origin
from tests.e2e.support import CHROMIUM, CHROMIUM_ARGS

RESULTS = Path(__file__).parent / "results"
DIST = Path(__file__).resolve().parent.parent / "components" / "dist"
BUDGET_GZIP = 25 * 1024
# Both pages record, once, the moment their follow button is there and enabled.
WATCH = """<script>
  window.readyAt = null;
  (function look() {
    const host = document.querySelector("la-follow");
    const button = host ? host.shadowRoot && host.shadowRoot.querySelector("button")
                        : document.querySelector("#follow");
    if (button && !button.disabled) { window.readyAt = performance.now(); return; }
    requestAnimationFrame(look);
  })();
</script>"""


def sdk_page(base: str, account_id: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SDK</title>
{WATCH}<script type="module">
  import {{ configure }} from "{base}/sdk/lifeaccount.js";
  configure({{ token: new URLSearchParams(location.hash.slice(1)).get("token") }});
</script></head><body><la-follow account="{account_id}"></la-follow></body></html>"""


def plain_page(base: str, account_id: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Plain</title>
{WATCH}<script type="module">
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const answer = await fetch("{base}/api/v1/accounts/{account_id}", {{
    headers: {{ Authorization: `Bearer ${{token}}` }}, credentials: "omit" }});
  const account = await answer.json();
  const button = document.createElement("button");
  button.id = "follow";
  button.textContent = account.following ? "Following" : `Follow ${{account.name}}`;
  document.body.append(button);
</script></head><body></body></html>"""


def bundle_size() -> dict[str, Any]:
    facts = json.loads((DIST / "manifest.json").read_text())
    code = (DIST / facts["file"]).read_bytes()
    return {"file": facts["file"], "bytes": len(code), "gzip_bytes": len(gzip.compress(code, 9))}


async def _account(base: str, origin: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.post(
            "/api/v1/signup",
            json={
                "email": "owner@bench-widgets.example",
                "password": "correct horse battery",
                "account": {"name": "Bench Tea", "handle": "bench-widgets"},
            },
        )
        r.raise_for_status()
        made = r.json()
        key = {"Authorization": f"Bearer {made['api_key']}"}
        account_id = made["account"]["id"]
        patched = await client.patch(
            f"/api/v1/accounts/{account_id}", json={"embed_origins": [origin]}, headers=key
        )
        patched.raise_for_status()
        fan = await client.post(
            f"/api/v1/accounts/{account_id}/fan-tokens",
            json={"external_id": "bench", "name": "bench fan"},
            headers=key,
        )
        fan.raise_for_status()
        return {"account_id": account_id, "token": fan.json()["token"]}


def _loads(urls: dict[str, str], loads: int) -> dict[str, list[float]]:
    """Each page ``loads`` times, alternating, each in a fresh context: ms to a ready button."""
    times: dict[str, list[float]] = {name: [] for name in urls}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for _ in range(loads):
                for name, url in urls.items():
                    context = browser.new_context()
                    page = context.new_page()
                    page.goto(url)
                    page.wait_for_function("window.readyAt !== null", timeout=15_000)
                    times[name].append(float(page.evaluate("window.readyAt")))
                    context.close()
        finally:
            browser.close()
    return times


async def run(loads: int, folder: Path) -> dict[str, Any]:
    server = ServerProcess(
        "lifeaccount",
        lifeaccount_command(Path(sys.executable), folder / "data"),
        folder / "logs",
        child_env(FAST_HASHING),
    )
    with serve_origin(folder / "shop") as shop:
        shop.url = shop.url.replace("127.0.0.1", "localhost")
        async with server:
            base = f"http://127.0.0.1:{server.port}"
            made = await _account(base, shop.url)
            urls = {
                "sdk": shop.page("sdk.html", sdk_page(base, made["account_id"])),
                "plain": shop.page("plain.html", plain_page(base, made["account_id"])),
            }
            fragment = f"#token={made['token']}"
            times = await asyncio.to_thread(
                _loads, {k: v + fragment for k, v in urls.items()}, loads
            )
    return {name: {"median_ms": statistics.median(t), "all_ms": t} for name, t in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.widgets", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--loads", type=int, default=20, help="loads of each page")
    args = parser.parse_args(argv)
    facts = machine()
    print(machine_line(facts))
    size = bundle_size()
    with tempfile.TemporaryDirectory(prefix="bench-widgets-") as tmp:
        timed = asyncio.run(run(args.loads, Path(tmp)))
    sdk, plain = timed["sdk"]["median_ms"], timed["plain"]["median_ms"]
    print(f"{'figure':44} {'value':>10} {'baseline':>10} {'×':>7}")
    print(
        f"{'bundle, gzipped (budget 25 KB)':44} {size['gzip_bytes']:>9,}B "
        f"{BUDGET_GZIP:>9,}B {size['gzip_bytes'] / BUDGET_GZIP:>6.2f}×"
    )
    print(
        f"{'load → interactive follow button, median':44} {sdk:>8.1f}ms "
        f"{plain:>8.1f}ms {sdk / plain:>6.2f}×"
    )
    print(f"({args.loads} first-visit loads each; baseline: one fetch and a plain <button>)")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"widgets-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({"machine": facts, "bundle": size, "loads": timed}, indent=1))
    print(f"wrote {out}")
    return 0 if size["gzip_bytes"] <= BUDGET_GZIP else 1


if __name__ == "__main__":
    raise SystemExit(main())
