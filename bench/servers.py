"""The servers under load, each a child process on 127.0.0.1, port 0.

Both announce their port on stdout the way ``lifeaccount serve`` does (``webapp/cli.py``) and are
ready once ``GET /healthz`` answers 200. Their output goes to files, not pipes: uvicorn writes
an access-log line per request, and a pipe nobody drains would stall the server.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path
from types import TracebackType

from bench.httpload import fetch

HOST = "127.0.0.1"
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
ROOT = Path(__file__).resolve().parent.parent
# Only to make the one set-up sign-up fast; no measured call hashes a password.
FAST_HASHING = {
    "LIFEACCOUNT_ARGON2_MEMORY_KIB": "1024",
    "LIFEACCOUNT_ARGON2_TIME_COST": "1",
    "LIFEACCOUNT_ARGON2_PARALLELISM": "1",
}


def lifeaccount_command(python: Path, data_dir: Path) -> list[str]:
    """``lifeaccount serve`` as installed next to this interpreter."""
    return [
        str(python.parent / "lifeaccount"),
        "serve",
        "--host",
        HOST,
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
    ]


def baseline_command(python: Path) -> list[str]:
    return [str(python), "-m", "bench.baseline", "--host", HOST, "--port", "0"]


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """Our environment minus stray ``LIFEACCOUNT_*`` settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFEACCOUNT_")}
    env.update(extra)
    return env


def get_request(path: str, port: int, headers: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{headers}\r\n".encode()


class ServerProcess:
    """One server child: ``async with`` starts it and waits until healthy; exit always stops it."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> ServerProcess:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self.stdout_path.parent.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, stdout=out, stderr=err, env=self.env, cwd=ROOT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        self.port = await self._announced_port(deadline)
        await self._wait_healthy(deadline)

    async def _announced_port(self, deadline: float) -> int:
        while time.monotonic() < deadline and self._running():
            match = LISTENING.search(self.stdout_path.read_text(errors="replace"))
            if match:
                return int(match.group(1))
            await asyncio.sleep(0.05)  # poll interval; the loop checks the file itself
        raise RuntimeError(f"{self.name} never announced its port\n{self.log_tail()}")

    async def _wait_healthy(self, deadline: float) -> None:
        last = "no answer"
        while time.monotonic() < deadline and self._running():
            try:
                status, body = await fetch(HOST, self.port, get_request("/healthz", self.port), 2.0)
            except (OSError, TimeoutError) as exc:
                last = repr(exc)
            else:
                if status == 200:
                    return
                last = f"{status} {body.decode(errors='replace')}"
            await asyncio.sleep(0.05)  # poll interval; the loop checks the answer itself
        raise RuntimeError(f"{self.name}: /healthz never answered 200 ({last})\n{self.log_tail()}")

    def _running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process, all its threads (Linux ``/proc``)."""
        assert self.process is not None
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state) of proc(5); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it lingers."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()

    def log_tail(self, lines: int = 20) -> str:
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            text = path.read_text(errors="replace") if path.exists() else ""
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"--- {path.name}\n{tail}")
        return "\n".join(parts)
