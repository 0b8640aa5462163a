"""ffmpeg commands and files for live rooms: pure functions, pinned by golden tests.

One publish session (one WHIP publisher from connect to disconnect) is one ffmpeg run. The
engine forwards the publisher's RTP to ffmpeg over UDP on 127.0.0.1 and describes it with an
SDP file (:func:`session_sdp`); :func:`live_command` turns it into the room's HLS playlist and
one recording part through the ``tee`` muxer, so the video is encoded at most once for both
(and not at all when the publisher sends H.264). After the live, :func:`concat_command` joins
the parts into one MP4 without re-encoding (``tests/media/test_live_ffmpeg.py``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

LOCALHOST = "127.0.0.1"
PLAYLIST = "index.m3u8"
ENDLIST = "#EXT-X-ENDLIST"
# Codecs whose RTP ffmpeg can copy into MPEG-TS segments as they are; anything else (VP8)
# is encoded to H.264 by ffmpeg, since H.264 is what every HLS player decodes.
COPY_VIDEO = frozenset({"H264"})
# Characters the tee muxer reads as syntax inside a slave's file name (av_get_token quoting
# and escapes, the slave separator); paths holding them are refused rather than escaped.
_TEE_SPECIAL = frozenset("|[]\\'")


@dataclass(frozen=True)
class RtpStream:
    """One negotiated media stream as ffmpeg receives it: RTP on ``port``, RTCP on ``port + 1``."""

    kind: str  # "video" | "audio"
    port: int
    payload_type: int
    codec: str  # as in the rtpmap: "H264", "VP8", "opus"
    clock_rate: int
    channels: int | None = None
    fmtp: str = ""


@dataclass(frozen=True)
class LiveSettings:
    """How the room's HLS and recording are made."""

    # 2 s segments with a keyframe each: 3 segments behind live is about 6 s of delay, while
    # a keyframe every 2 s costs the publisher little bitrate (1 s doubles the keyframes).
    segment_s: int = 2
    # Apple's live authoring asks for at least 6 segments in a live playlist; 8 leaves a
    # late or slow player room to catch up.
    list_size: int = 8
    # Only when ffmpeg encodes (VP8 in): a capped CRF keeps quiet scenes small and busy ones
    # under the cap that HLS players budget for.
    crf: int = 23
    max_video_kbps: int = 3000
    preset: str = "veryfast"
    threads: int = 2
    audio_kbps: int = 128


def session_sdp(streams: Sequence[RtpStream], *, address: str = LOCALHOST) -> str:
    """The SDP ffmpeg reads to receive ``streams`` (RFC 8866; ffmpeg's ``sdp`` demuxer)."""
    if not streams:
        raise ValueError("no streams")
    lines = [
        "v=0",
        f"o=- 0 0 IN IP4 {address}",
        "s=lifeaccount live",
        f"c=IN IP4 {address}",
        "t=0 0",
    ]
    for s in streams:
        if s.port % 2:
            # RTCP is expected on port + 1 (RFC 3550 section 11), so RTP takes the even one.
            raise ValueError(f"RTP port {s.port} is odd")
        rtpmap = f"{s.codec}/{s.clock_rate}" + (f"/{s.channels}" if s.channels else "")
        lines.append(f"m={s.kind} {s.port} RTP/AVP {s.payload_type}")
        lines.append(f"a=rtpmap:{s.payload_type} {rtpmap}")
        if s.fmtp:
            lines.append(f"a=fmtp:{s.payload_type} {s.fmtp}")
    return "\r\n".join(lines) + "\r\n"


def fmtp_line(parameters: dict[str, object]) -> str:
    """``a=fmtp`` parameters in a stable order (``key=value;flag``)."""
    parts = []
    for key in sorted(parameters):
        value = parameters[key]
        parts.append(key if value is None else f"{key}={value}")
    return ";".join(parts)


def copies_video(streams: Sequence[RtpStream]) -> bool:
    return any(s.kind == "video" and s.codec.upper() in COPY_VIDEO for s in streams)


def live_command(
    ffmpeg: str,
    sdp: str | os.PathLike[str],
    streams: Sequence[RtpStream],
    playlist: str | os.PathLike[str],
    part: str | os.PathLike[str],
    settings: LiveSettings = LiveSettings(),
) -> list[str]:
    """One publish session: RTP described by ``sdp`` → the HLS ``playlist`` + a TS ``part``.

    The playlist is appended to (``append_list``), so a publisher who reconnects continues
    the same playlist after an ``#EXT-X-DISCONTINUITY`` and players keep going; it never gets
    an ``#EXT-X-ENDLIST`` here (``omit_endlist``), as only ending the room ends it
    (:func:`end_playlist`).
    """
    kinds = [s.kind for s in streams]
    if not streams or len(set(kinds)) != len(kinds) or not set(kinds) <= {"video", "audio"}:
        raise ValueError(f"need at most one video and one audio stream, got {kinds}")
    for path in (playlist, part):
        bad = _TEE_SPECIAL & set(os.fspath(path))
        if bad:
            raise ValueError(f"{path} holds characters the tee muxer reads as syntax: {bad}")
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    # Only the SDP file and the UDP sockets it names; every socket bound to loopback, so no
    # one else on the network can send packets into the room. No read timeout (-1): a
    # publisher whose camera pauses must not end the session; the engine ends it (RTCP BYE).
    argv += ["-protocol_whitelist", "file,udp,rtp", "-localaddr", LOCALHOST]
    argv += ["-listen_timeout", "-1", "-f", "sdp", "-i", os.fspath(sdp)]
    video = next((s for s in streams if s.kind == "video"), None)
    audio = next((s for s in streams if s.kind == "audio"), None)
    if video is not None:
        argv += ["-map", "0:v:0"]
    if audio is not None:
        argv += ["-map", "0:a:0"]
    if video is not None and video.codec.upper() in COPY_VIDEO:
        # Segments cut on the publisher's keyframes, which the engine requests (RTCP PLI)
        # every segment_s.
        argv += ["-c:v", "copy"]
    elif video is not None:
        argv += [
            "-c:v",
            "libx264",
            "-preset",
            settings.preset,
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-crf",
            str(settings.crf),
            "-maxrate",
            f"{settings.max_video_kbps}k",
            "-bufsize",
            f"{settings.max_video_kbps * 2}k",
            "-force_key_frames",
            f"expr:gte(t,n_forced*{settings.segment_s})",
            "-sc_threshold",
            "0",
            "-threads",
            str(settings.threads),
        ]
    if audio is not None:
        # Opus in, AAC out: the audio every HLS player (Safari included) decodes in TS.
        argv += ["-c:a", "aac", "-b:a", f"{settings.audio_kbps}k", "-ac", "2", "-ar", "48000"]
    flags = "+".join(
        [
            "delete_segments",
            "independent_segments",
            "append_list",
            "omit_endlist",
            "program_date_time",
            # Playlist and segments are written aside and renamed, so the HLS route never
            # serves a half-written file.
            "temp_file",
        ]
    )
    hls = (
        f"[f=hls:hls_time={settings.segment_s}:hls_list_size={settings.list_size}"
        f":hls_segment_type=mpegts:hls_flags={flags}]{os.fspath(playlist)}"
    )
    # The part is written out packet by packet, so a server killed mid-live (the children
    # die with it) leaves a recording that reaches as far as the playlist does.
    argv += ["-f", "tee", f"{hls}|[f=mpegts:flush_packets=1]{os.fspath(part)}"]
    return argv


def concat_list(parts: Sequence[str | os.PathLike[str]]) -> str:
    """The concat demuxer's list of ``parts``, by bare file name (they sit beside the list),
    so its default ``safe`` mode holds: no absolute paths, nothing outside the folder."""
    lines = ["ffconcat version 1.0"]
    for part in parts:
        name = PurePath(part).name
        if not name or "'" in name or "\n" in name:
            raise ValueError(f"bad part name {name!r}")
        lines.append(f"file '{name}'")
    return "\n".join(lines) + "\n"


def concat_command(
    ffmpeg: str, concat: str | os.PathLike[str], out: str | os.PathLike[str]
) -> list[str]:
    """Join the recording parts listed in ``concat`` into one MP4, without re-encoding."""
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    argv += ["-protocol_whitelist", "file", "-f", "concat", "-i", os.fspath(concat)]
    # "?": a room published without a microphone (or a camera) has no such stream.
    argv += ["-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy", "-movflags", "+faststart"]
    argv += ["-f", "mp4", os.fspath(out)]
    return argv


def end_playlist(text: str) -> str:
    """The live playlist with ``#EXT-X-ENDLIST`` (RFC 8216 section 4.3.3.4): players stop
    polling and the room's HLS becomes a finished stream."""
    if any(line.strip() == ENDLIST for line in text.splitlines()):
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + ENDLIST + "\n"
