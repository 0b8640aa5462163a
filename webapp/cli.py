"""``lifeaccount serve | demo | worker | check | words | verify``: the command line (DESIGN §9)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp

from accounts.accounts import get_account
from accounts.errors import DomainError, NotFound
from content import sensitive
from live import certificates
from media.jobs import JobQueue, default_owner
from media.tools import check_ffmpeg
from media.worker import Worker
from store.clock import utc_now
from store.engines import EngineURLError, check_broker, check_store, open_broker, open_store
from webapp import scheduler
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
        p.add_argument(
            "--broker",
            help="memory (default: one process) or redis://host:port/db (processes share rooms)",
        )

    serve = sub.add_parser("serve", help="run the whole platform in one process")
    demo = sub.add_parser(
        "demo", help="serve, after seeding a demo brand (the widget gallery works on it)"
    )
    for p in (serve, demo):
        p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one)")
        p.add_argument("--base-url", dest="base_url", help="public URL, e.g. https://la.example")
        p.add_argument(
            "--channel-port",
            dest="channel_port",
            type=int,
            help="the room channel's websocket port (default: the port + 1)",
        )
        common(p)
    worker = sub.add_parser("worker", help="run a media worker process sharing the store")
    worker.add_argument("--data-dir", dest="data_dir", help="where data lives (default ./data)")
    worker.add_argument("--store", help="sqlite:///FILE (default sqlite:///lifeaccount.db)")
    worker.add_argument(
        "--concurrency", dest="media_concurrency", type=int, help="jobs run at once (default 1)"
    )
    check = sub.add_parser("check", help="verify ffmpeg, the store and the broker")
    common(check)
    words = sub.add_parser("words", help="change or show the sensitive-word lists")
    actions = words.add_subparsers(dest="action", required=True)
    for action, told in (("add", "add to"), ("remove", "remove from"), ("list", "print")):
        p = actions.add_parser(action, help=f"{told} the global list, or an account's")
        if action != "list":
            p.add_argument("words", nargs="+", metavar="WORD")
        p.add_argument("--account", dest="account_id", help="an account's list, not the global")
        p.add_argument("--data-dir", dest="data_dir", help="where data lives (default ./data)")
        p.add_argument("--store", help="sqlite:///FILE (default sqlite:///lifeaccount.db)")
    verify = sub.add_parser(
        "verify", help="check a collectible's certificate offline against a deployment's key"
    )
    verify.add_argument("certificate", help="the certificate (<payload>.<signature>)")
    verify.add_argument(
        "--key",
        required=True,
        help="the deployment's public key (GET /api/v1/certificates/public-key)",
    )
    return parser


def _verify(certificate: str, key: str) -> int:
    """Print the claim a certificate carries (exit 0), or why it does not hold (exit 1)."""
    try:
        claim = certificates.verify(certificate, key)
    except certificates.BadCertificate as exc:
        print(f"lifeaccount: NOT VALID: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(claim, ensure_ascii=False, indent=2, sort_keys=True))
    edition = f"edition {claim.get('edition')} of {claim.get('of')}"
    print(f"valid: {claim.get('name')} {edition}, held by {claim.get('fan_id')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "verify":  # offline: no settings, no data
        return _verify(args.certificate, args.key)
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if k != "command"}
    if args.command == "demo":
        flags["demo"] = True
    try:
        settings = Settings.load(flags)
    except SettingsError as exc:
        print(f"lifeaccount: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        return asyncio.run(_check(settings))
    if args.command == "worker":
        return _worker(settings)
    if args.command == "words":
        listed = getattr(args, "words", [])
        return asyncio.run(_words(settings, args.action, args.account_id, listed))
    return _serve(settings)


def _worker(settings: Settings) -> int:
    try:
        check_store(settings.store, settings.data_dir, synchronous=settings.sqlite_synchronous)
        if settings.media_concurrency < 1:
            raise SettingsError("--concurrency (LIFEACCOUNT_MEDIA_CONCURRENCY) must be at least 1")
        _check_schedule(settings)
    except (SettingsError, EngineURLError) as exc:
        print(f"lifeaccount: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(_work(settings))


async def _work(settings: Settings) -> int:
    try:
        await check_ffmpeg()
    except (RuntimeError, OSError) as exc:
        # Without ffmpeg every transcode it claimed would fail: better not to claim any.
        print(f"lifeaccount worker: {exc}", file=sys.stderr)
        return 2
    # This process writes the SQLite file that `serve` writes too. Its connections run on
    # threads, so waiting out the other process's write lock (the busy timeout allows 10 s)
    # blocks a thread rather than the event loop and its heartbeats.
    store = open_store(
        settings.store, settings.data_dir, synchronous=settings.sqlite_synchronous, threaded=True
    )
    try:
        from webapp.app import all_indexes, image_pipeline, video_pipeline

        await store.ensure_indexes(all_indexes())
        queue = JobQueue(store, owner=default_owner(), now=utc_now)

        # A worker claims only the kinds it has handlers for; the rest wait for another.
        handlers = {
            **video_pipeline(store, settings, utc_now).handlers(),
            **image_pipeline(store, settings, utc_now).handlers(),
        }
        worker = Worker(queue, handlers, concurrency=settings.media_concurrency)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        kinds = ", ".join(sorted(handlers)) or "none registered"
        print(
            f"lifeaccount worker {queue.owner} running: kinds {kinds}, "
            f"concurrency {settings.media_concurrency}, scheduled publishing every "
            f"{settings.schedule_every_s} s (data in {settings.data_dir})",
            flush=True,
        )
        # Scheduled contents go out on time even while no `serve` runs.
        await asyncio.gather(
            worker.run_forever(stop),
            scheduler.run_forever(
                store,
                utc_now,
                every_s=settings.schedule_every_s,
                stop=stop,
                # Rooms left by their publisher end even while no `serve` runs; a `serve` that
                # does closes their media at its next tick (LiveRooms.settle).
                live_grace_s=settings.live_grace_s,
            ),
        )
    finally:
        await store.close()
    print("lifeaccount worker stopped", flush=True)
    return 0


def _check_schedule(settings: Settings) -> None:
    if settings.schedule_every_s < 1:
        raise SettingsError("LIFEACCOUNT_SCHEDULE_EVERY_S must be at least 1")


async def _words(settings: Settings, action: str, account_id: str | None, words: list[str]) -> int:
    """``lifeaccount words``: the operator's hand on the lists, the global one above all,
    which no HTTP route changes. A running server sees a change at its next review (the
    lists carry version stamps)."""
    try:
        store = open_store(
            settings.store, settings.data_dir, synchronous=settings.sqlite_synchronous
        )
    except EngineURLError as exc:
        print(f"lifeaccount: {exc}", file=sys.stderr)
        return 2
    try:
        await store.ensure_indexes(sensitive.INDEXES)
        if account_id is not None:
            await get_account(store, account_id)
        which = f"account {account_id}'s list" if account_id else "the global list"
        if action == "add":
            added = await sensitive.add_words(
                store, account_id=account_id, words=words, now=utc_now(), field="WORD"
            )
            print(f"added {added} of {len(words)} to {which}")
        elif action == "remove":
            removed = await sensitive.remove_words(
                store, account_id=account_id, words=words, field="WORD"
            )
            print(f"removed {removed} of {len(words)} from {which}")
        else:
            for word in await sensitive.list_words(store, account_id=account_id):
                print(word)
    except DomainError as exc:
        print(f"lifeaccount words: {exc.detail}", file=sys.stderr)
        return 1 if isinstance(exc, NotFound) else 2
    finally:
        await store.close()
    return 0


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
        _check_schedule(settings)
        settings.ice()
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
    # The room channel's websocket gateway: its own listener, bound now so a taken port is
    # said plainly rather than in a traceback from inside the lifespan. By default it is the
    # HTTP port + 1; with --port 0 (any free port) it takes any free port too, as "the next
    # port" may well be someone else's.
    wanted = settings.channel_port
    if wanted < 0:
        wanted = settings.port + 1 if settings.port else 0
    channel = socket.socket(sock.family)
    channel.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        channel.bind((settings.host, wanted))
    except OSError as exc:
        print(
            f"lifeaccount: cannot listen for the room channel on {settings.host}:{wanted}: "
            f"{exc.strerror}; pick another --channel-port (LIFEACCOUNT_CHANNEL_PORT)",
            file=sys.stderr,
        )
        return 1
    channel_port = channel.getsockname()[1]
    print(
        f"lifeaccount listening on http://{shown}:{port} (data in {settings.data_dir}); "
        f"room channel on ws://{shown}:{channel_port}",
        flush=True,
    )
    app = create_app(settings, channel_socket=channel)
    return run_server(app, sock, log_level=settings.log_level)


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
