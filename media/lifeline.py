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

import ctypes
import functools
import os
import signal
import sys
from collections.abc import Callable

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


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child SIGKILLed when this process dies; None off Linux.

    Make a fresh one for each spawn (it remembers the parent's pid, which a fork changes).
    The kernel's "parent" is the *thread* that forked: spawn from the event loop's thread (as
    ``asyncio.create_subprocess_exec`` does), never from a short-lived worker thread.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    kill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, kill)
        # The parent may have died between fork and prctl: then no signal will ever come.
        if os.getppid() != parent:
            os._exit(1)

    return preexec
