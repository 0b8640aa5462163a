"""A room's live media engine: WHIP ingest (RFC 9725) into HLS and a recording, WHEP seats.

One :class:`LiveIngest` per live room, made and wired by ``webapp``. What the routes call:

- ``accept(offer)`` for ``POST /whip/{room}``: the answer and a session id for the
  ``Location``; :class:`PublisherBusy` (409) while a publisher is on, :class:`BadOffer` (400).
- ``hang_up(session_id)`` for ``DELETE`` on that Location.
- ``play(offer)`` / ``leave(seat_id)`` for WHEP; :class:`SeatsFull` (503 + Retry-After).
- ``playlist``: the file ``GET /hls/{room}/index.m3u8`` serves, segments beside it.
- ``finish_recording()`` after the live: one MP4 of every publish session, for the replay.
- ``stop()`` when the room ends: the publisher and the seats are let go, the playlist ends
  (``stop(final=False)`` when only the server stops: the playlist stays live).

The room logic hears ``on_publisher_gone(reason)`` (and can wait on ``publisher_gone``) to run
its grace period; a publisher who reconnects in time is simply accepted again: a new ffmpeg
appends to the same playlist after an ``#EXT-X-DISCONTINUITY`` and records a new part.

Files: ``hls_dir/index.m3u8`` + ``index<N>.ts`` (HLS, served), ``rec_dir/part-<n>.ts`` (one
per publish session, with the SDP ffmpeg read), ``rec_dir/recording.mp4`` (the replay).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media.fanout import FrameFanout
from media.lifeline import ChildLimits, spawn
from media.live_ffmpeg import (
    PLAYLIST,
    LiveSettings,
    concat_command,
    concat_list,
    copies_video,
    end_playlist,
)
from media.publish import EncoderError, PublishSession, SessionFiles, SessionTimeouts
from media.tools import ffmpeg_path
from media.webrtc import DIRECT, BadOffer, EndReason, Ice, parse_offer
from media.whep import Seats, SeatsFull

__all__ = [
    "BadOffer",
    "EncoderError",
    "EndReason",
    "IngestClosed",
    "LiveIngest",
    "LiveStats",
    "PublisherBusy",
    "RecordingError",
    "SeatsFull",
]

PART = re.compile(r"^part-(\d+)\.ts$")
RECORDING = "recording.mp4"
CONCAT_TIMEOUT_S = 600.0
# A live child: H.264 copy needs little, a 1080p x264 encode well under 1 GiB; parts of a
# long live are large (3 h at 6 Mbit/s is 8 GiB), and a recording joins them all.
LIVE_LIMITS = ChildLimits(memory_bytes=3 << 30, file_bytes=64 << 30)


class PublisherBusy(RuntimeError):
    """Another publisher is on the room (RFC 9725: the route answers 409)."""


class IngestClosed(RuntimeError):
    """The room's engine was stopped; nothing more can join."""


class RecordingError(RuntimeError):
    """Joining the recording parts failed; ``stderr_tail`` is ffmpeg's last words."""

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        super().__init__(message + (f"\n{stderr_tail}" if stderr_tail else ""))
        self.stderr_tail = stderr_tail


@dataclass(frozen=True)
class LiveStats:
    """What the engine is doing now, for the room's stats and the benches."""

    live: bool
    sessions: int
    seats: int
    video_codec: str | None
    copies_video: bool
    ffmpeg_pid: int | None
    packets: dict[str, int]
    keyframe_requests: int
    dropped_seat_frames: int
    max_seats: int
    hls_segments: int  # listed in the playlist now
    hls_updated_s_ago: float | None  # since the playlist last changed (a segment was added)


class LiveIngest:
    """The live media of one room: one publisher at a time, a few WHEP seats, HLS, recording."""

    def __init__(
        self,
        room_id: str,
        *,
        hls_dir: Path,
        rec_dir: Path,
        max_seats: int = 4,
        settings: LiveSettings | None = None,
        ffmpeg: str | None = None,
        limits: ChildLimits = LIVE_LIMITS,
        timeouts: SessionTimeouts | None = None,
        on_publisher_gone: Callable[[EndReason], object] | None = None,
        seat_retry_after_s: int = 10,
        ice: Ice = DIRECT,
    ) -> None:
        self.room_id = room_id
        self.hls_dir = Path(hls_dir)
        self.rec_dir = Path(rec_dir)
        self.settings = settings or LiveSettings()
        self.ffmpeg = ffmpeg or ffmpeg_path()
        self.limits = limits
        self.timeouts = timeouts or SessionTimeouts()
        self.on_publisher_gone = on_publisher_gone
        self.ice = ice
        # Set while no publisher is on: the room logic's grace period waits on it.
        self.publisher_gone = asyncio.Event()
        self.publisher_gone.set()
        self.fanouts = {"video": FrameFanout("video"), "audio": FrameFanout("audio")}
        self.seats = Seats(
            self.fanouts,
            max_seats=max_seats,
            retry_after_s=seat_retry_after_s,
            connect_timeout_s=self.timeouts.connect_s,
            ice=ice,
        )
        self.session: PublishSession | None = None  # the current or the last one
        self.sessions = 0
        self._lock = asyncio.Lock()
        self._stopped = False

    @property
    def playlist(self) -> Path:
        return self.hls_dir / PLAYLIST

    @property
    def live(self) -> bool:
        """A publisher is connected now."""
        session = self.session
        return session is not None and session.ended is None and session.connected

    def parts(self) -> list[Path]:
        """The recording parts so far, in publish order."""
        if not self.rec_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.rec_dir.iterdir() if (m := PART.match(p.name))]
        return [p for _, p in sorted(found)]

    async def accept(self, offer_sdp: str) -> tuple[str, str]:
        """Take a publisher's WHIP offer: (answer SDP with our candidates, session id).

        Raises :class:`BadOffer`, :class:`PublisherBusy`, :class:`IngestClosed`, or
        :class:`EncoderError` when ffmpeg cannot start (a server fault).
        """
        offer = parse_offer(offer_sdp, sending=True)
        async with self._lock:
            if self._stopped:
                raise IngestClosed(f"room {self.room_id} has ended")
            previous = self.session
            if previous is not None and previous.ended is None:
                raise PublisherBusy(f"room {self.room_id} already has a publisher")
            if previous is not None:
                # Its ffmpeg must have finished the playlist before the next one appends.
                await previous.wait_closed()
            self.hls_dir.mkdir(parents=True, exist_ok=True)
            self.rec_dir.mkdir(parents=True, exist_ok=True)
            number = self._next_part()
            session = PublishSession(
                number,
                SessionFiles(
                    playlist=self.playlist,
                    part=self.rec_dir / f"part-{number}.ts",
                    sdp=self.rec_dir / f"part-{number}.sdp",
                ),
                self.fanouts,
                self._session_ended,
                ffmpeg=self.ffmpeg,
                settings=self.settings,
                limits=self.limits,
                timeouts=self.timeouts,
                ice=self.ice,
            )
            # Current before it starts: an ffmpeg that dies at once is this session's end.
            self.session = session
            self.publisher_gone.clear()
            try:
                text = await session.start(offer)
            except BaseException:
                self.session = previous
                self.publisher_gone.set()
                raise
            self.sessions += 1
            return text, session.id

    async def hang_up(self, session_id: str) -> bool:
        """End the publish session ``session_id`` (WHIP DELETE); False if it is not the
        current one (already gone, or an older session's URL)."""
        session = self.session
        if session is None or session.id != session_id or session.ended is not None:
            return False
        await session.close(EndReason.HANG_UP)
        return True

    async def play(self, offer_sdp: str) -> tuple[str, str]:
        """A WHEP seat: (answer SDP, seat id). Raises :class:`BadOffer`, :class:`SeatsFull`
        or :class:`IngestClosed`. Seats may join before the publisher; they get frames once
        one publishes, and keep their seat across the publisher's reconnects."""
        if self._stopped:
            raise IngestClosed(f"room {self.room_id} has ended")
        return await self.seats.play(offer_sdp)

    async def leave(self, seat_id: str) -> bool:
        """Free a WHEP seat (DELETE on its URL); False if there is no such seat."""
        return await self.seats.leave(seat_id)

    async def finish_recording(self) -> Path | None:
        """Join every recording part into ``rec_dir/recording.mp4`` (no re-encode); None if
        nothing was recorded. Ends the current publisher first: call it when the live is
        over. Raises :class:`RecordingError`."""
        async with self._lock:
            if self.session is not None:
                await self.session.close(EndReason.STOPPED)
            parts = [p for p in self.parts() if p.stat().st_size > 0]
            if not parts:
                return None
            listing = self.rec_dir / "parts.ffconcat"
            listing.write_text(concat_list(parts))
            out = self.rec_dir / RECORDING
            partial = self.rec_dir / f"partial-{RECORDING}"
            await _run(concat_command(self.ffmpeg, listing, partial), self.limits)
            os.replace(partial, out)
            return out

    async def stop(self, *, final: bool = True) -> None:
        """The room ended: let the publisher and the seats go and end the playlist.

        With ``final=False`` (the server is stopping, the room is not) the playlist
        stays live, so players keep polling it and a publisher who reconnects to the next
        server process continues it (after a discontinuity, as on any reconnect).
        """
        self._stopped = True
        async with self._lock:
            if self.session is not None:
                await self.session.close(EndReason.STOPPED)
        await self.seats.close()
        for fanout in self.fanouts.values():
            fanout.end()
        if final and self.playlist.is_file():
            ended = end_playlist(self.playlist.read_text())
            staged = self.playlist.with_name(PLAYLIST + ".end")
            staged.write_text(ended)
            os.replace(staged, self.playlist)

    def stats(self) -> LiveStats:
        session = self.session
        taps = session.taps if session is not None else ()
        video = next((s for s in session.streams if s.kind == "video"), None) if session else None
        return LiveStats(
            live=self.live,
            sessions=self.sessions,
            seats=len(self.seats),
            video_codec=video.codec if video is not None else None,
            copies_video=session is not None and copies_video(session.streams),
            ffmpeg_pid=session.ffmpeg_pid if session is not None else None,
            packets={t.kind: t.packets for t in taps},
            keyframe_requests=sum(t.keyframe_requests for t in taps),
            dropped_seat_frames=self.seats.dropped_frames(),
            max_seats=self.seats.max_seats,
            **self._hls_stats(),
        )

    def _hls_stats(self) -> dict[str, Any]:
        try:
            text = self.playlist.read_text()
            changed = self.playlist.stat().st_mtime
        except FileNotFoundError:
            return {"hls_segments": 0, "hls_updated_s_ago": None}
        listed = [line for line in text.splitlines() if line and not line.startswith("#")]
        return {"hls_segments": len(listed), "hls_updated_s_ago": max(0.0, time.time() - changed)}

    def _next_part(self) -> int:
        # Parts of an earlier run of the server (a restart mid-live) are kept and followed.
        numbers = [int(m.group(1)) for p in self.parts() if (m := PART.match(p.name))]
        return max(numbers, default=0) + 1

    def _session_ended(self, session: PublishSession, reason: EndReason) -> None:
        if session is self.session:
            self._gone(reason)

    def _gone(self, reason: EndReason) -> None:
        if self.publisher_gone.is_set():
            return
        self.publisher_gone.set()
        if self.on_publisher_gone is not None:
            self.on_publisher_gone(reason)


async def _run(argv: list[str], limits: ChildLimits) -> None:
    proc = await spawn(argv, limits)
    tail: deque[str] = deque(maxlen=20)
    try:
        async with asyncio.timeout(CONCAT_TIMEOUT_S):
            assert proc.stderr is not None
            async for raw in proc.stderr:
                tail.append(raw.decode(errors="replace").rstrip())
            code = await proc.wait()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if code != 0:
        raise RecordingError(f"joining the recording failed (exit {code})", "\n".join(tail))
