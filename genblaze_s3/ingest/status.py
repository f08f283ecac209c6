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
        self._last = float("-inf")

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
        }
        p.hset(jk, mapping=job_fields)
        p.expire(jk, self.retention)
        for a in assets:
            ak = keys.asset_key(meta.job_id, a.asset_id)
            p.hset(ak, mapping=_asset_fields(a))
            p.expire(ak, self.retention)
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
        raw = self.redis.hgetall(keys.asset_key(job_id, asset_id))
        return _asset_from_fields(raw) if raw else None

    def get_assets(self, job_id: str, asset_ids: list[str]) -> list[AssetRecord]:
        p = self.redis.pipeline(transaction=False)
        for aid in asset_ids:
            p.hgetall(keys.asset_key(job_id, aid))
        return [_asset_from_fields(raw) for raw in p.execute() if raw]

    def get_job(self, job_id: str) -> JobView | None:
        """The full public document (two round trips whatever the asset count)."""
        raw = self.redis.hgetall(keys.job_key(job_id))
        if not raw:
            return None
        fields = {_s(k): _s(v) for k, v in raw.items()}
        meta = JobMeta.model_validate_json(fields["meta"])
        assets = self.get_assets(job_id, meta.asset_ids)
        return build_view(meta, fields, assets)

    # -- asset writes ---------------------------------------------------------
    def start_asset(self, job_id: str, asset_id: str, *, worker: str = "") -> bool:
        """Mark an asset copying (by `worker`) and its job running; False if terminal."""
        ok = self._transition_asset(job_id, asset_id, AssetState.COPYING, {"worker": worker})
        if ok:
            self.transition_job(job_id, JobState.RUNNING)
        return ok

    def record_progress(self, job_id: str, asset_id: str, done: int, total: int | None) -> None:
        """One pipelined write of an asset's bytes; throttling is the caller's job."""
        p = self.redis.pipeline(transaction=False)
        ak = keys.asset_key(job_id, asset_id)
        p.hset(ak, mapping={"bytes_done": done, "bytes_total": "" if total is None else total})
        p.expire(ak, self.retention)
        p.hset(keys.job_key(job_id), "updated_at", utc_now().isoformat())
        p.execute()

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
    ) -> int:
        """Put an asset in a terminal state; returns how many assets remain.

        Idempotent: a redelivered task finishing an already-terminal asset
        changes nothing and just learns the remaining count.
        """
        if state not in TERMINAL_ASSET_STATES:
            raise ValueError(f"{state} is not terminal")
        fields: dict[str, Any] = {}
        if key is not None:
            fields.update(key=key, url=url or "", sha256=sha256 or "", size=size or 0)
            fields.update(bytes_done=size or 0, bytes_total=size or 0)
        if error is not None:
            fields["error"] = error.model_dump_json()
        if bytes_uploaded is not None:
            fields["bytes_uploaded"] = bytes_uploaded  # by the finishing delivery: resume evidence
        changed = self._transition_asset(job_id, asset_id, state, fields)
        p = self.redis.pipeline(transaction=False)
        p.sadd(keys.done_key(job_id), asset_id)
        p.expire(keys.done_key(job_id), self.retention)
        if changed and state in (AssetState.STORED, AssetState.DEDUPLICATED):
            p.hincrby(keys.stats_key(), "bytes_ingested", size or 0)
            p.hincrby(keys.stats_key(), f"assets_{state.value}", 1)
        elif changed:
            p.hincrby(keys.stats_key(), f"assets_{state.value}", 1)
        p.execute()
        return self.remaining(job_id)

    def remaining(self, job_id: str) -> int:
        meta = self.get_meta(job_id)
        if meta is None:
            return 0
        return len(meta.asset_ids) - int(self.redis.scard(keys.done_key(job_id)))

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
        if isinstance(amount, float) and not amount.is_integer():
            self.redis.hincrbyfloat(keys.stats_key(), name, amount)
        else:
            self.redis.hincrby(keys.stats_key(), name, int(amount))

    def stats(self) -> dict[str, float]:
        return {_s(k): float(_s(v)) for k, v in self.redis.hgetall(keys.stats_key()).items()}

    # -- internals ------------------------------------------------------------
    def _transition_asset(
        self, job_id: str, asset_id: str, new: AssetState, fields: dict[str, Any]
    ) -> bool:
        ak = keys.asset_key(job_id, asset_id)
        moved = False

        def txn(pipe: Any) -> None:
            nonlocal moved
            moved = False
            raw = pipe.hget(ak, "state")
            if raw is None:
                return
            if not can_transition_asset(AssetState(_s(raw)), new):
                return
            pipe.multi()
            pipe.hset(ak, mapping={**fields, "state": new.value})
            pipe.expire(ak, self.retention)
            pipe.hset(keys.job_key(job_id), "updated_at", utc_now().isoformat())
            moved = True

        self.redis.transaction(txn, ak)
        return moved


def _asset_fields(a: AssetRecord) -> dict[Any, Any]:
    return {
        "asset_id": a.asset_id,
        "source_url": a.source_url,
        "media_type": a.media_type or "",
        "state": a.state.value,
        "bytes_done": a.bytes_done,
        "bytes_total": "" if a.bytes_total is None else a.bytes_total,
        "sha256": a.sha256 or "",
        "size": "" if a.size is None else a.size,
        "key": a.key or "",
        "url": a.url or "",
        "error": a.error.model_dump_json() if a.error else "",
    }


def _asset_from_fields(raw: dict[Any, Any]) -> AssetRecord:
    f = {_s(k): _s(v) for k, v in raw.items()}

    def opt_int(name: str) -> int | None:
        v = f.get(name, "")
        return int(v) if v != "" else None

    return AssetRecord(
        asset_id=f["asset_id"],
        source_url=f.get("source_url", ""),
        media_type=f.get("media_type") or None,
        state=AssetState(f["state"]),
        bytes_done=int(f.get("bytes_done") or 0),
        bytes_total=opt_int("bytes_total"),
        sha256=f.get("sha256") or None,
        size=opt_int("size"),
        key=f.get("key") or None,
        url=f.get("url") or None,
        error=ErrorInfo.model_validate_json(f["error"]) if f.get("error") else None,
        worker=f.get("worker") or None,
        bytes_uploaded=opt_int("bytes_uploaded"),
    )


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
