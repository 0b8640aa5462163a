"""The browser libraries the pages load, served from ``node_modules`` by an allow-list.

``package.json`` pins them and the README's commands install them (``npm ci`` in
``scripts/venv.sh``); nothing is vendored into the repository. Only the files named here are
served, under ``/vendor/<package>@<installed version>/<file>``: the version in the URL lets an
answer be cached for a year (``immutable``) and still change when the lock moves. Without
``node_modules`` the pages still render (players fall back to the MP4 file) and these URLs
answer a 503 problem telling the operator what to run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from webapp.problems import bad_request, problem_response

NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"
PREFIX = "/vendor"
CACHE = "public, max-age=31536000, immutable"
MISSING = "missing"


@dataclass(frozen=True)
class Library:
    """One npm package and the files of it that pages may load (its ``dist`` folder)."""

    package: str
    folder: str
    files: frozenset[str]
    main: str  # the file a page's <script> names


LIBRARIES = {
    # hls.js's light build: HLS over MSE without subtitles, alternate audio or DRM, which
    # this platform's single-audio ladders never use (about half the size of hls.min.js).
    "hls.js": Library(
        "hls.js",
        "dist",
        frozenset({"hls.light.min.js", "hls.light.min.js.map"}),
        "hls.light.min.js",
    ),
    "tus-js-client": Library(
        "tus-js-client", "dist", frozenset({"tus.min.js", "tus.min.js.map"}), "tus.min.js"
    ),
}


class Vendor:
    """The installed versions, read once at start-up, and the route that serves the files."""

    def __init__(self, root: Path = NODE_MODULES) -> None:
        self.root = root
        self.versions = {name: _installed_version(root / name) for name in LIBRARIES}

    def url(self, name: str) -> str:
        """The URL of a library's main file, for a page's ``<script src>``."""
        library = LIBRARIES[name]
        return f"{PREFIX}/{name}@{self.versions[name] or MISSING}/{library.main}"

    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in LIBRARIES}

    async def serve(self, request: Request) -> Response:
        name, _, version = request.path_params["spec"].rpartition("@")
        file = request.path_params["file"]
        library = LIBRARIES.get(name)
        if library is None or file not in library.files:
            return _not_found(request)
        installed = self.versions[name]
        if installed is None:
            problem = bad_request(
                "vendor_not_installed",
                f"the browser library {name} is not installed on this server: run scripts/run "
                "(or `npm ci` in the project folder) and restart the server",
                status=503,
            )
            problem.title = "Browser library not installed"
            return problem_response(problem, request.url.path)
        if version != installed:
            # An old page asking for the version before an upgrade: its URL names a file
            # that is no longer here.
            return _not_found(request)
        path = self.root / name / library.folder / file
        if not path.is_file():
            return _not_found(request)
        media_type = "application/json" if file.endswith(".map") else "text/javascript"
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": CACHE})

    def routes(self) -> list[Route]:
        return [Route(PREFIX + "/{spec}/{file}", self.serve, methods=["GET", "HEAD"])]


def _installed_version(folder: Path) -> str | None:
    try:
        manifest = json.loads((folder / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = manifest.get("version") if isinstance(manifest, dict) else None
    return version if isinstance(version, str) and version else None


def _not_found(request: Request) -> Response:
    problem = bad_request("not_found", f"nothing is served at {request.url.path}", status=404)
    return problem_response(problem, request.url.path)
