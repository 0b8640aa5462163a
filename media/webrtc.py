"""The WebRTC edge that WHIP ingest and WHEP seats share: offers, peer connections, endings.

The server answers with host candidates: the addresses of its own interfaces, one UDP port
per peer and interface from the system's ephemeral range. A deployment behind NAT says how it
is reached (:class:`Ice`, README "Ports and UDP"): its public address for 1:1 NAT, which
replaces the host candidates' addresses in every answer, or STUN servers, whose
server-reflexive candidates are added. Every answer carries all of its candidates, since aiortc
gathers them before it answers, so clients that do not trickle (OBS, most WHIP encoders)
connect too; their own candidates come in the offer or are learnt from their first
connectivity checks (peer-reflexive, RFC 8445 section 7.3.1.3).
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError

# An offer is a few kilobytes; anything far larger is not one.
MAX_OFFER_BYTES = 64 * 1024
MEDIA_KINDS = ("audio", "video")
SENDING = frozenset({"sendonly", "sendrecv"})
RECEIVING = frozenset({"recvonly", "sendrecv"})


class BadOffer(ValueError):
    """The SDP offer cannot be used; the message says why (the routes answer 400)."""


class EndReason(enum.StrEnum):
    """Why a publisher or a seat is gone."""

    CLOSED = "closed"  # the peer closed the connection
    FAILED = "failed"  # ICE or DTLS failed: the peer vanished (consent lost, RFC 7675)
    NEVER_CONNECTED = "never_connected"  # no connection within the connect timeout
    HANG_UP = "hang_up"  # DELETE on the session's URL (RFC 9725 section 4.3)
    ENCODER_FAILED = "encoder_failed"  # the room's ffmpeg exited while media was coming
    STOPPED = "stopped"  # the server ended it (the room ended)


@dataclass(frozen=True)
class Offer:
    """An offer that parsed, with what the engine needs to know before negotiating."""

    sdp: str
    # Per audio/video m-line, in offer order: (kind, direction as the offerer states it).
    media: tuple[tuple[str, str], ...]
    video_codecs: frozenset[str]  # upper-case names: "H264", "VP8", "RTX"…

    def kinds(self, directions: frozenset[str]) -> tuple[str, ...]:
        return tuple(kind for kind, direction in self.media if direction in directions)


def parse_offer(text: str, *, sending: bool) -> Offer:
    """Check an offer from a publisher (``sending``) or a viewer; raises :class:`BadOffer`."""
    if len(text.encode(errors="replace")) > MAX_OFFER_BYTES:
        raise BadOffer(f"the offer is larger than {MAX_OFFER_BYTES} bytes")
    try:
        description = aiortc_sdp.SessionDescription.parse(text)
    except Exception as exc:  # the parser fails with asserts, IndexError, ValueError…
        raise BadOffer(f"the offer is not SDP: {str(exc) or type(exc).__name__}") from None
    media: list[tuple[str, str]] = []
    video_codecs: set[str] = set()
    for m in description.media:
        if m.kind not in MEDIA_KINDS:
            continue
        if m.ice is None or not m.ice.usernameFragment or not m.ice.password:
            raise BadOffer(f"the {m.kind} section has no ICE credentials")
        if m.dtls is None or not m.dtls.fingerprints:
            raise BadOffer(f"the {m.kind} section has no DTLS fingerprint")
        media.append((m.kind, m.direction or "sendrecv"))
        if m.kind == "video":
            video_codecs.update(c.name.upper() for c in m.rtp.codecs)
    kinds = [kind for kind, _ in media]
    if not kinds:
        raise BadOffer("the offer has no audio or video section")
    if len(set(kinds)) != len(kinds):
        raise BadOffer("one audio and one video section at most")
    offer = Offer(sdp=text, media=tuple(media), video_codecs=frozenset(video_codecs))
    if not offer.kinds(SENDING if sending else RECEIVING):
        what = "sends" if sending else "receives"
        raise BadOffer(f"the offer {what} no audio or video")
    return offer


# RFC 7064 stun:host[:port], as aiortc takes it: one server, plain UDP (no stuns:), a name or
# an IPv4 address (it asks only from IPv4 host candidates).
STUN_URL = re.compile(r"^stun:([A-Za-z0-9.-]+)(?::(\d{1,5}))?$")
# RFC 8839 section 5.1: candidate:<foundation> <component> <transport> <priority> <address>
# <port> typ <type> …; the address is the fifth field.
CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host\b.*)$")


@dataclass(frozen=True)
class Ice:
    """How peers reach this server: the public IPv4 address of a 1:1 NAT in front of it
    (host candidates are announced with it), and a STUN server to learn it instead."""

    public_ip: str = ""
    stun: str = ""

    @classmethod
    def parse(cls, public_ip: str, stun: str) -> Ice:
        """From the settings; ValueError names the setting that is wrong and why."""
        public_ip, stun = public_ip.strip(), stun.strip()
        if public_ip:
            try:
                address = ipaddress.ip_address(public_ip)
            except ValueError:
                raise ValueError(
                    f"LIFEACCOUNT_WEBRTC_PUBLIC_IP must be an IP address, not {public_ip!r}"
                ) from None
            if address.version != 4:
                raise ValueError("LIFEACCOUNT_WEBRTC_PUBLIC_IP must be an IPv4 address")
            if address.is_unspecified or address.is_loopback or address.is_multicast:
                raise ValueError(
                    f"LIFEACCOUNT_WEBRTC_PUBLIC_IP must be the address peers reach this host "
                    f"at, not {public_ip}"
                )
        if stun:
            match = STUN_URL.match(stun)
            if match is None or (match.group(2) and not 0 < int(match.group(2)) < 65536):
                raise ValueError(
                    f"LIFEACCOUNT_WEBRTC_STUN_URL must look like stun:host:3478, not {stun!r}"
                )
        return cls(public_ip=public_ip, stun=stun)

    def announce(self, sdp: str) -> str:
        """``sdp`` with the address of every IPv4 host candidate (and of the ``c=`` lines that
        name one) replaced by the public address; unchanged without one."""
        if not self.public_ip:
            return sdp
        private: set[str] = set()
        lines = sdp.split("\r\n")
        for i, line in enumerate(lines):
            match = CANDIDATE.match(line)
            if match is None or ":" in match.group(2):
                continue
            private.add(match.group(2))
            lines[i] = f"{match.group(1)}{self.public_ip}{match.group(3)}"
        for i, line in enumerate(lines):
            if line.startswith("c=IN IP4 ") and line.removeprefix("c=IN IP4 ") in private:
                lines[i] = f"c=IN IP4 {self.public_ip}"
        return "\r\n".join(lines)


# No NAT, no STUN: the host candidates as they are (a server on a public address, or tests).
DIRECT = Ice()


def new_peer(ice: Ice) -> RTCPeerConnection:
    servers = [RTCIceServer(urls=ice.stun)] if ice.stun else []
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))


async def answer(pc: RTCPeerConnection, offer: Offer, ice: Ice) -> str:
    """Apply ``offer`` to ``pc`` and return the answer, candidates included, as announced
    by ``ice``."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        InvalidAccessError,
        InvalidStateError,
        OperationError,
        InternalError,
    ) as exc:
        raise BadOffer(f"the offer cannot be answered: {exc}") from None
    return ice.announce(str(pc.localDescription.sdp))


def watch(
    pc: RTCPeerConnection, on_end: Callable[[EndReason], None], connect_timeout_s: float
) -> asyncio.Task[None]:
    """Call ``on_end`` once, when ``pc`` fails or closes, or is not connected in time.

    The returned task is the watch; cancel it once the owner ends the connection itself.
    """
    changed = asyncio.Event()
    pc.on("connectionstatechange", changed.set)

    async def run() -> None:
        connected = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + connect_timeout_s
        while True:
            state = pc.connectionState
            if state == "connected":
                connected = True
            elif state in ("failed", "closed"):
                on_end(EndReason.FAILED if state == "failed" else EndReason.CLOSED)
                return
            changed.clear()
            try:
                timeout = None if connected else max(0.0, deadline - loop.time())
                await asyncio.wait_for(changed.wait(), timeout)
            except TimeoutError:
                on_end(EndReason.NEVER_CONNECTED)
                return

    return asyncio.create_task(run())
