"""The OpenAPI description of the live video routes (webapp/api_live_doc.py): in the app's
document and valid OpenAPI 3.1 there, every route under /whip, /whep and /hls documented with
each method it serves, and real answers (a real aiortc publisher and viewers, in-process) as
documented: status, headers, media type and problem code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from tests.conftest import Brand, bearer, make_settings, sign_up
from tests.media.clips import cached, make_clip
from tests.media.peers import publish, view
from tests.webapp.test_openapi import LIVE, problems_with
from webapp.api_live_doc import HLS, WHEP, WHEP_SEAT, WHIP, WHIP_SESSION, openapi_paths
from webapp.context import Services
from webapp.settings import Settings

SDP = {"Content-Type": "application/sdp"}
# What each documented operation answers; a change to the routes must change this and the doc.
ANSWERS = {
    ("options", WHIP): {"204"},
    ("post", WHIP): {"201", "400", "401", "403", "404", "409", "413", "415", "500"},
    ("options", WHIP_SESSION): {"204"},
    ("delete", WHIP_SESSION): {"200", "401", "403", "404"},
    ("patch", WHIP_SESSION): {"405"},
    ("options", WHEP): {"204"},
    ("post", WHEP): {"201", "400", "404", "409", "413", "415", "503"},
    ("options", WHEP_SEAT): {"204"},
    ("delete", WHEP_SEAT): {"200", "404"},
    ("patch", WHEP_SEAT): {"405"},
    ("get", HLS): {"200", "206", "400", "404", "416"},
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", live_seats=1)


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The same clip as tests/media/test_whip.py, made once per session.
    return cached(
        tmp_path_factory,
        "live-320x240.mp4",
        lambda p: make_clip(p, size="320x240", seconds=12, rate=30, extra=("-f", "mp4")),
    )


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/api/openapi.json")).json()
    return document


async def test_the_app_document_holds_the_live_routes_and_is_valid(doc: dict[str, Any]) -> None:
    assert {p: doc["paths"][p] for p in openapi_paths()} == openapi_paths()
    assert doc["components"]["securitySchemes"]["streamKey"]["scheme"] == "bearer"
    assert problems_with(doc) == []
    broken = openapi_paths()
    broken[WHIP]["post"]["parameters"][0]["in"] = "body"
    assert problems_with({**doc, "paths": {**doc["paths"], **broken}}) != []
    assert openapi_paths()[WHIP]["post"]["parameters"][0]["in"] == "path"  # a fresh copy


async def test_the_documented_methods_and_answers() -> None:
    documented = {
        (method, path): set(op["responses"])
        for path, item in openapi_paths().items()
        for method, op in item.items()
    }
    assert documented == ANSWERS
    for path, item in openapi_paths().items():
        for method, op in item.items():
            assert op["tags"] == ["live"] and op["security"], (method, path)
            if method == "post":
                assert set(op["requestBody"]["content"]) == {"application/sdp"}
                assert set(op["responses"]["201"]["content"]) == {"application/sdp"}
                assert "Location" in op["responses"]["201"]["headers"]
    seats_full = openapi_paths()[WHEP]["post"]["responses"]["503"]
    assert "Retry-After" in seats_full["headers"]
    assert openapi_paths()[WHIP]["post"]["security"] == [{"streamKey": []}, {"staffSession": []}]


async def test_every_live_route_is_documented_and_every_documented_path_is_served(
    app: Starlette,
) -> None:
    served: set[tuple[str, str]] = set()
    for r in app.routes:
        path = getattr(r, "path", "")
        if not path.startswith(LIVE):
            continue
        assert isinstance(r, Route) and r.methods, path
        # Starlette answers HEAD wherever GET is served; the GET documents both.
        served |= {(path, m.lower()) for m in r.methods if m != "HEAD" or "GET" not in r.methods}
    documented = {(p, m) for p, item in openapi_paths().items() for m in item}
    assert served == documented
    ids = [op["operationId"] for item in openapi_paths().values() for op in item.values()]
    assert len(ids) == len(set(ids))


@dataclass
class Checker:
    """Calls a live route and checks the answer against the documented one."""

    client: httpx.AsyncClient
    doc: dict[str, Any]
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    async def __call__(
        self, method: str, template: str, expect: int, path: dict[str, str], **kw: Any
    ) -> httpx.Response:
        r = await self.client.request(method, template.format(**path), **kw)
        assert r.status_code == expect, r.text
        return self.check(r, template)

    def check(self, r: httpx.Response, template: str) -> httpx.Response:
        method = r.request.method.lower()
        answer = self.doc["paths"][template][method]["responses"].get(str(r.status_code))
        assert answer is not None, f"{method} {template} answered an undocumented {r.status_code}"
        self.seen.add((method, template, str(r.status_code)))
        for name, spec in answer.get("headers", {}).items():
            if name not in r.headers and spec.get("required") is False:
                continue  # documented as sometimes absent (segments' headers on a playlist)
            value = r.headers[name]
            assert jsonschema_rs.is_valid(spec["schema"], int(value) if value.isdigit() else value)
        if "content" not in answer:
            assert r.content == b""
            return r
        media = r.headers["content-type"].split(";")[0]
        assert media in answer["content"], (method, template, media)
        if media == "application/problem+json":
            schema = {**answer["content"][media]["schema"], "components": self.doc["components"]}
            errors = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(r.json())]
            assert errors == [], r.json()
        return r


async def make_room(client: httpx.AsyncClient, brand: Brand) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/rooms",
        json={"title": "新品直播"},
        headers=brand.key_headers,
    )
    assert r.status_code == 201, r.text
    room: dict[str, Any] = r.json()
    return room


class Refused(Exception):
    pass


async def test_real_answers_are_documented(
    app: Starlette, client: httpx.AsyncClient, brand: Brand, doc: dict[str, Any], clip: Path
) -> None:
    call = Checker(client, doc)
    live, idle, ended = [await make_room(client, brand) for _ in range(3)]
    key = {**SDP, **bearer(live["stream_key"])}
    idle_key = {**SDP, **bearer(idle["stream_key"])}
    r, i, e = {"room_id": live["id"]}, {"room_id": idle["id"]}, {"room_id": ended["id"]}
    nope = {"room_id": "room_nope"}

    # WHIP: refusals, in the order the route checks them.
    await call("OPTIONS", WHIP, 204, r)
    await call("POST", WHIP, 404, nope, headers=key, content="v=0")
    await call("POST", WHIP, 401, i, headers=SDP, content="v=0")
    await call("POST", WHIP, 401, i, headers={**SDP, "Authorization": "Basic eDp5"}, content="v=0")
    await call("POST", WHIP, 401, i, headers={**SDP, **bearer("lsk_wrong")}, content="v=0")
    owner = {"Cookie": f"la_session={brand.cookies['la_session']}"}
    await call("POST", WHIP, 403, i, headers={**SDP, **owner}, content="v=0")
    other = await sign_up(client)
    stranger = {"Cookie": f"la_session={other.cookies['la_session']}", **other.staff_headers}
    await call("POST", WHIP, 403, i, headers={**SDP, **stranger}, content="v=0")
    await client.post(f"/api/v1/rooms/{ended['id']}/end", headers=brand.key_headers)
    await call("POST", WHIP, 409, e, headers={**SDP, **bearer(ended["stream_key"])}, content="")
    text = {**idle_key, "Content-Type": "text/plain"}
    await call("POST", WHIP, 415, i, headers=text, content="v=0")
    await call("POST", WHIP, 413, i, headers=idle_key, content=b"v" * (65 * 1024))
    await call("POST", WHIP, 400, i, headers=idle_key, content="this is no sdp")
    await call("POST", WHIP, 400, i, headers=idle_key, content=b"\xff\xfe")
    await call("POST", WHEP, 404, nope, headers=SDP, content="v=0")
    await call("POST", WHEP, 409, i, headers=SDP, content="v=0")

    # A real publisher goes live; a second one is busy; one viewer takes the only seat.
    async def accept(offer: str) -> tuple[str, str]:
        answer = call.check(await client.post(WHIP.format(**r), headers=key, content=offer), WHIP)
        assert answer.status_code == 201, answer.text
        return answer.text, answer.headers["location"]

    async def busy(offer: str) -> tuple[str, str]:
        refused = await client.post(WHIP.format(**r), headers=key, content=offer)
        call.check(refused, WHIP)
        assert refused.status_code == 409 and refused.json()["code"] == "publisher_busy"
        raise Refused

    async def play(offer: str) -> tuple[str, str]:
        answer = call.check(await client.post(WHEP.format(**r), headers=SDP, content=offer), WHEP)
        if answer.status_code == 503:
            raise Refused(answer.json()["code"])
        assert answer.status_code == 201, answer.text
        return answer.text, answer.headers["location"]

    publisher = await publish(accept, clip, connect=False)
    try:
        session = {**r, "session_id": publisher.session_id.rsplit("/", 1)[-1]}
        with pytest.raises(Refused):
            await publish(busy, clip, connect=False)
        await call("OPTIONS", WHEP, 204, r)
        await call("POST", WHEP, 415, r, headers={"Content-Type": "text/plain"}, content="v=0")
        await call("POST", WHEP, 413, r, headers=SDP, content=b"v" * (65 * 1024))
        await call("POST", WHEP, 400, r, headers=SDP, content="this is no sdp")
        viewer = await view(play, connect=False)
        try:
            with pytest.raises(Refused, match="seats_full"):
                await view(play, connect=False)
            seat = {**r, "seat_id": viewer.seat_id.rsplit("/", 1)[-1]}
            await call("OPTIONS", WHEP_SEAT, 204, seat)
            await call("PATCH", WHEP_SEAT, 405, seat)
            await call("DELETE", WHEP_SEAT, 200, seat)
            await call("DELETE", WHEP_SEAT, 404, seat)
        finally:
            await viewer.close()
        await call("OPTIONS", WHIP_SESSION, 204, session)
        await call("PATCH", WHIP_SESSION, 405, session, headers=key)
        await call("DELETE", WHIP_SESSION, 401, session)
        await call("DELETE", WHIP_SESSION, 403, session, headers=owner)
        await call("DELETE", WHIP_SESSION, 404, {**session, "room_id": "room_nope"}, headers=key)
        await call("DELETE", WHIP_SESSION, 200, session, headers=key)
        await call("DELETE", WHIP_SESSION, 404, session, headers=key)
    finally:
        await publisher.close()

    # HLS, from files as the live engine writes them (a room that never published).
    services: Services = app.state.services
    hls = services.live.blobs.path(f"live/{idle['id']}/hls")
    hls.mkdir(parents=True, exist_ok=True)
    (hls / "index.m3u8").write_text("#EXTM3U\n#EXTINF:1.0,\nseg-1.ts\n")
    (hls / "seg-1.ts").write_bytes(b"\x47" * 188)
    (hls / "seg-1.m4s").write_bytes(b"\0" * 64)
    f = {**i, "file": "index.m3u8"}
    playlist = await call("GET", HLS, 200, f)
    assert playlist.headers["cache-control"] == "no-cache"
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    segment = await call("GET", HLS, 200, {**i, "file": "seg-1.ts"})
    assert segment.headers["content-type"] == "video/mp2t"
    assert segment.headers["cache-control"] == "public, max-age=3600"
    fmp4 = await call("GET", HLS, 200, {**i, "file": "seg-1.m4s"})
    assert fmp4.headers["content-type"] == "video/mp4"
    await call("GET", HLS, 206, {**i, "file": "seg-1.ts"}, headers={"Range": "bytes=0-9"})
    await call("GET", HLS, 416, {**i, "file": "seg-1.ts"}, headers={"Range": "bytes=999-"})
    await call("GET", HLS, 400, {**i, "file": "seg-1.ts"}, headers={"Range": "bytes=x"})
    await call("GET", HLS, 404, {**i, "file": "seg-2.ts"})
    await call("GET", HLS, 404, {**i, "file": "notes.txt"})
    await call("GET", HLS, 404, {**nope, "file": "index.m3u8"})

    successes = {
        (method, path, status)
        for path, item in openapi_paths().items()
        for method, op in item.items()
        for status in op["responses"]
        if status.startswith("2")
    }
    assert successes <= call.seen
    # Every documented refusal but the server's own fault was seen too.
    refusals = {
        (method, path, status)
        for path, item in openapi_paths().items()
        for method, op in item.items()
        for status in op["responses"]
        if not status.startswith("2")
    }
    assert refusals - call.seen == {("post", WHIP, "500")}
