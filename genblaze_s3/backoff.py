"""The one backoff policy for every retry in the package: S3 calls, source retries of an
asset, finalize, webhooks.

Formula (exponential, capped, "equal jitter")::

    ceiling = min(cap, base * 2 ** (retry - 1))
    delay   = ceiling / 2 + random() * ceiling / 2

Why equal jitter: the random half spreads the retries of many parts or assets that
failed together (one 503 SlowDown, one CDN blip) so they do not return in lockstep;
the fixed half keeps a floor, so a retry never fires at once against a source or a
store that has just said it is overloaded. Each caller names its own ``base`` and
``cap`` (the constants below); the formula is this one function.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# (base, cap) seconds of each kind of retry.
S3_CALL = (0.25, 8.0)  # a part or another S3 call inside one copy (CopyConfig defaults)
ASSET = (2.0, 60.0)  # a retryable copy failure: the asset is sent again after this
FINALIZE = (2.0, 60.0)  # the manifest write failed
WEBHOOK = (0.5, 30.0)  # the receiver did not answer 2xx


def backoff_delay(
    retry: int, *, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before retry number ``retry`` (1 = the first retry; < 1: no wait)."""
    if retry < 1:
        return 0.0
    ceiling = min(cap, base * (2 ** min(retry - 1, 62)))
    return ceiling / 2 + rand() * ceiling / 2
