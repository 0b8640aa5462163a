"""The baseline for a WHEP seat's CPU: plain aiortc, in a process of its own.

    python -m bench.relay      # run by bench.live; one JSON object a line on stdin and stdout

``{"publish": offer}`` and ``{"view": offer}`` each get ``{"answer": sdp}`` back, ``{"frames":
null}`` the count of video frames received (or any of them ``{"error": ...}``); end of input
ends the process (:class:`RelayChild` is the other end). One peer receives the publisher, and
``aiortc.contrib.media.MediaRelay`` hands its decoded frames to every viewer's peer, which
encodes them again, as aiortc's own examples forward a stream. That is the least a seat can
cost with aiortc: the engine's seats do the same work (decode once, encode per seat) plus
their bookkeeping, so server/relay is the engine's overhead per seat. A subscriber drains
the publisher's tracks while no one watches, as the engine does (an unread aiortc track
queues without bound). Subscriptions are MediaRelay's default, buffered: every frame reaches
every seat. Unbuffered ones keep only the newest frame and, since decoded frames come in
bursts, a seat then got 24 of 30 fps here; the engine keeps two per seat and drops older
ones, so the bench prints the frames each seat got beside its CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from bench.peers import Signal, new_peer


class Relay:
    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.sources: dict[str, MediaStreamTrack] = {}
        self.peers: list[RTCPeerConnection] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.frames = 0

    async def publish(self, offer: str) -> str:
        pc = new_peer()
        self.peers.append(pc)

        def on_track(track: MediaStreamTrack) -> None:
            self.sources[track.kind] = track
            task = asyncio.create_task(self._drain(self.relay.subscribe(track)))
            self.tasks.add(task)

        pc.on("track", on_track)
        return await _answer(pc, offer)

    async def view(self, offer: str) -> str:
        if not self.sources:
            raise RuntimeError("no publisher yet")
        pc = new_peer()
        self.peers.append(pc)
        for _, source in sorted(self.sources.items(), reverse=True):  # video first
            pc.addTransceiver(self.relay.subscribe(source), direction="sendonly")
        return await _answer(pc, offer)

    async def _drain(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames += track.kind == "video"

    async def close(self) -> None:
        for pc in self.peers:
            await pc.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _answer(pc: RTCPeerConnection, offer: str) -> str:
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return str(pc.localDescription.sdp)


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    relay = Relay()
    try:
        while line := await reader.readline():
            request = json.loads(line)
            reply: dict[str, Any]
            try:
                if "publish" in request:
                    reply = {"answer": await relay.publish(request["publish"])}
                elif "view" in request:
                    reply = {"answer": await relay.view(request["view"])}
                else:
                    reply = {"frames": relay.frames}
            except Exception as exc:  # told to the bench, which fails the step
                reply = {"error": repr(exc)}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        await relay.close()


class RelayChild:
    """The bench's end: ``python -m bench.relay`` as a child, asked one line at a time."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, python: Path, stderr: Path) -> RelayChild:
        with stderr.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                str(python),
                "-m",
                "bench.relay",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                cwd=Path(__file__).resolve().parent.parent,
            )
        return cls(proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the relay exited ({self.proc.returncode})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the relay failed: {reply['error']}")
        return reply

    def signal(self, op: str) -> Signal:
        """``publish`` or ``view`` as a :data:`~bench.peers.Signal`."""

        async def signal(offer: str) -> str:
            return str((await self.ask({op: offer}))["answer"])

        return signal

    async def frames(self) -> int:
        return int((await self.ask({"frames": None}))["frames"])

    async def stop(self) -> None:
        """End of input ends it; killed if it lingers."""
        if self.proc.returncode is not None:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10.0)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


if __name__ == "__main__":
    asyncio.run(serve())
