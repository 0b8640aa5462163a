"""``lifeaccount serve | check``: the command line (DESIGN §9)."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp

from media.tools import check_ffmpeg
from store.engines import EngineURLError, check_broker, check_store, open_broker, open_store
from webapp.settings import Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifeaccount",
        description="A self-hostable platform for brand life accounts.",
        epilog="Every flag can also be set as a LIFEACCOUNT_* variable (e.g. LIFEACCOUNT_PORT); "
        "flags win.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", dest="data_dir", help="where data lives (default ./data)")
        p.add_argument("--store", help="sqlite:///FILE (default sqlite:///lifeaccount.db)")
        p.add_argument("--broker", help="memory (default)")

    serve = sub.add_parser("serve", help="run the whole platform in one process")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--base-url", dest="base_url", help="public URL, e.g. https://la.example")
    common(serve)
    check = sub.add_parser("check", help="verify ffmpeg, the store and the broker")
    common(check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if k != "command"}
    try:
        settings = Settings.load(flags)
    except SettingsError as exc:
        print(f"lifeaccount: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        return asyncio.run(_check(settings))
    return _serve(settings)


async def _check(settings: Settings) -> int:
    failed = False
    try:
        tool = await check_ffmpeg()
        print(f"ffmpeg  ok    {tool.path} ({tool.version})")
    except (RuntimeError, OSError) as exc:
        failed = True
        print(f"ffmpeg  FAIL  {exc}")
    try:
        store = open_store(
            settings.store, settings.data_dir, synchronous=settings.sqlite_synchronous
        )
        await store.ping()
        await store.close()
        print(f"store   ok    {settings.store} in {settings.data_dir}")
    except Exception as exc:  # any failure of the engine is what check reports
        failed = True
        print(f"store   FAIL  {exc}")
    try:
        broker = open_broker(settings.broker)
        await broker.ping()
        await broker.close()
        print(f"broker  ok    {settings.broker}")
    except Exception as exc:
        failed = True
        print(f"broker  FAIL  {exc}")
    return 1 if failed else 0


def _serve(settings: Settings) -> int:
    from webapp.app import create_app

    # Everything a start-up could refuse is checked here, where it can be said plainly;
    # inside the ASGI lifespan it would only be a traceback.
    try:
        settings = settings.with_secret()
        check_store(settings.store, settings.data_dir, synchronous=settings.sqlite_synchronous)
        check_broker(settings.broker)
    except (SettingsError, EngineURLError) as exc:
        print(f"lifeaccount: {exc}", file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        print(
            f"lifeaccount: cannot listen on {settings.host}:{settings.port}: {exc.strerror}; "
            "pick another --port",
            file=sys.stderr,
        )
        return 1
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"lifeaccount listening on http://{shown}:{port} (data in {settings.data_dir})", flush=True
    )
    return run_server(create_app(settings), sock, log_level=settings.log_level)


def run_server(app: ASGIApp, sock: socket.socket, *, log_level: str) -> int:
    """Serve ``app`` on a bound socket as `lifeaccount serve` does (bench/ uses it too, so
    its baseline differs from the platform only in the app)."""
    import uvicorn

    config = uvicorn.Config(
        app, log_level=log_level, proxy_headers=True, server_header=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
