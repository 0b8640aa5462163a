"""The command line: ``lifeaccount check``, and data that survives a restart of ``serve``."""

from __future__ import annotations

import re
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import (
    LIFEACCOUNT,
    Servers,
    bearer,
    follow,
    lifeaccount_env,
    mint_fan,
    sign_up_api,
)

pytestmark = pytest.mark.e2e


def test_check_reports_ffmpeg_store_and_broker_ok(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(LIFEACCOUNT), "check", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env=lifeaccount_env(),
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for part in ("ffmpeg", "store", "broker"):
        assert re.search(rf"^{part}\s+ok\b", done.stdout, re.MULTILINE), done.stdout
    assert "FAIL" not in done.stdout


def test_data_survives_a_restart(tmp_path: Path, servers: Servers) -> None:
    data_dir = tmp_path / "data"
    first = servers.start(data_dir)
    credit_key = str(uuid.uuid4())
    with httpx.Client(base_url=first.base_url, timeout=10.0) as api:
        owner = sign_up_api(api)
        fan = mint_fan(api, owner.account_id, owner.api_key, "loyal-1")
        follow(api, owner.account_id, fan["token"])
        r = api.post(
            f"/api/v1/accounts/{owner.account_id}/wallets/{fan['fan_id']}/credits",
            json={"points": 100, "reason": "welcome gift"},
            headers={**owner.key_headers, "Idempotency-Key": credit_key},
        )
        assert r.status_code == 201, r.text
        assert r.json()["balance"] == 100
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete, so the status is
    # 0 or -SIGTERM; what matters is that the lifespan closed the store cleanly.
    assert first.stop() in (0, -signal.SIGTERM), first.log()
    assert "Application shutdown complete" in first.log()

    second = servers.start(data_dir)
    with httpx.Client(base_url=second.base_url, timeout=10.0) as api:
        r = api.get(f"/api/v1/accounts/{owner.account_id}")
        assert r.status_code == 200, r.text
        assert r.json()["handle"] == owner.handle
        assert r.json()["follower_count"] == 1
        page = api.get(f"/@{owner.handle}")
        assert page.status_code == 200
        assert re.search(r'id="follower-count">1</strong>\s+follower\b', page.text), page.text

        r = api.get(
            f"/api/v1/accounts/{owner.account_id}/wallets/{fan['fan_id']}",
            headers=owner.key_headers,
        )
        assert r.status_code == 200, r.text
        assert r.json()["balance"] == 100
        # The fan token was signed with the secret kept in the data dir: it still verifies.
        r = api.get("/api/v1/me/wallets", headers=bearer(fan["token"]))
        assert r.status_code == 200, r.text
        assert r.json()["items"] == [{"account_id": owner.account_id, "balance": 100}]
        # A retry after the restart is recognised: the same answer, no second grant.
        r = api.post(
            f"/api/v1/accounts/{owner.account_id}/wallets/{fan['fan_id']}/credits",
            json={"points": 100, "reason": "welcome gift"},
            headers={**owner.key_headers, "Idempotency-Key": credit_key},
        )
        assert r.status_code == 201, r.text
        assert r.json()["balance"] == 100
        # The owner can still log in.
        r = api.post("/api/v1/session", json={"email": owner.email, "password": owner.password})
        assert r.status_code == 200, r.text
