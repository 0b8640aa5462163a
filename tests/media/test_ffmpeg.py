"""Golden argv for every ffmpeg command the video pipeline runs.

A change here is a change to what ffmpeg is asked to do: review it as such. The expected
commands are written out by hand (``w()`` only splits on spaces), never generated.
"""

from __future__ import annotations

import pytest

from media.ffmpeg import (
    EncodeSettings,
    hls_command,
    mp4_command,
    poster_command,
    poster_time,
)
from media.ladder import choose_ladder


def w(text: str) -> list[str]:
    return text.split()


HEAD = w("ffmpeg -hide_banner -nostdin -loglevel error -y")
X264 = w("-c:v libx264 -preset veryfast -profile:v high -force_key_frames expr:gte(t,n_forced*4)")
AAC = w("-c:a aac -b:a 128k -ac 2 -ar 48000")
HLS_OUT = w(
    "-threads 2 -f hls -hls_time 4 -hls_playlist_type vod -hls_list_size 0"
    " -hls_segment_type fmp4 -hls_flags independent_segments -hls_fmp4_init_filename init.mp4"
    " -hls_segment_filename /out/j.partial/hls/%v/seg_%03d.m4s -master_pl_name master.m3u8"
)
PROGRESS = w("-progress pipe:1 -nostats")
PLAYLISTS = ["/out/j.partial/hls/%v/index.m3u8"]
NO_META = w("-map_metadata -1 -map_chapters -1")
FULL_RATES = w(
    "-b:v:0 5000k -maxrate:v:0 5350k -bufsize:v:0 7500k"
    " -b:v:1 2800k -maxrate:v:1 2996k -bufsize:v:1 4200k"
    " -b:v:2 1400k -maxrate:v:2 1498k -bufsize:v:2 2100k"
    " -b:v:3 800k -maxrate:v:3 856k -bufsize:v:3 1200k"
)
FOUR_WITH_AUDIO = w("-map [v0] -map 0:a:0 -map [v1] -map 0:a:0 -map [v2] -map 0:a:0")
FOUR_WITH_AUDIO += w("-map [v3] -map 0:a:0")
FOUR_NAMES = "v:0,a:0,name:1080p v:1,a:1,name:720p v:2,a:2,name:480p v:3,a:3,name:360p"


def hls(width: int, height: int, *, fps: float, audio: bool = True) -> list[str]:
    return hls_command(
        "ffmpeg",
        "/in/src.mp4",
        "/out/j.partial/hls",
        choose_ladder(width, height, has_audio=audio),
        demuxer="mov",
        fps=fps,
        has_audio=audio,
    )


def test_hls_landscape_1080p() -> None:
    assert hls(1920, 1080, fps=30) == [
        *HEAD,
        *w("-threads 2 -t 600 -f mov -i /in/src.mp4"),
        "-filter_complex",
        "[0:v:0]split=4[s0][s1][s2][s3];"
        "[s0]scale=1920:1080,setsar=1,format=yuv420p[v0];"
        "[s1]scale=1280:720,setsar=1,format=yuv420p[v1];"
        "[s2]scale=854:480,setsar=1,format=yuv420p[v2];"
        "[s3]scale=640:360,setsar=1,format=yuv420p[v3]",
        *w("-filter_complex_threads 2"),
        *FOUR_WITH_AUDIO,
        *NO_META,
        *X264,
        *w("-g 120 -keyint_min 120 -sc_threshold 0"),
        *FULL_RATES,
        *AAC,
        *HLS_OUT,
        "-var_stream_map",
        FOUR_NAMES,
        *PROGRESS,
        *PLAYLISTS,
    ]


def test_hls_portrait_1080x1920_ladders_on_the_short_side() -> None:
    assert hls(1080, 1920, fps=29.97) == [
        *HEAD,
        *w("-threads 2 -t 600 -f mov -i /in/src.mp4"),
        "-filter_complex",
        "[0:v:0]split=4[s0][s1][s2][s3];"
        "[s0]scale=1080:1920,setsar=1,format=yuv420p[v0];"
        "[s1]scale=720:1280,setsar=1,format=yuv420p[v1];"
        "[s2]scale=480:854,setsar=1,format=yuv420p[v2];"
        "[s3]scale=360:640,setsar=1,format=yuv420p[v3]",
        *w("-filter_complex_threads 2"),
        *FOUR_WITH_AUDIO,
        *NO_META,
        *X264,
        *w("-g 120 -keyint_min 120 -sc_threshold 0"),
        *FULL_RATES,
        *AAC,
        *HLS_OUT,
        "-var_stream_map",
        FOUR_NAMES,
        *PROGRESS,
        *PLAYLISTS,
    ]


def test_hls_small_320x240_is_one_rendition_at_its_own_size() -> None:
    assert hls(320, 240, fps=25) == [
        *HEAD,
        *w("-threads 2 -t 600 -f mov -i /in/src.mp4"),
        "-filter_complex",
        "[0:v:0]split=1[s0];[s0]scale=320:240,setsar=1,format=yuv420p[v0]",
        *w("-filter_complex_threads 2"),
        *w("-map [v0] -map 0:a:0"),
        *NO_META,
        *X264,
        *w("-g 100 -keyint_min 100 -sc_threshold 0"),
        *w("-b:v:0 267k -maxrate:v:0 285k -bufsize:v:0 400k"),
        *AAC,
        *HLS_OUT,
        "-var_stream_map",
        "v:0,a:0,name:240p",
        *PROGRESS,
        *PLAYLISTS,
    ]


def test_hls_without_audio_and_over_60_fps() -> None:
    # No audio maps or encoder at all (mapping a missing 0:a:0 would fail the run), and a
    # 120 fps source is brought down to 60.
    assert hls(1280, 720, fps=120, audio=False) == [
        *HEAD,
        *w("-threads 2 -t 600 -f mov -i /in/src.mp4"),
        "-filter_complex",
        "[0:v:0]split=3[s0][s1][s2];"
        "[s0]scale=1280:720,setsar=1,fps=60,format=yuv420p[v0];"
        "[s1]scale=854:480,setsar=1,fps=60,format=yuv420p[v1];"
        "[s2]scale=640:360,setsar=1,fps=60,format=yuv420p[v2]",
        *w("-filter_complex_threads 2"),
        *w("-map [v0] -map [v1] -map [v2]"),
        *NO_META,
        *X264,
        *w("-g 240 -keyint_min 240 -sc_threshold 0"),
        *w("-b:v:0 2800k -maxrate:v:0 2996k -bufsize:v:0 4200k"),
        *w("-b:v:1 1400k -maxrate:v:1 1498k -bufsize:v:1 2100k"),
        *w("-b:v:2 800k -maxrate:v:2 856k -bufsize:v:2 1200k"),
        *HLS_OUT,
        "-var_stream_map",
        "v:0,name:720p v:1,name:480p v:2,name:360p",
        *PROGRESS,
        *PLAYLISTS,
    ]


def test_hls_settings_bound_threads_and_segments() -> None:
    argv = hls_command(
        "/opt/ffmpeg",
        "/in/src.webm",
        "/out/j.partial/hls",
        choose_ladder(640, 360),
        demuxer="matroska",
        fps=0.0,
        has_audio=True,
        settings=EncodeSettings(threads=1, preset="medium", segment_s=2, max_duration_s=90),
    )
    assert argv[:14] == [
        "/opt/ffmpeg",
        *HEAD[1:],
        *w("-threads 1 -t 90 -f matroska -i /in/src.webm"),
    ]
    assert values(argv, "-threads") == ["1", "1"]  # the decoder and the encoders
    assert values(argv, "-preset") == ["medium"]
    assert values(argv, "-filter_complex_threads") == ["1"]
    assert values(argv, "-hls_time") == ["2"]
    # Unknown frame rate: keyframes still land on segment boundaries by time.
    assert values(argv, "-force_key_frames") == ["expr:gte(t,n_forced*2)"]
    assert values(argv, "-g") == ["120"]


def values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == option]


def test_hls_refuses_an_empty_ladder() -> None:
    with pytest.raises(ValueError):
        hls_command("ffmpeg", "/in", "/out", [], demuxer="mov", fps=30, has_audio=True)


def test_mp4_is_a_faststart_remux_of_one_rung() -> None:
    assert mp4_command(
        "ffmpeg", "/out/j.partial/hls/720p/index.m3u8", "/out/j.partial/video.mp4"
    ) == [
        *HEAD,
        *w("-protocol_whitelist file -f hls -i /out/j.partial/hls/720p/index.m3u8"),
        *w("-map 0:v:0 -map 0:a:0? -c copy -movflags +faststart -f mp4"),
        *PROGRESS,
        "/out/j.partial/video.mp4",
    ]


def test_poster_portrait_at_the_top_rung_size() -> None:
    top = choose_ladder(1080, 1920)[0]
    argv = poster_command(
        "ffmpeg", "/in/src.mp4", "/out/j.partial/poster.jpg", top, demuxer="mov", at_s=1.0
    )
    assert argv == [
        *HEAD,
        *w("-threads 2 -ss 1 -f mov -i /in/src.mp4"),
        *w("-map 0:v:0 -frames:v 1 -map_metadata -1 -vf scale=1080:1920,setsar=1"),
        *w("-c:v mjpeg -q:v 3 -update 1 -f image2"),
        *PROGRESS,
        "/out/j.partial/poster.jpg",
    ]


def test_poster_small_source_early_in_a_short_clip() -> None:
    top = choose_ladder(320, 240)[0]
    argv = poster_command(
        "ffmpeg", "/in/a.mp4", "/o/p.jpg", top, demuxer="mov", at_s=poster_time(2.5), threads=1
    )
    assert argv == [
        *HEAD,
        *w("-threads 1 -ss 0.25 -f mov -i /in/a.mp4"),
        *w("-map 0:v:0 -frames:v 1 -map_metadata -1 -vf scale=320:240,setsar=1"),
        *w("-c:v mjpeg -q:v 3 -update 1 -f image2"),
        *PROGRESS,
        "/o/p.jpg",
    ]


@pytest.mark.parametrize(
    ("duration", "expected"), [(0.0, 0.0), (0.5, 0.05), (2.0, 0.2), (10.0, 1.0), (600.0, 1.0)]
)
def test_poster_time_is_one_second_or_a_tenth_of_a_short_clip(
    duration: float, expected: float
) -> None:
    assert poster_time(duration) == expected
