"""The widget bundle's routes (webapp/sdk.py): the stable URL, the hashed immutable build and
the manifest with its SRI hash, open to every origin; without a build, a 503 that says what
to run."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import httpx
from starlette.applications import Starlette

from webapp.sdk import Bundle, routes


async def test_the_bundle_is_served_stable_and_hashed_with_its_integrity(
    client: httpx.AsyncClient,
) -> None:
    stable = await client.get("/sdk/lifeaccount.js", headers={"Origin": "https://shop.example"})
    assert stable.status_code == 200, stable.text
    assert stable.headers["content-type"].startswith("text/javascript")
    assert stable.headers["access-control-allow-origin"] == "*"
    assert stable.headers["cache-control"] == "public, max-age=300"
    assert b"customElements.define" in stable.content
    facts = (await client.get("/sdk/lifeaccount.json")).json()
    digest = base64.b64encode(hashlib.sha384(stable.content).digest()).decode()
    assert facts["integrity"] == f"sha384-{digest}"
    assert facts["bytes"] == len(stable.content) and 0 < facts["gzip_bytes"] < facts["bytes"]
    assert facts["stable_url"] == "http://testserver/sdk/lifeaccount.js"
    hashed = await client.get(facts["url"])
    assert hashed.content == stable.content
    assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert hashed.headers["access-control-allow-origin"] == "*"
    old = await client.get("/sdk/lifeaccount.0000000000000000.js")
    assert (old.status_code, old.json()["code"]) == (404, "not_found")


async def test_without_a_build_it_says_what_to_run(tmp_path: Path) -> None:
    app = Starlette(routes=routes(Bundle(tmp_path / "dist")))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        r = await client.get("/sdk/lifeaccount.js")
    assert (r.status_code, r.json()["code"]) == (503, "sdk_not_built")
    assert "npm run build:sdk" in r.json()["detail"]


async def test_an_earlier_build_a_page_pinned_is_still_served(tmp_path: Path) -> None:
    folder = tmp_path / "dist"
    folder.mkdir()
    old, new = "lifeaccount.00000000000000aa.js", "lifeaccount.00000000000000bb.js"
    (folder / old).write_bytes(b"export const old = 1;")
    (folder / new).write_bytes(b"export const now = 2;")
    facts = {"file": new, "integrity": "sha384-x", "bytes": 21, "gzip_bytes": 20}
    (folder / "manifest.json").write_text(json.dumps(facts))
    app = Starlette(routes=routes(Bundle(folder)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        assert (await client.get(f"/sdk/{old}")).content == b"export const old = 1;"
        assert (await client.get("/sdk/lifeaccount.js")).content == b"export const now = 2;"
        for name in ["manifest.json", "lifeaccount.zz.js", "..%2Fsecret.key"]:
            assert (await client.get(f"/sdk/{name}")).status_code == 404, name
