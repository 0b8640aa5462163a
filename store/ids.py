"""Opaque, URL-safe ids that sort by creation time (DESIGN §4).

``<prefix>_`` then 10 characters of millisecond time and 16 of randomness, in Crockford's
base32, lower-case (a ULID). Ids made in the same millisecond by one process keep increasing.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand += 1
        else:
            _last_ms = ms
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1
        rand = _last_rand
    return f"{prefix}_{_b32(ms, 10)}{_b32(rand, 16)}"
