"""End-to-end support: the real ``lifeaccount serve`` in a child process, and API helpers.

The server is the installed console script, started on port 0 with a temporary data dir; it
announces its port on stdout (``webapp/cli.py``) and is ready once ``/healthz`` answers 200.
Password hashing is tuned down through the same ``LIFEACCOUNT_*`` variables an operator uses.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"  # Debian's, never one `playwright install` downloads
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

LIFEACCOUNT = Path(sys.executable).parent / "lifeaccount"
FAST_HASHING = {
    "LIFEACCOUNT_ARGON2_MEMORY_KIB": "1024",
    "LIFEACCOUNT_ARGON2_TIME_COST": "1",
    "LIFEACCOUNT_ARGON2_PARALLELISM": "1",
}
LISTENING = re.compile(r"lifeaccount listening on (http://127\.0\.0\.1:\d+) \(")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
SHOTS = Path("/tmp/e2e-shots")
PASSWORD = "correct horse battery"


def lifeaccount_env() -> dict[str, str]:
    """The child's environment: ours, minus stray ``LIFEACCOUNT_*`` settings, plus fast hashing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFEACCOUNT_")}
    env.update(FAST_HASHING)
    # Every browser test signs its own brands up, all from 127.0.0.1, on one server.
    env["LIFEACCOUNT_SIGNUPS_PER_HOUR"] = "1000"
    return env


class Server:
    """One ``lifeaccount serve`` child process.

    A thread drains its stdout for the whole run: uvicorn's access log goes there, and a full
    pipe would block the server.
    """

    def __init__(self, data_dir: Path, log_path: Path, process: subprocess.Popen[str]) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.process = process
        self.base_url = ""
        self.stdout: list[str] = []
        self._announced: queue.Queue[str | None] = queue.Queue()
        self._drain = threading.Thread(target=self._read_stdout, daemon=True)
        self._drain.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        announced = False
        for line in self.process.stdout:
            self.stdout.append(line)
            if not announced and (match := LISTENING.search(line)):
                announced = True
                self._announced.put(match.group(1))
        self._announced.put(None)  # EOF: the child exited

    def wait_announced(self, timeout: float) -> str | None:
        """The base URL from the "listening on" line, or None if it did not come in time."""
        try:
            return self._announced.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    def log(self) -> str:
        out = "".join(self.stdout)
        err = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- stdout\n{out}--- stderr\n{err}"

    def stop(self) -> int:
        """Ask for a graceful shutdown (SIGTERM), wait for it, and return the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        self._drain.join(STOP_TIMEOUT_S)
        if self.process.stdout is not None and not self._drain.is_alive():
            self.process.stdout.close()
        return self.process.returncode


def _wait_healthy(server: Server, deadline: float) -> None:
    """Poll ``GET /healthz`` (bounded) until it answers 200."""
    last = "no answer"
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                break
            try:
                r = client.get("/healthz")
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text}"
            time.sleep(0.05)  # poll interval, not synchronisation: the loop checks the answer
    server.stop()
    raise AssertionError(f"/healthz never answered 200 (last: {last})\n{server.log()}")


def start_server(data_dir: Path, env: dict[str, str] | None = None) -> Server:
    """Start ``lifeaccount serve --port 0`` on ``data_dir`` and wait until it is healthy;
    ``env`` adds settings (``LIFEACCOUNT_*``) to the child's environment."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-{uuid.uuid4().hex[:6]}.stderr.log"
    with log_path.open("w") as err:
        process = subprocess.Popen(
            [
                str(LIFEACCOUNT),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(data_dir),
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**lifeaccount_env(), **(env or {})},
        )
    server = Server(data_dir, log_path, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    base_url = server.wait_announced(deadline - time.monotonic())
    if base_url is None:
        server.stop()
        raise AssertionError(f"lifeaccount serve never announced its port\n{server.log()}")
    server.base_url = base_url
    _wait_healthy(server, deadline)
    return server


class Servers:
    """Starts extra servers for one test (e.g. a restart) and stops them afterwards."""

    def __init__(self) -> None:
        self.started: list[Server] = []

    def start(self, data_dir: Path, env: dict[str, str] | None = None) -> Server:
        running = start_server(data_dir, env)
        self.started.append(running)
        return running

    def log(self) -> str:
        return "\n".join(s.log() for s in self.started)


def screenshot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@dataclass(frozen=True)
class Owner:
    """An account signed up through the API, with its first API key and the owner's console
    session (the keys, staff and invitation routes take that session, never a key)."""

    account_id: str
    handle: str
    name: str
    email: str
    password: str
    api_key: str
    session: str
    csrf_token: str

    @property
    def key_headers(self) -> dict[str, str]:
        return bearer(self.api_key)

    @property
    def session_headers(self) -> dict[str, str]:
        """The session cookie and its CSRF token, as a script on a console page sends them."""
        return {"Cookie": f"la_session={self.session}", "X-CSRF-Token": self.csrf_token}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_handle() -> str:
    return f"e2e{uuid.uuid4().hex[:10]}"


def sign_up_api(client: httpx.Client, handle: str | None = None) -> Owner:
    handle = handle or new_handle()
    email = f"owner@{handle}.example"
    name = f"Brand {handle}"
    r = client.post(
        "/api/v1/signup",
        json={"email": email, "password": PASSWORD, "account": {"name": name, "handle": handle}},
    )
    assert r.status_code == 201, r.text
    session = r.cookies["la_session"]
    client.cookies.clear()  # each request names its credential; none rides along unasked
    body = r.json()
    return Owner(
        body["account"]["id"],
        handle,
        name,
        email,
        PASSWORD,
        body["api_key"],
        session,
        body["csrf_token"],
    )


def mint_fan(client: httpx.Client, account_id: str, api_key: str, external_id: str) -> Any:
    r = client.post(
        f"/api/v1/accounts/{account_id}/fan-tokens",
        json={"external_id": external_id, "name": f"fan {external_id}"},
        headers=bearer(api_key),
    )
    assert r.status_code == 201, r.text
    return r.json()


def follow(client: httpx.Client, account_id: str, fan_token: str) -> Any:
    r = client.post(f"/api/v1/accounts/{account_id}/follow", headers=bearer(fan_token))
    assert r.status_code == 200, r.text
    return r.json()


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make_coupon(client: httpx.Client, owner: Owner, **changes: Any) -> Any:
    """A coupon of the owner's account, claimable from an hour ago for a day."""
    now = datetime.now(UTC)
    body = {
        "title": "满100减20",
        "stock": 5,
        "per_fan_limit": 1,
        "valid_from": stamp(now - timedelta(hours=1)),
        "valid_until": stamp(now + timedelta(days=1)),
        **changes,
    }
    r = client.post(
        f"/api/v1/accounts/{owner.account_id}/coupons", json=body, headers=owner.key_headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def publish_post(client: httpx.Client, owner: Owner, text: str) -> str:
    """A published post of the owner's account: its id."""
    key = owner.key_headers
    made = client.post(
        f"/api/v1/accounts/{owner.account_id}/contents",
        json={"kind": "post", "text": text},
        headers=key,
    )
    assert made.status_code == 201, made.text
    content_id: str = made.json()["id"]
    published = client.post(f"/api/v1/contents/{content_id}/publish", json={}, headers=key)
    assert published.json()["status"] == "published", published.text
    return content_id


def fund_budget(client: httpx.Client, owner: Owner, points: int) -> None:
    """Points into the account's budget, for red packets."""
    r = client.post(
        f"/api/v1/accounts/{owner.account_id}/budget/credits",
        json={"points": points, "reason": "packets"},
        headers={**owner.key_headers, "Idempotency-Key": f"budget-{uuid.uuid4().hex}"},
    )
    assert r.is_success, r.text
