from __future__ import annotations

from accounts.accounts import Account
from content.contents import MediaState, Status, create_content, get_content
from content.publishing import media_failed, media_ready, publish
from content.sensitive import ReviewPolicy
from store.sqlite import SQLiteStore
from tests.content.conftest import NOW

READY = {
    "hls_url": "/media/videos/a/hls/master.m3u8",
    "mp4_url": "/media/videos/a/video.mp4",
    "poster_url": "/media/videos/a/poster.jpg",
    "duration_s": 2.0,
    "renditions": [{"height": 360, "bitrate": 928000}],
}


async def test_a_late_failure_never_undoes_a_ready_video(
    store: SQLiteStore, account: Account, policy: ReviewPolicy
) -> None:
    upload = "upl_01m8aaaaaaaaaaaaaaaaaaaaaa"
    content = await create_content(
        store, account.id, {"kind": "video", "title": "t", "upload_id": upload}, now=NOW
    )
    await publish(store, content.id, policy=policy, now=NOW)
    await media_ready(store, content.id, READY, policy=policy, upload_id=upload, now=NOW)
    await media_failed(store, content.id, error="a stale run failed", upload_id=upload, now=NOW)
    other = dict(READY, hls_url="/media/videos/b/hls/master.m3u8")
    await media_ready(store, content.id, other, policy=policy, upload_id=upload, now=NOW)
    after = await get_content(store, content.id)
    assert after.status is Status.PUBLISHED
    assert after.media is not None and after.media.state is MediaState.READY
    assert after.media.hls_url == READY["hls_url"]
