"""Retry backoff as a pure function (exponential, capped, jittered)."""

from __future__ import annotations

import random


def compute_backoff(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 60.0,
    jitter: float = 0.25,
    rand: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number `attempt` (0-based).

    Jitter spreads retries of many assets that failed together (one CDN blip)
    so they do not hit the source again in lockstep.
    """
    delay = min(cap, base * (2 ** max(0, attempt)))
    r = (rand or random).random()
    return max(0.0, delay * (1 - jitter + 2 * jitter * r))
