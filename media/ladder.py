"""The HLS rendition ladder: which sizes and bitrates to encode a source into. Pure.

Heights are named on the *short* side of the picture, so a vertical 1080x1920 short video
gets the same "1080p" rung (and bitrate) as a landscape 1920x1080 one: short videos are
mostly 9:16, and laddering them on the long side would upscale or starve them. A rung is
never larger than the source (no upscaling); a source smaller than the lowest rung gets a
single rendition at its own size.
"""

from __future__ import annotations

from dataclasses import dataclass

# (short side, video kbit/s). Bitrates follow the usual H.264 ladders (Apple's HLS authoring
# spec, YouTube upload recommendations) trimmed for short, mostly talking-head videos.
CANDIDATES: tuple[tuple[int, int], ...] = ((1080, 5000), (720, 2800), (480, 1400), (360, 800))
AUDIO_KBPS = 128
# The floor for a source below 360p: its bitrate scales with its pixel count, but very small
# pictures still need a few hundred kbit/s to survive H.264's fixed per-frame overhead.
MIN_VIDEO_KBPS = 200


@dataclass(frozen=True)
class Rendition:
    """One rung: the output picture size (display orientation) and its bitrates in bit/s."""

    name: str
    width: int
    height: int
    video_bitrate: int
    audio_bitrate: int

    @property
    def bitrate(self) -> int:
        """Total bit/s (video + audio), what a player budgets for this rung."""
        return self.video_bitrate + self.audio_bitrate

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)


def even(value: float) -> int:
    """The nearest even integer, at least 2: H.264 in 4:2:0 needs even dimensions."""
    return max(2, 2 * round(value / 2))


def even_down(value: int) -> int:
    """Round down to even (at least 2), so a small source is never upscaled by a pixel."""
    return max(2, value - value % 2)


def choose_ladder(width: int, height: int, *, has_audio: bool = True) -> list[Rendition]:
    """Renditions for a picture of ``width`` x ``height`` *as displayed* (rotation applied).

    Largest first. The aspect ratio is kept: the short side is the rung's height, the long
    side is scaled to match and rounded to even.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"picture size must be positive, got {width}x{height}")
    portrait = height > width
    short, long = (width, height) if portrait else (height, width)
    audio = AUDIO_KBPS * 1000 if has_audio else 0
    rungs: list[Rendition] = []
    for rung, kbps in CANDIDATES:
        if rung > short:
            continue
        other = even(rung * long / short)
        w, h = (rung, other) if portrait else (other, rung)
        rungs.append(Rendition(f"{rung}p", w, h, kbps * 1000, audio))
    if rungs:
        return rungs
    w, h = even_down(width), even_down(height)
    base_rung, base_kbps = CANDIDATES[-1]
    base_pixels = base_rung * even(base_rung * 16 / 9)
    kbps = max(MIN_VIDEO_KBPS, round(base_kbps * (w * h) / base_pixels))
    return [Rendition(f"{min(w, h)}p", w, h, kbps * 1000, audio)]


def fallback_rendition(ladder: list[Rendition]) -> Rendition:
    """The rung the MP4 fallback is made from: the middle one (720p of a full ladder).

    The MP4 is for players without HLS; it must play on weak networks, so it is not the top.
    """
    if not ladder:
        raise ValueError("empty ladder")
    return ladder[(len(ladder) - 1) // 2]
