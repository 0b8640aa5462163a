from __future__ import annotations

import httpx

from tests.conftest import Brand
from webapp.throttle import FailureThrottle


def test_failures_age_out_of_the_window() -> None:
    now = [1000.0]
    throttle = FailureThrottle(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("a") == 0
        throttle.fail("a")
    assert throttle.retry_after("a") == 61
    assert throttle.retry_after("b") == 0  # keys are independent
    now[0] += 30
    assert throttle.retry_after("a") == 31
    now[0] += 30
    assert throttle.retry_after("a") == 0
    throttle.fail("a")
    throttle.clear("a")
    assert throttle.retry_after("a") == 0


async def test_a_run_of_wrong_passwords_locks_that_login(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    for _ in range(10):
        r = await client.post("/api/v1/session", json={"email": brand.email, "password": "guess1"})
        assert r.status_code == 401
    r = await client.post(
        "/api/v1/session", json={"email": brand.email, "password": brand.password}
    )
    assert r.status_code == 429 and r.json()["code"] == "too_many_attempts"
    other = await client.post("/api/v1/session", json={"email": "x@y.example", "password": "p"})
    assert other.status_code == 401  # other logins are unaffected
