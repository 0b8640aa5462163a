"""The OpenAPI description of the tus routes: valid OpenAPI 3.1 once merged into the app's
document, every served method documented, and real answers as documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from starlette.routing import Route

from tests.conftest import Brand, bearer, mint
from tests.webapp.test_openapi import problems_with
from tests.webapp.uploads_support import OCTET, TUS, as_staff, checksum, meta
from tests.webapp.uploads_support import upload_settings as upload_settings
from webapp.api_uploads import openapi_paths, routes
from webapp.settings import Settings

COLLECTION, ITEM = "/api/v1/uploads", "/api/v1/uploads/{upload_id}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return upload_settings(tmp_path / "data")


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/api/openapi.json")).json()
    document["paths"].update(openapi_paths())
    return document


async def test_merged_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert problems_with(doc) == []
    broken = openapi_paths()
    broken[ITEM]["patch"]["parameters"][0]["in"] = "body"
    assert problems_with({**doc, "paths": {**doc["paths"], **broken}}) != []


async def test_every_served_method_is_documented() -> None:
    served = {
        (r.path, m.lower()) for r in routes() if isinstance(r, Route) for m in r.methods or ()
    }
    documented = {(p, m) for p, item in openapi_paths().items() for m in item}
    assert served == documented
    ids = [op["operationId"] for item in openapi_paths().values() for op in item.values()]
    assert len(ids) == len(set(ids))


async def test_real_answers_are_documented(
    client: httpx.AsyncClient, brand: Brand, doc: dict[str, Any]
) -> None:
    seen: set[tuple[str, str, str]] = set()

    async def call(method: str, template: str, expect: int, **kw: Any) -> httpx.Response:
        upload_id = kw.pop("upload_id", "")
        r = await client.request(method, template.format(upload_id=upload_id), **kw)
        assert r.status_code == expect, r.text
        op = doc["paths"][template][method.lower()]
        answer = op["responses"].get(str(expect))
        assert answer is not None, f"{method} {template} answered an undocumented {expect}"
        seen.add((method.lower(), template, str(expect)))
        optional = {"Upload-Expires", "Upload-Metadata"}  # only while incomplete / if sent
        for name, spec in answer.get("headers", {}).items():
            if name in optional and name.lower() not in r.headers:
                continue
            value = r.headers[name]
            assert jsonschema_rs.is_valid(spec["schema"], int(value) if value.isdigit() else value)
        if "content" in answer:
            media, content = next(iter(answer["content"].items()))
            assert r.headers["content-type"] == media
            schema = {**content["schema"], "components": doc["components"]}
            assert jsonschema_rs.validator_for(schema).is_valid(r.json()), r.json()
        return r

    key = {**TUS, **brand.key_headers}
    await call("OPTIONS", COLLECTION, 204)
    made = await call("POST", COLLECTION, 201, headers={**key, "Upload-Length": "6"})
    u = {"upload_id": made.json()["id"]}
    await call("HEAD", ITEM, 200, headers=key, **u)
    at = {**key, **OCTET, "Upload-Offset": "0"}
    await call("PATCH", ITEM, 204, headers=at, content=b"ab", **u)
    await call("PATCH", ITEM, 409, headers=at, content=b"ab", **u)
    at2 = {**at, "Upload-Offset": "2"}
    wrong = {**at2, "Upload-Checksum": checksum("md5", b"zz")}
    await call("PATCH", ITEM, 460, headers=wrong, content=b"cd", **u)
    await call("PATCH", ITEM, 413, headers=at2, content=b"cdefgh", **u)
    await call("PATCH", ITEM, 415, headers={**key, "Upload-Offset": "2"}, content=b"c", **u)
    await call("PATCH", ITEM, 400, headers={**key, **OCTET}, content=b"c", **u)
    await call("PATCH", ITEM, 412, headers={**at2, "Tus-Resumable": "2"}, content=b"c", **u)
    await call("PATCH", ITEM, 401, headers={**TUS, **OCTET, "Upload-Offset": "2"}, **u)
    fan = bearer((await mint(client, brand))["token"])
    await call("PATCH", ITEM, 403, headers={**at2, **fan}, content=b"c", **u)
    await call("PATCH", ITEM, 404, headers=at2, content=b"c", upload_id="upl_none")
    override = {**at2, "X-HTTP-Method-Override": "PATCH"}
    await call("POST", ITEM, 204, headers=override, content=b"cd", **u)
    await call("POST", ITEM, 405, headers=key, **u)
    one = {**key, "Upload-Length": "1"}
    await call("POST", COLLECTION, 400, headers={**one, "Upload-Metadata": "x y"})
    await call("POST", COLLECTION, 413, headers={**key, "Upload-Length": str(1 << 40)})
    await call("POST", COLLECTION, 415, headers={**one, "Content-Type": "text/plain"}, content="x")
    bad = {**one, **OCTET, "Upload-Checksum": checksum("sha1", b"y")}
    await call("POST", COLLECTION, 460, headers=bad, content=b"x")
    await call("POST", COLLECTION, 412, headers={**brand.key_headers, "Upload-Length": "1"})
    await call("POST", COLLECTION, 401, headers={**TUS, "Upload-Length": "1"})
    await call("POST", COLLECTION, 403, headers={**TUS, **fan, "Upload-Length": "1"})
    named = {**one, "Upload-Metadata": meta(account_id="acc_nope")}
    await call("POST", COLLECTION, 404, headers=named)
    csrf = as_staff(client, brand)
    await call("POST", COLLECTION, 422, headers={**TUS, **csrf, "Upload-Length": "1"})
    client.cookies.clear()
    for _ in range(9):
        await call("POST", COLLECTION, 201, headers={**key, "Upload-Length": "9"})
    await call("POST", COLLECTION, 429, headers={**key, "Upload-Length": "9"})
    await call("HEAD", ITEM, 404, headers=key, upload_id="upl_none")
    await call("DELETE", ITEM, 204, headers=key, **u)
    await call("DELETE", ITEM, 410, headers=key, **u)
    await call("HEAD", ITEM, 410, headers=key, **u)
    successes = {
        (method, path, status)
        for path, item in openapi_paths().items()
        for method, op in item.items()
        for status in op["responses"]
        if status.startswith("2")
    }
    assert successes <= seen
