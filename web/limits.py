"""Rate limits and the concurrency cap of the API. Pure: the clock is injected, no I/O.

:class:`RateLimiter` is a token bucket per key (a token subject, a client address):
``burst`` calls at once, refilled at ``rate`` per second. Memory is bounded: beyond
``max_keys`` buckets the least recently used one is forgotten (a forgotten key starts
full again, which only ever errs towards allowing).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000) -> None:
        self.rate, self.burst, self.clock, self.max_keys = rate, burst, clock, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, key: str) -> int:
        """Take one call for ``key``: 0 when allowed, else the seconds to wait (>= 1, for
        ``Retry-After``)."""
        now = self.clock()
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        wait = 0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


class ConcurrencyCap:
    """At most ``limit`` holders at once; :meth:`try_acquire` never waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def try_acquire(self) -> Callable[[], None] | None:
        """A release callback (call it exactly once) when a slot was free, else None."""
        if self.in_flight >= self.limit:
            return None
        self.in_flight += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight -= 1

        return release
