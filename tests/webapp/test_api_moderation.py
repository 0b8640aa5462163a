"""Comment moderation over HTTP: a comment with listed words is held out of sight and out of
the count until a moderator approves it; removal by its author or the account's moderators
keeps the count equal to the comments shown."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Brand, bearer, mint, sign_up
from tests.webapp.test_api_editorial import draft, join, key, owner, publish


async def _content(client: httpx.AsyncClient, brand: Brand) -> str:
    content_id = await draft(client, brand)
    await publish(client, brand, content_id)
    return content_id


async def _say(
    client: httpx.AsyncClient, content_id: str, who: dict[str, str], text: str, parent: str = ""
) -> dict[str, Any]:
    body = {"text": text} | ({"parent_id": parent} if parent else {})
    client.cookies.clear()
    r = await client.post(f"/api/v1/contents/{content_id}/comments", json=body, headers=who)
    assert r.status_code == 201, r.text
    said: dict[str, Any] = r.json()
    return said


async def _shown(client: httpx.AsyncClient, content_id: str) -> tuple[list[str], int]:
    client.cookies.clear()
    listed = (await client.get(f"/api/v1/contents/{content_id}/comments")).json()
    count = (await client.get(f"/api/v1/contents/{content_id}")).json()["counters"]["comments"]
    return [c["text"] for c in listed["items"]], count


async def test_a_held_comment_waits_for_a_moderator(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    words = await client.post(
        f"/api/v1/accounts/{brand.account_id}/sensitive-words",
        json={"words": ["代购"]},
        headers=key(client, brand),
    )
    assert words.status_code == 200, words.text
    content_id = await _content(client, brand)
    fan = bearer((await mint(client, brand))["token"])
    await _say(client, content_id, fan, "好喝")
    held = await _say(client, content_id, fan, "私聊代购便宜")
    assert held["hidden"] is True
    assert await _shown(client, content_id) == (["好喝"], 1)

    queue = await client.get(
        f"/api/v1/accounts/{brand.account_id}/review/comments", headers=key(client, brand)
    )
    assert [(c["id"], c["words"]) for c in queue.json()["items"]] == [(held["id"], ["代购"])]
    approve = f"/api/v1/comments/{held['id']}/approve"
    refused = await client.post(approve, headers=key(client, brand))
    assert refused.status_code == 403  # a backend key cannot say a person read it
    editor = await join(client, brand, "editor")
    assert (await client.post(approve, headers=editor.use(client))).status_code == 403
    moderator = await join(client, brand, "moderator")
    done = await client.post(approve, headers=moderator.use(client))
    assert done.status_code == 200 and done.json()["hidden"] is False, done.text
    assert await _shown(client, content_id) == (["好喝", "私聊代购便宜"], 2)
    again = await client.post(approve, headers=owner(brand).use(client))
    assert again.status_code == 409 and again.json()["code"] == "comment_not_held"
    queue = await client.get(
        f"/api/v1/accounts/{brand.account_id}/review/comments", headers=key(client, brand)
    )
    assert queue.json()["items"] == []


async def test_removal_keeps_the_count_equal_to_what_is_shown(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    content_id = await _content(client, brand)
    lily = bearer((await mint(client, brand, "lily"))["token"])
    mo = bearer((await mint(client, brand, "mo"))["token"])
    top = await _say(client, content_id, lily, "第一")
    await _say(client, content_id, mo, "同意", parent=top["id"])
    await _say(client, content_id, brand.key_headers, "谢谢", parent=top["id"])
    other = await _say(client, content_id, mo, "第二")
    assert await _shown(client, content_id) == (["第一", "第二"], 4)

    url = f"/api/v1/comments/{other['id']}"
    client.cookies.clear()
    assert (await client.delete(url)).status_code == 401
    forbidden = await client.delete(url, headers=lily)  # not hers
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "role_required"
    stranger = await sign_up(client)
    assert (await client.delete(url, headers=key(client, stranger))).status_code == 403
    assert (await client.delete(url, headers=mo)).status_code == 204  # the author's own
    assert (await client.delete(url, headers=mo)).status_code == 404
    assert await _shown(client, content_id) == (["第一"], 3)

    # The brand removes a thread: the comment and both replies stop being shown and counted.
    gone = await client.delete(f"/api/v1/comments/{top['id']}", headers=key(client, brand))
    assert gone.status_code == 204
    assert await _shown(client, content_id) == ([], 0)
    replies = await client.get(
        f"/api/v1/contents/{content_id}/comments", params={"parent_id": top["id"]}
    )
    assert replies.json()["items"] == []


async def test_a_held_comment_is_nobody_elses_to_see(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    await client.post(
        f"/api/v1/accounts/{brand.account_id}/sensitive-words",
        json={"words": ["代购"]},
        headers=key(client, brand),
    )
    content_id = await _content(client, brand)
    fan = bearer((await mint(client, brand))["token"])
    held = await _say(client, content_id, fan, "代购")
    stranger = await sign_up(client)
    for call in (
        client.post(f"/api/v1/comments/{held['id']}/approve", headers=owner(stranger).use(client)),
    ):
        r = await call
        assert r.status_code == 404 and r.json()["field"] == "comment_id"
    r = await client.delete(f"/api/v1/comments/{held['id']}", headers=key(client, stranger))
    assert r.status_code == 404
    other_fan = bearer((await mint(client, stranger))["token"])
    assert (
        await client.delete(f"/api/v1/comments/{held['id']}", headers=other_fan)
    ).status_code == 404
    queue = await client.get(
        f"/api/v1/accounts/{brand.account_id}/review/comments", headers=key(client, stranger)
    )
    assert queue.status_code == 403


async def test_the_console_shows_held_comments_and_moderates_them(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    await client.post(
        f"/api/v1/accounts/{brand.account_id}/sensitive-words",
        json={"words": ["代购"]},
        headers=key(client, brand),
    )
    content_id = await _content(client, brand)
    fan = bearer((await mint(client, brand))["token"])
    first = await _say(client, content_id, fan, "找我代购")
    second = await _say(client, content_id, fan, "代购低价")
    moderator = await join(client, brand, "moderator")
    page = f"/console?account={brand.account_id}"
    moderator.use(client)
    shown = await client.get(page)
    assert "找我代购" in shown.text and "代购低价" in shown.text

    async def submit(**fields: str) -> httpx.Response:
        moderator.use(client)
        return await client.post(page, data={"csrf_token": moderator.csrf, **fields})

    r = await submit(action="approve_comment", comment_id=first["id"])
    assert r.status_code == 200 and "Approved the comment" in r.text
    r = await submit(action="remove_comment", comment_id=second["id"])
    assert r.status_code == 200 and "Removed the comment" in r.text
    assert await _shown(client, content_id) == (["找我代购"], 1)
    moderator.use(client)
    assert "No comment is held." in (await client.get(page)).text
    # Another account's comment is not this console's to moderate.
    other = await sign_up(client)
    await client.post(
        f"/api/v1/accounts/{other.account_id}/sensitive-words",
        json={"words": ["代购"]},
        headers=key(client, other),
    )
    theirs_content = await _content(client, other)
    theirs = await _say(
        client, theirs_content, bearer((await mint(client, other))["token"]), "代购"
    )
    r = await submit(action="approve_comment", comment_id=theirs["id"])
    assert r.status_code == 400
    queue = await client.get(
        f"/api/v1/accounts/{other.account_id}/review/comments", headers=key(client, other)
    )
    assert [c["id"] for c in queue.json()["items"]] == [theirs["id"]]
