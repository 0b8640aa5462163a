"""The live media engines of this process, one per live room, tied to the rooms domain.

DESIGN §3: aiortc in-process takes WHIP in and gives a few WHEP seats out, ffmpeg turns the
room into HLS. This registry makes a room's :class:`media.whip.LiveIngest` on its first publish,
tells the domain when the publisher goes (``live.rooms.publisher_gone``: the grace period
starts) or comes back, and when the room has ended (by the host, the API or the grace period)
stops the engine and turns the recording into the room's replay: the MP4 becomes a complete
upload of the account, a video content is made of it and published, and the content pipeline
transcodes it like any upload, so the replay is probed in a child process first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime

from content.contents import create_content
from content.pipeline import VideoPipeline
from content.publishing import publish
from content.uploads import adopt_file
from live import rooms
from media.blobs import BlobStore
from media.jobs import JobQueue
from media.webrtc import DIRECT, EndReason, Ice
from media.whip import LiveIngest
from store.port import DocumentStore

log = logging.getLogger("lifeaccount.live")
REPLAY_SUFFIX = " · 回放"


@dataclass
class LiveRooms:
    store: DocumentStore
    blobs: BlobStore
    jobs: JobQueue
    pipeline: VideoPipeline
    now: Callable[[], datetime]
    max_seats: int = 4
    ice: Ice = DIRECT
    # Tells a room's viewers what it is now (the channel's room event), once it is running.
    told: Callable[[rooms.Room], Awaitable[object]] | None = None
    engines: dict[str, LiveIngest] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _keyed: dict[str, str] = field(default_factory=dict)  # room → session by the stream key
    _closing: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def engine(self, room_id: str) -> LiveIngest | None:
        return self.engines.get(room_id)

    def open(self, room_id: str) -> LiveIngest:
        """The room's engine, made on first use."""
        found = self.engines.get(room_id)
        if found is not None:
            return found
        base = f"live/{room_id}"
        made = LiveIngest(
            room_id,
            hls_dir=self.blobs.path(f"{base}/hls"),
            rec_dir=self.blobs.path(f"{base}/rec"),
            max_seats=self.max_seats,
            ice=self.ice,
            on_publisher_gone=lambda reason: self._spawn(self._gone(room_id, reason)),
        )
        self.engines[room_id] = made
        return made

    def keyed(self, room_id: str, session_id: str) -> None:
        """The room's publish session ``session_id`` came in with the stream key."""
        self._keyed[room_id] = session_id

    def revoke_key(self, room_id: str) -> bool:
        """The room's stream key was rotated: a publisher that came in with the old one is
        let go, in the background (the grace period starts; it is back with the new key).
        True if there was one to let go."""
        session_id = self._keyed.pop(room_id, None)
        engine = self.engines.get(room_id)
        if session_id is None or engine is None:
            return False
        self._spawn(self._hang_up(room_id, engine, session_id))
        return True

    async def _hang_up(self, room_id: str, engine: LiveIngest, session_id: str) -> None:
        try:
            await engine.hang_up(session_id)
        except Exception:
            log.exception("room %s: letting the publisher of a rotated key go failed", room_id)

    async def _gone(self, room_id: str, reason: EndReason) -> None:
        try:
            await rooms.publisher_gone(self.store, room_id, at=self.now())
        except Exception:
            log.exception("room %s: recording that its publisher left (%s) failed", room_id, reason)

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, room_id: str) -> None:
        """The room has ended: let the engine go and make its recording the replay. Safe to
        call twice; the second waits for the first."""
        running = self._closing.get(room_id)
        if running is None:
            running = asyncio.ensure_future(self._close(room_id))
            self._closing[room_id] = running
        await asyncio.shield(running)

    async def _close(self, room_id: str) -> None:
        engine = self.engines.get(room_id)
        if engine is None:
            return
        try:
            await engine.stop()
            recording = await engine.finish_recording()
            if recording is not None:
                await self._replay(room_id, recording.name)
        except Exception:
            log.exception("room %s: closing its live media failed", room_id)
        finally:
            self.engines.pop(room_id, None)
            self._keyed.pop(room_id, None)

    async def _replay(self, room_id: str, filename: str) -> None:
        room = await rooms.get_room(self.store, room_id)
        now = self.now()
        upload = await adopt_file(
            self.store,
            self.blobs,
            f"live/{room_id}/rec/{filename}",
            account_id=room.account_id,
            created_by=f"room:{room_id}",
            filename=f"{room_id}.mp4",
            now=now,
        )
        title = (room.title[: 60 - len(REPLAY_SUFFIX)] + REPLAY_SUFFIX).strip()
        content = await create_content(
            self.store,
            room.account_id,
            {"kind": "video", "title": title, "upload_id": upload.id},
            now=now,
        )
        await self.pipeline.enqueue(self.jobs, content_id=content.id, upload_id=upload.id)
        await publish(self.store, content.id, policy=self.pipeline.policy, now=now)
        replayed = await rooms.set_replay(self.store, room_id, content.id)
        await self._tell(replayed)
        log.info("room %s: its recording is content %s (processing)", room_id, content.id)

    async def recover(self) -> list[str]:
        """At start: no publisher is connected to this new process, whatever the rooms say
        after a crash, so their grace periods start now (``rooms.publishers_lost``). Each live
        room gets its engine back, which finds the recording parts already on disk: a
        publisher back in time continues them, and a room that ends keeps them in its replay.
        Returns the ids of the live rooms."""
        live = await rooms.publishers_lost(self.store, at=self.now())
        for room_id in live:
            self.open(room_id)
        if live:
            log.info("%d live room(s) wait for their publisher: %s", len(live), ", ".join(live))
        return live

    async def _tell(self, room: rooms.Room) -> None:
        if self.told is None:
            return
        try:
            await self.told(room)
        except Exception:
            log.exception("room %s: telling its viewers it changed failed", room.id)

    async def settle(self) -> int:
        """Close the engines of rooms that ended elsewhere (the grace sweep, another process's
        API call); returns how many."""
        closed = 0
        for room_id in list(self.engines):
            room = await rooms.get_room(self.store, room_id)
            if room.state is rooms.State.ENDED:
                await self._tell(room)  # ended by the grace period: viewers hear it here
                await self.close(room_id)
                closed += 1
        return closed

    async def shutdown(self) -> None:
        """The process is stopping: publishers are let go and their rooms start their grace
        period (a restart within it carries on); nothing is ended here."""
        for room_id, engine in list(self.engines.items()):
            try:
                # Not final: the playlist stays open, so a restart within the grace period
                # carries the same room on (after a discontinuity).
                await engine.stop(final=False)
                await rooms.publisher_gone(self.store, room_id, at=self.now())
            except Exception:
                log.exception("room %s: stopping its live media failed", room_id)
        self.engines.clear()
        for task in list(self._tasks):
            task.cancel()
