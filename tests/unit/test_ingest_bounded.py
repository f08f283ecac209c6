"""Bounded deliveries without a broker: slices hand on, process_asset is total, every
terminal state aborts the upload, finalize and the sweeper take turns by lease/lock."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest

import genblaze_s3.transfer as transfer
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.models import AssetState, JobState
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.leases import AssetLease, finalize_lease
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import FINALIZE_JOB, INGEST_ASSET
from genblaze_s3.ingest.worker.asset_copy import Action, WorkerContext, process_asset
from genblaze_s3.ingest.worker.deliveries import run_asset, run_finalize
from genblaze_s3.ingest.worker.sweeper import sweep_once
from genblaze_s3.settings import load_settings
from genblaze_s3.transfer import Checkpoint, CopyPaused, SourceTruncated
from tests.unit.ingest_fixtures import make_submission

KEY_A = "dGVzdC1vbmx5LWtleS1ub3QtYS1zZWNyZXQtMDAwMDA="
KEY_B = "b3RoZXIta2V5LW5vdC10aGUtc3VibWl0dGVycy0wMDA="


class FakeClient:
    def __init__(self) -> None:
        self.aborted: list[str] = []

    def abort_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.aborted.append(kw["UploadId"])
        return {}


class FakeBackend(SimpleNamespace):
    def get_durable_url(self, key: str) -> str:
        return f"http://s3/{key}"


class Queue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any], float]] = []

    def __call__(self, name: str, args: list[Any], countdown: float) -> None:
        self.sent.append((name, args, countdown))


@pytest.fixture
def ctx() -> WorkerContext:
    client = fakeredis.FakeRedis()
    s3 = FakeClient()
    return WorkerContext(
        redis=client,
        store=StatusStore(client),
        backend_for=lambda d: FakeBackend(bucket=d.bucket, client=s3),
        policy=DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:9000"})
        ),
        max_attempts=3,
        max_retries=1,
        lease_ttl_ms=5000,
        slice_seconds=10.0,
    )


def _job(ctx: WorkerContext, *, sealer: SourceSealer | None = None) -> tuple[str, str]:
    sub = make_submission(1)
    sources = sub.sealed_sources(sealer or SourceSealer(None))
    ctx.store.create_job(sub.meta, sub.assets, sources, sub.payload)
    return sub.meta.job_id, sub.meta.asset_ids[0]


def _copy_does(monkeypatch: pytest.MonkeyPatch, behaviour: Any) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def copy_url(backend: Any, url: str, dest: Any, **kw: Any) -> Any:
        calls.append(kw)
        if isinstance(behaviour, BaseException):
            raise behaviour
        return behaviour

    monkeypatch.setattr(transfer, "copy_url", copy_url)
    return calls


def _checkpoint(ctx: WorkerContext, job_id: str, asset_id: str) -> None:
    cp = Checkpoint(bucket="bkt", key="k", upload_id="up-1", part_size=5 << 20)
    ctx.checkpoints.save(f"{job_id}:{asset_id}", cp)


def _aborted(ctx: WorkerContext) -> list[str]:
    return list(ctx.backend_for(SimpleNamespace(bucket="bkt")).client.aborted)  # type: ignore[arg-type]


def test_a_slice_that_handed_on_sends_its_continuation_and_is_not_a_crash(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _copy_does(monkeypatch, CopyPaused(bytes_done=10, bytes_total=30, bytes_uploaded=10))
    job_id, aid = _job(ctx)
    queue = Queue()
    for _ in range(5):  # more slices than max_attempts: a clean hand-on is no attempt
        run_asset(ctx, job_id, aid, queue)
    assert queue.sent == [(INGEST_ASSET, [job_id, aid], 0.0)] * 5
    assert calls[0]["slice_seconds"] == 10.0
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.state == AssetState.COPYING and rec.bytes_done == 10


def test_a_source_sealed_with_another_key_fails_at_once_with_a_clear_code(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = _copy_does(monkeypatch, SourceTruncated("never reached"))
    ctx.sealer = SourceSealer(KEY_B)
    job_id, aid = _job(ctx, sealer=SourceSealer(KEY_A))
    step = process_asset(ctx, job_id, aid)
    assert step.action is Action.DONE and step.finalize and calls == []
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.error is not None
    assert rec.error.code == "source_unreadable" and "GENBLAZE_SOURCE_KEY" in rec.error.message


def test_an_unexpected_exception_fails_the_asset_once_with_a_traceback(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _copy_does(monkeypatch, KeyError("bug"))
    job_id, aid = _job(ctx)
    _checkpoint(ctx, job_id, aid)
    step = process_asset(ctx, job_id, aid)
    assert step.action is Action.DONE and step.finalize
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.state == AssetState.FAILED
    assert rec.error is not None and rec.error.code == "internal_error"
    assert sum(r.exc_info is not None for r in caplog.records) == 1
    assert _aborted(ctx) == ["up-1"]  # failed for good: the upload goes too
    assert not ctx.redis.exists(keys.lease_key(job_id, aid))  # no lease left behind


def test_retries_running_out_abort_the_kept_upload(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_does(monkeypatch, SourceTruncated("body ended at 20 of 36 MiB"))
    job_id, aid = _job(ctx)
    _checkpoint(ctx, job_id, aid)
    assert process_asset(ctx, job_id, aid).action is Action.RETRY  # upload kept for it
    assert _aborted(ctx) == []
    step = process_asset(ctx, job_id, aid)  # max_retries=1: that was the last
    assert step.action is Action.DONE
    assert ctx.store.get_asset(job_id, aid).error.code == "source_truncated"  # type: ignore[union-attr]
    assert _aborted(ctx) == ["up-1"] and ctx.checkpoints.load(f"{job_id}:{aid}") is None


def test_a_slice_that_finds_its_job_canceled_aborts_the_upload(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_does(monkeypatch, CopyPaused(bytes_done=10, bytes_total=30, bytes_uploaded=10))
    job_id, aid = _job(ctx)
    queue = Queue()
    run_asset(ctx, job_id, aid, queue)
    _checkpoint(ctx, job_id, aid)
    ctx.store.request_cancel(job_id)
    run_asset(ctx, job_id, aid, queue)
    rec = ctx.store.get_asset(job_id, aid)
    assert rec is not None and rec.state == AssetState.CANCELED
    assert _aborted(ctx) == ["up-1"]


def test_finalize_has_one_holder_and_does_nothing_until_every_asset_is_terminal(
    ctx: WorkerContext,
) -> None:
    job_id, _aid = _job(ctx)
    queue = Queue()
    run_finalize(ctx, job_id, queue, backend_for=lambda d: None)
    assert queue.sent == [] and ctx.store.job_state(job_id) == JobState.QUEUED
    held = finalize_lease(ctx.redis, job_id, 5000)
    assert held.acquire()
    try:
        run_finalize(ctx, job_id, queue, backend_for=lambda d: None)
        ((name, args, countdown),) = queue.sent
        assert (name, args) == (FINALIZE_JOB, [job_id]) and 0 < countdown <= 6
    finally:
        held.release()


def test_the_sweeper_re_enqueues_an_unleased_asset_once_even_with_two_sweepers(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_does(monkeypatch, CopyPaused(bytes_done=10, bytes_total=30, bytes_uploaded=10))
    job_id, aid = _job(ctx)
    run_asset(ctx, job_id, aid, Queue())  # started: now in flight; its message "lost"
    queue = Queue()
    start = threading.Barrier(2)
    reports: list[Any] = []

    def sweeper() -> None:
        start.wait()
        reports.append(sweep_once(ctx.deliveries, ctx.store, queue, grace=0.0))

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.ran for r in reports) == [False, True]
    assert queue.sent == [(INGEST_ASSET, [job_id, aid], 0.0)]
    assert ctx.store.stats().get("swept_assets_total") == 1
    # Idempotent: the next interval's sweep leaves a just-swept asset alone for `grace`.
    ctx.redis.delete(keys.sweeper_lock_key())
    assert sweep_once(ctx.deliveries, ctx.store, queue, grace=60.0).assets == 0


def test_the_sweeper_leaves_leased_and_terminal_assets_alone(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_does(monkeypatch, CopyPaused(bytes_done=10, bytes_total=30, bytes_uploaded=10))
    job_id, aid = _job(ctx)
    run_asset(ctx, job_id, aid, Queue())
    lease = AssetLease(ctx.redis, job_id, aid, 5000)
    assert lease.acquire()
    queue = Queue()
    try:
        assert sweep_once(ctx.deliveries, ctx.store, queue, grace=0.0).assets == 0
    finally:
        lease.release()
    ctx.store.finish_asset(job_id, aid, AssetState.STORED, key="k", sha256="a" * 64, size=1)
    ctx.redis.delete(keys.sweeper_lock_key())
    assert sweep_once(ctx.deliveries, ctx.store, queue, grace=0.0).assets == 0
    assert queue.sent == [] and not ctx.redis.zcard(keys.inflight_key())


def test_the_sweeper_sends_finalize_for_a_job_whose_finalize_was_lost(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_does(monkeypatch, SourceTruncated("x"))
    ctx.max_retries = 0
    job_id, aid = _job(ctx)
    # It fails for good; the delivery dies as its in-place finalize starts (the job was
    # noted finalize-due in the round trip that took the finalize lease).
    import genblaze_s3.ingest.worker.deliveries as deliveries

    class Died(BaseException):
        pass

    def die(*a: Any, **kw: Any) -> None:
        raise Died

    monkeypatch.setattr(deliveries, "finalize_job", die)
    with pytest.raises(Died):
        run_asset(ctx, job_id, aid, Queue())
    monkeypatch.undo()
    queue = Queue()
    report = sweep_once(ctx.deliveries, ctx.store, queue, grace=0.0)
    assert report.jobs == 1 and queue.sent == [(FINALIZE_JOB, [job_id], 0.0)]
    run_finalize(ctx, job_id, Queue(), backend_for=lambda d: None)
    assert ctx.store.job_state(job_id) == JobState.FAILED
    assert not ctx.redis.zcard(keys.finalize_due_key())
