"""A worker's per-asset read of its job does not grow with the job (store `META_CORE`)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

import genblaze_s3.transfer as transfer
from genblaze_s3.ingest.models import AssetState, JobState
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.status import META_CORE
from genblaze_s3.ingest.worker.asset_copy import Action, WorkerContext, process_asset
from tests.unit.ingest_fixtures import make_submission, worker_context


def _job(ctx: WorkerContext, n: int, **meta: Any) -> tuple[str, list[str]]:
    sub = make_submission(n)
    job_meta = sub.meta.model_copy(update=meta)
    ctx.store.create_job(job_meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    return job_meta.job_id, job_meta.asset_ids


def _meta_bytes_read(ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes of job meta each snapshot reads from the store."""
    read: list[int] = []
    parse = ctx.store._metas.parse

    def counted(raw: bytes | str) -> Any:
        read.append(len(raw))
        return parse(raw)

    monkeypatch.setattr(ctx.store._metas, "parse", counted)
    return read


def test_a_snapshot_reads_the_same_few_bytes_of_a_10_or_a_2000_asset_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = worker_context()
    small, (a_small, *_) = _job(ctx, 10)
    big, (a_big, *_) = _job(ctx, 2000)
    read = _meta_bytes_read(ctx, monkeypatch)
    (meta_small, *_), _ = ctx.store.snapshot_with(small, a_small, None)
    (meta_big, *_), _ = ctx.store.snapshot_with(big, a_big, None)
    assert read[0] == read[1] < 1000  # the 2000-asset job's full meta is ~80 KB
    assert meta_big is not None and meta_big.asset_ids == [] and meta_big.job_id == big
    full = ctx.store.get_meta(big)
    assert full is not None and len(full.asset_ids) == 2000  # finalize reads the whole meta
    assert meta_big == full.model_copy(update={"asset_ids": []})


def test_a_job_without_it_is_read_whole_and_its_assets_still_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A job written by an older release (or one that ended and is retried) has no core.
    ctx = worker_context()
    job_id, (aid,) = _job(ctx, 1)
    ctx.redis.hdel(keys.job_key(job_id), META_CORE)
    result = SimpleNamespace(
        key="k/x.png", sha256="a" * 64, size=10, deduplicated=False, bytes_uploaded=10, source=None
    )
    monkeypatch.setattr(transfer, "copy_url", lambda *a, **kw: result)
    assert process_asset(ctx, job_id, aid).action is Action.DONE
    assert ctx.store.get_asset(job_id, aid).state == AssetState.STORED  # type: ignore[union-attr]


@pytest.mark.parametrize("end", [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED])
def test_it_leaves_with_the_jobs_end(end: JobState) -> None:
    ctx = worker_context()
    job_id, _ = _job(ctx, 2)
    assert ctx.redis.hexists(keys.job_key(job_id), META_CORE)
    ctx.store.transition_job(job_id, JobState.RUNNING)
    if end is JobState.CANCELED:
        ctx.store.request_cancel(job_id)
    else:
        ctx.store.transition_job(job_id, JobState.FINALIZING)
        ctx.store.transition_job(job_id, end)
    assert ctx.store.job_state(job_id) == end
    assert not ctx.redis.hexists(keys.job_key(job_id), META_CORE)


def test_dropping_the_callback_urls_drops_its_copy_of_them() -> None:
    ctx = worker_context()
    job_id, _ = _job(ctx, 2, notify_url="https://hooks.example/t?token=SECRET")
    core = ctx.redis.hget(keys.job_key(job_id), META_CORE)
    assert core is not None and json.loads(core)["notify_url"].endswith("SECRET")
    assert ctx.store.drop_callback_urls(job_id, keep_sealed=False)
    assert b"SECRET" not in b"".join(v for v in ctx.redis.hgetall(keys.job_key(job_id)).values())
