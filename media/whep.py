"""WHEP seats: a capped number of WebRTC viewers of one room.

aiortc encodes the room's decoded frames again for every seat (DESIGN.md §3: 0.08 to 0.18 of
a core each; about 0.2 at 720p30 on the 2-core machine), so a room has a few seats, for
hosts, co-hosts and top tiers; everyone else watches HLS. A seat reads the room's
:class:`~media.fanout.FrameFanout` of each kind, so it keeps playing across a publisher's
reconnect, and it is freed when the viewer leaves (DELETE), its connection fails or closes,
or it never connects.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection

from media.fanout import FanoutTrack, FrameFanout
from media.webrtc import DIRECT, RECEIVING, EndReason, Ice, answer, new_peer, parse_offer, watch


class SeatsFull(RuntimeError):
    """Every seat is taken; the route answers 503 with ``Retry-After: retry_after_s``."""

    def __init__(self, max_seats: int, retry_after_s: int) -> None:
        super().__init__(f"all {max_seats} WebRTC seats are taken; watch over HLS")
        self.max_seats = max_seats
        self.retry_after_s = retry_after_s


@dataclass
class _Seat:
    pc: RTCPeerConnection
    tracks: list[FanoutTrack] = field(default_factory=list)
    watch: asyncio.Task[None] | None = None
    ended: EndReason | None = None


class Seats:
    """At most ``max_seats`` viewers, each an aiortc peer fed from the room's fanouts."""

    def __init__(
        self,
        fanouts: Mapping[str, FrameFanout],
        *,
        max_seats: int,
        retry_after_s: int = 10,
        connect_timeout_s: float = 15.0,
        ice: Ice = DIRECT,
    ) -> None:
        if max_seats < 0:
            raise ValueError("max_seats must be 0 or more")
        self.max_seats = max_seats
        self.retry_after_s = retry_after_s
        self._fanouts = fanouts
        self._connect_timeout_s = connect_timeout_s
        self._ice = ice
        self._seats: dict[str, _Seat] = {}
        self._tasks: set[asyncio.Task[bool]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._seats)

    def __contains__(self, seat_id: object) -> bool:
        return seat_id in self._seats

    async def play(self, offer_sdp: str) -> tuple[str, str]:
        """A seat for the viewer who sent ``offer_sdp``: (answer SDP, seat id).

        Raises :class:`~media.webrtc.BadOffer` or :class:`SeatsFull`.
        """
        if self._closed:
            raise RuntimeError("the seats are closed")
        offer = parse_offer(offer_sdp, sending=False)
        if len(self._seats) >= self.max_seats:
            raise SeatsFull(self.max_seats, self.retry_after_s)
        seat_id = secrets.token_urlsafe(12)
        # Taken before the first await, so concurrent offers never exceed the cap.
        seat = self._seats[seat_id] = _Seat(pc=new_peer(self._ice))
        try:
            for kind in offer.kinds(RECEIVING):
                track = self._fanouts[kind].subscribe()
                seat.tracks.append(track)
                seat.pc.addTransceiver(track, direction="sendonly")
            text = await answer(seat.pc, offer, self._ice)
        except BaseException:
            await self._release(seat_id, EndReason.FAILED)
            raise
        seat.watch = watch(
            seat.pc, lambda reason: self._release_soon(seat_id, reason), self._connect_timeout_s
        )
        return text, seat_id

    async def leave(self, seat_id: str) -> bool:
        """Free a seat (WHEP DELETE); False when there is no such seat."""
        return await self._release(seat_id, EndReason.HANG_UP)

    async def close(self) -> None:
        """Free every seat; no new ones."""
        self._closed = True
        for seat_id in list(self._seats):
            await self._release(seat_id, EndReason.STOPPED)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def dropped_frames(self) -> int:
        return sum(t.dropped for seat in self._seats.values() for t in seat.tracks)

    def _release_soon(self, seat_id: str, reason: EndReason) -> None:
        task = asyncio.create_task(self._release(seat_id, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release(self, seat_id: str, reason: EndReason) -> bool:
        seat = self._seats.pop(seat_id, None)
        if seat is None:
            return False
        seat.ended = reason
        if seat.watch is not None and seat.watch is not asyncio.current_task():
            seat.watch.cancel()
        for track in seat.tracks:
            track.stop()
        await seat.pc.close()
        return True
