"""The public content page ``/c/{id}``, the account page's list of contents, the console's
upload page and the ``/vendor`` files, in-process on a real app (webapp/pages.py,
webapp/content_view.py, webapp/vendor.py)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from content.contents import create_content
from content.coupons import create_coupon
from content.images import images_of
from content.publishing import media_ready, publish
from content.sensitive import ReviewPolicy
from store.clock import rfc3339
from tests.conftest import Brand, bearer, mint
from tests.webapp.test_api_images import ready_image
from webapp.content_view import iso_duration
from webapp.vendor import LIBRARIES, Vendor

BASE = "http://testserver"
HOSTILE = '</script><img src=x onerror="alert(1)"> & "quoted"'


class Page(HTMLParser):
    """The parts of a page these tests read: meta tags, scripts, and elements by id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.scripts: list[tuple[dict[str, str], str]] = []
        self.links: list[dict[str, str]] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._script: dict[str, str] | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "meta" and ("property" in a or "name" in a):
            self.meta[a.get("property") or a["name"]] = a.get("content", "")
        if tag == "link":
            self.links.append(a)
        if tag == "script":
            self._script, self._text = a, []

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._text)))
            self._script = None

    def json_ld(self) -> dict[str, Any]:
        [(_, text)] = [(a, t) for a, t in self.scripts if a.get("type") == "application/ld+json"]
        body: dict[str, Any] = json.loads(text)
        return body

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


def services(app: Starlette) -> Any:
    return app.state.services


async def create(client: httpx.AsyncClient, brand: Brand, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/accounts/{brand.account_id}/contents", json=body, headers=brand.key_headers
    )
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


async def publish_api(client: httpx.AsyncClient, brand: Brand, content_id: str) -> None:
    r = await client.post(
        f"/api/v1/contents/{content_id}/publish", json={}, headers=brand.key_headers
    )
    assert r.json()["status"] == "published", r.text


def assert_no_inline_script(page: Page) -> None:
    # Every executable script is a file of this origin; JSON-LD is data, never run.
    for attrs, text in page.scripts:
        if attrs.get("type") == "application/ld+json":
            continue
        assert attrs.get("src", "").startswith("/") and not text.strip(), attrs


async def test_a_draft_is_not_found_then_the_published_article_renders_block_by_block(
    client: httpx.AsyncClient, app: Starlette, brand: Brand
) -> None:
    store = services(app).store
    now = services(app).now()
    image = await ready_image(app, client, brand)  # a real, resized upload of this account
    coupon = await create_coupon(
        store,
        brand.account_id,
        title="满100减20",
        description="到店使用",
        stock=50,
        per_fan_limit=1,
        valid_from=rfc3339(now),
        valid_until=rfc3339(now + timedelta(days=7)),
        now=now,
    )
    link = {"app_id": "wx_tea", "page": "pages/shop/index", "title": "去小程序下单"}
    made = await create(
        client,
        brand,
        {
            "kind": "article",
            "title": "秋季 <新品> 指南",
            "blocks": [
                {"type": "paragraph", "text": HOSTILE},
                {"type": "heading", "text": "第二章", "level": 2},
                {"type": "heading", "text": "小节", "level": 3},
                {"type": "image", "upload_id": image, "caption": "新茶 <图>"},
                {"type": "service_card", "service_link": link},
                {"type": "coupon_card", "coupon_id": coupon.id},
                {"type": "paragraph", "text": "最后一段"},
            ],
        },
    )
    assert made["url"] == f"{BASE}/c/{made['id']}"

    draft = await client.get(f"/c/{made['id']}")
    assert draft.status_code == 404
    assert "Nothing here" in draft.text and "秋季" not in draft.text
    assert (await client.get("/c/cnt_does_not_exist")).status_code == 404

    await publish_api(client, brand, made["id"])
    r = await client.get(f"/c/{made['id']}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    # Escaped everywhere: the text shows as text, it never becomes markup.
    assert "<img src=x" not in html and "</script><img" not in html
    assert "&lt;/script&gt;&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; &#34;quoted&#34;" in (
        html
    )
    assert "<h1>秋季 &lt;新品&gt; 指南</h1>" in html
    # Blocks in their order, each as its element.
    order = [
        html.index(part)
        for part in (
            "onerror=&#34;alert(1)",
            "<h2>第二章</h2>",
            "<h3>小节</h3>",
            "<figcaption>新茶 &lt;图&gt;</figcaption>",
            "去小程序下单",
            "满100减20",
            "<p>最后一段</p>",
        )
    ]
    assert order == sorted(order)
    page = Page(html)
    assert page.find("aside", **{"class": "coupon-card", "data-coupon-id": coupon.id})
    assert "到店使用" in html and "50 left" in html
    [card] = page.find("a", **{"class": "service-card", "data-app-id": "wx_tea"})
    # The card leads through a signed click id: following it counts a click and opens the
    # mini-program target page (the link has no web url).
    go = await client.get(card["href"].removeprefix(BASE))
    assert go.status_code == 302 and go.headers["location"].startswith("/open/ck_")
    stats = await client.get(
        f"/api/v1/accounts/{brand.account_id}/stats", headers=brand.key_headers
    )
    assert [c["clicks"] for c in stats.json()["contents"] if c["content_id"] == made["id"]] == [1]
    # The image block shows the resized picture, and previews use it.
    record = (await images_of(services(app).store, [image]))[image]
    [picture] = page.find("img", src=record.url)
    assert picture["alt"] == "新茶 <图>" and picture["width"] == str(record.width)
    assert page.meta["og:image"] == f"{BASE}{record.url}"

    published = (await client.get(f"/api/v1/contents/{made['id']}")).json()
    url = f"{BASE}/c/{made['id']}"
    assert page.meta["og:type"] == "article"
    assert page.meta["og:title"] == "秋季 <新品> 指南"
    assert page.meta["og:url"] == url
    assert page.meta["og:description"] == " ".join(HOSTILE.split())
    assert page.meta["article:published_time"] == published["published_at"]
    assert {"rel": "canonical", "href": url} in page.links
    ld = page.json_ld()
    assert ld["@context"] == "https://schema.org" and ld["@type"] == "Article"
    assert ld["headline"] == "秋季 <新品> 指南"
    assert ld["description"] == " ".join(HOSTILE.split())  # survived the trip intact
    assert ld["datePublished"] == published["published_at"]
    assert ld["url"] == url
    assert ld["author"] == {
        "@type": "Organization",
        "name": brand.handle,
        "url": f"{BASE}/@{brand.handle}",
    }
    # The JSON-LD text itself cannot end its element early.
    [(_, raw)] = [(a, t) for a, t in page.scripts if a.get("type") == "application/ld+json"]
    assert "</" not in raw and "<img" not in raw
    assert_no_inline_script(page)
    assert not page.find("video")
    assert "content-security-policy" in r.headers


async def test_a_published_video_page_has_the_player_opengraph_and_a_video_object(
    client: httpx.AsyncClient, app: Starlette, brand: Brand
) -> None:
    store, now = services(app).store, services(app).now()
    policy = ReviewPolicy(store)
    made = await create_content(
        store,
        brand.account_id,
        {
            "kind": "video",
            "title": "新品开箱",
            "caption": "秋天的第一杯",
            "upload_id": "upl_0123456789",
        },
        now=now,
    )
    files = {
        "hls_url": f"/media/videos/{made.id}/job-1/hls/master.m3u8",
        "mp4_url": f"/media/videos/{made.id}/job-1/video.mp4",
        "poster_url": f"/media/videos/{made.id}/job-1/poster.jpg",
        "duration_s": 62.4,
        "renditions": [{"height": 720, "bitrate": 2_500_000}],
    }
    await media_ready(store, made.id, files, policy=policy, now=now)
    await publish(store, made.id, policy=policy, now=now)
    fan = await mint(client, brand, "fan-1")
    said = await client.post(
        f"/api/v1/contents/{made.id}/comments",
        json={"text": "好喝吗？"},
        headers=bearer(fan["token"]),
    )
    assert said.status_code == 201, said.text
    answer = await client.post(
        f"/api/v1/contents/{made.id}/comments",
        json={"text": "很好喝 <3", "parent_id": said.json()["id"]},
        headers=brand.key_headers,
    )
    assert answer.status_code == 201, answer.text
    r = await client.post(f"/api/v1/contents/{made.id}/likes", headers=bearer(fan["token"]))
    assert r.status_code == 200, r.text

    r = await client.get(f"/c/{made.id}")
    assert r.status_code == 200
    page = Page(r.text)
    [video] = page.find("video", id="player")
    assert video["data-hls"] == files["hls_url"]
    assert video["data-mp4"] == files["mp4_url"]
    assert video["poster"] == files["poster_url"]
    mp4, poster = f"{BASE}{files['mp4_url']}", f"{BASE}{files['poster_url']}"
    assert page.meta["og:type"] == "video.other"
    assert page.meta["og:title"] == "新品开箱"
    assert page.meta["og:description"] == "秋天的第一杯"
    assert page.meta["og:image"] == poster
    assert page.meta["og:video"] == mp4 and page.meta["og:video:type"] == "video/mp4"
    assert "og:video:secure_url" not in page.meta  # http here: only an https URL is "secure"
    content = (await client.get(f"/api/v1/contents/{made.id}")).json()
    ld = page.json_ld()
    assert ld["@type"] == "VideoObject"
    assert ld["name"] == "新品开箱" and ld["description"] == "秋天的第一杯"
    assert ld["thumbnailUrl"] == [poster]
    assert ld["contentUrl"] == mp4
    assert ld["uploadDate"] == content["published_at"]
    assert ld["duration"] == "PT1M2S"
    likes = ld["interactionStatistic"][0]
    assert likes["interactionType"] == {"@type": "LikeAction"}
    assert likes["userInteractionCount"] == 1
    # The player's scripts: hls.js at its versioned /vendor URL, then the page's own.
    sources = [a["src"] for a, _ in page.scripts if "src" in a]
    hls = Vendor().url("hls.js")
    assert sources == [hls, "/static/content.js"]
    assert_no_inline_script(page)
    # Counts and the read-only thread, the brand's reply marked.
    assert '<span id="like-count">1</span> like ·' in r.text
    assert '<span id="comment-count">2</span> comments' in r.text
    assert "好喝吗？" in r.text and "很好喝 &lt;3" in r.text
    assert page.find("li", **{"class": "comment reply by-staff"})


def test_iso_durations() -> None:
    assert [iso_duration(s) for s in (0, 0.4, 2.0, 59.6, 60, 3725.2)] == [
        "PT0S",
        "PT0S",
        "PT2S",
        "PT1M",
        "PT1M",
        "PT1H2M5S",
    ]


async def test_the_account_page_lists_published_contents_newest_first_with_more(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    ids = []
    for i in range(13):
        made = await create(
            client,
            brand,
            {
                "kind": "article",
                "title": f"第{i}篇",
                "blocks": [{"type": "paragraph", "text": "茶"}],
            },
        )
        await publish_api(client, brand, made["id"])
        ids.append(made["id"])
    draft = await create(client, brand, {"kind": "post", "text": "还没发"})

    r = await client.get(f"/@{brand.handle}")
    assert r.status_code == 200
    page = Page(r.text)
    cards = [a["data-content-id"] for a in page.find("li", **{"class": "content-card"})]
    assert cards == ids[::-1][:12]
    assert draft["id"] not in r.text
    assert f'<a href="/c/{ids[-1]}">' in r.text
    [more] = page.find("a", rel="next")
    r = await client.get(more["href"])
    assert r.status_code == 200
    cards = [a["data-content-id"] for a in Page(r.text).find("li", **{"class": "content-card"})]
    assert cards == [ids[0]]
    assert not Page(r.text).find("a", rel="next")
    assert "Earlier posts" in r.text

    r = await client.get(f"/@{brand.handle}?cursor=not-a-cursor")
    assert r.status_code == 400
    assert "no longer valid" in r.text
    assert len(Page(r.text).find("li", **{"class": "content-card"})) == 12


async def test_the_upload_page_needs_a_session_and_carries_its_csrf_token(
    client: httpx.AsyncClient, brand: Brand
) -> None:
    r = await client.get("/console/upload")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    client.cookies = brand.cookies
    r = await client.get(f"/console/upload?account={brand.account_id}")
    assert r.status_code == 200
    page = Page(r.text)
    [form] = page.find("form", id="upload")
    assert form["data-account-id"] == brand.account_id
    assert form["data-csrf-token"] == brand.csrf_token
    assert page.find("input", type="file", id="file")
    assert page.find("progress", id="upload-progress")
    sources = [a["src"] for a, _ in page.scripts if "src" in a]
    assert sources == [Vendor().url("tus-js-client"), "/static/upload.js"]
    assert_no_inline_script(page)
    # The console links to it.
    console = await client.get(f"/console?account={brand.account_id}")
    assert f'href="/console/upload?account={brand.account_id}"' in console.text


async def test_vendor_files_are_served_by_allow_list_with_long_caching(
    client: httpx.AsyncClient,
) -> None:
    vendor = Vendor()
    for name, library in LIBRARIES.items():
        assert vendor.versions[name], f"{name} is not installed: run scripts/test (npm ci)"
        r = await client.get(vendor.url(name))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/javascript")
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert len(r.content) > 10_000
        spec = f"{name}@{vendor.versions[name]}"
        refused = [
            f"/vendor/{spec}/package.json",  # in the package, not on the list
            f"/vendor/{spec}/..%2Fpackage.json",
            f"/vendor/{name}@0.0.0/{library.main}",  # not the installed version
            f"/vendor/left-pad@1.0.0/{library.main}",
        ]
        for path in refused:
            r = await client.get(path)
            assert r.status_code == 404, path
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["cache-control"] == "no-store"


async def test_without_node_modules_vendor_urls_answer_503_saying_what_to_run(
    tmp_path: Path,
) -> None:
    vendor = Vendor(tmp_path / "node_modules")
    url = vendor.url("hls.js")
    assert url == "/vendor/hls.js@missing/hls.light.min.js"
    app = Starlette(routes=vendor.routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        r = await c.get(url)
    assert r.status_code == 503
    problem = r.json()
    assert problem["code"] == "vendor_not_installed"
    assert "scripts/run" in problem["detail"] and "npm ci" in problem["detail"]


@pytest.mark.parametrize("kind", ["article", "post"])
async def test_contents_of_every_kind_carry_their_page_url(
    client: httpx.AsyncClient, brand: Brand, kind: str
) -> None:
    body: dict[str, Any] = (
        {"kind": "post", "text": "新茶"}
        if kind == "post"
        else {"kind": "article", "title": "新茶", "blocks": [{"type": "paragraph", "text": "茶"}]}
    )
    made = await create(client, brand, body)
    await publish_api(client, brand, made["id"])
    feed = (await client.get(f"/api/v1/accounts/{brand.account_id}/contents")).json()
    assert [c["url"] for c in feed["items"]] == [f"{BASE}/c/{made['id']}"]
    page = Page((await client.get(f"/c/{made['id']}")).text)
    assert page.json_ld()["@type"] == ("Article" if kind == "article" else "SocialMediaPosting")
    assert re.fullmatch(r"新茶", page.meta["og:title"])


async def test_a_post_shows_its_images_and_attached_services_and_coupons(
    client: httpx.AsyncClient, app: Starlette, brand: Brand
) -> None:
    first, second = [await ready_image(app, client, brand) for _ in range(2)]
    store, now = services(app).store, services(app).now()
    coupon = await create_coupon(
        store,
        brand.account_id,
        title="第二杯半价",
        description="",
        stock=9,
        per_fan_limit=1,
        valid_from=rfc3339(now),
        valid_until=rfc3339(now + timedelta(days=3)),
        now=now,
    )
    shop = {
        "app_id": "wx_tea",
        "page": "pages/goods",
        "title": "去下单",
        "url": "https://shop.example/goods",
    }
    made = await create(
        client,
        brand,
        {
            "kind": "post",
            "text": "上新啦",
            "image_upload_ids": [first, second],
            "service_links": [shop],
            "coupon_ids": [coupon.id],
        },
    )
    await publish_api(client, brand, made["id"])
    html = (await client.get(f"/c/{made['id']}")).text
    page = Page(html)
    records = await images_of(store, [first, second])
    grid = [img["src"] for img in page.find("img") if img.get("alt", "").startswith("Image ")]
    assert grid == [records[first].thumb_url, records[second].thumb_url]  # thumbs in a grid
    previews = re.findall(r'<meta property="og:image" content="([^"]+)"', html)
    assert previews == [f"{BASE}{records[first].url}", f"{BASE}{records[second].url}"]
    [card] = page.find("a", **{"class": "service-card", "data-app-id": "wx_tea"})
    go = await client.get(card["href"].removeprefix(BASE))
    assert go.status_code == 302
    assert go.headers["location"].startswith("https://shop.example/goods?la_click=ck_")
    assert page.find("li", **{"class": "coupon-card", "data-coupon-id": coupon.id})
