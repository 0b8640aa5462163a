"""A sliding-window limit on failed logins, per email and per client address.

Argon2 makes each guess slow; this makes a run of guesses stop: after ``limit`` failures in
``window`` seconds the next attempt is refused with 429 until the oldest failure ages out.
In-process, like the embedded engines; a multi-process deployment puts it behind the broker.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class FailureThrottle:
    def __init__(
        self, limit: int = 10, window: float = 900.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, *keys: str) -> int:
        """Seconds until an attempt is allowed again (0: allowed now)."""
        wait = 0.0
        for key in keys:
            failures = self._recent(key)
            if len(failures) >= self.limit:
                wait = max(wait, failures[0] + self.window - self._clock())
        return int(wait) + 1 if wait > 0 else 0

    def fail(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    def forgive(self, key: str) -> None:
        """Take back the latest failure of ``key`` (an attempt counted up front succeeded)."""
        failures = self._failures.get(key)
        if failures:
            failures.pop()
            if not failures:
                del self._failures[key]

    def prune(self) -> int:
        """Forget keys whose failures have all aged out; returns how many were forgotten."""
        stale = [key for key in list(self._failures) if not self._recent(key)]
        return len(stale)
