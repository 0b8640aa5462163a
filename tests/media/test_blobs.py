"""Blob files under one root: keys cannot leave it, writes are all or nothing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from media.blobs import BlobBusy, BlobError, BlobExists, BlobStore, UnsafeKey


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "media", "https://cdn.example/media/")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../outside",
        "uploads/../../outside",
        "uploads/..",
        ".",
        "uploads/./x",
        ".hidden",
        "uploads//x",
        "uploads/",
        "uploads\\..\\x",
        "uploads/x\x00",
        "a/" * 8 + "deep",
        "x" * 129,
        "ok/with space",
    ],
)
async def test_a_key_that_could_leave_the_root_is_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(UnsafeKey):
        blobs.path(key)
    with pytest.raises(UnsafeKey):
        await blobs.create(key)
    with pytest.raises(UnsafeKey):
        await blobs.delete(key)
    assert not (blobs.root.parent / "outside").exists()


async def test_a_symlink_inside_the_root_cannot_lead_out(blobs: BlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key.pem").write_text("private")
    blobs.root.mkdir(parents=True)
    (blobs.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeKey):
        blobs.path("link/key.pem")
    with pytest.raises(UnsafeKey):
        await blobs.delete("link/key.pem")
    with pytest.raises(UnsafeKey):
        await blobs.create("link/new")
    assert (outside / "key.pem").read_text() == "private"
    assert not (outside / "new").exists()


async def test_plain_keys_live_under_the_root_with_urls_under_the_base(blobs: BlobStore) -> None:
    assert blobs.path("uploads/upl_1.part") == blobs.root / "uploads" / "upl_1.part"
    assert blobs.url("hls/room_1/index.m3u8") == "https://cdn.example/media/hls/room_1/index.m3u8"
    assert BlobStore(blobs.root, "/media").url("posters/p.jpg") == "/media/posters/p.jpg"
    with pytest.raises(UnsafeKey):
        blobs.url("../x")


async def test_create_append_commit_and_read_back(blobs: BlobStore) -> None:
    await blobs.create("uploads/a")
    assert await blobs.exists("uploads/a") and await blobs.size("uploads/a") == 0
    with pytest.raises(BlobExists):
        await blobs.create("uploads/a")
    async with blobs.appender("uploads/a", at=0) as out:
        await out.write(b"hello ")
        await out.write(b"world")
        assert await out.commit() == 11
    async with blobs.appender("uploads/a", at=11) as out:
        await out.write(b"!")
        await out.commit()
    assert await blobs.size("uploads/a") == 12
    read = b"".join([chunk async for chunk in blobs.chunks("uploads/a", size=5)])
    assert read == b"hello world!"
    with blobs.open("uploads/a") as handle:
        assert handle.read() == b"hello world!"
    assert await blobs.digest("uploads/a") == hashlib.sha256(b"hello world!").hexdigest()


async def test_a_failed_write_leaves_the_blob_as_it_was(blobs: BlobStore) -> None:
    await blobs.create("b")
    async with blobs.appender("b", at=0) as out:
        await out.write(b"kept")
        await out.commit()
    with pytest.raises(RuntimeError):
        async with blobs.appender("b", at=4) as out:
            await out.write(b"x" * 100_000)
            raise RuntimeError("the chunk was refused")
    assert blobs.path("b").read_bytes() == b"kept"
    async with blobs.appender("b", at=4) as out:
        await out.write(b"nope")
        await out.rollback()
        await out.write(b"!")
        await out.commit()
    assert blobs.path("b").read_bytes() == b"kept!"


async def test_bytes_past_the_offset_are_cut_and_a_short_file_is_refused(
    blobs: BlobStore,
) -> None:
    await blobs.create("c")
    # A crash after writing but before the offset was recorded leaves unacknowledged bytes.
    blobs.path("c").write_bytes(b"0123456789")
    async with blobs.appender("c", at=4) as out:
        await out.write(b"ab")
        await out.commit()
    assert blobs.path("c").read_bytes() == b"0123ab"
    with pytest.raises(BlobError):
        async with blobs.appender("c", at=100):
            pass
    with pytest.raises(BlobError):
        blobs.appender("c", at=-1)


async def test_a_deleted_blob_is_not_brought_back_by_a_writer(blobs: BlobStore) -> None:
    await blobs.create("d")
    assert await blobs.delete("d") is True
    assert await blobs.delete("d") is False
    with pytest.raises(FileNotFoundError):
        async with blobs.appender("d", at=0):
            pass
    assert not blobs.path("d").exists()


async def test_move_into_place_keeps_an_existing_target_unless_asked(blobs: BlobStore) -> None:
    for key, data in (("tmp/new", b"new"), ("final/old", b"old")):
        await blobs.create(key)
        blobs.path(key).write_bytes(data)
    with pytest.raises(BlobExists):
        await blobs.move("tmp/new", "final/old")
    assert blobs.path("final/old").read_bytes() == b"old"
    assert blobs.path("tmp/new").read_bytes() == b"new"
    await blobs.move("tmp/new", "final/fresh")
    assert blobs.path("final/fresh").read_bytes() == b"new" and not blobs.path("tmp/new").exists()
    await blobs.move("final/fresh", "final/old", replace=True)
    assert blobs.path("final/old").read_bytes() == b"new"
    assert sorted(os.listdir(blobs.root / "final")) == ["old"]
    with pytest.raises(UnsafeKey):
        await blobs.move("final/old", "../escaped")


async def test_one_writer_at_a_time_even_across_processes(blobs: BlobStore) -> None:
    await blobs.create("uploads/l")
    # Another process holds the blob's write lock (as a second `serve` writing a chunk would).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            str(blobs.path("uploads/l")),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(BlobBusy):
            async with blobs.appender("uploads/l", at=0) as out:
                await out.write(b"never")
    finally:
        holder.communicate("", timeout=10)
    assert await blobs.size("uploads/l") == 0
    async with blobs.appender("uploads/l", at=0) as out:  # the holder is gone: the lock too
        await out.write(b"mine")
        with pytest.raises(BlobBusy):  # and within one process, a second writer waits its turn
            async with blobs.appender("uploads/l", at=0):
                pass
        await out.commit()
    assert await blobs.size("uploads/l") == 4
