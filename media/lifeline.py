"""Children that die with their parent: no ffmpeg keeps encoding for a worker that crashed.

ffmpeg ignores SIGPIPE, so when the process reading its ``-progress`` pipe dies (OOM-killed,
SIGKILLed, a segfault in a C extension) it carries on for the rest of the job, and the
restarted worker starts the same job again beside it. On Linux the kernel can send a child a
signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``); it has to be set in the child
between fork and exec, which is what ``preexec_fn`` is for.

``preexec_fn`` is documented as unsafe in threaded programs because the child may need a lock
another thread held at fork time. This one takes none: ``prctl`` is resolved before the fork
and the call is a plain syscall wrapper with integer arguments.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import resource
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


@dataclass(frozen=True)
class ChildLimits:
    """Kernel limits for a child that reads an untrusted file (ffmpeg on an upload): a file
    built to make a decoder balloon or write without end costs the child, never the machine.
    The wall clock is bounded by the caller's timeout; CPU time is not limited here because a
    long, honest 1080p encode legitimately uses many CPU minutes on several threads."""

    memory_bytes: int = 6 << 30  # address space: x264 at 1080p with lookahead stays near 1.5 GiB
    file_bytes: int = 8 << 30  # the largest single file it may write (the MP4 fallback)

    def apply(self) -> None:
        resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_bytes, self.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def die_with_parent(limits: ChildLimits | None = None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child SIGKILLed when this process dies (and applies
    ``limits``); None off Linux when there is nothing to apply.

    Make a fresh one for each spawn (it remembers the parent's pid, which a fork changes).
    The kernel's "parent" is the *thread* that forked: spawn from the event loop's thread (as
    ``asyncio.create_subprocess_exec`` does), never from a short-lived worker thread.
    """
    prctl = _prctl()
    if prctl is None and limits is None:
        return None
    parent = os.getpid()
    kill = int(signal.SIGKILL)

    def preexec() -> None:
        if limits is not None:
            limits.apply()
        if prctl is None:
            return
        prctl(PR_SET_PDEATHSIG, kill)
        # The parent may have died between fork and prctl: then no signal will ever come.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


async def spawn(
    argv: list[str], limits: ChildLimits, *, stdout: int = asyncio.subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    """Start an ffmpeg child as every media job does: no stdin, stderr piped for its last
    words, its own session (a Ctrl-C aimed at the server's terminal is the server's to
    handle), under ``limits``, and dying with this process."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=die_with_parent(limits),
    )
