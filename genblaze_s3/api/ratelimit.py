"""Per-tenant token buckets: one noisy client cannot starve the API for the others.

In-process (per API replica): good enough to absorb bursts and tight polling
loops; a fleet-wide limit belongs in the load balancer.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from genblaze_s3.settings import parse_rate

__all__ = ["RateLimiter", "parse_rate"]


class RateLimiter:
    """Token bucket per key: `rate` tokens per `per` seconds, burst of `rate`."""

    def __init__(self, rate: float, per: float, clock: Callable[[], float] = time.monotonic):
        self._capacity = rate
        self._refill = rate / per
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """0 when allowed; else the seconds until a token is available."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self._capacity, now))
            tokens = min(self._capacity, tokens + (now - last) * self._refill)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self._refill


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
