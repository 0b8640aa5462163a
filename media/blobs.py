"""Blob files in one local directory: uploads, HLS segments, posters, recordings (DESIGN §3).

A blob is named by a *key*, a relative POSIX path such as ``uploads/upl_01h…``. Keys come
from the platform, but a key is still checked before it touches the disk: plain segments
only, and the resolved path must stay under the root (a ``..`` or a symlink pointing out is
refused), so no key can read or write outside the blob directory. URLs are always the key
under ``media_base_url``, so a CDN or another server can serve the same directory.

File work runs in a thread (``asyncio.to_thread``) so a slow disk never stalls the loop.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO
from urllib.parse import quote

# A segment starts with a letter or digit: that rules out "", "." and ".." and hidden files.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_DEPTH = 8
READ_CHUNK = 1 << 20


class BlobError(Exception):
    """A blob operation that cannot be done as asked."""


class UnsafeKey(BlobError, ValueError):
    """A key that is not a plain relative path under the root."""


class BlobBusy(BlobError):
    """Another writer (this process or another one sharing the data dir) holds the blob."""


class BlobExists(BlobError, FileExistsError):
    """``create`` or ``move`` would replace an existing blob."""


class BlobStore:
    """Blobs under ``root``; their public URLs under ``media_base_url``."""

    def __init__(self, root: Path, media_base_url: str) -> None:
        self.root = Path(os.path.abspath(root))
        self.media_base_url = media_base_url.rstrip("/")

    def path(self, key: str) -> Path:
        """The file of ``key``; raises :class:`UnsafeKey` for any key that could leave root."""
        parts = key.split("/") if isinstance(key, str) else []
        if not parts or len(parts) > MAX_DEPTH or not all(_SEGMENT.fullmatch(p) for p in parts):
            raise UnsafeKey(f"{key!r} is not a blob key (plain segments joined by '/')")
        path = self.root.joinpath(*parts)
        # A symlink inside the root may point anywhere; judge where the path really leads.
        if not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(self.root)):
            raise UnsafeKey(f"{key!r} leads outside the blob directory")
        return path

    def url(self, key: str) -> str:
        self.path(key)
        return f"{self.media_base_url}/{quote(key)}"

    async def create(self, key: str) -> None:
        """Create an empty blob; raises :class:`BlobExists` rather than truncate one."""
        path = self.path(key)

        def work() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise BlobExists(f"blob {key!r} exists") from None
            os.close(fd)

        await asyncio.to_thread(work)

    async def size(self, key: str) -> int:
        """The blob's size in bytes; raises ``FileNotFoundError``."""
        path = self.path(key)
        return (await asyncio.to_thread(path.stat)).st_size

    async def exists(self, key: str) -> bool:
        path = self.path(key)
        return await asyncio.to_thread(path.is_file)

    def free_bytes(self) -> int:
        """Bytes free for blobs on the file system that holds them."""
        self.root.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.root).free

    def appender(self, key: str, *, at: int) -> Appender:
        """Write to an existing blob from byte ``at`` on (see :class:`Appender`)."""
        return Appender(self.path(key), at)

    def open(self, key: str) -> BinaryIO:
        """Open a blob for reading; raises ``FileNotFoundError``."""
        return self.path(key).open("rb")

    async def chunks(self, key: str, size: int = READ_CHUNK) -> AsyncIterator[bytes]:
        """The blob's bytes, ``size`` at a time, never the whole file in memory."""
        handle = await asyncio.to_thread(self.open, key)
        try:
            while chunk := await asyncio.to_thread(handle.read, size):
                yield chunk
        finally:
            handle.close()

    async def digest(self, key: str, algorithm: str = "sha256") -> str:
        """The hex digest of the whole blob, read in chunks in a thread."""
        path = self.path(key)

        def work() -> str:
            hasher = hashlib.new(algorithm)
            with path.open("rb") as handle:
                while chunk := handle.read(READ_CHUNK):
                    hasher.update(chunk)
            return hasher.hexdigest()

        return await asyncio.to_thread(work)

    async def move(self, src: str, dst: str, *, replace: bool = False) -> None:
        """Move a finished blob into place in one step: readers see the old file or the new
        one, never a half-written one. Without ``replace``, an existing ``dst`` is kept and
        :class:`BlobExists` raised."""
        source, target = self.path(src), self.path(dst)

        def work() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            if replace:
                os.replace(source, target)
                return
            try:
                # link() fails when the target exists, where rename() would overwrite it.
                os.link(source, target)
            except FileExistsError:
                raise BlobExists(f"blob {dst!r} exists") from None
            os.unlink(source)

        await asyncio.to_thread(work)

    async def delete(self, key: str) -> bool:
        """Delete a blob; ``False`` when there was none."""
        path = self.path(key)

        def work() -> bool:
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            return True

        return await asyncio.to_thread(work)


class Appender:
    """Writes bytes into an existing blob from a given offset, all or nothing.

    Bytes past ``at`` that are already in the file were never acknowledged (a crash between
    writing and recording the new offset), so they are cut off on open. ``commit`` makes the
    written bytes durable; leaving the ``async with`` block by an exception without a commit
    cuts the file back to ``at``, so a refused chunk leaves no trace.
    """

    def __init__(self, path: Path, at: int) -> None:
        if at < 0:
            raise BlobError(f"cannot write at offset {at}")
        self.path = path
        self.start = at
        self.written = 0
        self._fd: int | None = None
        self._committed = False
        self._pending: asyncio.Future[None] | None = None

    async def __aenter__(self) -> Appender:
        def work() -> int:
            # No O_CREAT: a blob deleted meanwhile (terminated, expired) must not come back.
            fd = os.open(self.path, os.O_WRONLY)
            try:
                # One writer at a time across processes (two `serve` processes behind one
                # proxy, say): the lock is the kernel's, so it goes with a crashed writer.
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise BlobBusy(
                        f"{self.path.name} is being written by another request"
                    ) from None
                size = os.fstat(fd).st_size
                if size < self.start:
                    raise BlobError(f"{self.path.name} has {size} bytes, not {self.start}")
                if size > self.start:
                    os.ftruncate(fd, self.start)
                os.lseek(fd, self.start, os.SEEK_SET)
            except BaseException:
                os.close(fd)
                raise
            return fd

        self._fd = await asyncio.to_thread(work)
        return self

    async def write(self, data: bytes) -> None:
        fd = self._require_open()

        def work() -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

        await self._run(work)
        self.written += len(data)

    async def commit(self) -> int:
        """Flush the written bytes to disk; returns the offset after them."""
        fd = self._require_open()
        await self._run(lambda: os.fsync(fd))
        self._committed = True
        return self.start + self.written

    async def rollback(self) -> None:
        """Cut the blob back to where this appender started."""
        fd = self._require_open()

        def work() -> None:
            os.ftruncate(fd, self.start)
            os.lseek(fd, self.start, os.SEEK_SET)  # the next write starts there again

        await self._run(work)
        self.written = 0

    async def _run(self, work: Callable[[], None]) -> None:
        # Shielded and remembered: a cancelled caller must not close the file under a
        # thread that is still writing to it (its descriptor could be reused meanwhile).
        self._pending = asyncio.ensure_future(asyncio.to_thread(work))
        await asyncio.shield(self._pending)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        fd = self._require_open()
        self._fd = None
        if self._pending is not None and not self._pending.done():
            await asyncio.wait([self._pending])
        cut = kind is not None and not self._committed

        def work() -> None:
            try:
                if cut:
                    os.ftruncate(fd, self.start)
            finally:
                os.close(fd)

        await asyncio.shield(asyncio.to_thread(work))

    def _require_open(self) -> int:
        if self._fd is None:
            raise BlobError("the appender is not open; use it in 'async with'")
        return self._fd
