"""How a red packet's total is split, from its secret seed (DESIGN §6, docs/red-packets.md).

Everything here is a pure function of the seed, the total, the count and the mode, so anyone
holding the reveal (the seed and the shares) recomputes the split and the commitment the
packet published at its drop, and checks every grab against it.

``double-mean-v1`` (mode ``random``): with ``left`` points still to share among ``n - i``
shares, share ``i`` (0-based) is drawn uniformly from ``1 .. min(⌊2·left / (n−i)⌋,
left − (n−i−1))`` — at most twice the mean of what is left, and leaving at least 1 for each
share after it — and the last share takes what is left. A draw of a number in ``1 .. hi`` uses
HMAC-SHA256 keyed with the seed over ``"double-mean-v1:<i>:<c>"`` for c = 0, 1, …, read as a
256-bit big-endian integer ``x``, taking the first with ``x < 2**256 − (2**256 mod hi)`` (so
every value is equally likely) and answering ``1 + x mod hi``.

``equal-v1`` (mode ``equal``): every share is ``total // count``, and the first
``total mod count`` shares get one more. The seed still makes the commitment unguessable.
"""

from __future__ import annotations

import hashlib
import hmac

RANDOM = "double-mean-v1"
EQUAL = "equal-v1"
GENERATORS = {"random": RANDOM, "equal": EQUAL}
SPACE = 1 << 256


def draw(seed: bytes, i: int, hi: int) -> int:
    """A number in 1..hi, uniform, the i-th of the seed's (see the module's text)."""
    if hi < 1:
        raise ValueError("hi is at least 1")
    limit = SPACE - SPACE % hi
    c = 0
    while True:
        message = f"{RANDOM}:{i}:{c}".encode()
        x = int.from_bytes(hmac.new(seed, message, hashlib.sha256).digest(), "big")
        if x < limit:
            return 1 + x % hi
        c += 1


def split(seed: bytes, total: int, count: int, mode: str) -> list[int]:
    """The shares, in the order grabs receive them: ``count`` of them, each ≥ 1, summing to
    ``total``."""
    if count < 1 or total < count:
        raise ValueError("a packet has at least one share and at least 1 point a share")
    if mode == "equal":
        base, extra = divmod(total, count)
        return [base + 1 if i < extra else base for i in range(count)]
    if mode != "random":
        raise ValueError(f"unknown mode {mode!r}")
    shares: list[int] = []
    left = total
    for i in range(count - 1):
        rest = count - i
        hi = min(2 * left // rest, left - (rest - 1))
        share = draw(seed, i, hi)
        shares.append(share)
        left -= share
    shares.append(left)
    return shares


def commitment(seed_hex: str, shares: list[int]) -> str:
    """``sha256_hex(seed_hex + ":" + ",".join(shares))``, published at the drop."""
    text = seed_hex + ":" + ",".join(str(share) for share in shares)
    return hashlib.sha256(text.encode()).hexdigest()


def verify(
    seed_hex: str, shares: list[int], total: int, count: int, mode: str, published: str
) -> list[str]:
    """What does not hold in a reveal: empty when the seed makes exactly these shares and they
    hash to the commitment published at the drop."""
    problems: list[str] = []
    try:
        seed = bytes.fromhex(seed_hex)
    except ValueError:
        return ["the seed is not hex"]
    if len(seed) != 32:
        problems.append("the seed is not 32 bytes")
    if split(seed, total, count, mode) != shares:
        problems.append("the seed does not split the total into these shares")
    if commitment(seed_hex, shares) != published:
        problems.append("the seed and shares do not hash to the published commitment")
    return problems
