"""Issue 4's whole path against the real ``lifeaccount serve`` (its own media worker, real
ffmpeg): a 1080p clip sent by a real tus client in chunks becomes a published video whose HLS
ladder decodes cleanly, found by a two-character Chinese query and in the account's and its
followers' feeds; and bad uploads each end in a clear error with the server still healthy and
nothing published."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from playwright.sync_api import Page
from tusclient.client import TusClient

from media.tools import ffmpeg_path
from tests.e2e.support import (
    Owner,
    Server,
    Servers,
    bearer,
    follow,
    mint_fan,
    sign_up_api,
)
from tests.media.clips import children, jpeg_size, make_clip

CHUNK = 256 << 10
READY_TIMEOUT_S = 180.0


def tus_upload(server: Server, owner: Owner, path: Path) -> tuple[str, int]:
    """Upload ``path`` with tuspy in CHUNK-sized PATCHes; (upload id, chunks sent)."""
    client = TusClient(f"{server.base_url}/api/v1/uploads", headers=owner.key_headers)
    chunks = 0
    with path.open("rb") as stream:
        uploader = client.uploader(
            file_stream=stream, chunk_size=CHUNK, metadata={"filename": path.name}
        )
        while uploader.offset < uploader.get_file_size():
            uploader.upload_chunk()
            chunks += 1
    assert uploader.url is not None
    return uploader.url.rstrip("/").rsplit("/", 1)[-1], chunks


def until(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> Any:
    """Poll the API's own view of a state until ``done`` holds, within READY_TIMEOUT_S."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    body = fetch()
    while not done(body):
        assert time.monotonic() < deadline, f"never got there: {body}"
        time.sleep(0.2)  # a poll interval: the loop checks the state each time
        body = fetch()
    return body


def decode(url: str) -> tuple[int, str]:
    """Decode every frame ffmpeg finds at ``url``; (exit code, what it said)."""
    done = subprocess.run(
        [ffmpeg_path(), "-nostdin", "-v", "error", "-i", url, "-map", "0", "-f", "null", "-"],
        capture_output=True,
        timeout=180,
    )
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def variants(master_url: str, text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines()]
    return [urljoin(master_url, line) for line in lines if line and not line.startswith("#")]


def create_video(api: httpx.Client, owner: Owner, upload_id: str, title: str) -> dict[str, Any]:
    made = api.post(
        f"/api/v1/accounts/{owner.account_id}/contents",
        json={"kind": "video", "title": title, "caption": "秋天的第一杯", "upload_id": upload_id},
        headers=owner.key_headers,
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def test_a_1080p_clip_sent_in_chunks_becomes_a_published_video_fans_find(
    server: Server, tmp_path: Path, page: Page
) -> None:
    clip = make_clip(tmp_path / "launch.mp4", size="1920x1080", seconds=3.0)
    with httpx.Client(base_url=server.base_url, timeout=30) as api:
        owner = sign_up_api(api)
        follower = mint_fan(api, owner.account_id, owner.api_key, "follower")
        stranger = mint_fan(api, owner.account_id, owner.api_key, "stranger")
        follow(api, owner.account_id, follower["token"])

        upload_id, chunks = tus_upload(server, owner, clip)
        assert chunks >= 2 and chunks == -(-clip.stat().st_size // CHUNK)
        made = create_video(api, owner, upload_id, "秋季新品试饮")
        url = f"/api/v1/contents/{made['id']}"
        assert made["media"]["state"] == "processing"
        went = api.post(f"{url}/publish", json={}, headers=owner.key_headers)
        assert went.json()["status"] in ("pending_media", "published"), went.text
        progress: list[float] = []

        def fetch() -> dict[str, Any]:
            body: dict[str, Any] = api.get(url, headers=owner.key_headers).json()
            progress.append(body["media"]["progress"])
            return body

        ready = until(fetch, lambda b: b["status"] == "published")
        assert progress == sorted(progress), "progress went back"
        media = ready["media"]
        assert media["state"] == "ready" and media["progress"] == 1.0
        assert [r["height"] for r in media["renditions"]] == [1080, 720, 480, 360]
        assert 2.9 <= media["duration_s"] <= 3.2

        # The ladder decodes cleanly, each rendition from what the server serves.
        master_url = f"{server.base_url}{media['hls_url']}"
        master = api.get(master_url)
        assert master.status_code == 200 and master.text.startswith("#EXTM3U")
        playlists = variants(master_url, master.text)
        assert len(playlists) == 4
        for playlist in playlists:
            code, said = decode(playlist)
            assert code == 0 and said.strip() == "", (playlist, said)
        code, said = decode(f"{server.base_url}{media['mp4_url']}")
        assert code == 0 and said.strip() == "", said
        poster = api.get(media["poster_url"])
        assert poster.status_code == 200
        assert jpeg_size(poster.content) == (1920, 1080)

        # It plays in Chromium from its page (hls.js picks a rung for the player's size).
        page.goto(f"/c/{made['id']}")
        page.evaluate(
            "() => { const v = document.getElementById('player'); v.muted = true; v.play(); }"
        )
        page.wait_for_function(
            "() => document.getElementById('player').currentTime > 1.0", timeout=30_000
        )
        played = page.evaluate(
            "() => { const v = document.getElementById('player');"
            " return [v.dataset.player, v.videoWidth > 0, v.error && v.error.code]; }"
        )
        assert played == ["hls.js", True, None]

        # Found by two characters, in the account's feed and in its follower's feed only.
        found = api.get("/api/v1/search", params={"q": "新品"}).json()
        assert made["id"] in [c["id"] for c in found["contents"]]
        feed = api.get(f"/api/v1/accounts/{owner.account_id}/contents").json()
        assert [c["id"] for c in feed["items"]] == [made["id"]]
        mine = api.get("/api/v1/me/feed", headers=bearer(follower["token"])).json()
        assert made["id"] in [c["id"] for c in mine["items"]]
        theirs = api.get("/api/v1/me/feed", headers=bearer(stranger["token"])).json()
        assert made["id"] not in [c["id"] for c in theirs["items"]]


def truncated(tmp_path: Path) -> bytes:
    """A faststart MP4 cut in the middle: its index promises more than the bytes hold."""
    whole = make_clip(
        tmp_path / "whole.mp4", size="640x360", seconds=4.0, extra=("-movflags", "+faststart")
    )
    data = whole.read_bytes()
    return data[: len(data) // 2]


def png(tmp_path: Path) -> bytes:
    path = tmp_path / "photo.png"
    subprocess.run(
        [
            ffmpeg_path(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240",
            "-frames:v",
            "1",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path.read_bytes()


BAD = {
    "random bytes": (lambda _: bytes(range(256)) * 256, "not_a_video"),
    "a truncated file": (truncated, "corrupt"),
    "an empty file": (lambda _: b"", "empty"),
    "an image sent as a video": (png, "not_a_video"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_upload_ends_in_a_clear_error_and_nothing_is_published(
    server: Server, tmp_path: Path, case: str
) -> None:
    make, code = BAD[case]
    path = tmp_path / "upload.mp4"
    path.write_bytes(make(tmp_path))
    with httpx.Client(base_url=server.base_url, timeout=30) as api:
        owner = sign_up_api(api)
        if path.stat().st_size:
            upload_id, _ = tus_upload(server, owner, path)
        else:
            made = api.post(
                "/api/v1/uploads",
                headers={**owner.key_headers, "Tus-Resumable": "1.0.0", "Upload-Length": "0"},
            )
            assert made.status_code == 201, made.text
            upload_id = made.headers["location"].rsplit("/", 1)[-1]
        content = create_video(api, owner, upload_id, "不该发出")
        url = f"/api/v1/contents/{content['id']}"
        went = api.post(f"{url}/publish", json={}, headers=owner.key_headers)
        # The probe may have refused the file already (then publishing is refused, saying
        # why), or the publish waits for a verdict that comes after.
        if went.status_code == 409:
            assert went.json()["code"] == "media_failed", went.text
        else:
            assert went.json()["status"] == "pending_media", went.text
        failed = until(
            lambda: api.get(url, headers=owner.key_headers).json(),
            lambda b: b["media"]["state"] != "processing",
        )
        assert failed["media"]["state"] == "failed", failed
        assert failed["media"]["error_code"] == code, failed["media"]
        assert "upload" in failed["media"]["error"]  # it says what to do next
        assert failed["status"] != "published"
        assert api.get(url).status_code == 404  # not visible to anyone outside the account
        feed = api.get(f"/api/v1/accounts/{owner.account_id}/contents").json()
        assert feed["items"] == []
        assert api.get("/healthz").status_code == 200


def test_an_over_limit_upload_is_refused_before_a_byte_is_stored(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as api:
        owner = sign_up_api(api)
        limit = int(api.options("/api/v1/uploads").headers["Tus-Max-Size"])
        stored = sorted((server.data_dir / "media").rglob("upl_*"))
        r = api.post(
            "/api/v1/uploads",
            headers={
                **owner.key_headers,
                "Tus-Resumable": "1.0.0",
                "Upload-Length": str(limit + 1),
            },
        )
        assert r.status_code == 413, r.text
        problem = r.json()
        assert r.headers["content-type"] == "application/problem+json"
        assert problem["field"] == "Upload-Length" and str(limit) in problem["detail"]
        assert sorted((server.data_dir / "media").rglob("upl_*")) == stored
        assert api.get("/healthz").status_code == 200


def test_killing_the_server_mid_transcode_and_starting_it_again_completes_the_video(
    servers: Servers, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = servers.start(data)
    clip = make_clip(tmp_path / "long.mp4", size="1920x1080", seconds=12.0)
    with httpx.Client(base_url=first.base_url, timeout=30) as api:
        owner = sign_up_api(api)
        upload_id, _ = tus_upload(first, owner, clip)
        made = create_video(api, owner, upload_id, "断电也不怕")
        url = f"/api/v1/contents/{made['id']}"
        api.post(f"{url}/publish", json={}, headers=owner.key_headers)
        midway = until(
            lambda: api.get(url, headers=owner.key_headers).json(),
            lambda b: b["media"]["progress"] >= 0.1 or b["media"]["state"] != "processing",
        )
    assert midway["media"]["state"] == "processing", "the transcode ended before the kill"
    encoding = children(first.process.pid, named="ffmpeg")
    assert encoding, "no ffmpeg was running"
    first.process.kill()  # SIGKILL: no clean shutdown, the lease is left held
    first.process.wait(10)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in encoding):  # they die with it
        assert time.monotonic() < deadline, "ffmpeg outlived its server"
        time.sleep(0.05)

    again = servers.start(data)
    with httpx.Client(base_url=again.base_url, timeout=30) as api:
        seen: list[float] = []

        def fetch() -> dict[str, Any]:
            body: dict[str, Any] = api.get(url, headers=owner.key_headers).json()
            seen.append(body["media"]["progress"])
            return body

        done = until(fetch, lambda b: b["status"] == "published")
        assert done["media"]["state"] == "ready"
        assert seen[0] >= midway["media"]["progress"] and seen == sorted(seen)
        code, said = decode(f"{again.base_url}{done['media']['mp4_url']}")
        assert code == 0 and said.strip() == "", said
        assert 11.9 <= done["media"]["duration_s"] <= 12.2
