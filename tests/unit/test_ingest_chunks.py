"""Chunked delivery: many small assets ride few messages; every asset keeps its own fate."""

from __future__ import annotations

from typing import Any

import pytest

from genblaze_s3.ingest.errors import StoreUnavailableError
from genblaze_s3.ingest.submit.enqueue import (
    INGEST_ASSET,
    INGEST_ASSETS,
    MemorySender,
    plan_chunks,
)
from genblaze_s3.ingest.worker.asset_copy import Action, StepResult
from genblaze_s3.settings import load_settings


def _ids(n: int) -> list[str]:
    return [f"a{i}" for i in range(n)]


@pytest.mark.parametrize(
    ("n", "batch_max", "sizes"),
    [
        (0, 16, []),
        (1, 16, [1]),
        (3, 16, [3]),  # a small job: one message
        (6, 16, [4, 2]),  # chunks of 4: each runs its assets at once (chunk_threads)
        (32, 16, [4] * 8),
        (128, 16, [4] * 32),
        (129, 16, [5] * 25 + [4]),  # from here chunks grow: ~32 messages (SPREAD)
        (3, 1, [1, 1, 1]),  # GENBLAZE_BATCH_MAX=1: a message per asset, small jobs too
        (500, 16, [16] * 31 + [4]),
        (5000, 16, [16] * 312 + [8]),  # never more than batch_max per message
        (500, 1, [1] * 500),  # GENBLAZE_BATCH_MAX=1 turns chunking off
    ],
)
def test_plan_chunks_spreads_first_then_grows(n: int, batch_max: int, sizes: list[int]) -> None:
    chunks = plan_chunks(_ids(n), batch_max)
    assert [len(c) for c in chunks] == sizes
    assert [a for c in chunks for a in c] == _ids(n)  # every asset once, in order


def test_a_large_job_is_enqueued_in_chunks() -> None:
    import fakeredis

    from genblaze_s3.ingest.destinations import DestinationPolicy
    from genblaze_s3.ingest.store.status import StatusStore
    from genblaze_s3.ingest.submit.service import IngestService
    from tests.unit.ingest_fixtures import make_submission

    sender = MemorySender()
    policy = DestinationPolicy.from_settings(
        load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:9000"})
    )
    svc = IngestService(StatusStore(fakeredis.FakeRedis()), sender, "q", policy)
    job_id, _ = svc.submit(make_submission(64))
    assert {name for name, _, _ in sender.sent} == {INGEST_ASSETS}
    assert sorted(a for _, (_, chunk), _ in sender.sent for a in chunk) == sorted(
        svc.store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    )


class _Queue:
    """The ``send`` the library side gets: a list of (task, args, countdown)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any], float]] = []

    def __call__(self, name: str, args: list[Any], countdown: float) -> None:
        self.sent.append((name, args, countdown))


@pytest.fixture
def chunk_rig(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, _Queue, dict[str, StepResult]]:
    """run_chunk with a fake step per asset id, a fakeredis store and a list as queue."""
    import fakeredis

    import genblaze_s3.ingest.worker.deliveries as worker
    from genblaze_s3.ingest.destinations import DestinationPolicy
    from genblaze_s3.ingest.store.status import StatusStore
    from genblaze_s3.ingest.worker.asset_copy import WorkerContext

    client = fakeredis.FakeRedis()
    ctx = WorkerContext(
        redis=client,
        store=StatusStore(client),
        backend_for=lambda d: None,
        policy=DestinationPolicy.from_settings(load_settings({})),
    )
    outcomes: dict[str, StepResult] = {}

    def fake_process(ctx: Any, job_id: str, asset_id: str, retries: int | None = None) -> Any:
        return outcomes.get(asset_id, StepResult(Action.DONE))

    monkeypatch.setattr(worker, "process_asset", fake_process)
    finalized: list[str] = []

    def fake_finalize(
        ctx: Any, job_id: str, *a: Any, due_at: float | None = None, **kw: Any
    ) -> None:
        assert due_at is not None  # in place: noted finalize-due with the lease
        finalized.append(job_id)

    monkeypatch.setattr(worker, "run_finalize", fake_finalize)
    ctx.finalized = finalized  # type: ignore[attr-defined]
    return (worker, ctx), _Queue(), outcomes


def test_a_chunk_resends_each_retry_alone_and_finalizes_once(chunk_rig: Any) -> None:
    (worker, ctx), queue, outcomes = chunk_rig
    outcomes["a1"] = StepResult(Action.RETRY, countdown=2.0)
    outcomes["a2"] = StepResult(Action.BUSY, countdown=1.0)
    outcomes["a3"] = StepResult(Action.DONE, finalize=True)
    outcomes["a4"] = StepResult(Action.CONTINUE)
    worker.run_chunk(ctx, "job", ["a0", "a1", "a2", "a3", "a4"], queue, threads=1)
    assert queue.sent == [
        (INGEST_ASSET, ["job", "a1"], 2.0),  # a retry, after its backoff
        (INGEST_ASSET, ["job", "a2"], 1.0),  # a busy lease: when the holder's would end
        (INGEST_ASSET, ["job", "a4"], 0.0),  # the next slice, at once
    ]
    # The last asset's delivery finalizes in place (no message), noted due first.
    assert ctx.finalized == ["job"]


def test_a_chunk_that_ran_long_hands_back_what_it_has_not_started(
    chunk_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (worker, ctx), queue, _ = chunk_rig
    ticks = iter([0.0, 0.1, 0.5])  # start, before a0, before a1 (in budget); then over
    monkeypatch.setattr(worker.time, "monotonic", lambda: next(ticks, 5.0))
    worker.run_chunk(ctx, "job", _ids(7), queue, threads=1)
    assert queue.sent == [
        (INGEST_ASSETS, ["job", ["a2", "a3", "a4"]], 0.0),
        (INGEST_ASSETS, ["job", ["a5", "a6"]], 0.0),
    ]


def test_chunk_threads_copy_every_asset_exactly_once(
    chunk_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    (worker, ctx), queue, _ = chunk_rig
    seen: list[tuple[str, str]] = []

    def record(ctx: Any, job_id: str, asset_id: str, retries: int | None = None) -> StepResult:
        seen.append((asset_id, threading.current_thread().name))
        return StepResult(Action.DONE, finalize=asset_id == "a9")

    monkeypatch.setattr(worker, "process_asset", record)
    worker.run_chunk(ctx, "job", _ids(10), queue, threads=4)
    assert sorted(a for a, _ in seen) == sorted(_ids(10))
    assert queue.sent == [] and ctx.finalized == ["job"]


def test_a_failing_step_hands_back_the_unstarted_assets_then_raises(
    chunk_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (worker, ctx), queue, _ = chunk_rig

    def boom(ctx: Any, job_id: str, asset_id: str, retries: int | None = None) -> StepResult:
        if asset_id == "a1":
            raise ValueError("bug")
        return StepResult(Action.DONE)

    monkeypatch.setattr(worker, "process_asset", boom)
    with pytest.raises(ValueError):
        worker.run_chunk(ctx, "job", _ids(4), queue, threads=1)
    assert queue.sent == [
        (INGEST_ASSETS, ["job", ["a2"]], 0.0),
        (INGEST_ASSETS, ["job", ["a3"]], 0.0),
    ]

    def store_down(ctx: Any, job_id: str, asset_id: str, retries: int | None = None) -> Any:
        raise StoreUnavailableError("down")  # what every store object raises (one boundary)

    queue.sent.clear()
    monkeypatch.setattr(worker, "process_asset", store_down)
    with pytest.raises(StoreUnavailableError):  # the task hands the whole chunk back
        worker.run_chunk(ctx, "job", _ids(4), queue, threads=1)
    assert queue.sent == []


def test_the_task_hands_a_chunk_back_when_the_store_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from celery.exceptions import Reject

    import workers.tasks as tasks

    def down(*a: Any, **k: Any) -> None:
        raise StoreUnavailableError("down")

    monkeypatch.setattr(tasks, "context", lambda: None)
    monkeypatch.setattr(tasks, "run_chunk", down)
    with pytest.raises(Reject):
        tasks.ingest_assets.run("job", _ids(4))


def test_a_redelivered_chunk_runs_one_asset_at_a_time(
    chunk_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It came back because a child died: an asset that crashes must not take its chunk
    mates (running beside it in threads) down with it again."""
    import threading

    (worker, ctx), queue, _ = chunk_rig
    names: set[str] = set()

    def record(ctx: Any, job_id: str, asset_id: str, retries: int | None = None) -> StepResult:
        names.add(threading.current_thread().name)
        return StepResult(Action.DONE)

    monkeypatch.setattr(worker, "process_asset", record)
    worker.run_chunk(ctx, "job", _ids(6), queue, threads=4, redelivered=True)
    assert names == {threading.current_thread().name}
