"""The baseline: a raw ASGI app that answers every request with one fixed small JSON body.

It is served exactly as ``lifeaccount serve`` serves the real app (``webapp/cli.py``): one
process, a socket bound here and handed to ``uvicorn.Server.run``, the same ``uvicorn.Config``
options, so the default loop and HTTP implementations (uvloop, httptools) and the access log
are the same. What is left is uvicorn's own cost per request, which the real figures are
divided by.

    python -m bench.baseline --port 0
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence

from starlette.types import Receive, Scope, Send

from webapp.cli import run_server

BODY = b'{"status":"ok"}'
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BODY})


def main(argv: Sequence[str] | None = None) -> int:

    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log-level", default="info", help="as lifeaccount's default")
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    print(f"baseline listening on http://{host}:{port}", flush=True)
    # The same server set-up as `lifeaccount serve`, so only the app differs.
    return run_server(app, sock, log_level=args.log_level)


if __name__ == "__main__":
    sys.exit(main())
