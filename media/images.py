"""Images for posts and articles: an upload becomes ``large.jpg`` and ``thumb.jpg``.

Uploads are untrusted, and the server process never decodes one (the issue: "uploads
validated before any decoder touches them in the server process"). What happens here, in
order:

1. :func:`sniff` reads the magic bytes: JPEG, PNG, WebP and GIF (its first frame) are taken;
   HEIC/AVIF, SVG, TIFF and the like are refused as ``unsupported_image``, anything else as
   ``not_an_image``.
2. :func:`header_size` reads the width and height from the format's header (PNG ``IHDR``, GIF
   logical screen, WebP ``VP8``/``VP8L``/``VP8X``, JPEG start-of-frame): a few bytes of pure
   parsing, no decoder. A picture above ``max_pixels`` is refused as ``too_large`` here, so a
   decompression bomb (a few KiB that would decode to gigabytes) never reaches a decoder.
3. :class:`ImageResizer` runs the imageio-ffmpeg binary once in a child with memory and
   file-size limits and a timeout, forcing the one demuxer the sniff chose (never ffmpeg's
   format guessing) and ``-max_pixels`` as a second guard. Output goes to ``<out>.partial``
   and becomes ``<out>`` by one rename; the sizes written are read back from the JPEG headers.

Failures are :class:`ImageError` with a stable ``code`` and a message for the uploader.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections import deque
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path, PurePath

from media.lifeline import ChildLimits, spawn
from media.probe import IMAGE_BRANDS, ProbeError
from media.probe import sniff as sniff_video
from media.tools import ffmpeg_path

# The stable error codes; the content API shows them with each image.
EMPTY = "empty"
NOT_AN_IMAGE = "not_an_image"
UNSUPPORTED_IMAGE = "unsupported_image"
TOO_LARGE = "too_large"
CORRUPT = "corrupt"
TIMEOUT = "timeout"
RESIZE_FAILED = "resize_failed"

SNIFF_BYTES = 512
# JPEG puts its size after the metadata segments (EXIF, ICC profiles, XMP), each at most
# 64 KiB; a phone photo's are well inside this. A header beyond it is refused, not searched.
HEADER_BYTES = 1 << 20
LARGE_FILE = "large.jpg"
THUMB_FILE = "thumb.jpg"
STDERR_LINES = 20


class ImageError(Exception):
    """The file cannot be used as an image; ``code`` is stable, ``message`` says what to do."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class ImageKind(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    GIF = "gif"


# The demuxer each kind is opened with: the image pipes read exactly one format, and the
# GIF demuxer hands over frames in order (the first is what is kept).
DEMUXERS = {
    ImageKind.JPEG: "jpeg_pipe",
    ImageKind.PNG: "png_pipe",
    ImageKind.WEBP: "webp_pipe",
    ImageKind.GIF: "gif",
}


@dataclass(frozen=True)
class Size:
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class ImageLimits:
    """What the deployment accepts and what one resize may use."""

    # 40 MP: a 50 MP phone photo is refused, every common camera and screenshot passes. The
    # decoded frame of a 40 MP 16-bit RGBA PNG is 320 MB, which the memory limit must hold.
    max_pixels: int = 40_000_000
    large_side: int = 1440
    thumb_side: int = 360
    # Address space, not resident memory: measured, a 40 MP 16-bit PNG needs about 1.2 GiB
    # of it (decode, convert, scale twice), and glibc reserves arenas per thread.
    memory_bytes: int = 2 << 30
    file_bytes: int = 64 << 20  # the largest JPEG it may write (a 1440 px one is < 2 MiB)
    timeout_s: float = 60.0
    threads: int = 1


def sniff(head: bytes) -> ImageKind:
    """The kind of image ``head`` (the file's first bytes) starts; raises :class:`ImageError`."""
    if not head:
        raise ImageError(EMPTY, "the file is empty (0 bytes); upload it again")
    if head.startswith(b"\xff\xd8\xff"):
        return ImageKind.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageKind.PNG
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return ImageKind.WEBP
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ImageKind.GIF
    unsupported = _unsupported_kind(head)
    if unsupported is not None:
        raise ImageError(
            UNSUPPORTED_IMAGE,
            f"this is {unsupported}, which is not accepted; export it as JPEG or PNG "
            "and upload it again",
        )
    try:
        sniff_video(head)
    except ProbeError:
        pass
    else:
        raise ImageError(
            NOT_AN_IMAGE, "this is a video file, not an image; post it as a video instead"
        )
    raise ImageError(
        NOT_AN_IMAGE,
        "this is not an image file we can read; upload a JPEG, PNG, WebP or GIF",
    )


def _unsupported_kind(head: bytes) -> str | None:
    if head[4:8] == b"ftyp" and head[8:12] in IMAGE_BRANDS:
        return "a HEIF/AVIF photo"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if head.startswith(b"BM") and len(head) >= 14 and head[6:10] == b"\x00\x00\x00\x00":
        return "a BMP image"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")):
        return "a JPEG XL image"
    if head.startswith(b"\x00\x00\x00\x0cjP  "):
        return "a JPEG 2000 image"
    if head.startswith(b"8BPS"):
        return "a Photoshop document"
    if head.startswith(b"\x00\x00\x01\x00"):
        return "an icon file"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing"
    return None


def header_size(kind: ImageKind, data: bytes) -> Size:
    """Width and height from the header at the start of ``data``; pure parsing, no decoder.

    Raises :class:`ImageError` (``corrupt``) when the header is cut short or makes no sense.
    """
    size = _HEADER_READERS[kind](data)
    if size is None or size.width <= 0 or size.height <= 0:
        raise ImageError(
            CORRUPT,
            f"the {kind.value.upper()} header is damaged or incomplete; "
            "re-save the image and upload it again",
        )
    return size


def _png_size(data: bytes) -> Size | None:
    # The first chunk is IHDR: length (13), type, width and height as big-endian u32.
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return Size(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))


def _gif_size(data: bytes) -> Size | None:
    # The logical screen: little-endian u16 width and height after the signature. Frames are
    # drawn inside it, and -max_pixels holds a frame that claims to be bigger.
    if len(data) < 10:
        return None
    return Size(int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little"))


def _webp_size(data: bytes) -> Size | None:
    # RFC 9649 §2.5-2.7: the first chunk after "WEBP" says which bitstream follows.
    if len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        # Lossy: 14-bit sizes after the key frame's start code (the top 2 bits are scaling).
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return Size(width, height)
    if chunk == b"VP8L" and data[20] == 0x2F:
        # Lossless: 14 bits of width - 1, then 14 bits of height - 1.
        bits = int.from_bytes(data[21:25], "little")
        return Size((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        # Extended (alpha, animation, metadata): 24-bit canvas width - 1 and height - 1.
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return Size(width, height)
    return None


# Start-of-frame markers of every JPEG coding process (ITU T.81 table B.1): C0-CF less DHT
# (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers with no length field: TEM and the restart markers (SOI is consumed before the loop).
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _jpeg_size(data: bytes) -> Size | None:
    i = 2  # past SOI
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # the image ends or its data starts before any frame
            return None
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            return None
        if marker in _SOF:
            if i + 9 > len(data):
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return Size(width, height)
        i += 2 + length
    return None


_HEADER_READERS = {
    ImageKind.JPEG: _jpeg_size,
    ImageKind.PNG: _png_size,
    ImageKind.WEBP: _webp_size,
    ImageKind.GIF: _gif_size,
}


def jpeg_size(data: bytes) -> Size:
    """The size of a JPEG from its bytes (used on our own output); raises :class:`ImageError`."""
    if not data.startswith(b"\xff\xd8\xff"):
        raise ImageError(CORRUPT, "the output is not a JPEG")
    return header_size(ImageKind.JPEG, data)


def check_size(size: Size, limits: ImageLimits) -> None:
    """Refuse a picture above the pixel limit, before anything decodes it."""
    if size.pixels > limits.max_pixels:
        megapixels = limits.max_pixels / 1_000_000
        raise ImageError(
            TOO_LARGE,
            f"the image is {size.width}x{size.height} ({size.pixels / 1_000_000:.1f} MP); "
            f"the limit is {megapixels:g} MP: scale it down and upload it again",
        )


def fit(size: Size, long_side: int) -> Size:
    """``size`` scaled so its long side is at most ``long_side``; never upscaled."""
    longest = max(size.width, size.height)
    if longest <= long_side:
        return size
    scale = long_side / longest
    return Size(max(1, round(size.width * scale)), max(1, round(size.height * scale)))


def resize_command(
    ffmpeg: str,
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    demuxer: str,
    large: Size,
    thumb: Size,
    max_pixels: int,
    threads: int = 1,
) -> list[str]:
    """One decode → ``out_dir/large.jpg`` and ``out_dir/thumb.jpg`` at the given sizes.

    ``demuxer`` is the one the sniff chose: forced, so ffmpeg never guesses the format of an
    untrusted file. ``-err_detect explode -xerror`` make a damaged file an error instead of
    a half-grey picture (a truncated JPEG otherwise "succeeds"); ``-max_pixels`` holds the
    decoder to the limit even if a header lied. Transparent pixels are laid on white, as
    JPEG has no alpha and the colour under a transparent pixel is arbitrary (often black).
    """
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    argv += ["-threads", str(threads), "-filter_threads", str(threads)]
    argv += ["-err_detect", "explode", "-xerror", "-max_pixels", str(max_pixels)]
    argv += ["-f", demuxer, "-i", os.fspath(source)]
    chains = ["[0:v:0]split=2[l0][t0]"]
    for name, size in (("l", large), ("t", thumb)):
        dims = f"{size.width}x{size.height}"
        chains.append(
            f"[{name}0]scale={size.width}:{size.height}:flags=lanczos,format=rgba[{name}1]"
        )
        chains.append(f"color=c=white:s={dims}[{name}bg]")
        chains.append(
            f"[{name}bg][{name}1]overlay=shortest=1:format=auto,setsar=1,format=yuvj420p[{name}]"
        )
    argv += ["-filter_complex", ";".join(chains)]
    out = PurePath(out_dir)
    for name, file in (("l", LARGE_FILE), ("t", THUMB_FILE)):
        # One frame (a GIF's first), no metadata (phones write GPS positions into EXIF);
        # -q:v 3 is visually clean at about a tenth of -q:v 1's size.
        argv += ["-map", f"[{name}]", "-frames:v", "1", "-map_metadata", "-1"]
        argv += ["-c:v", "mjpeg", "-q:v", "3", "-update", "1", "-f", "image2", str(out / file)]
    return argv


@dataclass(frozen=True)
class Inspected:
    kind: ImageKind
    size: Size


def inspect_head(data: bytes, limits: ImageLimits) -> Inspected:
    """Sniff, read the size and check the limit, from the file's first bytes."""
    kind = sniff(data[:SNIFF_BYTES])
    size = header_size(kind, data)
    check_size(size, limits)
    return Inspected(kind, size)


async def inspect(path: str | os.PathLike[str], limits: ImageLimits | None = None) -> Inspected:
    """:func:`inspect_head` on the file at ``path`` (read in a thread)."""
    data = await asyncio.to_thread(_read_head, Path(path))
    return inspect_head(data, limits or ImageLimits())


def _read_head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(HEADER_BYTES)


@dataclass(frozen=True)
class ResizeResult:
    out_dir: Path
    source: Size
    large: Size
    thumb: Size
    large_bytes: int
    thumb_bytes: int
    elapsed_s: float

    @property
    def large_path(self) -> Path:
        return self.out_dir / LARGE_FILE

    @property
    def thumb_path(self) -> Path:
        return self.out_dir / THUMB_FILE


class ImageResizer:
    """Turns an inspected image into ``out_dir``; ``run()`` once, ``stop()`` from anywhere."""

    def __init__(
        self,
        source: str | os.PathLike[str],
        inspected: Inspected,
        out_dir: str | os.PathLike[str],
        *,
        ffmpeg: str | None = None,
        limits: ImageLimits | None = None,
    ) -> None:
        self.source = Path(source)
        self.inspected = inspected
        self.out_dir = Path(out_dir)
        self.partial_dir = self.out_dir.with_name(self.out_dir.name + ".partial")
        self.ffmpeg = ffmpeg or ffmpeg_path()
        self.limits = limits or ImageLimits()
        self.large = fit(inspected.size, self.limits.large_side)
        self.thumb = fit(inspected.size, self.limits.thumb_side)
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._started = False

    def command(self) -> list[str]:
        return resize_command(
            self.ffmpeg,
            self.source,
            self.partial_dir,
            demuxer=DEMUXERS[self.inspected.kind],
            large=self.large,
            thumb=self.thumb,
            max_pixels=self.limits.max_pixels,
            threads=self.limits.threads,
        )

    async def run(self) -> ResizeResult:
        """Write both JPEGs; raises :class:`ImageError` (``timeout``, ``corrupt``, …)."""
        if self._started:
            raise RuntimeError("an ImageResizer runs once")
        self._started = True
        if self.out_dir.exists():
            raise ImageError(RESIZE_FAILED, f"{self.out_dir} already exists; remove it first")
        began = time.monotonic()
        try:
            await asyncio.to_thread(shutil.rmtree, self.partial_dir, True)
            self.partial_dir.mkdir(parents=True)
            try:
                async with asyncio.timeout(self.limits.timeout_s):
                    await self._ffmpeg()
            except TimeoutError:
                raise ImageError(
                    TIMEOUT,
                    f"resizing took longer than {self.limits.timeout_s:.0f} s; the file may "
                    "be damaged: re-save it as JPEG and upload it again",
                ) from None
            result = await asyncio.to_thread(self._collect, began)
            if self._stopping:
                raise ImageError("stopped", "the resize was stopped")
            # The one moment the output appears: a rename is atomic on one filesystem.
            os.rename(self.partial_dir, self.out_dir)
            return replace(result, out_dir=self.out_dir)
        finally:
            await self._kill()
            await asyncio.to_thread(shutil.rmtree, self.partial_dir, True)

    async def stop(self) -> None:
        """Kill the running ffmpeg; ``run()`` then raises and leaves nothing behind."""
        self._stopping = True
        await self._kill()

    async def _ffmpeg(self) -> None:
        if self._stopping:
            raise ImageError("stopped", "the resize was stopped")
        limits = ChildLimits(
            memory_bytes=self.limits.memory_bytes, file_bytes=self.limits.file_bytes
        )
        proc = await spawn(self.command(), limits)
        self._proc = proc
        tail: deque[str] = deque(maxlen=STDERR_LINES)
        try:
            assert proc.stderr is not None
            async for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    tail.append(line)
            code = await proc.wait()
        finally:
            await self._kill()
            self._proc = None
        if self._stopping:
            raise ImageError("stopped", "the resize was stopped")
        if code != 0:
            # The decoder refused the file (damaged, cut short, or over a limit): to the
            # uploader that is an image we cannot read, whatever the cause.
            last = tail[-1][:200] if tail else f"exit {code}"
            if code < 0:
                last = f"killed by signal {-code}"
            raise ImageError(
                CORRUPT,
                f"the image could not be read ({last}); it may be damaged or cut short: "
                "re-save it and upload it again",
            )

    def _collect(self, began: float) -> ResizeResult:
        sizes: list[Size] = []
        counts: list[int] = []
        for name in (LARGE_FILE, THUMB_FILE):
            path = self.partial_dir / name
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                data = b""
            if not data:
                raise ImageError(
                    CORRUPT,
                    "the image could not be read (nothing was decoded); re-save it and "
                    "upload it again",
                )
            sizes.append(jpeg_size(data[:HEADER_BYTES]))
            counts.append(len(data))
        return ResizeResult(
            out_dir=self.partial_dir,
            source=self.inspected.size,
            large=sizes[0],
            thumb=sizes[1],
            large_bytes=counts[0],
            thumb_bytes=counts[1],
            elapsed_s=round(time.monotonic() - began, 3),
        )

    async def _kill(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
