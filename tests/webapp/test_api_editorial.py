"""Editing, archiving, the review queue, approvals and rejections, and the sensitive-word
lists, over HTTP (webapp/api_editorial.py), in the console, and from ``lifeaccount words``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from starlette.applications import Starlette

from media.jobs import JOBS
from tests.conftest import Brand, bearer, make_settings, mint, sign_up
from tests.webapp.uploads_support import new_upload, patch
from webapp.app import create_app
from webapp.cli import main
from webapp.context import Services

CONTENTS = "/api/v1/contents"
T = TypeVar("T")


@dataclass
class Person:
    """A staff member of some role, with their session."""

    cookies: httpx.Cookies
    csrf: str

    def use(self, client: httpx.AsyncClient) -> dict[str, str]:
        client.cookies = self.cookies
        return {"X-CSRF-Token": self.csrf}


def owner(brand: Brand) -> Person:
    return Person(brand.cookies, brand.csrf_token)


async def join(client: httpx.AsyncClient, brand: Brand, role: str) -> Person:
    """Invite someone to ``brand`` as ``role`` and log them in by accepting."""
    invited = await client.post(
        f"/api/v1/accounts/{brand.account_id}/invitations",
        json={"email": f"{role}@{brand.handle}.example", "role": role},
        headers=owner(brand).use(client),
    )
    assert invited.status_code == 201, invited.text
    client.cookies.clear()
    accepted = await client.post(
        "/api/v1/invitations/accept",
        json={"token": invited.json()["token"], "password": "correct horse battery"},
    )
    assert accepted.status_code == 201, accepted.text
    csrf = (await client.get("/api/v1/session")).json()["csrf_token"]
    cookies = httpx.Cookies()
    cookies.set("la_session", client.cookies["la_session"])
    client.cookies.clear()
    return Person(cookies, csrf)


def key(client: httpx.AsyncClient, brand: Brand) -> dict[str, str]:
    client.cookies.clear()
    return brand.key_headers


async def draft(client: httpx.AsyncClient, brand: Brand, title: str = "新品") -> str:
    made = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "article", "title": title, "blocks": [{"type": "paragraph", "text": "茶"}]},
        headers=key(client, brand),
    )
    assert made.status_code == 201, made.text
    content_id: str = made.json()["id"]
    return content_id


async def publish(client: httpx.AsyncClient, brand: Brand, content_id: str) -> str:
    r = await client.post(f"{CONTENTS}/{content_id}/publish", json={}, headers=key(client, brand))
    assert r.status_code == 200, r.text
    status: str = r.json()["status"]
    return status


async def status_of(client: httpx.AsyncClient, brand: Brand, content_id: str) -> str:
    r = await client.get(f"{CONTENTS}/{content_id}", headers=key(client, brand))
    status: str = r.json()["status"]
    return status


def problem(r: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code, r.json()
    if field is not None:
        assert r.json()["field"] == field, r.json()


async def words(
    client: httpx.AsyncClient, brand: Brand, path: str, listed: list[str], who: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"/api/v1/accounts/{brand.account_id}/sensitive-words{path}",
        json={"words": listed},
        headers=who,
    )


async def test_an_edit_changes_only_the_fields_sent(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    content_id = await draft(client, brand)
    url = f"{CONTENTS}/{content_id}"
    r = await client.patch(url, json={"title": "新品二"}, headers=key(client, brand))
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "新品二" and r.json()["status"] == "draft"
    assert r.json()["blocks"] == [{"type": "paragraph", "text": "茶"}]
    # The brand's owner and editors edit too.
    r = await client.patch(url, json={"title": "新品三"}, headers=owner(brand).use(client))
    assert r.status_code == 200 and r.json()["title"] == "新品三"
    editor = await join(client, brand, "editor")
    r = await client.patch(url, json={"title": "新品四"}, headers=editor.use(client))
    assert r.status_code == 200 and r.json()["title"] == "新品四"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "post"}, "kind"),  # the kind is fixed at creation
        ({"title": 5}, "title"),
        ({"title": None}, "title"),  # an article needs its title
        ({"text": "a post's field"}, "text"),  # not a field of an article
        ({"blocks": []}, "blocks"),
        ({"blocks": [{"type": "nope"}]}, "blocks.0.type"),
        ({"coupon_ids": ["cpn_nope"]}, "coupon_ids.0"),
    ],
)
async def test_a_bad_edit_names_its_field_and_changes_nothing(
    client: httpx.AsyncClient, brand: Brand, body: dict[str, Any], field: str
) -> None:
    content_id = await draft(client, brand)
    url = f"{CONTENTS}/{content_id}"
    before = (await client.get(url, headers=key(client, brand))).json()
    r = await client.patch(url, json=body, headers=key(client, brand))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.json()
    assert (await client.get(url, headers=key(client, brand))).json() == before


async def _complete_upload(client: httpx.AsyncClient, brand: Brand) -> str:
    upload_id = await new_upload(client, key(client, brand), 5)
    assert (await patch(client, upload_id, brand.key_headers, 0, b"12345")).status_code == 204
    return upload_id


async def test_a_new_upload_for_a_draft_video_is_processed_again(
    app: Starlette, client: httpx.AsyncClient, brand: Brand
) -> None:
    other = await sign_up(client)
    first, second = await _complete_upload(client, brand), await _complete_upload(client, brand)
    theirs = await _complete_upload(client, other)
    made = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents",
        json={"kind": "video", "title": "新品", "upload_id": first},
        headers=key(client, brand),
    )
    url = f"{CONTENTS}/{made.json()['id']}"
    for bad in ("upl_nope", theirs):
        r = await client.patch(url, json={"upload_id": bad}, headers=key(client, brand))
        problem(r, 404, "upload_not_found", "upload_id")
    r = await client.patch(url, json={"upload_id": second}, headers=key(client, brand))
    assert r.status_code == 200, r.text
    assert r.json()["upload_id"] == second and r.json()["media"]["state"] == "processing"
    services: Services = app.state.services
    queued = await services.store.collection(JOBS).find({})
    assert sorted(j["payload"]["upload_id"] for j in queued) == sorted([first, second])


async def test_who_may_edit_and_archive(client: httpx.AsyncClient, brand: Brand) -> None:
    other = await sign_up(client)
    content_id = await draft(client, brand)
    url = f"{CONTENTS}/{content_id}"
    client.cookies.clear()
    problem(await client.patch(url, json={"title": "x"}), 401, "authentication_required")
    fan = bearer((await mint(client, brand))["token"])
    problem(await client.patch(url, json={"title": "x"}, headers=fan), 403, "wrong_credential")
    # A draft does not exist for another brand; a published content is refused to it.
    r = await client.patch(url, json={"title": "x"}, headers=key(client, other))
    problem(r, 404, "content_not_found", "content_id")
    await publish(client, brand, content_id)
    r = await client.post(f"{url}/archive", headers=key(client, other))
    problem(r, 403, "role_required")
    moderator = await join(client, brand, "moderator")
    r = await client.post(f"{url}/archive", headers=moderator.use(client))
    problem(r, 403, "role_required")
    assert await status_of(client, brand, content_id) == "published"


async def test_archive_takes_a_published_content_out_of_the_feed(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    content_id = await draft(client, brand)
    url = f"{CONTENTS}/{content_id}"
    r = await client.post(f"{url}/archive", headers=key(client, brand))
    problem(r, 409, "content_not_published", "status")
    await publish(client, brand, content_id)
    feed = f"/api/v1/accounts/{brand.account_id}/contents"
    assert [c["id"] for c in (await client.get(feed)).json()["items"]] == [content_id]
    r = await client.post(f"{url}/archive", headers=key(client, brand))
    assert r.status_code == 200 and r.json()["status"] == "archived"
    assert (await client.get(feed)).json()["items"] == []
    client.cookies.clear()
    assert (await client.get(url)).status_code == 404  # fans no longer see it
    assert await status_of(client, brand, content_id) == "archived"  # the brand still does
    # Archived is final for editing, and archiving again is refused.
    problem(
        await client.patch(url, json={"title": "x"}, headers=key(client, brand)),
        409,
        "content_not_editable",
        "status",
    )
    problem(
        await client.post(f"{url}/archive", headers=key(client, brand)),
        409,
        "content_not_published",
    )


async def test_an_added_word_holds_the_next_publish_for_a_moderator(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    moderator = await join(client, brand, "moderator")
    r = await words(client, brand, "", ["违禁", "Casino"], moderator.use(client))
    assert r.status_code == 200 and r.json() == {"added": 2}
    r = await words(client, brand, "", ["casino"], key(client, brand))  # in any case: listed
    assert r.json() == {"added": 0}
    listed = await client.get(
        f"/api/v1/accounts/{brand.account_id}/sensitive-words", headers=key(client, brand)
    )
    assert listed.json() == {"words": ["Casino", "违禁"]}
    held = await draft(client, brand, "新品违禁")
    assert await publish(client, brand, held) == "in_review"
    assert await status_of(client, brand, held) == "in_review"
    client.cookies.clear()
    assert (await client.get(f"{CONTENTS}/{held}")).status_code == 404
    # The queue says why, for a moderator to decide.
    queue = await client.get(
        f"/api/v1/accounts/{brand.account_id}/review", headers=moderator.use(client)
    )
    assert queue.status_code == 200, queue.text
    [item] = queue.json()["items"]
    assert item["content"]["id"] == held and item["words"] == ["违禁"]
    assert item["matches"] == [{"field": "title", "word": "违禁", "start": 2, "end": 4}]
    assert item["reject_reason"] is None
    # Removed, the word no longer holds a publish; what waits still waits.
    r = await words(client, brand, "/remove", ["违禁", "never listed"], key(client, brand))
    assert r.status_code == 200 and r.json() == {"removed": 1}
    assert await publish(client, brand, await draft(client, brand, "新品违禁")) == "published"
    assert await status_of(client, brand, held) == "in_review"


async def test_a_word_list_is_its_accounts_own(client: httpx.AsyncClient, brand: Brand) -> None:
    other = await sign_up(client)
    assert (await words(client, brand, "", ["违禁"], key(client, brand))).status_code == 200
    assert await publish(client, other, await draft(client, other, "违禁")) == "published"
    r = await words(client, other, "", ["x"], key(client, brand))
    problem(r, 403, "wrong_account")
    editor = await join(client, brand, "editor")
    problem(await words(client, brand, "", ["x"], editor.use(client)), 403, "role_required")
    r = await client.get(
        f"/api/v1/accounts/{brand.account_id}/sensitive-words", headers=editor.use(client)
    )
    problem(r, 403, "role_required")
    problem(
        await words(client, brand, "", ["  "], key(client, brand)), 422, "invalid_field", "words.0"
    )
    problem(await words(client, brand, "", [], key(client, brand)), 422, "invalid_field", "words")
    problem(
        await words(client, brand, "", ["x" * 51], key(client, brand)),
        422,
        "invalid_field",
        "words.0",
    )


async def test_a_moderator_approves_or_rejects_and_an_edit_needs_approval_again(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    await words(client, brand, "", ["违禁"], key(client, brand))
    moderator = await join(client, brand, "moderator")
    first, second = await draft(client, brand, "违禁一"), await draft(client, brand, "违禁二")
    for content_id in (first, second):
        assert await publish(client, brand, content_id) == "in_review"
    r = await client.post(f"{CONTENTS}/{first}/approve", headers=moderator.use(client))
    assert r.status_code == 200, r.text
    assert r.json()["content"]["status"] == "published" and r.json()["words"] == ["违禁"]
    problem(
        await client.post(f"{CONTENTS}/{first}/approve", headers=moderator.use(client)),
        409,
        "content_not_in_review",
        "status",
    )
    url = f"{CONTENTS}/{second}"
    r = await client.post(f"{url}/reject", json={}, headers=moderator.use(client))
    problem(r, 422, "invalid_field", "reason")
    r = await client.post(f"{url}/reject", json={"reason": "   "}, headers=moderator.use(client))
    problem(r, 422, "invalid_field", "reason")
    r = await client.post(
        f"{url}/reject", json={"reason": "标题含有违规词"}, headers=moderator.use(client)
    )
    assert r.status_code == 200, r.text
    assert r.json()["content"]["status"] == "rejected"
    assert r.json()["reject_reason"] == "标题含有违规词"
    # The editor fixes it: a draft again, and clean; yet it goes out only through approval.
    r = await client.patch(url, json={"title": "新品"}, headers=key(client, brand))
    assert r.status_code == 200 and r.json()["status"] == "draft"
    assert await publish(client, brand, second) == "in_review"
    queue = await client.get(
        f"/api/v1/accounts/{brand.account_id}/review", headers=key(client, brand)
    )
    [item] = queue.json()["items"]
    assert item["words"] == [] and item["reject_reason"] == "标题含有违规词"
    r = await client.post(f"{url}/approve", headers=owner(brand).use(client))
    assert r.status_code == 200 and r.json()["content"]["status"] == "published"
    assert r.json()["reject_reason"] is None


async def test_a_flagged_edit_of_a_published_content_goes_back_to_review(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    content_id = await draft(client, brand)
    assert await publish(client, brand, content_id) == "published"
    await words(client, brand, "", ["违禁"], key(client, brand))
    url = f"{CONTENTS}/{content_id}"
    r = await client.patch(url, json={"title": "新品违禁"}, headers=key(client, brand))
    assert r.status_code == 200 and r.json()["status"] == "in_review"
    assert (await client.get(f"/api/v1/accounts/{brand.account_id}/contents")).json()["items"] == []
    # In review, it cannot be edited until a moderator decides.
    r = await client.patch(url, json={"title": "新品"}, headers=key(client, brand))
    problem(r, 409, "content_not_editable", "status")


async def test_who_may_moderate(client: httpx.AsyncClient, brand: Brand) -> None:
    other = await sign_up(client)
    await words(client, brand, "", ["违禁"], key(client, brand))
    content_id = await draft(client, brand, "违禁")
    await publish(client, brand, content_id)
    url = f"{CONTENTS}/{content_id}"
    editor = await join(client, brand, "editor")
    host = await join(client, brand, "host")
    # An approval says a person read it: not a backend's key, not the editor who wrote it.
    problem(
        await client.post(f"{url}/approve", headers=key(client, brand)), 403, "wrong_credential"
    )
    problem(await client.post(f"{url}/approve", headers=editor.use(client)), 403, "role_required")
    problem(
        await client.post(f"{url}/reject", json={"reason": "x"}, headers=host.use(client)),
        403,
        "role_required",
    )
    # For another brand's staff, a content in review does not exist.
    problem(
        await client.post(f"{url}/approve", headers=owner(other).use(client)),
        404,
        "content_not_found",
        "content_id",
    )
    client.cookies.clear()
    problem(await client.post(f"{url}/approve"), 401, "authentication_required")
    # Editors read the queue (why their work waits); hosts do not, nor other brands.
    queue = f"/api/v1/accounts/{brand.account_id}/review"
    assert (await client.get(queue, headers=editor.use(client))).status_code == 200
    problem(await client.get(queue, headers=host.use(client)), 403, "role_required")
    problem(await client.get(queue, headers=key(client, other)), 403, "wrong_account")
    assert await status_of(client, brand, content_id) == "in_review"


async def test_the_console_reviews_and_keeps_the_word_list(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    moderator = await join(client, brand, "moderator")
    page = f"/console?account={brand.account_id}"

    async def submit(**fields: str) -> httpx.Response:
        moderator.use(client)
        return await client.post(page, data={"csrf_token": moderator.csrf, **fields})

    r = await submit(action="add_words", words="违禁，赌局, casino")
    assert r.status_code == 200 and "Added 3 of 3 words." in r.text
    held = await draft(client, brand, "违禁新品")
    assert await publish(client, brand, held) == "in_review"
    moderator.use(client)
    shown = await client.get(page)
    assert 'id="review"' in shown.text and "违禁新品" in shown.text
    assert "<mark>违禁</mark>" in shown.text
    # A form without the session's token changes nothing.
    moderator.use(client)
    r = await client.post(page, data={"action": "approve", "content_id": held})
    assert r.status_code == 400 and await status_of(client, brand, held) == "in_review"
    r = await submit(action="reject", content_id=held, reason="")
    assert r.status_code == 400 and await status_of(client, brand, held) == "in_review"
    r = await submit(action="approve", content_id=held)
    assert r.status_code == 200 and "it is published" in r.text
    assert await status_of(client, brand, held) == "published"
    r = await submit(action="remove_words", words="赌局")
    assert r.status_code == 200
    listed = await client.get(
        f"/api/v1/accounts/{brand.account_id}/sensitive-words", headers=key(client, brand)
    )
    assert listed.json()["words"] == ["casino", "违禁"]
    # Another brand's content is not this console's to approve.
    other = await sign_up(client)
    await words(client, other, "", ["违禁"], key(client, other))
    theirs = await draft(client, other, "违禁")
    await publish(client, other, theirs)
    r = await submit(action="approve", content_id=theirs)
    assert r.status_code == 400 and await status_of(client, other, theirs) == "in_review"
    # An editor sees no review section and cannot use its forms.
    editor = await join(client, brand, "editor")
    editor.use(client)
    assert 'id="review"' not in (await client.get(page)).text
    editor.use(client)
    r = await client.post(
        page, data={"csrf_token": editor.csrf, "action": "add_words", "words": "x"}
    )
    assert r.status_code == 400 and "moderator" in r.text


def test_the_operators_global_list_applies_to_every_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")

    def in_app(run: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        """Run ``run`` against the app on this data dir, as a fresh server process would."""

        async def go() -> T:
            app = create_app(make_settings(tmp_path / "data"))
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    return await run(c)

        return asyncio.run(go())

    brands = in_app(lambda c: asyncio.gather(sign_up(c), sign_up(c)))

    def publish_in_each(title: str) -> list[str]:
        async def run(c: httpx.AsyncClient) -> list[str]:
            return [await publish(c, b, await draft(c, b, title)) for b in brands]

        return in_app(run)

    assert main(["words", "add", "--data-dir", data, "赌博", "Casino", "赌博"]) == 0
    assert "added 2 of 3 to the global list" in capsys.readouterr().out
    assert main(["words", "list", "--data-dir", data]) == 0
    assert capsys.readouterr().out.split() == ["Casino", "赌博"]
    assert publish_in_each("新品赌博") == ["in_review", "in_review"]
    assert publish_in_each("新品ＣＡＳＩＮＯ") == ["in_review", "in_review"]
    assert main(["words", "remove", "--data-dir", data, "casino"]) == 0
    assert "removed 1 of 1 from the global list" in capsys.readouterr().out
    assert publish_in_each("新品casino") == ["published", "published"]
    # With --account, the operator keeps one account's list.
    first = brands[0].account_id
    assert main(["words", "add", "--data-dir", data, "--account", first, "团购"]) == 0
    assert f"added 1 of 1 to account {first}'s list" in capsys.readouterr().out
    assert main(["words", "list", "--data-dir", data]) == 0
    assert capsys.readouterr().out.split() == ["赌博"]
    assert publish_in_each("团购") == ["in_review", "published"]


def test_the_words_command_refuses_what_it_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    with pytest.raises(SystemExit) as exited:
        main(["words", "add", "--data-dir", data])
    assert exited.value.code == 2 and "WORD" in capsys.readouterr().err
    assert main(["words", "add", "--data-dir", data, "--account", "acc_nope", "x"]) == 1
    assert "no account with id 'acc_nope'" in capsys.readouterr().err
    assert main(["words", "add", "--data-dir", data, "x" * 51]) == 2
    assert "at most 50 characters" in capsys.readouterr().err
    assert main(["words", "list", "--data-dir", data]) == 0
    assert capsys.readouterr().out == ""
