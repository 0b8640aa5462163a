"""Routes of live rooms (DESIGN §8): schedule, read, list, edit, start, end, rotate the stream
key. The rules live in ``live.rooms``; the WHIP, WHEP and HLS routes call the same functions.

Every room is public, scheduled ones included: a schedule is an announcement, and the room's
page counts down to it. Only the stream key is secret; it is in the answers that create the
room or rotate its key, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from accounts.errors import Conflict, Forbidden
from accounts.staff import Role
from content.images import Image, ImageState, images_of, start_image
from live import moderation, rooms
from live.rooms import EndReason, Room, State
from media.live_ffmpeg import LiveSettings
from store.port import DocumentStore
from webapp import schemas_rooms as s
from webapp.api import ACCOUNT_PATH, STAFF_OR_KEY, Call, Endpoint, base_url
from webapp.api_contents import speaks_for
from webapp.auth import Caller, Kind
from webapp.content_view import absolute
from webapp.context import Services

HOST_ROLES = frozenset({Role.OWNER, Role.EDITOR, Role.HOST})
MODERATOR_ROLES = HOST_ROLES | {Role.MODERATOR}
R = "/api/v1/rooms/{room_id}"


def channel_base(configured: str, base: str, port: int) -> str:
    """Where viewers reach the room channel: ``configured`` (LIFEACCOUNT_CHANNEL_URL, a proxy's
    public wss:// base), else the deployment's host at the gateway's own port."""
    if configured:
        return configured.rstrip("/")
    parts = urlsplit("ws" + base.removeprefix("http"))  # http → ws, https → wss
    host = parts.hostname or "localhost"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{port}"


def room_urls(base: str, room_id: str, channel: str) -> dict[str, str]:
    """A room's absolute URLs on the deployment at ``base`` (``http(s)://host``), its channel
    at ``channel`` (``channel_base``)."""
    return {
        "whip_url": f"{base}/whip/{room_id}",
        "whep_url": f"{base}/whep/{room_id}",
        "hls_url": f"{base}/hls/{room_id}/index.m3u8",
        "channel_url": f"{channel}/api/v1/rooms/{room_id}/channel",
        "url": f"{base}/r/{room_id}",
    }


def urls_of(services: Services, base: str, room_id: str) -> dict[str, str]:
    channel = channel_base(services.settings.channel_url, base, services.channel_port)
    return room_urls(base, room_id, channel)


def cover_url(room: Room, base: str, images: Mapping[str, Image]) -> str | None:
    """A URL cover as it is; an upload's large image once resized, else none yet."""
    if room.cover is None or "://" in room.cover:
        return room.cover
    image = images.get(room.cover)
    if image is None or image.state is not ImageState.READY:
        return None
    return absolute(base, image.url)


async def rooms_out(call: Call, found: Sequence[Room]) -> list[s.RoomOut]:
    base = base_url(call.request, call.services.settings.base_url)
    covers = [r.cover for r in found if r.cover and "://" not in r.cover]
    images = await images_of(call.services.store, covers)
    out = []
    for room in found:
        one = s.RoomOut(
            id=room.id,
            account_id=room.account_id,
            state=room.state.value,
            title=room.title,
            cover=room.cover,
            cover_url=cover_url(room, base, images),
            scheduled_at=room.scheduled_at,
            started_at=room.started_at,
            ended_at=room.ended_at,
            ended_reason=room.ended_reason.value if room.ended_reason else None,
            replay_content_id=room.replay_content_id,
            peak_viewers=room.peak_viewers,
            likes=room.likes,
            pin_clicks=room.pin_clicks,
            chat=s.ChatRulesIO(
                mode=room.chat.mode.value,
                min_tier=room.chat.min_tier,
                slow_mode_s=room.chat.slow_mode_s,
            ),
            publisher_gone_at=room.publisher_gone_at,
            created_at=room.created_at,
            **urls_of(call.services, base, room.id),
        )
        if room.stream_key is not None:
            one.stream_key = room.stream_key
        out.append(one)
    return out


async def one_out(call: Call, room: Room) -> s.RoomOut:
    [out] = await rooms_out(call, [room])
    return out


async def _resize_cover(call: Call, room: Room) -> None:
    """An upload cover gets its resize queued, as a post's images do (once per upload)."""
    if room.cover is not None and "://" not in room.cover:
        await start_image(
            call.services.store,
            call.services.jobs,
            upload_id=room.cover,
            account_id=room.account_id,
            now=call.now,
        )


async def runs_rooms(store: DocumentStore, caller: Caller, account_id: str) -> bool:
    """Whether ``caller`` runs the account's rooms: its API key, or its staff as owner,
    editor or host (the WHIP route's session check, for the host page, is this too)."""
    return await speaks_for(store, caller, account_id, HOST_ROLES)


async def hosted(call: Call) -> Room:
    """The path's room, when the caller runs its account's rooms."""
    room = await rooms.get_room(call.services.store, call.params["room_id"])
    if await runs_rooms(call.services.store, call.caller, room.account_id):
        return room
    raise Forbidden(
        "only the account's owners, editors, hosts and API keys run its rooms",
        code="role_required",
    )


async def create_room(call: Call) -> s.RoomOut:
    body: s.RoomIn = call.body
    room = await rooms.create_room(
        call.services.store,
        call.params["account_id"],
        title=body.title,
        cover=body.cover,
        scheduled_at=body.scheduled_at,
        now=call.now,
    )
    await _resize_cover(call, room)
    return await one_out(call, room)


async def list_rooms(call: Call) -> s.RoomPageOut:
    q: s.RoomQuery = call.query
    page = await rooms.account_rooms(
        call.services.store,
        call.params["account_id"],
        state=State(q.state) if q.state else None,
        limit=q.limit,
        cursor=q.cursor,
    )
    return s.RoomPageOut(items=await rooms_out(call, page.items), next_cursor=page.next_cursor)


async def read_room(call: Call) -> s.RoomOut:
    return await one_out(call, await rooms.get_room(call.services.store, call.params["room_id"]))


async def edit_room(call: Call) -> s.RoomOut:
    body: s.RoomEditIn = call.body
    room = await hosted(call)
    edited = await rooms.edit_room(
        call.services.store, room.id, body.model_dump(exclude_unset=True), now=call.now
    )
    await _resize_cover(call, edited)
    return await one_out(call, edited)


async def told(services: Services, room: Room) -> None:
    """The room's viewers hear what it is now (its channel's ``room`` event)."""
    if services.channel is not None:
        await services.channel.room_changed(room)


async def start_room(call: Call) -> s.RoomOut:
    room = await hosted(call)
    started = await rooms.go_live(call.services.store, room.id, now=call.now)
    if room.state is not started.state:
        await told(call.services, started)
    return await one_out(call, started)


async def end_room(call: Call) -> s.RoomOut:
    room = await hosted(call)
    reason = EndReason.API if call.caller.kind is Kind.API_KEY else EndReason.HOST
    await rooms.end_room(call.services.store, room.id, reason=reason, now=call.now)
    ended = await rooms.get_room(call.services.store, room.id)
    if room.state is not ended.state:
        await told(call.services, ended)
    # This process's media for the room, if any, goes now; the recording becomes the replay.
    await call.services.live.close(room.id)
    return await one_out(call, await rooms.get_room(call.services.store, room.id))


async def rotate_stream_key(call: Call) -> s.RoomOut:
    room = await hosted(call)
    rotated = await rooms.rotate_stream_key(call.services.store, room.id, now=call.now)
    call.services.live.revoke_key(room.id)
    return await one_out(call, rotated)


async def room_health(call: Call) -> s.RoomHealthOut:
    room = await hosted(call)
    engine = call.services.live.engine(room.id)
    target = (engine.settings if engine is not None else LiveSettings()).segment_s
    if engine is None:
        return s.RoomHealthOut(
            room_id=room.id,
            state=room.state.value,
            publishing=False,
            video_codec=None,
            transcoding=False,
            packets={},
            keyframe_requests=0,
            seats=0,
            max_seats=call.services.live.max_seats,
            hls_segments=0,
            hls_target_s=target,
            hls_updated_s_ago=None,
        )
    stats = engine.stats()
    return s.RoomHealthOut(
        room_id=room.id,
        state=room.state.value,
        publishing=stats.live,
        video_codec=stats.video_codec,
        transcoding=stats.video_codec is not None and not stats.copies_video,
        packets=stats.packets,
        keyframe_requests=stats.keyframe_requests,
        seats=stats.seats,
        max_seats=stats.max_seats,
        hls_segments=stats.hls_segments,
        hls_target_s=target,
        hls_updated_s_ago=stats.hls_updated_s_ago,
    )


def speaker_of(caller: Caller) -> str:
    """Who did it, as audits and the channel name them: a staff id, or ``key:<id>``."""
    return f"key:{caller.id}" if caller.kind is Kind.API_KEY else caller.id


async def moderated_room(call: Call) -> Room:
    room = await rooms.get_room(call.services.store, call.params["room_id"])
    if await speaks_for(call.services.store, call.caller, room.account_id, MODERATOR_ROLES):
        return room
    raise Forbidden(
        "only the account's owners, editors, hosts, moderators and API keys moderate its chat",
        code="role_required",
    )


def _moderation_out(record: moderation.Record) -> s.ModerationOut:
    return s.ModerationOut(
        id=record.id,
        action=record.action.value,
        by=record.by,
        at=record.at,
        fan_id=record.fan_id,
        seq=record.seq,
        until=record.until,
    )


async def moderate(call: Call) -> s.ModerationOut:
    room = await moderated_room(call)
    body: s.ModerationIn = call.body
    channel = call.services.channel
    if channel is None:
        raise Conflict("the room channel is not running", code="channel_unavailable")
    asked = body.model_dump(exclude_none=True)
    return _moderation_out(await channel.moderate(room, speaker_of(call.caller), asked))


async def set_chat_rules(call: Call) -> s.RoomOut:
    room = await moderated_room(call)
    body: s.ChatRulesIO = call.body
    changed = await rooms.set_chat_rules(
        call.services.store,
        room.id,
        mode=body.mode,
        min_tier=body.min_tier,
        slow_mode_s=body.slow_mode_s,
        now=call.now,
    )
    await told(call.services, changed)
    return await one_out(call, changed)


async def moderation_log(call: Call) -> s.ModerationLogOut:
    room = await moderated_room(call)
    records = await moderation.history(call.services.store, room.id)
    return s.ModerationLogOut(items=[_moderation_out(r) for r in records])


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        f"{ACCOUNT_PATH}/rooms",
        create_room,
        "Schedule a live room",
        "rooms",
        response=s.RoomOut,
        body=s.RoomIn,
        status=201,
        allow=STAFF_OR_KEY,
        roles=HOST_ROLES,
        errors=(403, 404, 409, 422),
        description="The answer carries the room's `stream_key`, shown this once (rotate it "
        "to get a new one): a WHIP encoder sends it as `Authorization: Bearer <stream key>` "
        "to `whip_url`, and the first publish makes the room live. `cover` is an http(s) URL "
        "or a complete image upload of the account; `scheduled_at` is ahead, within a year.",
    ),
    Endpoint(
        "GET",
        f"{ACCOUNT_PATH}/rooms",
        list_rooms,
        "An account's rooms: live, then scheduled (soonest first), then ended (newest first)",
        "rooms",
        response=s.RoomPageOut,
        query=s.RoomQuery,
        errors=(400, 404, 422),
        description="Public, scheduled rooms included (a schedule is an announcement).",
    ),
    Endpoint(
        "GET",
        R,
        read_room,
        "A room: state, times, playback URLs, peak viewers, replay",
        "rooms",
        response=s.RoomOut,
        errors=(404,),
        description="Public. Never the stream key.",
    ),
    Endpoint(
        "PATCH",
        R,
        edit_room,
        "Change a room's title, cover or time",
        "rooms",
        response=s.RoomOut,
        body=s.RoomEditIn,
        allow=STAFF_OR_KEY,
        errors=(403, 404, 409, 422),
        description="Title and cover until the room ends (409 room_ended); scheduled_at while "
        "it is scheduled (409 room_not_scheduled).",
    ),
    Endpoint(
        "POST",
        f"{R}/start",
        start_room,
        "Open the room without video (e.g. a chat-only warm-up)",
        "rooms",
        response=s.RoomOut,
        allow=STAFF_OR_KEY,
        errors=(403, 404, 409),
        description="scheduled → live; a live room answers as it is; an ended room 409 "
        "room_ended (a room never goes back). A WHIP publish does the same.",
    ),
    Endpoint(
        "POST",
        f"{R}/end",
        end_room,
        "End the room",
        "rooms",
        response=s.RoomOut,
        allow=STAFF_OR_KEY,
        errors=(403, 404),
        description="Idempotent: an ended room answers as it ended. `ended_reason` is host "
        "(a staff session) or api (an API key); a room whose publisher stays away longer than "
        "the grace period (LIFEACCOUNT_LIVE_GRACE_S) ends on its own with publisher_gone.",
    ),
    Endpoint(
        "POST",
        f"{R}/stream-key",
        rotate_stream_key,
        "Rotate the room's stream key",
        "rooms",
        response=s.RoomOut,
        allow=STAFF_OR_KEY,
        errors=(403, 404, 409),
        description="The answer carries the new `stream_key`, shown this once; the old key "
        "stops working at once, and a publisher connected with it is let go (the room stays "
        "live for the grace period, for it to come back with the new key; the host page's "
        "session is not affected). An ended room answers 409 room_ended.",
    ),
    Endpoint(
        "GET",
        f"{R}/health",
        room_health,
        "What the server receives and serves for a room now",
        "rooms",
        response=s.RoomHealthOut,
        allow=STAFF_OR_KEY,
        errors=(403, 404),
        description="For the host page and monitoring: whether a publisher is connected, its "
        "video codec and whether it is encoded again, packets received, keyframes asked for, "
        "WebRTC seats taken, and how fresh the HLS playlist is.",
    ),
    Endpoint(
        "POST",
        f"{R}/moderation",
        moderate,
        "Moderate the room's chat",
        "rooms",
        response=s.ModerationOut,
        body=s.ModerationIn,
        allow=STAFF_OR_KEY,
        errors=(403, 404, 409, 422),
        description="`delete` one message (its `seq`), `mute` a fan in this room for `minutes`, "
        "`ban` a fan from every room of the account (`unban` lifts it), or `clear` the chat. "
        "Owners, editors, hosts and moderators, or the API key. Audited; the room's channel "
        "tells every viewer (a `moderation` event), and a muted or banned fan's chat is "
        "refused with `muted` / `banned`.",
    ),
    Endpoint(
        "GET",
        f"{R}/moderation",
        moderation_log,
        "The room's moderation log, newest first",
        "rooms",
        response=s.ModerationLogOut,
        allow=STAFF_OR_KEY,
        errors=(403, 404),
    ),
    Endpoint(
        "PUT",
        f"{R}/chat",
        set_chat_rules,
        "Set who may chat in the room, and how often",
        "rooms",
        response=s.RoomOut,
        body=s.ChatRulesIO,
        allow=STAFF_OR_KEY,
        errors=(403, 404, 409, 422),
        description="`all` signed-in fans, `followers` only, or members from `min_tier` up "
        "(`tier`); `slow_mode_s` spaces each fan's messages. The server enforces it on every "
        "message (followers_only, tier_required, rate_limited) and tells viewers (a `room` "
        "event). Owners, editors, hosts and moderators, or the API key; until the room ends.",
    ),
]
