"""Every collection index the live domain needs, created at start-up."""

from __future__ import annotations

from live import drops, moderation, pins, polls, props, red_packets, rooms
from store.port import Index

INDEXES: list[Index] = [
    *rooms.INDEXES,
    *moderation.INDEXES,
    *pins.INDEXES,
    *props.INDEXES,
    *red_packets.INDEXES,
    *drops.INDEXES,
    *polls.INDEXES,
]
