"""What the workers keep in Redis beside the job records, behind the store's boundary.

Why a store object and not ``ctx.redis``: leases, the retry counters, the in-flight and
finalize-due sets and the checkpoints live in the same Redis as the records; when it goes
away, every one of them must say so the same way (StoreUnavailableError), so a delivery
is handed back to the broker instead of failing an asset or retrying a manifest.

- Retry counts are Redis counters (``keys.retries_key``, ``keys.finalize_retries_key``):
  a retry may run on any worker and a message may be redelivered; the count must be
  where every delivery sees it. The wait between retries is ``genblaze_s3.backoff``.
- The in-flight set (``keys.inflight_key``) scores each started asset with the time it
  is next expected to make progress; the finalize-due set notes jobs whose manifest is
  asked for. The sweeper (``ingest.worker.sweeper``) re-sends what a broker lost there.
"""

from __future__ import annotations

import secrets

import redis

from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.boundary import store_boundary
from genblaze_s3.ingest.store.checkpoints import RedisCheckpointStore
from genblaze_s3.ingest.store.leases import AssetLease, FinalizeLease


def inflight_member(job_id: str, asset_id: str) -> str:
    """The member of an asset in the in-flight set: "job_id asset_id"."""
    return f"{job_id} {asset_id}"


def asset_ref(member: str) -> tuple[str, str]:
    """(job_id, asset_id) of an in-flight member."""
    job_id, _, asset_id = member.partition(" ")
    return job_id, asset_id


@store_boundary
class DeliveryState:
    """Leases, retry counters, the in-flight and finalize-due sets, checkpoints."""

    def __init__(self, client: redis.Redis, *, retention_seconds: int) -> None:
        self._redis = client
        self.retention = retention_seconds
        self.checkpoints = RedisCheckpointStore(client, retention_seconds=retention_seconds)

    # -- leases -------------------------------------------------------------------------
    def asset_lease(self, job_id: str, asset_id: str, ttl_ms: int) -> AssetLease:
        return AssetLease(self._redis, job_id, asset_id, ttl_ms)

    def finalize_lease(self, job_id: str, ttl_ms: int) -> FinalizeLease:
        """The lease one finalizer of a job holds while it writes the manifest."""
        return FinalizeLease(self._redis, job_id, ttl_ms)

    def is_leased(self, lease_key: str) -> bool:
        return bool(self._redis.exists(lease_key))

    # -- retry counters -----------------------------------------------------------------
    def count_retry(self, key: str, limit: int) -> int | None:
        """Count one more retry; its number (1 = the first), or None when ``limit`` is
        used up."""
        pipe = self._redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, self.retention)
        n = int(pipe.execute()[0])
        return n if n <= limit else None

    # -- the in-flight set ---------------------------------------------------------------
    def note_waiting(self, job_id: str, asset_id: str, until: float) -> None:
        """The asset waits (a retry's backoff, a source's Retry-After) until `until`: the
        sweeper must not take that wait for a lost message."""
        self._redis.zadd(keys.inflight_key(), {inflight_member(job_id, asset_id): until})

    def forget_inflight(self, job_id: str, asset_id: str) -> None:
        """The asset is terminal: the sweeper need not look at it, its retries are spent."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(keys.inflight_key(), inflight_member(job_id, asset_id))
        pipe.delete(keys.retries_key(job_id, asset_id))
        pipe.execute()

    # -- the sweeper's view -------------------------------------------------------------
    def take_sweep_turn(self, interval: float) -> bool:
        """True for the one worker of the fleet that sweeps this interval."""
        token = secrets.token_hex(8)
        px = max(1, int(interval * 1000))
        return bool(self._redis.set(keys.sweeper_lock_key(), token, nx=True, px=px))

    def due(self, key: str, before: float, limit: int) -> list[str]:
        """Members of sorted set `key` scored before `before`, oldest first."""
        raw = self._redis.zrangebyscore(key, "-inf", before, start=0, num=limit)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in raw]

    def drop(self, key: str, member: str) -> None:
        self._redis.zrem(key, member)

    def rescore(self, key: str, member: str, score: float) -> None:
        self._redis.zadd(key, {member: score})

    def count_resend(self, job_id: str) -> int:
        """One more resend of a job's queued assets by the sweeper; how many so far."""
        return int(self._redis.hincrby(keys.queued_resends_key(), job_id, 1))

    def forget_queued(self, job_id: str) -> None:
        """The job has no queued asset left: out of the queued set, its resends forgotten."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(keys.queued_jobs_key(), job_id)
        pipe.hdel(keys.queued_resends_key(), job_id)
        pipe.execute()
