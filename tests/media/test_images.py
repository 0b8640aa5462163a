"""Images: the sniff, the header sizes read without a decoder, the golden resize argv, and
real resizes by the imageio-ffmpeg binary of pictures made with lavfi's testsrc2."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from media.images import (
    CORRUPT,
    EMPTY,
    NOT_AN_IMAGE,
    TIMEOUT,
    TOO_LARGE,
    UNSUPPORTED_IMAGE,
    ImageError,
    ImageKind,
    ImageLimits,
    ImageResizer,
    Inspected,
    Size,
    fit,
    header_size,
    inspect,
    inspect_head,
    jpeg_size,
    resize_command,
    sniff,
)
from tests.media.clips import cached, children, decode_errors, ffmpeg


def picture(factory: pytest.TempPathFactory, name: str, size: str, *args: str) -> Path:
    """One frame of testsrc2 at ``size``, in the format ``name``'s extension says."""
    return cached(
        factory,
        name,
        lambda p: ffmpeg(
            "-f", "lavfi", "-i", f"testsrc2=size={size}", "-frames:v", "1", *args,
            "-update", "1", "-f", "image2", str(p),
        ),
    )  # fmt: skip


@pytest.fixture(scope="session")
def big_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return picture(tmp_path_factory, "big.png", "3000x2000")


@pytest.fixture(scope="session")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return picture(tmp_path_factory, "big.jpg", "3000x2000", "-q:v", "3")


@pytest.fixture(scope="session")
def small_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return picture(tmp_path_factory, "small.jpg", "300x200", "-q:v", "3")


def resizer(source: Path, out: Path, **limits: Any) -> ImageResizer:
    head = source.read_bytes()[: 1 << 20]
    return ImageResizer(
        source, inspect_head(head, ImageLimits()), out, limits=ImageLimits(**limits)
    )


def error_of(data: bytes) -> ImageError:
    with pytest.raises(ImageError) as caught:
        inspect_head(data, ImageLimits())
    return caught.value


# -- the sniff ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", ImageKind.JPEG),
        (b"\xff\xd8\xff\xe1\x00\x10Exif\x00", ImageKind.JPEG),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ImageKind.PNG),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", ImageKind.WEBP),
        (b"GIF89a\x01\x00\x01\x00", ImageKind.GIF),
        (b"GIF87a\x01\x00\x01\x00", ImageKind.GIF),
    ],
)
def test_sniff_takes_the_four_web_formats(head: bytes, kind: ImageKind) -> None:
    assert sniff(head) is kind


@pytest.mark.parametrize(
    ("head", "code", "says"),
    [
        (b"", EMPTY, "empty"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", UNSUPPORTED_IMAGE, "HEIF/AVIF"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", UNSUPPORTED_IMAGE, "HEIF/AVIF"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00", UNSUPPORTED_IMAGE, "HEIF/AVIF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg">', UNSUPPORTED_IMAGE, "SVG"),
        (b'<?xml version="1.0"?>\n<svg width="1">', UNSUPPORTED_IMAGE, "SVG"),
        (b"II*\x00\x08\x00\x00\x00", UNSUPPORTED_IMAGE, "TIFF"),
        (b"BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00", UNSUPPORTED_IMAGE, "BMP"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n", UNSUPPORTED_IMAGE, "JPEG XL"),
        (b"8BPS\x00\x01", UNSUPPORTED_IMAGE, "Photoshop"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", NOT_AN_IMAGE, "video"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", NOT_AN_IMAGE, "video"),
        (b"%PDF-1.7\n", NOT_AN_IMAGE, "JPEG, PNG, WebP or GIF"),
        (bytes(range(7, 200)), NOT_AN_IMAGE, "JPEG, PNG, WebP or GIF"),
    ],
)
def test_sniff_refuses_everything_else_saying_what_it_is(head: bytes, code: str, says: str) -> None:
    with pytest.raises(ImageError) as caught:
        sniff(head)
    assert caught.value.code == code and says in caught.value.message


# -- sizes from headers, without a decoder ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "kind"),
    [
        ("hdr.png", (), ImageKind.PNG),
        ("hdr.jpg", ("-q:v", "3"), ImageKind.JPEG),
        ("hdr-lossy.webp", ("-c:v", "libwebp"), ImageKind.WEBP),
        ("hdr-lossless.webp", ("-c:v", "libwebp", "-lossless", "1"), ImageKind.WEBP),
        ("hdr-alpha.webp", ("-c:v", "libwebp", "-pix_fmt", "yuva420p"), ImageKind.WEBP),
        ("hdr.gif", ("-c:v", "gif"), ImageKind.GIF),
    ],
)
def test_header_size_of_real_files(
    tmp_path_factory: pytest.TempPathFactory, name: str, args: tuple[str, ...], kind: ImageKind
) -> None:
    # testsrc2 draws even sizes only: the odd one comes from a scale.
    path = picture(tmp_path_factory, name, "320x200", "-vf", "scale=321:203", *args)
    assert inspect_head(path.read_bytes(), ImageLimits()) == Inspected(kind, Size(321, 203))


def test_a_png_renamed_jpg_is_read_as_the_png_it_is(big_png: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "photo.jpg"
    renamed.write_bytes(big_png.read_bytes())
    inspected = asyncio.run(inspect(renamed))
    assert inspected == Inspected(ImageKind.PNG, Size(3000, 2000))
    assert "png_pipe" in resizer(renamed, tmp_path / "out").command()


def _with_sof_size(jpeg: bytes, width: int, height: int) -> bytes:
    i = jpeg.index(b"\xff\xc0")
    size = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return jpeg[: i + 5] + size + jpeg[i + 9 :]


async def test_a_jpeg_declaring_a_huge_size_is_refused_before_any_decoder(
    small_jpeg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(_with_sof_size(small_jpeg.read_bytes(), 65000, 65000))

    async def no_child(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a child was started for a file refused by its header")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", no_child)
    with pytest.raises(ImageError) as caught:
        await inspect(bomb)
    assert caught.value.code == TOO_LARGE
    assert "65000x65000" in caught.value.message and "40 MP" in caught.value.message


def test_the_pixel_limit_is_on_pixels_not_sides() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    assert inspect_head(png + (8000).to_bytes(4, "big") + (5000).to_bytes(4, "big"), ImageLimits())
    assert error_of(png + (8000).to_bytes(4, "big") + (5001).to_bytes(4, "big")).code == TOO_LARGE
    gif = b"GIF89a" + (65535).to_bytes(2, "little") + (65535).to_bytes(2, "little")
    assert error_of(gif).code == TOO_LARGE


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00",  # cut before IHDR
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(8),  # 0x0
        b"\xff\xd8\xff\xe0\x00\x10JFIF",  # no frame header yet
        b"\xff\xd8\xff\xda\x00\x08" + bytes(40),  # scan data before any frame
        b"RIFF\x10\x00\x00\x00WEBPXXXX" + bytes(20),  # an unknown WebP chunk
        b"GIF89a\x00",
    ],
)
def test_a_damaged_header_is_corrupt(data: bytes) -> None:
    assert error_of(data).code == CORRUPT


def test_a_jpeg_header_skips_metadata_and_fill_bytes() -> None:
    exif = b"\xff\xe1" + (2 + 300).to_bytes(2, "big") + bytes(300)
    sof = b"\xff\xff\xc2\x00\x11\x08" + (600).to_bytes(2, "big") + (800).to_bytes(2, "big")
    assert jpeg_size(b"\xff\xd8" + exif + sof + bytes(12)) == Size(800, 600)


# -- sizes and the golden argv ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "side", "out"),
    [
        (Size(3000, 2000), 1440, Size(1440, 960)),
        (Size(3000, 2000), 360, Size(360, 240)),
        (Size(2000, 3000), 1440, Size(960, 1440)),
        (Size(300, 200), 1440, Size(300, 200)),  # never upscaled
        (Size(1440, 1440), 1440, Size(1440, 1440)),
        (Size(4000, 3), 360, Size(360, 1)),  # a sliver keeps one row
        (Size(1001, 333), 360, Size(360, 120)),
    ],
)
def test_fit(source: Size, side: int, out: Size) -> None:
    assert fit(source, side) == out


def test_resize_command_golden() -> None:
    argv = resize_command(
        "ffmpeg",
        "/in/upl_1",
        "/out/job-1.partial",
        demuxer="png_pipe",
        large=Size(1440, 960),
        thumb=Size(360, 240),
        max_pixels=40_000_000,
    )
    assert argv == [
        *"ffmpeg -hide_banner -nostdin -loglevel error -y -threads 1 -filter_threads 1".split(),
        *"-err_detect explode -xerror -max_pixels 40000000 -f png_pipe -i /in/upl_1".split(),
        "-filter_complex",
        "[0:v:0]split=2[l0][t0];"
        "[l0]scale=1440:960:flags=lanczos,format=rgba[l1];"
        "color=c=white:s=1440x960[lbg];"
        "[lbg][l1]overlay=shortest=1:format=auto,setsar=1,format=yuvj420p[l];"
        "[t0]scale=360:240:flags=lanczos,format=rgba[t1];"
        "color=c=white:s=360x240[tbg];"
        "[tbg][t1]overlay=shortest=1:format=auto,setsar=1,format=yuvj420p[t]",
        *"-map [l] -frames:v 1 -map_metadata -1 -c:v mjpeg -q:v 3 -update 1".split(),
        *"-f image2 /out/job-1.partial/large.jpg".split(),
        *"-map [t] -frames:v 1 -map_metadata -1 -c:v mjpeg -q:v 3 -update 1".split(),
        *"-f image2 /out/job-1.partial/thumb.jpg".split(),
    ]


@pytest.mark.parametrize(
    ("kind", "demuxer"),
    [
        (ImageKind.JPEG, "jpeg_pipe"),
        (ImageKind.PNG, "png_pipe"),
        (ImageKind.WEBP, "webp_pipe"),
        (ImageKind.GIF, "gif"),
    ],
)
def test_each_kind_is_opened_with_its_own_demuxer(kind: ImageKind, demuxer: str) -> None:
    made = ImageResizer("/in/x", Inspected(kind, Size(10, 10)), "/out/x", ffmpeg="ffmpeg")
    argv = made.command()
    assert argv[argv.index("-f") + 1] == demuxer
    assert argv.index("-f") < argv.index("-i")


# -- real resizes -------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["big_png", "big_jpeg"])
async def test_a_3000x2000_picture_becomes_1440x960_and_360x240(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    source: Path = request.getfixturevalue(fixture)
    out = tmp_path / "out"
    result = await resizer(source, out).run()
    assert (result.source, result.large, result.thumb) == (
        Size(3000, 2000),
        Size(1440, 960),
        Size(360, 240),
    )
    assert jpeg_size((out / "large.jpg").read_bytes()) == Size(1440, 960)
    assert jpeg_size((out / "thumb.jpg").read_bytes()) == Size(360, 240)
    assert decode_errors(out / "large.jpg") == (0, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the partial dir is gone


async def test_a_small_picture_is_never_upscaled(small_jpeg: Path, tmp_path: Path) -> None:
    result = await resizer(small_jpeg, tmp_path / "out").run()
    assert (result.large, result.thumb) == (Size(300, 200), Size(300, 200))
    assert jpeg_size((tmp_path / "out" / "thumb.jpg").read_bytes()) == Size(300, 200)


async def test_a_gif_keeps_its_first_frame_and_webp_is_read(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    gif = cached(
        tmp_path_factory,
        "anim.gif",
        lambda p: ffmpeg("-f", "lavfi", "-i", "testsrc2=size=480x320:rate=5:duration=1", str(p)),
    )
    webp = picture(tmp_path_factory, "pic.webp", "800x600", "-c:v", "libwebp")
    done = await resizer(gif, tmp_path / "gif").run()
    assert (done.large, done.thumb) == (Size(480, 320), Size(360, 240))
    done = await resizer(webp, tmp_path / "webp").run()
    assert (done.large, done.thumb) == (Size(800, 600), Size(360, 270))


async def test_a_truncated_jpeg_is_a_clear_error_and_leaves_nothing(
    big_jpeg: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(big_jpeg.read_bytes()[:40_000])
    before = children()
    with pytest.raises(ImageError) as caught:
        await resizer(cut, tmp_path / "out").run()
    assert caught.value.code == CORRUPT
    assert "damaged or cut short" in caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.jpg"]
    assert children() - before == set()


async def test_the_timeout_kills_the_child(big_png: Path, tmp_path: Path) -> None:
    before = children()
    with pytest.raises(ImageError) as caught:
        await resizer(big_png, tmp_path / "out", timeout_s=0.001).run()
    assert caught.value.code == TIMEOUT
    assert children() - before == set()
    assert list(tmp_path.iterdir()) == []


async def test_the_childs_memory_limit_is_in_force(big_png: Path, tmp_path: Path) -> None:
    # 48 MiB of address space cannot hold the decoders: the limit is applied in the child,
    # and its failure is an answer, not an exception of another kind.
    with pytest.raises(ImageError) as caught:
        await resizer(big_png, tmp_path / "out", memory_bytes=48 << 20).run()
    assert caught.value.code == CORRUPT


def test_header_size_of_each_kind_needs_its_own_header() -> None:
    with pytest.raises(ImageError):
        header_size(ImageKind.WEBP, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(8))
