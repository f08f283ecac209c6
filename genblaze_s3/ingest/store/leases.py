"""Per-asset lease and delivery counter: what makes redelivery harmless.

Why: with late acks a task can be delivered twice (visibility timeout passed,
broker connection dropped). The lease (`SET NX PX`, renewed while the copy runs)
lets exactly one delivery work on an asset; the other backs off without side
effects. The attempt counter lives in Redis rather than the broker because a
task that kills its process never gets to update the broker's retry count.

Compare-and-act steps are Lua scripts (one round trip each, atomic on the server)
rather than WATCH/GET/MULTI/EXEC (three): on a queue of small assets the store's
round trips are a large part of each task's cost.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from dataclasses import dataclass
from types import TracebackType

import redis

from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.boundary import store_boundary

# The asset lease's acquire, with everything the delivery reads first in the same round
# trip: the retries used (KEYS[4]) and the checkpoint (KEYS[5]). Reading them inside the
# acquire is as fresh as reading them after it: only the lease holder writes either.
_TAKE_ASSET = """
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
local n = redis.call('incr', KEYS[2])
redis.call('expire', KEYS[2], ARGV[3])
redis.call('zadd', KEYS[3], ARGV[4], ARGV[5])
return {n, redis.call('get', KEYS[4]), redis.call('get', KEYS[5])}
"""
# Release, and (the asset is terminal) take it off the in-flight set and drop its retry
# count: the end of a delivery in one round trip instead of two.
_RELEASE_AND_FORGET = """
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
redis.call('zrem', KEYS[2], ARGV[2])
redis.call('del', KEYS[3])
return 1
"""
_RENEW_IF_MINE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('pexpire', KEYS[1], ARGV[2])
"""
_RELEASE_IF_MINE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('del', KEYS[1])
"""


@store_boundary
class Lease:
    """A renewable lock on one Redis key; use as a context manager after `acquire`.

    Part of the store's boundary: a Redis outage raises StoreUnavailableError (renewal
    and release, which run on their own, retry or give up quietly instead)."""

    def __init__(
        self, client: redis.Redis, key: str, ttl_ms: int = 30_000, attempts_key: str | None = None
    ):
        self._redis = client
        self.key = key
        self._attempts_key = attempts_key or f"{key}:attempts"
        self.ttl_ms = ttl_ms
        self.token = secrets.token_hex(16)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def acquire(self) -> bool:
        """True when this delivery now owns the asset; starts background renewal."""
        if not self._redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self._start_renewal()
        return True

    def uncount(self) -> None:
        """Take this delivery back off the attempt count (it only found the source not ready:
        waiting is not a failed attempt, and must not walk the asset to its poison limit)."""
        self._redis.decr(self._attempts_key)

    def _start_renewal(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, daemon=True, name="lease")
        self._thread.start()

    def remaining_ms(self) -> int:
        """How long the current holder's lease still runs (0 when free)."""
        return max(0, int(self._redis.pttl(self.key)))

    def _renew_loop(self) -> None:
        renew = self._redis.register_script(_RENEW_IF_MINE)
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                if not renew(keys=[self.key], args=[self.token, self.ttl_ms]):
                    self.lost = True
                    return
            except redis.RedisError:
                continue  # transient: the next tick retries before the TTL runs out

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with contextlib.suppress(redis.RedisError):  # else the lease expires on its own
            self._redis.register_script(_RELEASE_IF_MINE)(keys=[self.key], args=[self.token])

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


@dataclass(frozen=True)
class Taken:
    """What `AssetLease.take` learnt while taking the lease (one round trip)."""

    attempts: int  # deliveries that started this asset, this one included; 0: held elsewhere
    retries: int = 0  # retryable-error retries already used (keys.retries_key)
    checkpoint: str | None = None  # the asset's checkpoint JSON, if a copy left one


@store_boundary
class AssetLease(Lease):
    """The lease of one (job, asset), with its delivery counter (the poison guard)."""

    def __init__(self, client: redis.Redis, job_id: str, asset_id: str, ttl_ms: int = 30_000):
        super().__init__(
            client, keys.lease_key(job_id, asset_id), ttl_ms, keys.attempts_key(job_id, asset_id)
        )
        self._job_id, self._asset_id = job_id, asset_id
        self._forget = False

    def take(self, retention: int, *, inflight: tuple[str, str, float]) -> Taken:
        """Acquire (SET NX PX) and, only when it took, count this delivery, note the asset
        in flight (``inflight``: zset key, member, score) and read its retry count and
        checkpoint: one round trip. ``attempts == 0``: another delivery holds the lease."""
        ks = [
            self.key,
            self._attempts_key,
            inflight[0],
            keys.retries_key(self._job_id, self._asset_id),
            keys.checkpoint_key(keys.asset_checkpoint_id(self._job_id, self._asset_id)),
        ]
        args: list[str | int | float] = [
            self.token,
            self.ttl_ms,
            retention,
            inflight[2],
            inflight[1],
        ]
        out = self._redis.register_script(_TAKE_ASSET)(keys=ks, args=args)
        n = int(out[0])
        if not n:
            return Taken(0)
        self._start_renewal()
        retries, checkpoint = (out + [None, None])[1:3]
        return Taken(n, int(retries or 0), _text(checkpoint))

    def forget_on_release(self, inflight_key: str, member: str) -> None:
        """The asset is terminal: the release also takes it off the in-flight set and drops
        its retry count (what `DeliveryState.forget_inflight` does), in the same trip."""
        self._forget_args = (inflight_key, member)
        self._forget = True

    def release(self) -> None:
        if not self._forget:
            super().release()
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        inflight_key, member = self._forget_args
        # Not suppressed: the asset's end must reach the store (a failure hands the
        # delivery back; the redelivery finds the asset terminal and forgets it then).
        self._redis.register_script(_RELEASE_AND_FORGET)(
            keys=[self.key, inflight_key, keys.retries_key(self._job_id, self._asset_id)],
            args=[self.token, member],
        )

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is not None:
            self._forget = False  # unwinding: release only, never mask the error
        self.release()

    def forget_attempts(self) -> None:
        """This delivery ended cleanly (a slice handed on): the guard counts crashes in a row."""
        self._redis.delete(self._attempts_key)


def _text(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


def finalize_lease(client: redis.Redis, job_id: str, ttl_ms: int = 30_000) -> Lease:
    """The lease one finalizer of a job holds while it writes the manifest."""
    return Lease(client, keys.finalize_lease_key(job_id), ttl_ms)
