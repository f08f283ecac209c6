"""Worker-side pacing of store writes during a copy (progress bars, cancel checks).

Why: a 1 GiB copy reports progress thousands of times; the store only needs a few
writes per second per asset to drive progress bars, and a cancel needs noticing
within a second, not on every chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressThrottle:
    """Decides when a progress update (or a cancel poll) is worth a Redis round trip."""

    def __init__(self, interval: float = 0.5, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock
        # Start the clock now: a copy shorter than one interval writes no progress at
        # all (its terminal write carries the bytes), which saves small files a write.
        self._last = clock()

    def ready(self, *, final: bool = False) -> bool:
        now = self._clock()
        if final or now - self._last >= self._interval:
            self._last = now
            return True
        return False
