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
import heapq
import os
import secrets
import threading
import time
import weakref
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import redis

from genblaze_s3.ingest.errors import StoreUnavailableError
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
# and delivery counts (KEYS[3], KEYS[4]): the end of a delivery in one round trip instead
# of two, and no counter key left for the retention period (~100 bytes per asset).
_RELEASE_AND_FORGET = """
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
redis.call('zrem', KEYS[2], ARGV[2])
redis.call('del', KEYS[3], KEYS[4])
return 1
"""
# The same end of a delivery, riding the pipeline that writes the asset's terminal record
# (KEYS[1]), done only when that write landed (the record is what ARGV[1] says): a
# small asset's fourth round trip saved. KEYS: asset, lease, in-flight, retries, attempts.
_FORGET_IF_WRITTEN = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('get', KEYS[2]) == ARGV[2] then redis.call('del', KEYS[2]) end
redis.call('zrem', KEYS[3], ARGV[3])
redis.call('del', KEYS[4], KEYS[5])
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


# Each client's Script objects, made once: ``register_script`` builds a new one per call
# (it encodes and SHA1s the source each time: measured ~0.5% of a small asset's CPU).
_SCRIPTS: weakref.WeakKeyDictionary[redis.Redis, dict[str, Any]] = weakref.WeakKeyDictionary()


def _script(client: redis.Redis, source: str) -> Any:
    """``client.register_script(source)``, made once per client and source."""
    try:
        by_source = _SCRIPTS[client]
    except KeyError:
        by_source = _SCRIPTS.setdefault(client, {})
    script = by_source.get(source)
    if script is None:
        script = by_source[source] = client.register_script(source)
    return script


class _Renewer:
    """One thread per process renews every lease the process holds.

    Why not a thread per lease (as before): a small asset holds its lease for a few
    milliseconds, and starting and joining a thread for it cost ~0.13 ms of CPU, a
    measurable share of a 64 KiB asset's (bench/results/cost_cuts.md); and a lease that
    short is never renewed at all. Each lease is renewed every third of its TTL; a
    Redis error is retried on the next tick (the TTL leaves two more); a lease found
    taken by another is marked ``lost`` (the copy stops, see `process_asset`).
    Fork-safe: a prefork child starts its own thread on its first lease.
    """

    def __init__(self) -> None:
        self._reset()
        # A forked child inherits none of the parent's threads, and maybe a held lock.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Lease]] = []  # heap: (when, seq, lease)
        self._held: set[int] = set()  # id() of the leases held now (the heap keeps them alive)
        self._seq = 0
        self._pid = 0

    def hold(self, lease: Lease) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first use in this process: start the thread
                self._pid = os.getpid()
                threading.Thread(target=self._run, daemon=True, name="lease-renewer").start()
            self._held.add(id(lease))
            self._push(lease)
            # Wake the thread only when this lease is due before everything it waits for
            # (an idle renewer, a shorter TTL): with equal TTLs a new lease is due last,
            # and waking the thread for each small asset cost ~2% of its CPU (py-spy).
            if self._due[0][2] is lease:
                self._cond.notify()

    def drop(self, lease: Lease) -> None:
        with self._cond:
            self._held.discard(id(lease))

    def _push(self, lease: Lease) -> None:
        self._seq += 1
        heapq.heappush(self._due, (time.monotonic() + lease.ttl_ms / 3000, self._seq, lease))

    def _next(self) -> Lease:
        """Wait for the next held lease that is due (dropped ones are skipped)."""
        with self._cond:
            while True:
                while self._due and id(self._due[0][2]) not in self._held:
                    heapq.heappop(self._due)
                if self._due and self._due[0][0] <= time.monotonic():
                    return heapq.heappop(self._due)[2]
                wait = self._due[0][0] - time.monotonic() if self._due else None
                self._cond.wait(wait)

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            lease = self._next()
            try:
                keep = lease.renew()
            except (redis.RedisError, StoreUnavailableError):
                keep = True  # transient: the next tick retries before the TTL runs out
            with self._cond:
                if keep and id(lease) in self._held:
                    self._push(lease)
                else:
                    self._held.discard(id(lease))


RENEWER = _Renewer()


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
        RENEWER.hold(self)

    def remaining_ms(self) -> int:
        """How long the current holder's lease still runs (0 when free)."""
        return max(0, int(self._redis.pttl(self.key)))

    def renew(self) -> bool:
        """Extend the lease if still ours (`RENEWER` calls it every third of the TTL);
        False when it is lost. A Redis error propagates: the renewer tries again."""
        renew = _script(self._redis, _RENEW_IF_MINE)
        if renew(keys=[self.key], args=[self.token, self.ttl_ms]):
            return True
        self.lost = True
        return False

    def release(self) -> None:
        RENEWER.drop(self)
        with contextlib.suppress(redis.RedisError):  # else the lease expires on its own
            _script(self._redis, _RELEASE_IF_MINE)(keys=[self.key], args=[self.token])

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


# A finalize's end: release the finalize lease if still ours, take the job off the
# finalize-due set and (the job is done with) drop its finalize retry count. KEYS: lease,
# finalize-due set, retries (or the lease again: nothing to drop). Three trips were one.
_END_FINALIZE = """
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
redis.call('zrem', KEYS[2], ARGV[2])
if KEYS[3] ~= KEYS[1] then redis.call('del', KEYS[3]) end
return 1
"""


@store_boundary
class FinalizeLease(Lease):
    """The lease one finalizer of a job holds while it writes the manifest, taken with
    the job's finalize-due note and ended with its removal, a round trip each."""

    def __init__(self, client: redis.Redis, job_id: str, ttl_ms: int = 30_000):
        super().__init__(client, keys.finalize_lease_key(job_id), ttl_ms)
        self._job_id = job_id
        self._ended = False  # released by `end`: nothing left for `release`

    def take(self, *, due_at: float | None = None) -> bool:
        """`acquire`; with `due_at`, the job is noted finalize-due first (by then) in the
        same round trip: a process that dies after it leaves the job to the sweeper."""
        if due_at is None:
            return self.acquire()
        p = self._redis.pipeline(transaction=False)
        p.zadd(keys.finalize_due_key(), {self._job_id: due_at})
        p.set(self.key, self.token, nx=True, px=self.ttl_ms)
        if not p.execute()[1]:
            return False
        self._start_renewal()
        return True

    def end(self, *, forget_retries: bool) -> None:
        """Release, and the job is no longer finalize-due; with `forget_retries` its
        finalize retry count goes too (it ended, or is gone)."""
        RENEWER.drop(self)
        retries = keys.finalize_retries_key(self._job_id) if forget_retries else self.key
        self._redis.eval(
            _END_FINALIZE, 3, self.key, keys.finalize_due_key(), retries, self.token, self._job_id
        )
        self._ended = True

    def release(self) -> None:
        if not self._ended:
            super().release()


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
        self._ended = False  # released (and forgotten) on the asset's terminal write

    def take(self, retention: int, *, inflight: tuple[str, str, float]) -> Taken:
        """Acquire (SET NX PX) and, only when it took, count this delivery, note the asset
        in flight (``inflight``: zset key, member, score) and read its retry count and
        checkpoint: one round trip. ``attempts == 0``: another delivery holds the lease."""
        pipe = self._redis.pipeline(transaction=False)
        self.queue_take(pipe, retention, inflight=inflight)
        return self.took(pipe.execute()[0])

    def queue_take(self, pipe: Any, retention: int, *, inflight: tuple[str, str, float]) -> None:
        """`take`, queued on ``pipe`` (another store read's round trip); pass the pipeline's
        answer for it to `took`. EVAL, not the Script: redis-py precedes a pipeline that
        holds a Script with a SCRIPT EXISTS round trip, the one this saves."""
        pipe.eval(
            _TAKE_ASSET,
            5,
            self.key,
            self._attempts_key,
            inflight[0],
            keys.retries_key(self._job_id, self._asset_id),
            keys.checkpoint_key(keys.asset_checkpoint_id(self._job_id, self._asset_id)),
            self.token,
            self.ttl_ms,
            retention,
            inflight[2],
            inflight[1],
        )

    def took(self, out: Any) -> Taken:
        """What the take script answered; a taken lease starts being renewed."""
        n = int(out[0])
        if not n:
            return Taken(0)
        self._start_renewal()
        retries, checkpoint = ([*out, None, None])[1:3]
        return Taken(n, int(retries or 0), _text(checkpoint))

    def forget_on_release(self, inflight_key: str, member: str) -> None:
        """The asset is terminal: the release also takes it off the in-flight set and drops
        its retry count (what `DeliveryState.forget_inflight` does), in the same trip."""
        self._forget_args = (inflight_key, member)
        self._forget = True

    @property
    def forgets(self) -> bool:
        """Whether the release also forgets the asset (`forget_on_release` was called)."""
        return self._forget

    def queue_end_if_written(self, pipe: Any, asset_key: str, written: bytes | str) -> None:
        """The release and forget of `forget_on_release`, queued on the pipeline that
        writes the asset's terminal record (``written``), after that write: done only
        if it landed. Pass the pipeline's answer for it to `ended`; renewal stops now."""
        inflight_key, member = self._forget_args
        RENEWER.drop(self)
        pipe.eval(
            _FORGET_IF_WRITTEN,
            5,
            asset_key,
            self.key,
            inflight_key,
            keys.retries_key(self._job_id, self._asset_id),
            self._attempts_key,
            written,
            self.token,
            member,
        )

    def ended(self, out: Any) -> None:
        """The answer to `queue_end_if_written`: released, nothing left for `release`."""
        self._ended = bool(out and int(out))

    def release(self) -> None:
        if self._ended:
            return
        if not self._forget:
            super().release()
            return
        RENEWER.drop(self)
        inflight_key, member = self._forget_args
        # Not suppressed: the asset's end must reach the store (a failure hands the
        # delivery back; the redelivery finds the asset terminal and forgets it then).
        _script(self._redis, _RELEASE_AND_FORGET)(
            keys=[
                self.key,
                inflight_key,
                keys.retries_key(self._job_id, self._asset_id),
                self._attempts_key,
            ],
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


def finalize_lease(client: redis.Redis, job_id: str, ttl_ms: int = 30_000) -> FinalizeLease:
    """The lease one finalizer of a job holds while it writes the manifest."""
    return FinalizeLease(client, job_id, ttl_ms)
