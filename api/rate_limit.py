"""A token bucket per (tenant, app), in this process's memory.

Each app may send `burst` requests at once and `rate` per second after that; a refused request
takes no token, and its answer says how long to wait (Retry-After). Several server processes
each keep their own buckets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

# Beyond this many apps seen, buckets that have refilled completely (idle apps) are forgotten:
# a full bucket and a missing one behave the same.
MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def take(self, tenant: str, app: str) -> int | None:
        """Take one token for the app: None when there was one, else the whole seconds until there is."""
        now = self._clock()
        bucket = self._buckets.get((tenant, app))
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[(tenant, app)] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def _forget_full(self, now: float) -> None:
        full = [key for key, bucket in self._buckets.items()
                if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
