"""Per-asset lease and delivery counter: what makes redelivery harmless.

Why: with late acks a task can be delivered twice (visibility timeout passed,
broker connection dropped). The lease (`SET NX PX`, renewed while the copy runs)
lets exactly one delivery work on an asset; the other backs off without side
effects. The attempt counter lives in Redis rather than the broker because a
task that kills its process never gets to update the broker's retry count.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import redis

from genblaze_s3.ingest import keys


class AssetLease:
    """A renewable lock on one (job, asset); use as a context manager after `acquire`."""

    def __init__(self, client: redis.Redis, job_id: str, asset_id: str, ttl_ms: int = 30_000):
        self._redis = client
        self.key = keys.lease_key(job_id, asset_id)
        self.ttl_ms = ttl_ms
        self.token = secrets.token_hex(16)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def acquire(self) -> bool:
        """True when this delivery now owns the asset; starts background renewal."""
        if not self._redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self._thread = threading.Thread(target=self._renew_loop, daemon=True, name="lease")
        self._thread.start()
        return True

    def remaining_ms(self) -> int:
        """How long the current holder's lease still runs (0 when free)."""
        return max(0, int(self._redis.pttl(self.key)))

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                if not self._if_mine(lambda pipe: pipe.pexpire(self.key, self.ttl_ms)):
                    self.lost = True
                    return
            except redis.RedisError:
                continue  # transient: the next tick retries before the TTL runs out

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with contextlib.suppress(redis.RedisError):  # else the lease expires on its own
            self._if_mine(lambda pipe: pipe.delete(self.key))

    def _if_mine(self, op: Callable[[Any], Any]) -> bool:
        """Apply `op` only while we still hold the lease (compare-and-act under WATCH)."""
        mine = False

        def txn(pipe: Any) -> None:
            nonlocal mine
            current = pipe.get(self.key)
            mine = current in (self.token, self.token.encode())
            if mine:
                pipe.multi()
                op(pipe)

        self._redis.transaction(txn, self.key)
        return mine

    def __enter__(self) -> AssetLease:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def count_attempt(client: redis.Redis, job_id: str, asset_id: str, retention: int) -> int:
    """Increment and return the number of deliveries that started this asset."""
    k = keys.attempts_key(job_id, asset_id)
    p = client.pipeline(transaction=True)
    p.incr(k)
    p.expire(k, retention)
    n, _ = p.execute()
    return int(n)
