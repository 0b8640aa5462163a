"""Live rooms on the embedded engine (live/rooms.py): creation and its checks, the stream key
(shown once, stored as a digest, compared in constant time, rotated), the state machine that
only moves forward, the account's "live now", the grace period after the publisher leaves,
and the races: sweeps that end each room once, viewer reports that keep the maximum."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from accounts import schema as accounts_schema
from accounts.accounts import Account, create_account, get_account
from accounts.errors import Conflict, DomainError, Invalid, NotFound, Unauthorized
from content import schema as content_schema
from content.contents import create_content
from content.uploads import Uploads
from live import rooms
from live import schema as live_schema
from live.rooms import EndReason, Room, State
from media.blobs import BlobStore
from store.clock import rfc3339
from store.sqlite import SQLiteStore
from tests.content.conftest import make_upload

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
GRACE = timedelta(seconds=30)
INDEXES = [*accounts_schema.INDEXES, *content_schema.INDEXES, *live_schema.INDEXES]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    engine = SQLiteStore(tmp_path / "live.db")
    await engine.ensure_indexes(INDEXES)
    yield engine
    await engine.close()


@pytest.fixture
async def threaded_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """Each connection on its own thread, so racing callers interleave at every await (the
    inline engine runs one caller's statements back to back and would hide a missing guard)."""
    engine = SQLiteStore(tmp_path / "threaded.db", synchronous="FULL")
    await engine.ensure_indexes(INDEXES)
    yield engine
    await engine.close()


@pytest.fixture
async def account(store: SQLiteStore) -> Account:
    return await create_account(store, name="Tea House", handle="tea-house", now=NOW)


async def make_room(store: SQLiteStore, account: Account, **extra: Any) -> Room:
    return await rooms.create_room(store, account.id, title="新品直播", now=NOW, **extra)


async def stored(store: SQLiteStore, room_id: str) -> dict[str, Any]:
    doc = await store.collection(rooms.ROOMS).get(room_id)
    assert doc is not None
    return doc


# -- creation -------------------------------------------------------------------------------


async def test_a_room_is_scheduled_with_a_key_shown_once(
    store: SQLiteStore, account: Account
) -> None:
    at = NOW + timedelta(days=2)
    room = await make_room(
        store, account, scheduled_at=rfc3339(at), cover="https://cdn.example/c.jpg"
    )
    assert room.id.startswith("room_") and room.state is State.SCHEDULED
    assert (room.title, room.cover, room.scheduled_at) == (
        "新品直播",
        "https://cdn.example/c.jpg",
        rfc3339(at),
    )
    assert (room.started_at, room.ended_at, room.ended_reason, room.peak_viewers) == (
        None,
        None,
        None,
        0,
    )
    key = room.stream_key
    prefix = f"lsk_{room.id.removeprefix('room_')}_"
    assert key is not None and key.startswith(prefix)
    secret = key.removeprefix(prefix)
    assert len(secret) == 43  # 256 random bits, base64url
    # Stored: its digest only. Read back: no key at all.
    raw = json.dumps(await stored(store, room.id))
    assert key not in raw and secret not in raw
    again = await rooms.get_room(store, room.id)
    assert again.stream_key is None and again == Room(**{**room.__dict__, "stream_key": None})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "t" * 61}, "title"),
        ({"title": "a\x00b"}, "title"),
        ({"title": 5}, "title"),
        ({"cover": "ftp://cdn.example/c.jpg"}, "cover"),
        ({"cover": "https://"}, "cover"),
        ({"cover": "not an id"}, "cover"),
        ({"cover": 7}, "cover"),
        ({"scheduled_at": "tomorrow"}, "scheduled_at"),
        ({"scheduled_at": "2026-11-27T08:00:00"}, "scheduled_at"),  # no offset
        ({"scheduled_at": rfc3339(NOW - timedelta(minutes=1))}, "scheduled_at"),  # passed
        ({"scheduled_at": rfc3339(NOW + timedelta(days=366))}, "scheduled_at"),  # > a year
    ],
)
async def test_bad_rooms_name_the_field_and_write_nothing(
    store: SQLiteStore, account: Account, changes: dict[str, Any], field: str
) -> None:
    body: dict[str, Any] = {"title": "新品直播", **changes}
    with pytest.raises(Invalid) as err:
        await rooms.create_room(store, account.id, **body, now=NOW)
    assert err.value.field == field
    assert await store.collection(rooms.ROOMS).count({}) == 0


async def test_a_schedule_a_year_ahead_is_taken(store: SQLiteStore, account: Account) -> None:
    room = await make_room(store, account, scheduled_at=rfc3339(NOW + timedelta(days=365)))
    assert room.scheduled_at == "2027-11-26T08:00:00.000Z"


async def test_a_cover_upload_must_be_the_accounts_and_complete(
    store: SQLiteStore, account: Account, tmp_path: Path
) -> None:
    blobs = BlobStore(tmp_path / "media", "/media")
    mine = await make_upload(store, blobs, account)
    room = await make_room(store, account, cover=mine)
    assert room.cover == mine
    other = await create_account(store, name="Coffee", handle="coffee", now=NOW)
    theirs = await make_upload(store, blobs, other)
    half = await Uploads(store, blobs, max_size=1 << 20).create(
        account_id=account.id, created_by="stf_x", length=10, metadata={}, now=NOW
    )
    for cover, kind in ((theirs, NotFound), ("upl_00000000unknown", NotFound), (half.id, Conflict)):
        with pytest.raises(kind) as err:
            await make_room(store, account, cover=cover)
        assert err.value.field == "cover"
    assert await store.collection(rooms.ROOMS).count({}) == 1


async def test_a_room_needs_an_account(store: SQLiteStore) -> None:
    with pytest.raises(NotFound):
        await rooms.create_room(store, "acc_missing", title="x", now=NOW)
    with pytest.raises(NotFound) as err:
        await rooms.get_room(store, "room_missing")
    assert err.value.code == "room_not_found"


# -- the stream key -------------------------------------------------------------------------


async def test_the_stream_key_opens_its_room_only(store: SQLiteStore, account: Account) -> None:
    room = await make_room(store, account)
    other = await make_room(store, account)
    assert room.stream_key and other.stream_key
    assert (await rooms.check_stream_key(store, room.id, room.stream_key)).id == room.id
    for key, code in (
        (None, "stream_key_required"),
        ("", "stream_key_required"),
        (other.stream_key, "stream_key_invalid"),  # another room's key
        (room.stream_key[:-1], "stream_key_invalid"),
        (room.stream_key + "x", "stream_key_invalid"),
        ("lak_" + room.stream_key[4:], "stream_key_invalid"),
        ("ключ", "stream_key_invalid"),
    ):
        with pytest.raises(Unauthorized) as err:
            await rooms.check_stream_key(store, room.id, key)
        assert (err.value.status, err.value.code, err.value.field) == (401, code, "Authorization")
        assert room.stream_key not in err.value.detail
    # An unknown room is 404 whatever the key, and says nothing about keys.
    with pytest.raises(NotFound) as missing:
        await rooms.check_stream_key(store, "room_missing", room.stream_key)
    assert missing.value.status == 404 and "key" not in missing.value.detail


async def test_the_key_check_compares_fixed_length_digests(
    store: SQLiteStore, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Constant time: every guess, however long or close, reaches ``hmac.compare_digest``
    (through ``accounts.tokens.same``) as a 64-hex digest against the stored one, so the time
    taken cannot tell how much of a guess was right."""
    room = await make_room(store, account)
    assert room.stream_key
    compared: list[tuple[str, str]] = []
    real = rooms.same

    def spy(given: str, expected: str) -> bool:
        compared.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr(rooms, "same", spy)
    guesses = [room.stream_key[:-1] + "A", "x", "lsk_" + "a" * 500, room.stream_key]
    for guess in guesses:
        try:
            await rooms.check_stream_key(store, room.id, guess)
        except Unauthorized:
            pass
    assert len(compared) == len(guesses)
    stored_digest = (await stored(store, room.id))["stream_key_digest"]
    for given, expected in compared:
        assert expected == stored_digest
        assert len(given) == len(expected) == 64 and int(given, 16) >= 0


async def test_rotation_replaces_the_key_at_once(store: SQLiteStore, account: Account) -> None:
    room = await make_room(store, account)
    rotated = await rooms.rotate_stream_key(store, room.id, now=NOW)
    assert rotated.stream_key and rotated.stream_key != room.stream_key
    assert rotated.stream_key.startswith(f"lsk_{room.id.removeprefix('room_')}_")
    with pytest.raises(Unauthorized):
        await rooms.check_stream_key(store, room.id, room.stream_key)
    assert (await rooms.check_stream_key(store, room.id, rotated.stream_key)).id == room.id
    # A live room's key rotates too (a leaked key mid-live); an ended room's does not.
    await rooms.go_live(store, room.id, now=NOW)
    live = await rooms.rotate_stream_key(store, room.id, now=NOW)
    await rooms.end_room(store, room.id, reason=EndReason.HOST, now=NOW)
    with pytest.raises(Conflict) as err:
        await rooms.rotate_stream_key(store, room.id, now=NOW)
    assert err.value.code == "room_ended"
    assert (await rooms.check_stream_key(store, room.id, live.stream_key)).state is State.ENDED
    with pytest.raises(NotFound):
        await rooms.rotate_stream_key(store, "room_missing", now=NOW)


# -- the state machine ----------------------------------------------------------------------


async def test_a_room_goes_live_then_ends_and_never_back(
    store: SQLiteStore, account: Account
) -> None:
    room = await make_room(store, account)
    live = await rooms.go_live(store, room.id, now=NOW)
    assert (live.state, live.started_at) == (State.LIVE, rfc3339(NOW))
    assert (await get_account(store, account.id)).live_room_id == room.id
    again = await rooms.go_live(store, room.id, now=NOW + timedelta(minutes=5))
    assert again.started_at == rfc3339(NOW)  # a live room stays as it is
    end_at = NOW + timedelta(hours=1)
    ended = await rooms.end_room(store, room.id, reason=EndReason.HOST, now=end_at)
    assert (ended.state, ended.ended_at, ended.ended_reason) == (
        State.ENDED,
        rfc3339(end_at),
        EndReason.HOST,
    )
    assert (await get_account(store, account.id)).live_room_id is None
    # Ending again answers the room as it ended.
    repeat = await rooms.end_room(store, room.id, reason=EndReason.API, now=end_at + GRACE)
    assert repeat == ended
    for move in (
        rooms.go_live(store, room.id, now=end_at),
        rooms.publisher_back(store, room.id),
        rooms.edit_room(store, room.id, {"title": "x"}, now=end_at),
    ):
        with pytest.raises(Conflict) as err:
            await move
        assert err.value.code == "room_ended"
    assert (await rooms.get_room(store, room.id)).state is State.ENDED


async def test_a_scheduled_room_can_be_called_off(store: SQLiteStore, account: Account) -> None:
    room = await make_room(store, account)
    ended = await rooms.end_room(store, room.id, reason=EndReason.API, now=NOW)
    assert (ended.state, ended.started_at, ended.ended_reason) == (
        State.ENDED,
        None,
        EndReason.API,
    )
    with pytest.raises(NotFound):
        await rooms.end_room(store, "room_missing", reason=EndReason.API, now=NOW)


async def test_racing_go_lives_start_the_room_once(
    threaded_store: SQLiteStore,
) -> None:
    account = await create_account(threaded_store, name="Tea", handle="tea-race", now=NOW)
    room = await make_room(threaded_store, account)
    moments = [NOW + timedelta(seconds=i) for i in range(8)]
    answers = await asyncio.gather(
        *(rooms.go_live(threaded_store, room.id, now=m) for m in moments)
    )
    assert len({a.started_at for a in answers}) == 1


async def test_live_now_follows_the_latest_live_room(store: SQLiteStore, account: Account) -> None:
    first, second = await make_room(store, account), await make_room(store, account)
    await rooms.go_live(store, first.id, now=NOW)
    await rooms.go_live(store, second.id, now=NOW + timedelta(minutes=1))
    assert (await get_account(store, account.id)).live_room_id == second.id
    await rooms.end_room(store, second.id, reason=EndReason.HOST, now=NOW + timedelta(hours=1))
    assert (await get_account(store, account.id)).live_room_id == first.id
    # A scheduled room called off leaves "live now" alone.
    third = await make_room(store, account)
    await rooms.end_room(store, third.id, reason=EndReason.HOST, now=NOW + timedelta(hours=1))
    assert (await get_account(store, account.id)).live_room_id == first.id
    await rooms.end_room(store, first.id, reason=EndReason.HOST, now=NOW + timedelta(hours=2))
    assert (await get_account(store, account.id)).live_room_id is None


async def test_edits_follow_the_state(store: SQLiteStore, account: Account) -> None:
    room = await make_room(store, account, cover="https://cdn.example/a.jpg")
    at = rfc3339(NOW + timedelta(days=1))
    edited = await rooms.edit_room(
        store, room.id, {"title": " 新品  直播 ", "scheduled_at": at, "cover": None}, now=NOW
    )
    assert (edited.title, edited.scheduled_at, edited.cover) == ("新品 直播", at, None)
    cleared = await rooms.edit_room(store, room.id, {"scheduled_at": None}, now=NOW)
    assert cleared.scheduled_at is None and cleared.title == "新品 直播"
    for body, field in (
        ({"title": ""}, "title"),
        ({"scheduled_at": "soon"}, "scheduled_at"),
        ({"cover": "ftp://x/y"}, "cover"),
        ({"stream_key": "x"}, "stream_key"),
    ):
        with pytest.raises(Invalid) as err:
            await rooms.edit_room(store, room.id, body, now=NOW)
        assert err.value.field == field
    assert await rooms.get_room(store, room.id) == cleared
    await rooms.go_live(store, room.id, now=NOW)
    retitled = await rooms.edit_room(store, room.id, {"title": "改名"}, now=NOW)
    assert retitled.title == "改名" and retitled.state is State.LIVE
    with pytest.raises(Conflict) as late:
        await rooms.edit_room(store, room.id, {"scheduled_at": at}, now=NOW)
    assert (late.value.code, late.value.field) == ("room_not_scheduled", "scheduled_at")


# -- the publisher's absence and the grace period -------------------------------------------


async def test_a_room_ends_after_the_grace_period_only(
    store: SQLiteStore, account: Account
) -> None:
    room = await make_room(store, account)
    await rooms.go_live(store, room.id, now=NOW)
    await rooms.publisher_back(store, room.id)
    gone = await rooms.publisher_gone(store, room.id, at=NOW)
    assert gone.publisher_gone_at == rfc3339(NOW)
    # Reported again later: the first departure counts, the grace is not lengthened.
    await rooms.publisher_gone(store, room.id, at=NOW + timedelta(seconds=20))
    assert await rooms.end_abandoned(store, now=NOW + GRACE, grace=GRACE) == []
    assert (await rooms.get_room(store, room.id)).state is State.LIVE
    later = NOW + GRACE + timedelta(seconds=1)
    [ended] = await rooms.end_abandoned(store, now=later, grace=GRACE)
    assert (ended.id, ended.state, ended.ended_reason, ended.ended_at) == (
        room.id,
        State.ENDED,
        EndReason.PUBLISHER_GONE,
        rfc3339(later),
    )
    assert (await get_account(store, account.id)).live_room_id is None
    assert await rooms.end_abandoned(store, now=later, grace=GRACE) == []


async def test_a_publisher_back_in_time_keeps_the_room_live(
    store: SQLiteStore, account: Account
) -> None:
    room = await make_room(store, account)
    with pytest.raises(Conflict) as early:
        await rooms.publisher_back(store, room.id)
    assert early.value.code == "room_not_live"
    # A scheduled room has no publisher to lose.
    assert (await rooms.publisher_gone(store, room.id, at=NOW)).publisher_gone_at is None
    await rooms.go_live(store, room.id, now=NOW)
    # A room opened without video has no publisher to lose.
    assert (await rooms.publisher_gone(store, room.id, at=NOW)).publisher_gone_at is None
    await rooms.publisher_back(store, room.id)
    await rooms.publisher_gone(store, room.id, at=NOW)
    back = await rooms.publisher_back(store, room.id)
    assert back.publisher_gone_at is None and back.state is State.LIVE
    assert await rooms.end_abandoned(store, now=NOW + timedelta(hours=1), grace=GRACE) == []
    # A chat-only room (started without video) never had a publisher, and stays open.
    chat = await make_room(store, account)
    await rooms.go_live(store, chat.id, now=NOW)
    assert await rooms.end_abandoned(store, now=NOW + timedelta(days=1), grace=GRACE) == []
    with pytest.raises(NotFound):
        await rooms.publisher_gone(store, "room_missing", at=NOW)


async def test_a_start_after_a_crash_counts_publishers_gone_but_not_chat_only_rooms(
    store: SQLiteStore, account: Account
) -> None:
    # Before the crash: one room with its publisher on, one whose publisher left a moment
    # before, one opened without video, one ended.
    on, left, chat, ended = [await make_room(store, account) for _ in range(4)]
    for room in (on, left, chat, ended):
        await rooms.go_live(store, room.id, now=NOW)
    for room in (on, left, ended):
        await rooms.publisher_back(store, room.id)
    await rooms.publisher_gone(store, left.id, at=NOW - timedelta(seconds=10))
    await rooms.end_room(store, ended.id, reason=EndReason.HOST, now=NOW)

    waiting = await rooms.publishers_lost(store, at=NOW)
    assert sorted(waiting) == sorted([on.id, left.id])
    assert (await rooms.get_room(store, on.id)).publisher_gone_at == rfc3339(NOW)
    # The earlier departure keeps its time: a restart does not lengthen the grace period.
    earlier = rfc3339(NOW - timedelta(seconds=10))
    assert (await rooms.get_room(store, left.id)).publisher_gone_at == earlier
    assert (await rooms.get_room(store, chat.id)).publisher_gone_at is None
    swept = await rooms.end_abandoned(store, now=NOW + GRACE + timedelta(seconds=1), grace=GRACE)
    assert sorted(r.id for r in swept) == sorted([on.id, left.id])
    assert (await rooms.get_room(store, chat.id)).state is State.LIVE
    # A second start finds nothing more to mark.
    assert await rooms.publishers_lost(store, at=NOW + timedelta(hours=1)) == []


async def test_racing_sweeps_end_each_room_once(threaded_store: SQLiteStore) -> None:
    account = await create_account(threaded_store, name="Tea", handle="tea-sweep", now=NOW)
    made = [await make_room(threaded_store, account) for _ in range(12)]
    for room in made:
        await rooms.go_live(threaded_store, room.id, now=NOW)
        await rooms.publisher_back(threaded_store, room.id)
        await rooms.publisher_gone(threaded_store, room.id, at=NOW)
    later = NOW + timedelta(minutes=5)
    sweeps = await asyncio.gather(
        *(rooms.end_abandoned(threaded_store, now=later, grace=GRACE) for _ in range(4)),
        rooms.end_room(threaded_store, made[0].id, reason=EndReason.HOST, now=later),
    )
    *swept, by_host = sweeps
    ended_ids = [room.id for sweep in swept for room in sweep]
    assert len(ended_ids) == len(set(ended_ids))  # none ended twice
    expected = {r.id for r in made}
    if by_host.ended_reason is EndReason.HOST:  # the host won the race for its room
        expected.discard(made[0].id)
    assert set(ended_ids) == expected
    for room in made:
        assert (await rooms.get_room(threaded_store, room.id)).state is State.ENDED
    assert (await get_account(threaded_store, account.id)).live_room_id is None


# -- replay and viewers ----------------------------------------------------------------------


async def test_the_replay_links_an_ended_room_to_its_accounts_video(
    store: SQLiteStore, account: Account
) -> None:
    room = await make_room(store, account)
    body = {"kind": "video", "title": "回放", "upload_id": "upl_0123456789"}
    mine = await create_content(store, account.id, body, now=NOW)
    article = {"kind": "article", "title": "回放", "blocks": [{"type": "paragraph", "text": "x"}]}
    not_a_video = await create_content(store, account.id, article, now=NOW)
    with pytest.raises(Conflict) as early:
        await rooms.set_replay(store, room.id, mine.id)
    assert early.value.code == "room_not_ended"
    await rooms.end_room(store, room.id, reason=EndReason.HOST, now=NOW)
    other = await create_account(store, name="Coffee", handle="coffee", now=NOW)
    theirs = await create_content(store, other.id, body, now=NOW)
    for content_id in (theirs.id, not_a_video.id):
        with pytest.raises(Invalid) as wrong:
            await rooms.set_replay(store, room.id, content_id)
        assert wrong.value.field == "content_id"
    with pytest.raises(NotFound) as missing:
        await rooms.set_replay(store, room.id, "cnt_missing")
    assert missing.value.field == "content_id"
    assert (await rooms.set_replay(store, room.id, mine.id)).replay_content_id == mine.id


async def test_peak_viewers_keep_the_largest_report(store: SQLiteStore, account: Account) -> None:
    room = await make_room(store, account)
    await rooms.go_live(store, room.id, now=NOW)
    assert (await rooms.record_viewers(store, room.id, 7)).peak_viewers == 7
    assert (await rooms.record_viewers(store, room.id, 3)).peak_viewers == 7
    assert (await rooms.record_viewers(store, room.id, 0)).peak_viewers == 7
    for bad in (-1, 1.5, "9", True, None):
        with pytest.raises(Invalid) as err:
            await rooms.record_viewers(store, room.id, bad)
        assert err.value.field == "viewers"
    await rooms.end_room(store, room.id, reason=EndReason.HOST, now=NOW)
    assert (await rooms.record_viewers(store, room.id, 99)).peak_viewers == 7  # a late report


async def test_racing_viewer_reports_keep_the_maximum(threaded_store: SQLiteStore) -> None:
    account = await create_account(threaded_store, name="Tea", handle="tea-peak", now=NOW)
    room = await make_room(threaded_store, account)
    await rooms.go_live(threaded_store, room.id, now=NOW)
    reports = random.Random(5).sample(range(1, 10_000), 40)
    await asyncio.gather(*(rooms.record_viewers(threaded_store, room.id, n) for n in reports))
    assert (await rooms.get_room(threaded_store, room.id)).peak_viewers == max(reports)


# -- listing ---------------------------------------------------------------------------------


async def test_an_accounts_rooms_list_live_then_soonest_then_newest_ended(
    store: SQLiteStore, account: Account
) -> None:
    def at(hours: int) -> str:
        return rfc3339(NOW + timedelta(hours=hours))

    later = await make_room(store, account, scheduled_at=at(48))
    sooner = await make_room(store, account, scheduled_at=at(2))
    untimed = await make_room(store, account)
    old_live, new_live = await make_room(store, account), await make_room(store, account)
    await rooms.go_live(store, old_live.id, now=NOW)
    await rooms.go_live(store, new_live.id, now=NOW + timedelta(minutes=1))
    old_end, new_end = await make_room(store, account), await make_room(store, account)
    await rooms.end_room(store, old_end.id, reason=EndReason.HOST, now=NOW)
    await rooms.end_room(store, new_end.id, reason=EndReason.HOST, now=NOW + timedelta(hours=1))
    expected = [new_live, old_live, sooner, later, untimed, new_end, old_end]
    whole = await rooms.account_rooms(store, account.id, limit=100, cursor=None)
    assert [r.id for r in whole.items] == [r.id for r in expected]
    assert whole.next_cursor is None
    seen: list[str] = []
    cursor = None
    while True:
        page = await rooms.account_rooms(store, account.id, limit=2, cursor=cursor)
        seen += [r.id for r in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [r.id for r in expected]
    scheduled = await rooms.account_rooms(
        store, account.id, state=State.SCHEDULED, limit=100, cursor=None
    )
    assert [r.id for r in scheduled.items] == [sooner.id, later.id, untimed.id]
    # Moving a schedule moves the room in the list.
    await rooms.edit_room(store, later.id, {"scheduled_at": at(1)}, now=NOW)
    scheduled = await rooms.account_rooms(
        store, account.id, state=State.SCHEDULED, limit=100, cursor=None
    )
    assert [r.id for r in scheduled.items] == [later.id, sooner.id, untimed.id]
    with pytest.raises(NotFound):
        await rooms.account_rooms(store, "acc_missing", limit=1, cursor=None)


async def test_errors_are_domain_errors(store: SQLiteStore, account: Account) -> None:
    """What the WHIP, WHEP and HLS routes catch: every refusal is a DomainError with a status."""
    room = await make_room(store, account)
    await rooms.end_room(store, room.id, reason=EndReason.HOST, now=NOW)
    with pytest.raises(DomainError) as err:
        await rooms.go_live(store, room.id, now=NOW)
    assert err.value.status == 409
