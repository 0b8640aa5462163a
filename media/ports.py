"""UDP ports on 127.0.0.1 for ffmpeg to receive a publisher's RTP on, and knowing when it has
bound them (so no packet is sent before it listens)."""

from __future__ import annotations

import socket
import sys

from media.live_ffmpeg import LOCALHOST

PORT_TRIES = 50


def free_port_pair() -> int:
    """An even UDP port on 127.0.0.1 whose odd neighbour is free too, for ffmpeg to bind.

    ffmpeg binds them itself a moment later, so another process could take one in between;
    then ffmpeg exits at once, the offer is answered with ``EncoderError``, and the
    client's next try gets other ports.
    """
    for _ in range(PORT_TRIES):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
            rtp.bind((LOCALHOST, 0))
            port = rtp.getsockname()[1]
            if port % 2 or port >= 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtcp:
                try:
                    rtcp.bind((LOCALHOST, port + 1))
                except OSError:
                    continue
                return int(port)
    raise OSError("no free pair of UDP ports on 127.0.0.1")


def bound_udp_ports(proc_net_udp: str, address: str = LOCALHOST) -> set[int]:
    """The UDP ports bound on ``address`` according to a ``/proc/net/udp`` table."""
    packed = socket.inet_aton(address)
    # The kernel prints the address as a number in host byte order.
    wanted = (packed[::-1] if sys.byteorder == "little" else packed).hex().upper()
    ports = set()
    for line in proc_net_udp.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 1 and ":" in fields[1]:
            host, _, port = fields[1].partition(":")
            if host.upper() == wanted:
                ports.add(int(port, 16))
    return ports


def udp_ports_bound() -> set[int]:
    """The UDP ports bound on 127.0.0.1 now (Linux); every port where it cannot be known."""
    try:
        with open("/proc/net/udp") as table:
            return bound_udp_ports(table.read())
    except OSError:
        # Not Linux: nothing to read, so no wait (the first keyframe may be missed).
        return set(range(65536))
