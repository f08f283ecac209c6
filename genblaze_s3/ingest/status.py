"""StatusStore: the single source of truth for job and asset state, on Redis.

Why Redis and not the Celery result backend: state must be readable by the API,
the CLI and `job.wait()` while tasks run, survive redelivery, and expire on a
retention we choose. Every write goes through one pipeline that also refreshes
the key's TTL, so a record never outlives its retention and never needs a sweep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import redis

from genblaze_s3.ingest import keys
from genblaze_s3.ingest.models import (
    TERMINAL_ASSET_STATES,
    AssetRecord,
    AssetState,
    AssetView,
    ErrorInfo,
    JobMeta,
    JobState,
    JobView,
    ManifestInfo,
    Progress,
    utc_now,
)
from genblaze_s3.ingest.transitions import can_transition_asset, can_transition_job

# Replace an asset record only if it still holds exactly what this process last saw,
# then bump the job's version and (on a terminal move) its counters: one round trip
# instead of WATCH/GET/MULTI/EXEC. ARGV[5..] are (stats field, amount) pairs.
_ASSET_CAS = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('hset', KEYS[2], 'updated_at', ARGV[4])
redis.call('hincrby', KEYS[2], 'version', 1)
for i = 5, #ARGV, 2 do
  if string.find(ARGV[i + 1], '.', 1, true) then
    redis.call('hincrbyfloat', KEYS[3], ARGV[i], ARGV[i + 1])
  else
    redis.call('hincrby', KEYS[3], ARGV[i], ARGV[i + 1])
  end
end
return 1
"""
_SEEN_MAX = 2_000  # asset records remembered for the CAS fast path (per process)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class ProgressThrottle:
    """Decides when a progress update is worth a Redis write.

    Why: a 1 GiB copy reports progress thousands of times; the store only needs
    a few writes per second per asset to drive progress bars.
    """

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


class StatusStore:
    """Job/asset records in Redis; receives its connection, reads no environment."""

    def __init__(
        self, client: redis.Redis, *, retention_seconds: int = keys.DEFAULT_RETENTION_SECONDS
    ):
        self.redis = client
        self.retention = retention_seconds
        # Raw asset records as last read or written here: the expected value of the
        # one-round-trip compare-and-set. A stale entry only costs a fallback.
        self._seen: dict[str, bytes | str] = {}

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
    ) -> tuple[str, bool]:
        """Record a new job; returns (job_id, created).

        With an Idempotency-Key already seen for this tenant, nothing is written
        and the earlier job id is returned with created=False.
        """
        if idempotency_key:
            ikey = keys.idempotency_key(meta.tenant, idempotency_key)
            if not self.redis.set(ikey, meta.job_id, nx=True, ex=self.retention):
                existing = self.redis.get(ikey)
                if existing is not None:
                    return _s(existing), False
        now = utc_now().isoformat()
        p = self.redis.pipeline(transaction=True)
        jk = keys.job_key(meta.job_id)
        job_fields: dict[Any, Any] = {
            "meta": meta.model_dump_json(),
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
        for a in assets:
            ak = keys.asset_key(meta.job_id, a.asset_id)
            p.set(ak, a.model_dump_json(), ex=self.retention)
        if sources:
            p.hset(keys.sources_key(meta.job_id), mapping=dict[Any, Any](sources))
            p.expire(keys.sources_key(meta.job_id), self.retention)
        p.set(keys.payload_key(meta.job_id), payload, ex=self.retention)
        p.hincrby(keys.stats_key(), "jobs_submitted", 1)
        p.execute()
        return meta.job_id, True

    # -- reads ----------------------------------------------------------------
    def get_meta(self, job_id: str) -> JobMeta | None:
        raw = self.redis.hget(keys.job_key(job_id), "meta")
        return JobMeta.model_validate_json(raw) if raw else None

    def job_tenant(self, job_id: str) -> str | None:
        """The owning tenant (one HGET), for authorization checks."""
        raw = self.redis.hget(keys.job_key(job_id), "tenant")
        return _s(raw) if raw is not None else None

    def job_version(self, job_id: str) -> tuple[str, int] | None:
        """(tenant, version) in one round trip; the version changes with every write."""
        tenant, version = self.redis.hmget(keys.job_key(job_id), ["tenant", "version"])
        if tenant is None:
            return None
        return _s(tenant), int(version or 0)

    def job_state(self, job_id: str) -> JobState | None:
        raw = self.redis.hget(keys.job_key(job_id), "state")
        return JobState(_s(raw)) if raw else None

    def source_url(self, job_id: str, asset_id: str) -> str | None:
        raw = self.redis.hget(keys.sources_key(job_id), asset_id)
        return _s(raw) if raw is not None else None

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
        """The full public document (two round trips whatever the asset count)."""
        raw = self.redis.hgetall(keys.job_key(job_id))
        if not raw:
            return None
        fields = {_s(k): _s(v) for k, v in raw.items()}
        meta = JobMeta.model_validate_json(fields["meta"])
        assets = self.get_assets(job_id, meta.asset_ids)
        return build_view(meta, fields, assets)

    def get_job_document(self, job_id: str) -> str | None:
        """The same document as `get_job(...).model_dump_json()`, built without pydantic.

        Why: this is the hot path of `GET /v1/jobs/{id}` (polled by every client);
        plain dicts and the C json codec keep a 500-asset job in a few milliseconds.
        Two round trips: HGETALL of the job, MGET of its assets.
        """
        raw = self.redis.hgetall(keys.job_key(job_id))
        if not raw:
            return None
        f = {_s(k): _s(v) for k, v in raw.items()}
        meta = json.loads(f["meta"])
        ids = meta["asset_ids"]
        recs = (
            [json.loads(r) for r in self.redis.mget([keys.asset_key(job_id, a) for a in ids]) if r]
            if ids
            else []
        )
        totals = [r["bytes_total"] for r in recs]
        doc = {
            "job_id": meta["job_id"],
            "state": f["state"],
            "run_id": meta["run_id"],
            "created_at": meta["created_at"],
            "updated_at": _iso_z(f["updated_at"]),
            "progress": {
                "bytes_done": sum(r["bytes_done"] for r in recs),
                "bytes_total": None if None in totals else sum(totals),
                "assets_done": sum(1 for r in recs if r["state"] in _TERMINAL_ASSET_VALUES),
                "assets_total": len(ids),
            },
            "assets": [{k: r[k] for k in _VIEW_FIELDS} for r in recs],
            "manifest": json.loads(f["manifest"])
            if f.get("manifest")
            else {"key": None, "url": None, "locked_until": None},
            "error": json.loads(f["error"]) if f.get("error") else None,
        }
        return json.dumps(doc, separators=(",", ":"))

    # -- asset writes ---------------------------------------------------------
    def start_asset(
        self, job_id: str, asset_id: str, *, worker: str = "", job_state: JobState | None = None
    ) -> bool:
        """Mark an asset copying (by `worker`) and its job running; False if terminal.

        Pass the `job_state` already read to skip the job write when it is running.
        """
        ok = self._update_asset(job_id, asset_id, AssetState.COPYING, {"worker": worker})
        if ok and job_state in (None, JobState.QUEUED):
            self.transition_job(job_id, JobState.RUNNING)
        return ok

    def record_progress(self, job_id: str, asset_id: str, done: int, total: int | None) -> None:
        """Write an asset's bytes (never over a terminal state); throttling is the caller's."""
        self._update_asset(job_id, asset_id, None, {"bytes_done": done, "bytes_total": total})

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
    ) -> int:
        """Put an asset in a terminal state; returns how many assets remain.

        Idempotent: a redelivered task finishing an already-terminal asset
        changes nothing and just learns the remaining count.
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
        stats: list[tuple[str, float]] = [(f"assets_{state.value}", 1)]
        if state in (AssetState.STORED, AssetState.DEDUPLICATED):
            stats.append(("bytes_ingested", size or 0))
        if copy_seconds is not None:
            stats += [("copy_seconds_sum", float(copy_seconds)), ("copy_count", 1)]
        ak = keys.asset_key(job_id, asset_id)
        p = self.redis.pipeline(transaction=False)
        # Fast path: the terminal write, its counters and the done-set in one round trip.
        fast = self._queue_cas(p, job_id, asset_id, state, fields, stats)
        p.sadd(keys.done_key(job_id), asset_id)
        p.expire(keys.done_key(job_id), self.retention)
        # The raw source URL (a presigned signature) is kept only while a copy may need it.
        p.hdel(keys.sources_key(job_id), asset_id)
        p.hget(keys.job_key(job_id), "assets_total")
        p.scard(keys.done_key(job_id))
        out = p.execute()
        *_, total, done = out
        if fast is not None and out[0]:
            self._seen.pop(ak, None)  # terminal: never written again
        elif self._update_asset(job_id, asset_id, state, fields, use_seen=False):
            self._incr_stats(stats)
        return int(total or 0) - int(done)

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
        p = self.redis.pipeline(transaction=False)
        p.hmget(keys.job_key(job_id), ["meta", "state"])
        p.get(keys.asset_key(job_id, asset_id))
        p.hget(keys.sources_key(job_id), asset_id)
        (meta, state), rec, source = p.execute()
        record = AssetRecord.model_validate_json(rec) if rec else None
        if record is not None and record.state not in TERMINAL_ASSET_STATES:
            self._remember(keys.asset_key(job_id, asset_id), rec)  # it is about to be written
        return (
            JobMeta.model_validate_json(meta) if meta else None,
            JobState(_s(state)) if state else None,
            record,
            _s(source) if source is not None else None,
        )

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
            raw = pipe.hget(jk, "state")
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
            pipe.hincrby(keys.stats_key(), f"jobs_{new.value}", 1)
            moved = True

        self.redis.transaction(txn, jk)
        return moved

    def request_cancel(self, job_id: str) -> JobState | None:
        """Cancel a job that is not finalizing or finished; returns the state after."""
        self.transition_job(job_id, JobState.CANCELED, error=ErrorInfo(code="canceled"))
        return self.job_state(job_id)

    def incr_stat(self, name: str, amount: float = 1) -> None:
        self._incr_stats([(name, amount)])

    def stats(self) -> dict[str, float]:
        return {_s(k): float(_s(v)) for k, v in self.redis.hgetall(keys.stats_key()).items()}

    def _incr_stats(self, stats: list[tuple[str, float]]) -> None:
        p = self.redis.pipeline(transaction=False)
        for name, amount in stats:
            if isinstance(amount, float):  # the rule _ASSET_CAS follows too ('.' = float)
                p.hincrbyfloat(keys.stats_key(), name, amount)
            else:
                p.hincrby(keys.stats_key(), name, amount)
        p.execute()

    # -- internals ------------------------------------------------------------
    def _remember(self, ak: str, raw: bytes | str) -> None:
        if len(self._seen) >= _SEEN_MAX:
            self._seen.clear()  # only a cache: the next write takes the WATCH path
        self._seen[ak] = raw

    def _next_record(
        self, raw: bytes | str, new: AssetState | None, fields: dict[str, Any]
    ) -> str | None:
        """The record after the change, or None when the change is not legal from `raw`."""
        rec = AssetRecord.model_validate_json(raw)
        if new is None:
            if rec.state in TERMINAL_ASSET_STATES:
                return None
        elif not can_transition_asset(rec.state, new):
            return None
        return rec.model_copy(
            update={**fields, **({"state": new} if new else {})}
        ).model_dump_json()

    def _queue_cas(
        self,
        pipe: Any,
        job_id: str,
        asset_id: str,
        new: AssetState | None,
        fields: dict[str, Any],
        stats: list[tuple[str, float]] | None = None,
    ) -> str | None:
        """Queue the CAS script on `pipe` when this process knows the current record.

        Returns the record it would write (None: no fast path; use the WATCH path).
        """
        ak = keys.asset_key(job_id, asset_id)
        raw = self._seen.get(ak)
        if raw is None:
            return None
        updated = self._next_record(raw, new, fields)
        if updated is None:
            return None
        args: list[Any] = [raw, updated, self.retention, utc_now().isoformat()]
        for name, amount in stats or ():
            args += [name, f"{amount:.6f}" if isinstance(amount, float) else int(amount)]
        # EVAL, not a Script object: redis-py precedes a pipeline holding a Script with a
        # SCRIPT EXISTS round trip; the server caches the compiled body by its hash anyway.
        pipe.eval(_ASSET_CAS, 3, ak, keys.job_key(job_id), keys.stats_key(), *args)
        return updated

    def _update_asset(
        self,
        job_id: str,
        asset_id: str,
        new: AssetState | None,
        fields: dict[str, Any],
        *,
        use_seen: bool = True,
    ) -> bool:
        """Compare-and-set one asset record; False when the change is illegal.

        `new=None` updates fields only, and only while the asset is not terminal.
        One round trip when this process last wrote (or read) the record, else a
        WATCH transaction.
        """
        ak = keys.asset_key(job_id, asset_id)
        if use_seen:
            p = self.redis.pipeline(transaction=False)
            updated = self._queue_cas(p, job_id, asset_id, new, fields)
            if updated is not None and p.execute()[0]:
                self._after_write(ak, new, updated)
                return True
        moved: str | None = None

        def txn(pipe: Any) -> None:
            nonlocal moved
            moved = None
            raw = pipe.get(ak)
            if raw is None:
                return
            updated = self._next_record(raw, new, fields)
            if updated is None:
                return
            pipe.multi()
            pipe.set(ak, updated, ex=self.retention)
            pipe.hset(keys.job_key(job_id), "updated_at", utc_now().isoformat())
            pipe.hincrby(keys.job_key(job_id), "version", 1)
            moved = updated

        self.redis.transaction(txn, ak)
        if moved is not None:
            self._after_write(ak, new, moved)
        return moved is not None

    def _after_write(self, ak: str, new: AssetState | None, raw: str) -> None:
        if new in TERMINAL_ASSET_STATES:
            self._seen.pop(ak, None)
        else:
            self._remember(ak, raw)


_TERMINAL_ASSET_VALUES = frozenset(s.value for s in TERMINAL_ASSET_STATES)
_VIEW_FIELDS = tuple(AssetView.model_fields)


def _iso_z(value: str) -> str:
    """Our stored isoformat ('+00:00') in pydantic's JSON spelling ('Z')."""
    return value[:-6] + "Z" if value.endswith("+00:00") else value


def build_view(meta: JobMeta, fields: dict[str, str], assets: list[AssetRecord]) -> JobView:
    """Assemble the public document from stored pieces (pure; no I/O)."""
    totals = [a.bytes_total for a in assets]
    progress = Progress(
        bytes_done=sum(a.bytes_done for a in assets),
        bytes_total=None if any(t is None for t in totals) else sum(t or 0 for t in totals),
        assets_done=sum(1 for a in assets if a.state in TERMINAL_ASSET_STATES),
        assets_total=len(meta.asset_ids),
    )
    return JobView(
        job_id=meta.job_id,
        state=JobState(fields["state"]),
        run_id=meta.run_id,
        created_at=meta.created_at,
        updated_at=datetime.fromisoformat(fields["updated_at"]),
        progress=progress,
        assets=[
            AssetView(
                asset_id=a.asset_id,
                source_url=a.source_url,
                state=a.state,
                bytes_done=a.bytes_done,
                bytes_total=a.bytes_total,
                sha256=a.sha256,
                key=a.key,
                url=a.url,
                error=a.error,
            )
            for a in assets
        ],
        manifest=ManifestInfo.model_validate_json(fields["manifest"])
        if fields.get("manifest")
        else ManifestInfo(),
        error=ErrorInfo.model_validate_json(fields["error"]) if fields.get("error") else None,
    )


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)
