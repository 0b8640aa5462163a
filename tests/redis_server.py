"""A real Redis for the tests of the Redis broker: Debian's ``redis-server`` (scripts/test
installs it), in a temporary folder, listening on a Unix socket only (no TCP port to collide
with), nothing saved to disk. Ready when it answers PING."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

READY_S = 10.0


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """Run a Redis server in ``folder`` for the block; its URL (``unix://…``)."""
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is missing: scripts/test installs it (apt-get)"
    sock = folder / "redis.sock"
    process = subprocess.Popen(
        [
            binary,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"unix://{sock}"
    try:
        deadline = time.monotonic() + READY_S
        client = redis.Redis.from_url(url)
        while True:
            assert process.poll() is None, "redis-server exited at start"
            try:
                client.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                assert time.monotonic() < deadline, f"redis-server not ready in {READY_S} s"
                time.sleep(0.02)  # the poll period while the server starts
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
