"""Retry counting, in one place: a Redis counter per thing retried.

Why Redis and not the message: a retry may run on any worker and a message may be
redelivered; the count must be where every delivery sees it. The limit is
`WorkerContext.max_retries`; the wait between retries is `genblaze_s3.backoff`.
"""

from __future__ import annotations

import redis


def count_retry(client: redis.Redis, key: str, limit: int, retention: int) -> int | None:
    """Count one more retry; its number (1 = the first), or None when ``limit`` is used up."""
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, retention)
    n = int(pipe.execute()[0])
    return n if n <= limit else None


def forget_retries(client: redis.Redis, key: str) -> None:
    """The thing succeeded or ended for good: a later retry (POST /retry) starts at zero."""
    client.delete(key)
