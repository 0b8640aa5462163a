"""A wall-clock time burnt into video frames as big blocks, and read back after encoding.

No font is needed (the ffmpeg build may have none for ``drawtext``) and nothing but PyAV: 48
bits of ``time.time()`` in milliseconds and a 16-bit CRC, one bit per 32x32 block of black or
white luma, two rows of 32 blocks. Blocks are macroblock-aligned and read by averaging their
inner 16x16 pixels, so H.264 and VP8 at WebRTC bitrates keep every bit; a frame whose CRC does
not match (a decoder that concealed a loss) reads as None, never as a wrong time.
"""

from __future__ import annotations

import binascii
import time
from fractions import Fraction

from av.video.frame import VideoFrame

WIDTH, HEIGHT = 1280, 720
BLOCK = 32
COLUMNS, ROWS = 32, 2
ORIGIN = (128, 64)  # top-left of the block grid, in a WIDTH x HEIGHT frame
STAMP_BITS = 48
BLACK, WHITE, GREY = 16, 235, 128
MARGIN = 8  # pixels of each block's edge left out when reading it, where codecs smear
_Y_FORMATS = frozenset({"yuv420p", "yuvj420p", "nv12"})  # Y is plane 0, one byte a pixel


def now_ms() -> int:
    return int(time.time() * 1000)


def _bits(stamp_ms: int) -> list[int]:
    stamp = stamp_ms & ((1 << STAMP_BITS) - 1)
    crc = binascii.crc_hqx(stamp.to_bytes(6, "big"), 0)
    word = (stamp << 16) | crc
    return [(word >> (63 - i)) & 1 for i in range(COLUMNS * ROWS)]


class StampedFrames:
    """Makes WIDTH x HEIGHT yuv420p frames: a moving gradient, and the time they were made."""

    def __init__(self) -> None:
        ramp = bytes(x * 256 // WIDTH for x in range(WIDTH))
        self._ramp = ramp + ramp  # a window of it slides by 8 px a frame
        self._chroma = bytes([GREY]) * (WIDTH * HEIGHT // 4)
        self._black = bytes([BLACK]) * BLOCK
        self._white = bytes([WHITE]) * BLOCK
        self.count = 0

    def luma(self) -> bytes:
        """The next frame's Y plane, rows one after another, stamped now."""
        stamp = now_ms()
        shift = (self.count * 8) % WIDTH
        plane = bytearray(self._ramp[shift : shift + WIDTH] * HEIGHT)
        x0, y0 = ORIGIN
        for i, bit in enumerate(_bits(stamp)):
            x = x0 + (i % COLUMNS) * BLOCK
            y = y0 + (i // COLUMNS) * BLOCK
            fill = self._white if bit else self._black
            for row in range(y, y + BLOCK):
                plane[row * WIDTH + x : row * WIDTH + x + BLOCK] = fill
        self.count += 1
        return bytes(plane)

    def frame(self, pts: int, time_base: Fraction) -> VideoFrame:
        luma = self.luma()
        frame = VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(luma)
        frame.planes[1].update(self._chroma)
        frame.planes[2].update(self._chroma)
        frame.pts = pts
        frame.time_base = time_base
        return frame


def read_stamp(frame: VideoFrame) -> int | None:
    """The stamp in a decoded frame, in ms; None when there is none or its CRC fails."""
    if frame.format.name not in _Y_FORMATS:
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    data = bytes(plane)
    stride = plane.line_size
    sx, sy = frame.width / WIDTH, frame.height / HEIGHT  # a seat's encoder may scale
    inner = BLOCK - 2 * MARGIN
    word = 0
    for i in range(COLUMNS * ROWS):
        x = int((ORIGIN[0] + (i % COLUMNS) * BLOCK + MARGIN) * sx)
        y = int((ORIGIN[1] + (i // COLUMNS) * BLOCK + MARGIN) * sy)
        width, rows = max(1, int(inner * sx)), max(1, int(inner * sy))
        total = sum(sum(data[r * stride + x : r * stride + x + width]) for r in range(y, y + rows))
        word = (word << 1) | (total > GREY * width * rows)
    stamp, crc = word >> 16, word & 0xFFFF
    if binascii.crc_hqx(stamp.to_bytes(6, "big"), 0) != crc:
        return None
    return stamp
