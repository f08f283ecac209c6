"""StatusStore: the single source of truth for job and asset state, on Redis.

Why Redis and not the Celery result backend: state must be readable by the API,
the CLI and `job.wait()` while tasks run, survive redelivery, and expire on a
retention we choose. Every write goes through one pipeline that also refreshes
the key's TTL, so a record never outlives its retention and never needs a sweep.

Its neighbours: the keys it touches are in `keys.py`, the counters of its stats
hash in `stats.py`, the public job document it serves is built by `document.py`.
Every public method raises `StoreUnavailableError` (wrapping the redis error) when
Redis fails to answer: the store's one error boundary, mapped once by the API
(503) and the workers (requeue).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis

from genblaze_s3.ingest.errors import IdempotencyConflictError
from genblaze_s3.ingest.models import (
    TERMINAL_ASSET_STATES,
    TERMINAL_JOB_STATES,
    AssetRecord,
    AssetState,
    ErrorInfo,
    JobMeta,
    JobState,
    JobView,
    ManifestInfo,
    RetryInfo,
    utc_now,
)
from genblaze_s3.ingest.provenance import FetchProvenance
from genblaze_s3.ingest.sealing import is_sealed
from genblaze_s3.ingest.store import counters, keys, listing
from genblaze_s3.ingest.store import stats as stat_names
from genblaze_s3.ingest.store.boundary import store_boundary
from genblaze_s3.ingest.store.changes import JobChanges
from genblaze_s3.ingest.store.cursors import AssetCursor, JobCursor
from genblaze_s3.ingest.store.delivery_state import inflight_member
from genblaze_s3.ingest.store.document import build_document, document_json, document_view
from genblaze_s3.ingest.store.job_start import queue_job_start
from genblaze_s3.ingest.store.records import AssetRecordWriter
from genblaze_s3.ingest.transitions import REOPENABLE_JOB_STATES, can_transition_job
from genblaze_s3.settings import Settings

if TYPE_CHECKING:
    from genblaze_s3.ingest.store.leases import AssetLease


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# The job's meta without its asset ids: what a worker reads for every asset. Why: the
# meta lists every asset id (~40 bytes each), so reading it per asset made a job's store
# traffic grow with the square of its size (a 10,000-asset job: 10,000 reads of ~400 KB).
# Written with the meta; dropped when the job ends (a retry's deliveries read the meta).
META_CORE = "meta_core"


class ParsedMetas:
    """JobMeta parsed once per stored form, for the worker's per-asset snapshot.

    Why: every asset of a job reads the job's meta, which lists all its asset ids (a
    500-asset job's is ~20 KB), and parsing it (with the destination's validators) was
    ~5% of a small asset's CPU. The key is the stored bytes themselves, so a meta that
    changed (callback URLs dropped) is parsed afresh; never a stale answer. Callers get
    a copy: a cached model is never mutated.
    """

    MAX = 64

    def __init__(self) -> None:
        self._parsed: dict[bytes | str, JobMeta] = {}
        self._lock = threading.Lock()

    def parse(self, raw: bytes | str) -> JobMeta:
        with self._lock:
            meta = self._parsed.get(raw)
        if meta is None:
            meta = JobMeta.model_validate_json(raw)
            with self._lock:
                if len(self._parsed) >= self.MAX:
                    self._parsed.clear()  # jobs come and go: start over, no LRU bookkeeping
                self._parsed[raw] = meta
        return meta.model_copy()


@store_boundary
class StatusStore:
    """Job/asset records in Redis; receives its connection, reads no environment."""

    def __init__(
        self, client: redis.Redis, *, retention_seconds: int = keys.DEFAULT_RETENTION_SECONDS
    ):
        self.redis = client
        self.retention = retention_seconds
        self._assets = AssetRecordWriter(client, retention_seconds)
        self._metas = ParsedMetas()

    @classmethod
    def from_settings(cls, config: Settings, client: redis.Redis) -> StatusStore:
        """The store every entry point uses: records kept GENBLAZE_RETENTION_SECONDS."""
        return cls(client, retention_seconds=config.retention_seconds)

    # -- health ---------------------------------------------------------------
    def ping(self) -> bool:
        return bool(self.redis.ping())

    # -- submit ---------------------------------------------------------------
    def create_job(
        self,
        meta: JobMeta,
        assets: Iterable[AssetRecord],
        sources: dict[str, str],
        payload: str,
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[str, bool]:
        """Record a new job; returns (job_id, created).

        `sources` are the stored forms of the jobs' SourceRecords (asset_id -> the
        text `SourceSealer.seal_source` made), kept until each asset ends.

        With an Idempotency-Key already seen for this tenant, nothing is written
        and the earlier job id is returned with created=False; if that key came
        with another request `fingerprint`, IdempotencyConflictError (as Stripe).
        """
        if idempotency_key:
            ikey = keys.idempotency_key(meta.tenant, idempotency_key)
            value = f"{meta.job_id} {fingerprint}" if fingerprint else meta.job_id
            if not self.redis.set(ikey, value, nx=True, ex=self.retention):
                existing = self.redis.get(ikey)
                if existing is not None:
                    job_id, _, seen = _s(existing).partition(" ")
                    if fingerprint and seen and seen != fingerprint:
                        raise IdempotencyConflictError(
                            "this Idempotency-Key was used with a different request"
                        )
                    return job_id, False
        now = utc_now().isoformat()
        assets = list(assets)
        p = self.redis.pipeline(transaction=True)
        jk = keys.job_key(meta.job_id)
        created_ts = meta.created_at.timestamp()
        job_fields: dict[Any, Any] = {
            # The summary's fixed part, readable without the (asset-sized) meta.
            "run_id": meta.run_id,
            "created_at": meta.created_at.isoformat(),
            "created_ts": repr(created_ts),
            "labels": json.dumps(meta.labels, separators=(",", ":")),
            **counters.totals([json.loads(a.model_dump_json()) for a in assets]),
            "meta": meta.model_dump_json(),
            META_CORE: meta.model_copy(update={"asset_ids": []}).model_dump_json(),
            "state": JobState.QUEUED.value,
            "updated_at": now,
            "error": "",
            "manifest": "",
            "assets_total": len(meta.asset_ids),
            "tenant": meta.tenant,
            "version": 0,  # bumped by every write: readers cache documents by it
        }
        p.hset(jk, mapping=job_fields)
        p.expire(jk, self.retention)
        by_state: dict[str, dict[str, int]] = {}
        for a in assets:
            ak = keys.asset_key(meta.job_id, a.asset_id)
            p.set(ak, a.model_dump_json(), ex=self.retention)
            by_state.setdefault(a.state.value, {})[a.asset_id] = a.seq
        if assets:
            every = {a.asset_id: a.seq for a in assets}
            for zkey, members in [(keys.job_assets_key(meta.job_id), every)] + [
                (keys.job_assets_key(meta.job_id, st), m) for st, m in by_state.items()
            ]:
                p.zadd(zkey, members)
                p.expire(zkey, self.retention)
        self._index_job(p, meta, created_ts)
        if sources:
            p.hset(keys.sources_key(meta.job_id), mapping=dict[Any, Any](sources))
            p.expire(keys.sources_key(meta.job_id), self.retention)
        p.set(keys.payload_key(meta.job_id), payload, ex=self.retention)
        p.hincrby(keys.stats_key(), stat_names.JOBS_SUBMITTED, 1)
        p.sadd(keys.tenants_key(), meta.tenant)
        if assets:  # the sweeper's net for a lost first message (ingest/worker/sweeper.py)
            p.zadd(keys.queued_jobs_key(), {meta.job_id: time.time()})
        p.execute()
        return meta.job_id, True

    def _index_job(self, p: Any, meta: JobMeta, created_ts: float) -> None:
        """Add a new job to its tenant's listing indexes, trimming what has expired."""
        member = {meta.job_id: created_ts}
        expired = created_ts - self.retention
        for zkey in [
            keys.tenant_jobs_key(meta.tenant),
            keys.tenant_jobs_key(meta.tenant, JobState.QUEUED.value),
            *(keys.tenant_label_key(meta.tenant, f"{k}={v}") for k, v in meta.labels.items()),
        ]:
            p.zadd(zkey, member)
            p.zremrangebyscore(zkey, "-inf", expired)
            # An index nobody adds to for twice the retention holds only expired jobs.
            p.expire(zkey, 2 * self.retention)

    # -- reads ----------------------------------------------------------------
    def get_meta(self, job_id: str) -> JobMeta | None:
        raw = self.redis.hget(keys.job_key(job_id), "meta")
        return JobMeta.model_validate_json(raw) if raw else None

    def finalize_inputs(self, job_id: str) -> tuple[JobMeta | None, JobState | None, str | None]:
        """What a finalize reads first, in one round trip: the job's meta, its state and
        the run payload the manifest is built from (None where missing)."""
        p = self.redis.pipeline(transaction=False)
        p.hmget(keys.job_key(job_id), ["meta", "state"])
        p.get(keys.payload_key(job_id))
        (meta, state), payload = p.execute()
        return (
            JobMeta.model_validate_json(meta) if meta else None,
            JobState(_s(state)) if state else None,
            _s(payload) if payload is not None else None,
        )

    def job_version(self, job_id: str) -> tuple[str, int] | None:
        """(tenant, version) in one round trip; the version changes with every write."""
        tenant, version = self.redis.hmget(keys.job_key(job_id), ["tenant", "version"])
        if tenant is None:
            return None
        return _s(tenant), int(version or 0)

    def job_state(self, job_id: str) -> JobState | None:
        raw = self.redis.hget(keys.job_key(job_id), "state")
        return JobState(_s(raw)) if raw else None

    def job_changes(self, job_id: str) -> JobChanges:
        """Subscribed to the job's events channel (close it, or use it with ``with``):
        `JobChanges.wait` returns as soon as the job or one of its assets changes."""
        return JobChanges(self.redis, job_id)

    def payload(self, job_id: str) -> str | None:
        raw = self.redis.get(keys.payload_key(job_id))
        return _s(raw) if raw is not None else None

    def get_asset(self, job_id: str, asset_id: str) -> AssetRecord | None:
        raw = self.redis.get(keys.asset_key(job_id, asset_id))
        return AssetRecord.model_validate_json(raw) if raw else None

    def get_assets(self, job_id: str, asset_ids: list[str]) -> list[AssetRecord]:
        if not asset_ids:
            return []
        raws = self.redis.mget([keys.asset_key(job_id, aid) for aid in asset_ids])
        return [AssetRecord.model_validate_json(raw) for raw in raws if raw]

    def get_job(self, job_id: str) -> JobView | None:
        """The public job document as a JobView (the Python API's view of it)."""
        doc = self._document(job_id)
        return document_view(doc) if doc is not None else None

    def get_job_document(self, job_id: str) -> str | None:
        """The public job document as `GET /v1/jobs/{id}` sends it (JSON)."""
        doc = self._document(job_id)
        return document_json(doc) if doc is not None else None

    def _document(self, job_id: str) -> dict[str, Any] | None:
        """Two round trips whatever the asset count: HGETALL of the job, MGET of its assets."""
        raw = self.redis.hgetall(keys.job_key(job_id))
        if not raw:
            return None
        job = {_s(k): _s(v) for k, v in raw.items()}
        meta = json.loads(job["meta"])
        ids = meta["asset_ids"]
        records = (
            [json.loads(r) for r in self.redis.mget([keys.asset_key(job_id, a) for a in ids]) if r]
            if ids
            else []
        )
        return build_document(job, meta, records)

    # -- bounded-cost reads for people (listing.py): same cost for 1 or 10,000 assets --
    def job_summary(self, job_id: str) -> listing.Summary | None:
        return listing.job_summary(self.redis, job_id)

    def job_document(
        self, job_id: str, *, limit: int = listing.DEFAULT_PAGE
    ) -> tuple[listing.Summary, str] | None:
        """The summary plus the first `limit` assets, as JSON (two round trips)."""
        return listing.job_document(self.redis, job_id, limit=limit)

    def asset_page(
        self,
        job_id: str,
        *,
        state: AssetState | None = None,
        after: AssetCursor | None = None,
        limit: int = listing.DEFAULT_PAGE,
    ) -> dict[str, Any]:
        """A page of a job's assets after `after` (parsed at the boundary)."""
        return listing.asset_page(self.redis, job_id, state=state, after=after, limit=limit)

    def list_jobs(
        self,
        tenant: str,
        flt: listing.JobFilter,
        *,
        after: JobCursor | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """A page of the tenant's jobs after `after` (parsed at the boundary)."""
        return listing.list_jobs(self.redis, tenant, flt, after=after, limit=limit)

    # -- asset writes ---------------------------------------------------------
    def start_asset(
        self,
        job_id: str,
        asset_id: str,
        *,
        worker: str = "",
        job_state: JobState | None = None,
        tenant: str | None = None,
        attempts: int | None = None,
        fetch_started_at: datetime | None = None,
    ) -> bool:
        """Mark an asset copying (by `worker`, delivery `attempts`) and its job running;
        False if terminal.

        Pass the `job_state` already read to skip the job write when it is running, and
        the job's `tenant` to move a queued job in the start's own round trip
        (`job_start.py`; without it, a `transition_job` after the start).
        """
        fields: dict[str, Any] = {"worker": worker, "retry_at": None}
        if attempts is not None:
            fields["attempts"] = attempts
        if fetch_started_at is not None:
            fields["fetch_started_at"] = fetch_started_at
        queued = job_state in (None, JobState.QUEUED)
        then = None
        if queued and tenant is not None:

            def then(pipe: Any, written: bytes | str) -> None:
                queue_job_start(pipe, job_id, asset_id, tenant, written, self.retention)

        ok = self._assets.update(job_id, asset_id, AssetState.COPYING, fields, then=then)
        if ok and queued and then is None:
            self.transition_job(job_id, JobState.RUNNING)
        return ok

    def record_progress(self, job_id: str, asset_id: str, done: int, total: int | None) -> None:
        """Write an asset's bytes (never over a terminal state); throttling is the caller's."""
        self._assets.update(job_id, asset_id, None, {"bytes_done": done, "bytes_total": total})

    def finish_asset(
        self,
        job_id: str,
        asset_id: str,
        state: AssetState,
        *,
        key: str | None = None,
        url: str | None = None,
        sha256: str | None = None,
        size: int | None = None,
        error: ErrorInfo | None = None,
        bytes_uploaded: int | None = None,
        copy_seconds: float | None = None,
        provenance: FetchProvenance | None = None,
        lease: AssetLease | None = None,
    ) -> int:
        """Put an asset in a terminal state; returns how many assets remain.

        Idempotent: a redelivered task finishing an already-terminal asset
        changes nothing and just learns the remaining count. ``lease``: the
        delivery's lease, set to forget on release (`AssetLease.forget_on_release`);
        its end rides the terminal write's round trip when that write takes the
        one-trip path (else the lease is released as usual, on leaving its block).
        """
        if state not in TERMINAL_ASSET_STATES:
            raise ValueError(f"{state} is not terminal")
        fields: dict[str, Any] = {}
        if key is not None:
            fields.update(key=key, url=url, sha256=sha256, size=size)
            fields.update(bytes_done=size or 0, bytes_total=size or 0)
        if error is not None:
            fields["error"] = error
        if bytes_uploaded is not None:
            fields["bytes_uploaded"] = bytes_uploaded  # by the finishing delivery: resume evidence
        if provenance is not None:
            fields["provenance"] = provenance
        fields["retry_at"] = None
        fields["retry"] = None
        counters: list[tuple[str, float]] = [(stat_names.assets_finished(state), 1)]
        if state in (AssetState.STORED, AssetState.DEDUPLICATED):
            counters.append((stat_names.BYTES_INGESTED, size or 0))
        if state is AssetState.FAILED and error is not None:
            counters.append((stat_names.failed_with(error.code), 1))
        # This minute's fleet series (the fleet view's chart), in the same atomic write.
        counters += stat_names.series_counters(state, size, time.time())
        if copy_seconds is not None:
            counters += [
                (stat_names.COPY_SECONDS_SUM, float(copy_seconds)),
                (stat_names.COPY_COUNT, 1),
                (stat_names.copy_bucket(copy_seconds), 1),
            ]
        p = self.redis.pipeline(transaction=False)
        # Fast path: the terminal write, its counters and the done-set in one round trip.
        fast = self._assets.queue(p, job_id, asset_id, state, fields, counters)
        ending = lease if fast is not None and lease is not None and lease.forgets else None
        if ending is not None:
            assert fast is not None
            ending.queue_end_if_written(p, keys.asset_key(job_id, asset_id), fast.raw)
        p.sadd(keys.done_key(job_id), asset_id)
        p.expire(keys.done_key(job_id), self.retention)
        # The source URL (maybe a presigned signature) is kept only while a copy may need
        # it. A failed or canceled asset may be retried, so its source stays, but only
        # when sealed (GENBLAZE_SOURCE_KEY): a raw URL never outlives its asset's copy.
        stored = state in (AssetState.STORED, AssetState.DEDUPLICATED)
        if stored:
            p.hdel(keys.sources_key(job_id), asset_id)
        else:
            p.hget(keys.sources_key(job_id), asset_id)
        p.hget(keys.job_key(job_id), "assets_total")
        p.scard(keys.done_key(job_id))
        out = p.execute()
        *_, source, total, done = out
        if not stored and source is not None and not is_sealed(_s(source)):
            self.redis.hdel(keys.sources_key(job_id), asset_id)
        if fast is not None and out[0]:
            self._assets.forget(job_id, asset_id)
        else:
            self._assets.update(job_id, asset_id, state, fields, use_seen=False, counters=counters)
        if ending is not None:
            ending.ended(out[1])
        return int(total or 0) - int(done)

    def mark_waiting_source(
        self, job_id: str, asset_id: str, *, retry_at: datetime, waiting_since: datetime
    ) -> bool:
        """The source said "not yet": show `waiting_source` until the delayed retry."""
        return self._assets.update(
            job_id,
            asset_id,
            AssetState.WAITING_SOURCE,
            {"retry_at": retry_at, "waiting_since": waiting_since},
        )

    def mark_retrying(self, job_id: str, asset_id: str, retry: RetryInfo) -> bool:
        """A retryable failure: show which try comes next, when, and what failed."""
        return self._assets.update(job_id, asset_id, None, {"retry": retry})

    def replace_source(
        self,
        job_id: str,
        asset_id: str,
        sealed: str,
        *,
        redacted_url: str,
        expires_at: datetime | None,
        refreshes: int,
    ) -> bool:
        """Store a refreshed source (already sealed) and show its redacted URL and expiry.

        The record is written first: when the asset is no longer live, the new URL
        is not stored at all (a finished asset keeps no source).
        """
        fields = {
            "source_url": redacted_url,
            "source_expires_at": expires_at,
            "refreshes": refreshes,
        }
        if not self._assets.update(job_id, asset_id, None, fields):
            return False
        self.redis.hset(keys.sources_key(job_id), asset_id, sealed)
        return True

    def remaining(self, job_id: str) -> int:
        """Assets not yet terminal (one round trip; the done-set survives redelivery)."""
        p = self.redis.pipeline(transaction=False)
        p.hget(keys.job_key(job_id), "assets_total")
        p.scard(keys.done_key(job_id))
        total, done = p.execute()
        return int(total or 0) - int(done)

    def snapshot(
        self, job_id: str, asset_id: str
    ) -> tuple[JobMeta | None, JobState | None, AssetRecord | None, str | None]:
        """Meta, job state, asset record and raw source in one round trip (worker hot path)."""
        return self.snapshot_with(job_id, asset_id, None)[0]

    def snapshot_with(
        self, job_id: str, asset_id: str, also: Callable[[Any], None] | None
    ) -> tuple[tuple[JobMeta | None, JobState | None, AssetRecord | None, str | None], Any]:
        """`snapshot`, plus the one command ``also`` queues on the same pipeline (e.g. the
        asset lease's take): its raw answer comes back second, in the same round trip.

        The meta is the job's without its asset ids (`META_CORE`; ``asset_ids`` is
        empty): one asset's work never needs the others'. A job that has none (it
        ended, or an older release wrote it) costs a second read, of the whole meta.
        """
        jk = keys.job_key(job_id)
        p = self.redis.pipeline(transaction=False)
        p.hmget(jk, [META_CORE, "state"])
        p.get(keys.asset_key(job_id, asset_id))
        p.hget(keys.sources_key(job_id), asset_id)
        if also is not None:
            also(p)
        (meta, state), rec, source, *more = p.execute()
        if meta is None and state is not None:
            meta = self.redis.hget(jk, "meta")
        record = AssetRecord.model_validate_json(rec) if rec else None
        if record is not None and record.state not in TERMINAL_ASSET_STATES:
            self._assets.remember(job_id, asset_id, rec, record)  # it is about to be written
        snap = (
            self._metas.parse(meta) if meta else None,
            JobState(_s(state)) if state else None,
            record,
            _s(source) if source is not None else None,
        )
        return snap, (more[0] if more else None)

    # -- job writes -----------------------------------------------------------
    def transition_job(
        self,
        job_id: str,
        new: JobState,
        *,
        error: ErrorInfo | None = None,
        manifest: ManifestInfo | None = None,
    ) -> bool:
        """Move a job to `new` if legal (checked under WATCH); True when it moved."""
        jk = keys.job_key(job_id)
        moved = False

        def txn(pipe: Any) -> None:
            nonlocal moved
            raw, tenant, created_ts = pipe.hmget(jk, ["state", "tenant", "created_ts"])
            moved = False
            if raw is None:
                return
            current = JobState(_s(raw))
            if current == new or not can_transition_job(current, new):
                return
            fields: dict[Any, Any] = {"state": new.value, "updated_at": utc_now().isoformat()}
            if error is not None:
                fields["error"] = error.model_dump_json()
            if manifest is not None:
                fields["manifest"] = manifest.model_dump_json()
            pipe.multi()
            pipe.hset(jk, mapping=fields)
            pipe.hincrby(jk, "version", 1)
            pipe.expire(jk, self.retention)
            pipe.hincrby(keys.stats_key(), stat_names.jobs_entered(new), 1)
            if tenant is not None and created_ts is not None:
                pipe.zrem(keys.tenant_jobs_key(_s(tenant), current.value), job_id)
                pipe.zadd(keys.tenant_jobs_key(_s(tenant), new.value), {job_id: float(created_ts)})
                pipe.expire(keys.tenant_jobs_key(_s(tenant), new.value), 2 * self.retention)
            if new in TERMINAL_JOB_STATES:
                pipe.hdel(jk, META_CORE)  # its copies are over (`META_CORE`)
            moved = True

        out = self.redis.transaction(txn, jk)
        if moved and out is not None:
            self.publish_job_change(job_id, int(out[1]), new)
        return moved

    def publish_job_change(self, job_id: str, version: int, state: JobState) -> None:
        """Tell SSE watchers the job moved (asset writes publish from their script)."""
        body = json.dumps({"job_state": state.value}, separators=(",", ":"))
        self.redis.publish(keys.events_channel(job_id), f"{version} {body}")

    def reopen_job(self, job_id: str) -> JobState | None:
        """Move a failed or canceled job back to running (a retry); returns the state
        found. Only the caller that sees FAILED/CANCELED returned moved it: the state
        check and the move are one transaction, so two retries never both proceed.
        """
        jk = keys.job_key(job_id)
        found: JobState | None = None
        moved = False

        def txn(pipe: Any) -> None:
            nonlocal found, moved
            raw, tenant, created_ts = pipe.hmget(jk, ["state", "tenant", "created_ts"])
            found = JobState(_s(raw)) if raw is not None else None
            moved = False
            if found not in REOPENABLE_JOB_STATES or tenant is None:
                return
            pipe.multi()
            now = utc_now().isoformat()
            pipe.hset(jk, mapping={"state": JobState.RUNNING.value, "updated_at": now, "error": ""})
            pipe.hincrby(jk, "version", 1)
            pipe.expire(jk, self.retention)
            pipe.hincrby(keys.stats_key(), stat_names.JOBS_RETRIED, 1)
            pipe.delete(keys.finalize_retries_key(job_id))  # a fresh run, fresh retries
            pipe.zadd(keys.queued_jobs_key(), {job_id: time.time()})  # its assets are re-sent
            pipe.hdel(keys.queued_resends_key(), job_id)  # the sweeper's backoff starts over
            pipe.zrem(keys.tenant_jobs_key(_s(tenant), found.value), job_id)
            pipe.zadd(
                keys.tenant_jobs_key(_s(tenant), JobState.RUNNING.value),
                {job_id: float(created_ts or 0)},
            )
            pipe.expire(
                keys.tenant_jobs_key(_s(tenant), JobState.RUNNING.value), 2 * self.retention
            )
            moved = True

        out = self.redis.transaction(txn, jk)
        if moved and out is not None:
            self.publish_job_change(job_id, int(out[1]), JobState.RUNNING)
        return found

    def reopen_asset(self, job_id: str, asset_id: str, *, source_url: str | None = None) -> bool:
        """Put a failed or canceled asset back in the queue state (a retry), its error,
        bytes and delivery count cleared; False when it is in no such state."""
        return self._assets.reopen(job_id, asset_id, source_url=source_url)

    def set_source(self, job_id: str, asset_id: str, sealed: str) -> None:
        """Replace an asset's stored source, e.g. a fresh URL for an expired one."""
        p = self.redis.pipeline(transaction=False)
        p.hset(keys.sources_key(job_id), asset_id, sealed)
        p.expire(keys.sources_key(job_id), self.retention)
        p.execute()

    def source(self, job_id: str, asset_id: str) -> str | None:
        """An asset's stored source (sealed when a key is set), None once dropped."""
        raw = self.redis.hget(keys.sources_key(job_id), asset_id)
        return _s(raw) if raw is not None else None

    def sources_missing(self, job_id: str, asset_ids: list[str]) -> list[str]:
        """Which of these assets no longer have a stored source (one round trip)."""
        if not asset_ids:
            return []
        found = self.redis.hmget(keys.sources_key(job_id), asset_ids)
        return [a for a, v in zip(asset_ids, found, strict=True) if v is None]

    def asset_ids_in(self, job_id: str, *states: AssetState) -> list[str]:
        """Asset ids in the given states, in submission order (one round trip)."""
        p = self.redis.pipeline(transaction=False)
        for st in states:
            p.zrange(keys.job_assets_key(job_id, st.value), 0, -1, withscores=True)
        rows = [(sc, _s(m)) for res in p.execute() for m, sc in res]
        return [m for _, m in sorted(rows)]

    def drop_callback_urls(self, job_id: str, *, keep_sealed: bool) -> bool:
        """Take the job's notify_url and refresh_url out of its stored meta: their last
        use is over (the job succeeded and its webhook was sent or given up). With
        ``keep_sealed`` (a failed or canceled job, which a retry may run again) a sealed
        URL stays, a raw one goes anyway: a token in clear never outlives its use.
        Returns whether anything was dropped."""
        jk = keys.job_key(job_id)
        dropped = False

        def txn(pipe: Any) -> None:
            nonlocal dropped
            raw = pipe.hget(jk, "meta")
            dropped = False
            if raw is None:
                return
            meta = json.loads(raw)
            changes = {
                name: None
                for name in ("notify_url", "refresh_url")
                if meta.get(name) and not (keep_sealed and is_sealed(meta[name]))
            }
            if not changes:
                return
            meta.update(changes)
            pipe.multi()
            pipe.hset(jk, "meta", json.dumps(meta, separators=(",", ":")))
            pipe.hdel(jk, META_CORE)  # its copy of the URLs goes too
            dropped = True

        self.redis.transaction(txn, jk)
        return dropped

    def unleased_copying(self, job_id: str) -> list[str]:
        """The job's assets in `copying` that no delivery holds right now (a retry's
        backoff, a slice's continuation still queued, or a worker that died)."""
        ids = self.asset_ids_in(job_id, AssetState.COPYING)
        if not ids:
            return []
        p = self.redis.pipeline(transaction=False)
        for asset_id in ids:
            p.exists(keys.lease_key(job_id, asset_id))
        return [a for a, held in zip(ids, p.execute(), strict=True) if not held]

    def request_cancel(self, job_id: str) -> JobState | None:
        """Cancel a job that is not finalizing or finished; returns the state after.

        Copies in flight see the cancel themselves (within a second) and abort their
        uploads. An asset waiting for a not-ready source has no delivery working on
        it (its next try is a delayed message, maybe hours away), so it is canceled
        here at once: nothing was uploaded, and a retry need not wait for that message.
        """
        self.transition_job(job_id, JobState.CANCELED, error=ErrorInfo(code="canceled"))
        state = self.job_state(job_id)
        if state == JobState.CANCELED:
            # no webhook goes out for a canceled job: a raw callback URL has no use left
            self.drop_callback_urls(job_id, keep_sealed=True)
            for asset_id in self.asset_ids_in(job_id, AssetState.WAITING_SOURCE):
                if self.redis.exists(keys.lease_key(job_id, asset_id)):
                    continue  # a delivery is on it right now: it sees the cancel itself
                error = ErrorInfo(
                    code="canceled", message="job canceled while waiting for its source"
                )
                self.finish_asset(job_id, asset_id, AssetState.CANCELED, error=error)
                self.redis.zrem(keys.inflight_key(), inflight_member(job_id, asset_id))
        return state

    def incr_stat(self, name: str, amount: float = 1) -> None:
        """Bump one counter of `stats.py` (e.g. ``stat_names.RETRIES_TOTAL``)."""
        self._incr_stats([(name, amount)])

    def stats(self) -> dict[str, float]:
        return {_s(k): float(_s(v)) for k, v in self.redis.hgetall(keys.stats_key()).items()}

    def _incr_stats(self, counters: list[tuple[str, float]]) -> None:
        p = self.redis.pipeline(transaction=False)
        for name, amount in counters:
            if isinstance(amount, float):  # the rule the CAS script follows too ('.' = float)
                p.hincrbyfloat(keys.stats_key(), name, amount)
            else:
                p.hincrby(keys.stats_key(), name, amount)
        p.execute()
