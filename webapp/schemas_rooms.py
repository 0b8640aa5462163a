"""Request and response bodies of live rooms (DESIGN §8). The domain checks what a schema cannot
state (a schedule ahead but within a year, a cover upload of the room's account) and names the
field at fault; these models pin the shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from content.uploads import MAX_URL
from live.channel import MAX_CHAT
from live.rooms import MAX_TITLE
from webapp.schemas import In, Out, PageQuery

Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE, examples=["新品直播"])]
Cover = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL,
        description="an http(s) URL, or the id of a complete image upload of the account",
    ),
]
Time = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description="RFC 3339 with its offset; ahead, at most a year",
        json_schema_extra={"format": "date-time"},
        examples=["2026-12-01T12:00:00Z"],
    ),
]
RoomState = Literal["scheduled", "live", "ended"]


class RoomIn(In):
    title: Title
    cover: Cover | None = None
    scheduled_at: Time | None = None


class RoomEditIn(In):
    """Only the fields sent change; ``null`` clears a cover or a time."""

    title: Title | None = None
    cover: Cover | None = Field(None, description="until the room ends")
    scheduled_at: Time | None = Field(None, description="while the room is scheduled")


class ChatRulesIO(In):
    mode: Literal["all", "followers", "tier"] = Field(
        description="every signed-in fan, followers only, or members from min_tier up"
    )
    min_tier: int = Field(0, ge=0, le=100)
    slow_mode_s: int = Field(0, ge=0, le=600, description="a fan's messages at most this often")


class RoomOut(Out):
    id: str
    account_id: str
    state: RoomState
    title: str
    cover: str | None = Field(description="as set: a URL or an image upload id")
    cover_url: str | None = Field(
        description="the cover's URL (an upload's once it is resized), for pages and cards"
    )
    scheduled_at: str | None
    started_at: str | None
    ended_at: str | None
    ended_reason: Literal["host", "api", "publisher_gone"] | None
    replay_content_id: str | None = Field(description="the replay video, once processed")
    peak_viewers: int
    likes: int = Field(description="taps on the room's like button (the channel's like op)")
    pin_clicks: int = Field(description="clicks followed on the room's pinned cards")
    chat: ChatRulesIO
    publisher_gone_at: str | None = Field(
        description="while live: when the publisher left; the room ends if it is not back "
        "within the grace period"
    )
    whip_url: str = Field(description="WHIP ingest (RFC 9725); Bearer <stream key>")
    whep_url: str = Field(description="WHEP playback; a few seats per room")
    hls_url: str = Field(description="HLS playback, for everyone")
    channel_url: str = Field(description="the room channel websocket (DESIGN §5)")
    url: str = Field(description="the room's page, /r/{id}")
    created_at: str
    stream_key: str | None = Field(
        None,
        description="only in the answers that create the room or rotate its key: shown once",
    )


class RoomPageOut(Out):
    items: list[RoomOut]
    next_cursor: str | None


class RoomQuery(PageQuery):
    state: RoomState | None = Field(None, description="only rooms in this state")


class RoomHealthOut(Out):
    """What the server receives and serves for a live room now, for the host page and for
    monitoring; zeros and nulls when it holds no media for the room."""

    room_id: str
    state: RoomState
    publishing: bool = Field(description="a publisher is connected now")
    video_codec: str | None = Field(description="what the publisher sends: H264 or VP8")
    transcoding: bool = Field(
        description="the video is encoded again for HLS (VP8 in); H.264 is copied as it comes"
    )
    packets: dict[str, int] = Field(
        description="RTP packets received in the current publish session, by kind"
    )
    keyframe_requests: int = Field(
        description="keyframes asked of the publisher, about one per HLS segment"
    )
    seats: int = Field(description="WebRTC (WHEP) viewers now")
    max_seats: int
    hls_segments: int = Field(description="segments in the live playlist")
    hls_target_s: int = Field(description="the segment length HLS aims at")
    hls_updated_s_ago: float | None = Field(
        description="seconds since the playlist last gained a segment: far above "
        "hls_target_s while publishing, HLS viewers are stalled"
    )


class ModerationIn(In):
    action: Literal["delete", "mute", "ban", "unban", "clear"]
    fan_id: str | None = Field(None, max_length=64, description="mute, ban, unban")
    seq: int | None = Field(None, ge=1, description="delete: the message's seq")
    minutes: int | None = Field(None, ge=1, le=7 * 24 * 60, description="mute: how long")


class ModerationOut(Out):
    id: str
    action: str
    by: str = Field(description="the staff member's id, or key:<id> for an API key")
    at: str
    fan_id: str | None = None
    seq: int | None = None
    until: str | None = Field(None, description="mute: until when")


class ModerationLogOut(Out):
    items: list[ModerationOut]


class TicketOut(Out):
    ticket: str = Field(description='the hello\'s token: {"op": "hello", "token": ticket}')
    expires_at: str = Field(description="connect before this (a minute from now)")
    role: str = Field(description="what the room's chat shows beside the account's name")
    channel_url: str


# Each kind takes its own field and no other's (the document says so for generated clients).
PIN_FIELDS = {
    "announcement": "text",
    "service": "service",
    "coupon": "coupon_id",
    "content": "content_id",
}
PIN_KINDS: dict[str, Any] = {
    "oneOf": [
        {
            "properties": {
                "kind": {"const": kind},
                field: {"not": {"type": "null"}},
                **{other: {"type": "null"} for other in PIN_FIELDS.values() if other != field},
            },
            "required": ["kind", field],
        }
        for kind, field in PIN_FIELDS.items()
    ]
}


class PinIn(In):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=PIN_KINDS)

    kind: Literal["announcement", "service", "coupon", "content"] = Field(
        description="what is pinned (one of each kind at a time)"
    )
    text: str | None = Field(None, max_length=300, description="an announcement's text")
    service: dict[str, Any] | None = Field(
        None,
        description="a service card's link into the brand's mini-program: "
        "{app_id, page, query?, title, image?, url?} (url: its https H5 entry)",
    )
    coupon_id: str | None = Field(None, description="a coupon card: one of the account's")
    content_id: str | None = Field(
        None, description="a content card: one of the account's published contents"
    )


class PinOut(Out):
    id: str
    kind: str
    text: str = Field(description="the announcement, or the card's title")
    at: str
    service: dict[str, Any] | None = Field(None, description="a service card: app_id, title, image")
    coupon: dict[str, Any] | None = Field(
        None,
        description="a coupon card: id, title, description, total, stock (now), "
        "per_fan_limit, valid_until",
    )
    content: dict[str, Any] | None = Field(None, description="a content card: id, kind, title")
    target: dict[str, Any] | None = Field(
        None, description="where a service card leads (page, query, url); staff only"
    )
    clicks: int | None = Field(None, description="clicks followed on it; staff only")
    by: str | None = Field(
        None, description="who pinned it (staff id or key:<id>); for the account's staff only"
    )
    replaced: list[str] = Field(
        default_factory=list, description="pins this one took down (the previous announcement)"
    )


class PinsOut(Out):
    items: list[PinOut]


class PinClickOut(Out):
    pin_id: str
    click_id: str = Field(description="this click's own id: counted once, when `go` is followed")
    go: str = Field(description="where to send the viewer: /go/{click_id} on this deployment")


class ChatIn(In):
    text: str = Field(
        min_length=1,
        max_length=MAX_CHAT,
        pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$",
        description="the line: 1 to 200 characters, not only spaces, no control characters",
    )


class ChatSaidOut(Out):
    seq: int = Field(description="the chat event's seq in the room")


class LikeIn(In):
    count: int = Field(1, description="taps, 1 to 100")


class LikedOut(Out):
    count: int
