"""Another origin for the widget tests: a brand's own web page, served by a plain HTTP
server on another port of this machine, that embeds our widgets."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


class Origin:
    """A folder served at ``url`` (``http://127.0.0.1:<port>``); ``page`` writes a page."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        self.url = url

    def page(self, name: str, html: str) -> str:
        (self.folder / name).write_text(html, encoding="utf-8")
        return f"{self.url}/{name}"


@contextmanager
def serve_origin(folder: Path) -> Iterator[Origin]:
    folder.mkdir(parents=True, exist_ok=True)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Origin(folder, f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()
