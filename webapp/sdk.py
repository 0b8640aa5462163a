"""The widget SDK's bundle (DESIGN §7), served to every origin.

``components/build.mjs`` bundles ``components/sdk`` into ``components/dist``: one ES module
named by the hash of its content, and a manifest with its SRI hash and sizes. The stable URL
``/sdk/lifeaccount.js`` answers the current bundle (cached for minutes, so a deployment's new
build reaches pages soon); ``/sdk/lifeaccount.<hash>.js`` answers that exact build — the
current one or one of the last ten, which the build keeps — cached for a year
(``immutable``); ``/sdk/lifeaccount.json`` says which one is current, with its ``integrity``
for a ``<script integrity>``. All three carry ``Access-Control-Allow-Origin: *``:
the bundle holds nothing private, and a module script from another origin needs the grant.
Without a build they answer 503 saying what to run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from webapp.api import base_url
from webapp.problems import bad_request, problem_response

DIST = Path(__file__).resolve().parent.parent / "components" / "dist"
STABLE_CACHE = "public, max-age=300"
HASHED_CACHE = "public, max-age=31536000, immutable"
OPEN = {"access-control-allow-origin": "*", "cross-origin-resource-policy": "cross-origin"}
JS = "text/javascript; charset=utf-8"
BUILD = re.compile(r"lifeaccount\.[0-9a-f]{16}\.js")


@dataclass(frozen=True)
class Build:
    file: str
    integrity: str
    size: int
    gzip_size: int
    code: bytes


class Bundle:
    """The current build, read again when its manifest changes (a rebuild while running)."""

    def __init__(self, folder: Path = DIST) -> None:
        self.folder = folder
        self._seen: tuple[float, Build] | None = None

    def current(self) -> Build | None:
        manifest = self.folder / "manifest.json"
        try:
            changed = manifest.stat().st_mtime
        except FileNotFoundError:
            return None
        if self._seen is None or self._seen[0] != changed:
            facts: dict[str, Any] = json.loads(manifest.read_text())
            code = (self.folder / facts["file"]).read_bytes()
            self._seen = (
                changed,
                Build(facts["file"], facts["integrity"], facts["bytes"], facts["gzip_bytes"], code),
            )
        return self._seen[1]

    def build(self, name: str) -> bytes | None:
        """The bytes of a build this folder still holds (the current one, or one of the
        last few that pages may have pinned); None for any other name."""
        if not BUILD.fullmatch(name):
            return None
        current = self.current()
        if current is not None and current.file == name:
            return current.code
        try:
            return (self.folder / name).read_bytes()
        except FileNotFoundError:
            return None


def routes(bundle: Bundle) -> list[Route]:
    def missing(request: Request) -> Response:
        problem = bad_request(
            "sdk_not_built",
            "the widget bundle is not built here: run scripts/run (or npm ci && npm run build:sdk)",
            status=503,
        )
        return problem_response(problem, request.url.path)

    async def stable(request: Request) -> Response:
        build = bundle.current()
        if build is None:
            return missing(request)
        headers = {**OPEN, "cache-control": STABLE_CACHE, "etag": f'"{build.file}"'}
        return Response(build.code, media_type=JS, headers=headers)

    async def hashed(request: Request) -> Response:
        code = bundle.build(request.path_params["name"])
        if code is None:
            problem = bad_request(
                "not_found",
                "no such build here; /sdk/lifeaccount.json names the current one",
                status=404,
            )
            return problem_response(problem, request.url.path)
        return Response(code, media_type=JS, headers={**OPEN, "cache-control": HASHED_CACHE})

    async def manifest(request: Request) -> Response:
        build = bundle.current()
        if build is None:
            return missing(request)
        base = base_url(request, request.app.state.services.settings.base_url)
        body = {
            "url": f"{base}/sdk/{build.file}",
            "stable_url": f"{base}/sdk/lifeaccount.js",
            "integrity": build.integrity,
            "bytes": build.size,
            "gzip_bytes": build.gzip_size,
        }
        return JSONResponse(body, headers={**OPEN, "cache-control": STABLE_CACHE})

    return [
        Route("/sdk/lifeaccount.js", stable, methods=["GET"]),
        Route("/sdk/lifeaccount.json", manifest, methods=["GET"]),
        Route("/sdk/{name:str}", hashed, methods=["GET"]),
    ]
