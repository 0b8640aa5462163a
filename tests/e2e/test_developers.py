"""The developer console renders the whole OpenAPI document and its "try it" sends real calls."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import screenshot, sign_up_api

pytestmark = pytest.mark.e2e

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
FAN_TOKENS = "/api/v1/accounts/{account_id}/fan-tokens"


def test_every_operation_is_listed_and_try_it_sends_real_calls(
    page: Page, api: httpx.Client
) -> None:
    document = api.get("/api/openapi.json").json()
    pairs = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert len(pairs) > 20  # the accounts API alone has more; an empty doc must not pass
    owner = sign_up_api(api)

    page.goto("/developers")
    ops = page.locator(".op")
    expect(ops).to_have_count(len(pairs))
    shown = {
        (op["path"], op["method"])
        for op in ops.evaluate_all(
            "els => els.map(e => ({path: e.dataset.path, method: e.dataset.method}))"
        )
    }
    assert shown == pairs
    expect(page.get_by_role("heading", name="API keys", exact=True)).to_be_visible()
    screenshot(page, "developers")

    page.get_by_label("Bearer token").fill(owner.api_key)
    op = page.locator(f'.op[data-path="{FAN_TOKENS}"][data-method="post"]')
    op.locator("summary").click()
    op.get_by_label("path account_id").fill(owner.account_id)
    body = op.get_by_label("request body (JSON)")
    # The pre-filled example must at least be JSON naming the required fields.
    example = json.loads(body.input_value())
    assert {"external_id", "name"} <= set(example)
    body.fill(json.dumps({"external_id": "dev-console-1", "name": "Console fan"}))
    op.get_by_role("button", name="Send").click()

    response = op.locator(".response")
    expect(response.locator(".status-ok")).to_have_text(re.compile(r"^201\b"))
    answer = json.loads(response.locator(".response-body").inner_text())
    assert answer["token"].startswith("laf_")
    me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {answer['token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["fan_id"] == answer["fan_id"]

    body.fill('{"external_id": 5}')
    op.get_by_role("button", name="Send").click()
    expect(response.locator(".status-bad")).to_have_text(re.compile(r"^422\b"))
    problem = json.loads(response.locator(".response-body").inner_text())
    assert problem["status"] == 422
    assert "external_id" in json.dumps(problem)
    expect(response.locator(".response-body")).to_contain_text("external_id")
