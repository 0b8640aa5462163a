"""Golden argv, SDP and packets for everything the live engine hands ffmpeg.

A change here is a change to what ffmpeg is asked to do or what it is sent: review it as such.
Expected values are written out by hand (``w()`` only splits on spaces), never generated.
"""

from __future__ import annotations

import pytest
from aiortc.rtp import RtpPacket

from media.live_ffmpeg import (
    LiveSettings,
    RtpStream,
    concat_command,
    concat_list,
    copies_video,
    end_playlist,
    fmtp_line,
    live_command,
    session_sdp,
)
from media.rtp_tap import TapPlan, forwarded, goodbye, rtp_bytes


def w(text: str) -> list[str]:
    return text.split()


H264 = RtpStream(
    kind="video",
    port=40000,
    payload_type=102,
    codec="H264",
    clock_rate=90000,
    fmtp="level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
)
VP8 = RtpStream(kind="video", port=40000, payload_type=97, codec="VP8", clock_rate=90000)
OPUS = RtpStream(
    kind="audio", port=40002, payload_type=111, codec="opus", clock_rate=48000, channels=2
)

HEAD = w("ffmpeg -hide_banner -nostdin -loglevel error -y")
INPUT = w(
    "-protocol_whitelist file,udp,rtp -localaddr 127.0.0.1 -listen_timeout -1"
    " -f sdp -i /rooms/r1/rec/part-1.sdp"
)
AAC = w("-c:a aac -b:a 128k -ac 2 -ar 48000")
FLAGS = "delete_segments+independent_segments+append_list+omit_endlist+program_date_time+temp_file"
TEE = [
    "-f",
    "tee",
    "[f=hls:hls_time=2:hls_list_size=8:hls_segment_type=mpegts"
    f":hls_flags={FLAGS}]/rooms/r1/hls/index.m3u8|[f=mpegts:flush_packets=1]/rooms/r1/rec/part-1.ts",
]


def live(*streams: RtpStream, settings: LiveSettings | None = None) -> list[str]:
    return live_command(
        "ffmpeg",
        "/rooms/r1/rec/part-1.sdp",
        streams,
        "/rooms/r1/hls/index.m3u8",
        "/rooms/r1/rec/part-1.ts",
        settings or LiveSettings(),
    )


def test_h264_and_opus_copy_the_video_and_make_aac() -> None:
    assert live(H264, OPUS) == [
        *HEAD,
        *INPUT,
        *w("-map 0:v:0 -map 0:a:0 -c:v copy"),
        *AAC,
        *TEE,
    ]


def test_vp8_is_encoded_to_h264_with_keyframes_on_the_segment_grid() -> None:
    assert live(VP8, OPUS) == [
        *HEAD,
        *INPUT,
        *w("-map 0:v:0 -map 0:a:0"),
        *w("-c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p -crf 23"),
        *w("-maxrate 3000k -bufsize 6000k -force_key_frames expr:gte(t,n_forced*2)"),
        *w("-sc_threshold 0 -threads 2"),
        *AAC,
        *TEE,
    ]


def test_video_only_and_audio_only_map_what_there_is() -> None:
    assert live(H264) == [*HEAD, *INPUT, *w("-map 0:v:0 -c:v copy"), *TEE]
    assert live(OPUS) == [*HEAD, *INPUT, *w("-map 0:a:0"), *AAC, *TEE]


def test_settings_reach_the_playlist() -> None:
    argv = live(H264, settings=LiveSettings(segment_s=1, list_size=6))
    assert argv[-1].startswith("[f=hls:hls_time=1:hls_list_size=6:")


@pytest.mark.parametrize(
    "streams", [(), (H264, VP8), (OPUS, OPUS)], ids=["none", "two-video", "two-audio"]
)
def test_one_stream_of_each_kind_at_most(streams: tuple[RtpStream, ...]) -> None:
    with pytest.raises(ValueError):
        live(*streams)


@pytest.mark.parametrize("bad", ["|", "[", "]", "'", "\\"])
def test_paths_the_tee_muxer_would_misread_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="tee"):
        live_command("ffmpeg", "/r/x.sdp", [H264], f"/r{bad}/index.m3u8", "/r/part-1.ts")


def test_copies_video_only_for_h264() -> None:
    assert copies_video([H264, OPUS])
    assert not copies_video([VP8, OPUS])
    assert not copies_video([OPUS])


def test_session_sdp() -> None:
    assert session_sdp([H264, OPUS]) == (
        "v=0\r\n"
        "o=- 0 0 IN IP4 127.0.0.1\r\n"
        "s=lifeaccount live\r\n"
        "c=IN IP4 127.0.0.1\r\n"
        "t=0 0\r\n"
        "m=video 40000 RTP/AVP 102\r\n"
        "a=rtpmap:102 H264/90000\r\n"
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
        "m=audio 40002 RTP/AVP 111\r\n"
        "a=rtpmap:111 opus/48000/2\r\n"
    )


def test_session_sdp_wants_even_rtp_ports() -> None:
    with pytest.raises(ValueError, match="odd"):
        session_sdp([RtpStream("video", 40001, 96, "VP8", 90000)])
    with pytest.raises(ValueError):
        session_sdp([])


def test_fmtp_line_is_stable() -> None:
    assert fmtp_line({"profile-level-id": "42e01f", "packetization-mode": 1}) == (
        "packetization-mode=1;profile-level-id=42e01f"
    )
    assert fmtp_line({"useinbandfec": 1, "flag": None}) == "flag;useinbandfec=1"
    assert fmtp_line({}) == ""


def test_concat_list_names_parts_beside_it() -> None:
    assert concat_list(["/rooms/r1/rec/part-1.ts", "/rooms/r1/rec/part-2.ts"]) == (
        "ffconcat version 1.0\nfile 'part-1.ts'\nfile 'part-2.ts'\n"
    )
    with pytest.raises(ValueError):
        concat_list(["/rec/it's.ts"])


def test_concat_command() -> None:
    assert concat_command("ffmpeg", "/r/rec/parts.ffconcat", "/r/rec/out.mp4") == [
        *HEAD,
        *w("-protocol_whitelist file -f concat -i /r/rec/parts.ffconcat"),
        *w("-map 0:v:0? -map 0:a:0? -c copy -movflags +faststart -f mp4 /r/rec/out.mp4"),
    ]


def test_end_playlist_once() -> None:
    text = "#EXTM3U\n#EXTINF:2.0,\nindex0.ts\n"
    ended = end_playlist(text)
    assert ended == text + "#EXT-X-ENDLIST\n"
    assert end_playlist(ended) == ended
    assert end_playlist("#EXTM3U") == "#EXTM3U\n#EXT-X-ENDLIST\n"


# --- what the tap sends ffmpeg ---------------------------------------------------------

PLAN = TapPlan(
    port=40000, payload_type=102, media_types=frozenset({102, 104}), rtx_types=frozenset({103})
)


def packet(payload_type: int, payload: bytes, *, seq: int = 7, ssrc: int = 0x11223344) -> RtpPacket:
    p = RtpPacket(
        payload_type=payload_type,
        marker=1,
        sequence_number=seq,
        timestamp=0x01020304,
        ssrc=ssrc,
        payload=payload,
    )
    p.padding_size = 4
    return p


def test_rtp_bytes_is_the_fixed_header_and_the_payload() -> None:
    data = rtp_bytes(
        marker=1,
        payload_type=102,
        sequence_number=0x1234,
        timestamp=0xA0B0C0D0,
        ssrc=0x01020304,
        payload=b"\xaa\xbb",
    )
    assert data == bytes.fromhex("80e61234a0b0c0d001020304aabb")


def test_media_packets_go_as_the_described_payload_type_without_padding() -> None:
    assert forwarded(packet(104, b"\x65\x00"), PLAN, None) == bytes.fromhex(
        "80e6000701020304112233446500"
    )


def test_retransmissions_are_unwrapped_onto_the_media_stream() -> None:
    # RFC 4588: the RTX payload starts with the original sequence number (0x0102).
    rtx = packet(103, b"\x01\x02\x65\x00", seq=900, ssrc=0x55555555)
    assert forwarded(rtx, PLAN, 0x11223344) == bytes.fromhex("80e6010201020304112233446500")
    # Before the media stream is known there is nothing to put it on.
    assert forwarded(rtx, PLAN, None) is None
    assert forwarded(packet(103, b"\x01\x02", seq=901), PLAN, 0x11223344) is None


def test_padding_only_and_foreign_packets_are_dropped() -> None:
    assert forwarded(packet(102, b""), PLAN, None) is None
    assert forwarded(packet(96, b"\x00"), PLAN, None) is None


def test_goodbye_is_a_report_then_a_bye() -> None:
    # RR with no report blocks (8 bytes), then BYE for one source (8 bytes), RFC 3550 6.4.2/6.6.
    assert goodbye(0x11223344) == bytes.fromhex("80c900011122334481cb000111223344")
