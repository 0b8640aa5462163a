"""Loopback UDP ports for ffmpeg: pairs for RTP and RTCP, and reading which are bound."""

from __future__ import annotations

import socket

import pytest

from media.ports import bound_udp_ports, free_port_pair, udp_ports_bound


def test_a_free_pair_is_even_and_both_halves_bind() -> None:
    port = free_port_pair()
    assert port % 2 == 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
        rtp.bind(("127.0.0.1", port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtcp:
            rtcp.bind(("127.0.0.1", port + 1))
            assert {port, port + 1} <= udp_ports_bound()


@pytest.mark.parametrize("byteorder_address", ["0100007F:9C40", "0100007F:9C41"])
def test_bound_udp_ports_reads_the_kernel_table(byteorder_address: str) -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
        f"  1: {byteorder_address} 00000000:0000 07 00000000:00000000 00:00000000 00000000 0\n"
        "  2: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000 0\n"
    )
    assert bound_udp_ports(table) == {int(byteorder_address.split(":")[1], 16)}
