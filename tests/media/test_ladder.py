from __future__ import annotations

import pytest

from media.ladder import Rendition, choose_ladder, fallback_rendition

# (display width, display height) → [(name, width, height, video kbit/s)], largest first.
CASES = [
    pytest.param(
        1920,
        1080,
        [
            ("1080p", 1920, 1080, 5000),
            ("720p", 1280, 720, 2800),
            ("480p", 854, 480, 1400),
            ("360p", 640, 360, 800),
        ],
        id="landscape-1080p",
    ),
    pytest.param(
        1080,
        1920,
        [
            ("1080p", 1080, 1920, 5000),
            ("720p", 720, 1280, 2800),
            ("480p", 480, 854, 1400),
            ("360p", 360, 640, 800),
        ],
        id="portrait-9:16-ladders-on-the-short-side",
    ),
    pytest.param(
        3840,
        2160,
        [
            ("1080p", 1920, 1080, 5000),
            ("720p", 1280, 720, 2800),
            ("480p", 854, 480, 1400),
            ("360p", 640, 360, 800),
        ],
        id="4k-tops-at-1080p",
    ),
    pytest.param(
        1280,
        720,
        [("720p", 1280, 720, 2800), ("480p", 854, 480, 1400), ("360p", 640, 360, 800)],
        id="720p-no-upscale",
    ),
    pytest.param(
        720,
        1280,
        [("720p", 720, 1280, 2800), ("480p", 480, 854, 1400), ("360p", 360, 640, 800)],
        id="portrait-720p",
    ),
    pytest.param(
        1000,
        1000,
        [("720p", 720, 720, 2800), ("480p", 480, 480, 1400), ("360p", 360, 360, 800)],
        id="square",
    ),
    pytest.param(
        2560,
        1080,
        [
            ("1080p", 2560, 1080, 5000),
            ("720p", 1706, 720, 2800),
            ("480p", 1138, 480, 1400),
            ("360p", 854, 360, 800),
        ],
        id="ultrawide-keeps-aspect-even-widths",
    ),
    pytest.param(
        1079,
        1917,
        [("720p", 720, 1280, 2800), ("480p", 480, 852, 1400), ("360p", 360, 640, 800)],
        id="just-under-1080-is-not-upscaled",
    ),
    pytest.param(854, 480, [("480p", 854, 480, 1400), ("360p", 640, 360, 800)], id="480p"),
    pytest.param(640, 360, [("360p", 640, 360, 800)], id="exactly-360p"),
    pytest.param(320, 240, [("240p", 320, 240, 267)], id="small-own-size"),
    pytest.param(241, 321, [("240p", 240, 320, 267)], id="small-odd-rounds-down-to-even"),
    pytest.param(96, 64, [("64p", 96, 64, 200)], id="tiny-gets-the-bitrate-floor"),
]


@pytest.mark.parametrize(("width", "height", "expected"), CASES)
def test_ladder(width: int, height: int, expected: list[tuple[str, int, int, int]]) -> None:
    ladder = choose_ladder(width, height)
    assert [(r.name, r.width, r.height, r.video_bitrate // 1000) for r in ladder] == expected
    for r in ladder:
        assert r.width % 2 == 0 and r.height % 2 == 0
        assert r.width <= max(width, 2) and r.height <= max(height, 2), "upscaled"
        assert r.audio_bitrate == 128_000
        assert r.bitrate == r.video_bitrate + r.audio_bitrate


def test_no_audio_means_no_audio_bitrate() -> None:
    ladder = choose_ladder(1280, 720, has_audio=False)
    assert {r.audio_bitrate for r in ladder} == {0}
    assert ladder[0].bitrate == 2_800_000


def test_aspect_ratio_is_kept_within_a_pixel() -> None:
    for width, height in [(1920, 1080), (1080, 1920), (2560, 1080), (1440, 1080), (1000, 1000)]:
        for r in choose_ladder(width, height):
            assert abs(r.width / r.height - width / height) * r.height <= 1.0, r


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(1920, 1080, "720p"), (1280, 720, "480p"), (854, 480, "480p"), (320, 240, "240p")],
)
def test_mp4_fallback_is_the_middle_rung(width: int, height: int, expected: str) -> None:
    assert fallback_rendition(choose_ladder(width, height)).name == expected


@pytest.mark.parametrize(("width", "height"), [(0, 1080), (1920, 0), (-2, 4)])
def test_refuses_empty_pictures(width: int, height: int) -> None:
    with pytest.raises(ValueError):
        choose_ladder(width, height)


def test_fallback_of_nothing_is_an_error() -> None:
    empty: list[Rendition] = []
    with pytest.raises(ValueError):
        fallback_rendition(empty)
