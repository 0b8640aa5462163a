"""How WebRTC peers reach the server: the public address of a 1:1 NAT replaces the host
candidates' addresses in answers, a STUN server adds the address it sees, and malformed
settings are refused by name."""

from __future__ import annotations

import asyncio
import re
from typing import cast

import pytest
from aioice import stun

from media.fanout import FrameFanout
from media.webrtc import DIRECT, Ice, new_peer
from media.whep import Seats
from webapp.settings import Settings, SettingsError

PUBLIC = "203.0.113.7"
MAPPED = "198.51.100.20"
ANSWER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "m=video 40001 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 10.0.0.5",
        "a=candidate:a1 1 udp 2130706431 10.0.0.5 40001 typ host",
        "a=candidate:a2 1 udp 2130706431 172.17.0.1 40002 typ host",
        "a=candidate:a3 1 udp 2130706431 fd00::5 40003 typ host",
        "a=candidate:a4 1 udp 1694498815 198.51.100.9 40001 typ srflx raddr 10.0.0.5 rport 40001",
        "a=end-of-candidates",
        "",
    ]
)


def test_the_public_address_replaces_ipv4_host_candidates_only() -> None:
    announced = Ice(public_ip=PUBLIC).announce(ANSWER).split("\r\n")
    assert "c=IN IP4 203.0.113.7" in announced
    assert "a=candidate:a1 1 udp 2130706431 203.0.113.7 40001 typ host" in announced
    assert "a=candidate:a2 1 udp 2130706431 203.0.113.7 40002 typ host" in announced
    # IPv6 has no NAT to cross; a server-reflexive candidate already names the outside.
    assert "a=candidate:a3 1 udp 2130706431 fd00::5 40003 typ host" in announced
    assert any(
        line.startswith("a=candidate:a4 1 udp 1694498815 198.51.100.9 40001") for line in announced
    )
    assert "10.0.0.5 40001 typ host" not in "\n".join(announced)


def test_without_a_public_address_the_answer_is_unchanged() -> None:
    assert DIRECT.announce(ANSWER) == ANSWER


@pytest.mark.parametrize(
    ("public_ip", "stun", "named"),
    [
        ("my-server", "", "LIFEACCOUNT_WEBRTC_PUBLIC_IP"),
        ("2001:db8::1", "", "LIFEACCOUNT_WEBRTC_PUBLIC_IP"),
        ("0.0.0.0", "", "LIFEACCOUNT_WEBRTC_PUBLIC_IP"),
        ("127.0.0.1", "", "LIFEACCOUNT_WEBRTC_PUBLIC_IP"),
        ("", "stun.example.com:3478", "LIFEACCOUNT_WEBRTC_STUN_URL"),
        ("", "stun:stun.example.com:70000", "LIFEACCOUNT_WEBRTC_STUN_URL"),
        ("", "http://stun.example.com", "LIFEACCOUNT_WEBRTC_STUN_URL"),
        ("", "stuns:stun.example.com:5349", "LIFEACCOUNT_WEBRTC_STUN_URL"),
        ("", "stun:[2001:db8::1]:3478", "LIFEACCOUNT_WEBRTC_STUN_URL"),
    ],
)
def test_malformed_settings_are_refused_by_name(public_ip: str, stun: str, named: str) -> None:
    environ = {"LIFEACCOUNT_WEBRTC_PUBLIC_IP": public_ip, "LIFEACCOUNT_WEBRTC_STUN_URL": stun}
    with pytest.raises(SettingsError, match=named):
        Settings.load({}, environ).ice()


def test_good_settings_parse() -> None:
    environ = {
        "LIFEACCOUNT_WEBRTC_PUBLIC_IP": f" {PUBLIC} ",
        "LIFEACCOUNT_WEBRTC_STUN_URL": "stun:stun.example.com:3478",
    }
    assert Settings.load({}, environ).ice() == Ice(PUBLIC, "stun:stun.example.com:3478")
    assert Settings.load({}, {}).ice() == DIRECT


async def seat_answer(ice: Ice) -> str:
    """The answer a WHEP seat gives a video viewer, announced by ``ice``."""
    seats = Seats({"video": FrameFanout("video")}, max_seats=1, ice=ice)
    viewer = new_peer(DIRECT)
    viewer.addTransceiver("video", direction="recvonly")
    try:
        await viewer.setLocalDescription(await viewer.createOffer())
        answer, _ = await seats.play(viewer.localDescription.sdp)
    finally:
        await viewer.close()
        await seats.close()
    return answer


async def test_a_seat_answer_announces_the_public_address() -> None:
    answer = await seat_answer(Ice(public_ip=PUBLIC))
    hosts = re.findall(r"^a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ host", answer, re.M)
    ipv4 = [address for address in hosts if ":" not in address]
    assert ipv4 and set(ipv4) == {PUBLIC}


class StunServer(asyncio.DatagramProtocol):
    """A STUN server on 127.0.0.1 that answers every binding request as if a NAT mapped the
    asker to ``MAPPED`` (same port)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = stun.parse_message(data)
        response = stun.Message(
            stun.Method.BINDING,
            stun.Class.RESPONSE,
            transaction_id=request.transaction_id,
            attributes={"XOR-MAPPED-ADDRESS": (MAPPED, addr[1])},
        )
        self.transport.sendto(bytes(response), addr)


async def test_a_stun_server_adds_its_mapped_address_to_the_answer() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(StunServer, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        answer = await seat_answer(Ice(stun=f"stun:127.0.0.1:{port}"))
    finally:
        transport.close()
    reflexive = re.findall(r"^a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ srflx", answer, re.M)
    assert reflexive and set(reflexive) == {MAPPED}
