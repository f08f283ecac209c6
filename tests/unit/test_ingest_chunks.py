"""Chunked delivery: many small assets ride few messages; every asset keeps its own fate."""

from __future__ import annotations

from typing import Any

import pytest

from genblaze_s3.ingest.enqueue import (
    FINALIZE_JOB,
    INGEST_ASSET,
    INGEST_ASSETS,
    MemorySender,
    plan_chunks,
)
from genblaze_s3.ingest.process import Action, StepResult


def _ids(n: int) -> list[str]:
    return [f"a{i}" for i in range(n)]


@pytest.mark.parametrize(
    ("n", "batch_max", "sizes"),
    [
        (0, 16, []),
        (3, 16, [1, 1, 1]),  # small jobs: a message per asset, as before
        (32, 16, [1] * 32),
        (33, 16, [2] * 16 + [1]),
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
    from genblaze_s3.ingest.service import IngestService
    from genblaze_s3.ingest.status import StatusStore
    from tests.unit.ingest_fixtures import make_submission

    sender = MemorySender()
    policy = DestinationPolicy.from_env({"GENBLAZE_ALLOWED_ENDPOINTS": "http://127.0.0.1:9000"})
    svc = IngestService(StatusStore(fakeredis.FakeRedis()), sender, "q", policy)
    job_id, _ = svc.submit(make_submission(64))
    assert {name for name, _, _ in sender.sent} == {INGEST_ASSETS}
    assert sorted(a for _, (_, chunk), _ in sender.sent for a in chunk) == sorted(
        svc.store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    )


@pytest.fixture
def chunk_task(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[Any], dict[str, StepResult]]:
    import workers.tasks as tasks

    sent: list[tuple[str, list[Any], float | None]] = []
    outcomes: dict[str, StepResult] = {}
    monkeypatch.setattr(
        tasks.app,
        "send_task",
        lambda name, args, queue, countdown=None: sent.append((name, args, countdown)),
    )
    monkeypatch.setattr(tasks, "context", lambda: None)

    def fake_process(ctx: Any, job_id: str, asset_id: str, retries: int = 0) -> StepResult:
        return outcomes.get(asset_id, StepResult(Action.DONE))

    monkeypatch.setattr(tasks, "process_asset", fake_process)
    return tasks, sent, outcomes


def test_a_chunk_resends_each_retry_alone_and_finalizes_once(
    chunk_task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks, sent, outcomes = chunk_task
    monkeypatch.setattr(tasks, "CHUNK_THREADS", 1)  # in order: sends compare as a list
    outcomes["a1"] = StepResult(Action.RETRY, countdown=2.0)
    outcomes["a2"] = StepResult(Action.BUSY, countdown=1.0)
    outcomes["a3"] = StepResult(Action.DONE, finalize=True)
    tasks.ingest_assets.run("job", ["a0", "a1", "a2", "a3"])
    assert sent == [
        (INGEST_ASSET, ["job", "a1", 1], 2.0),  # a retry counts an attempt
        (INGEST_ASSET, ["job", "a2", 0], 1.0),  # a busy lease does not
        (FINALIZE_JOB, ["job"], None),
    ]


def test_a_chunk_that_ran_long_hands_back_what_it_has_not_started(
    chunk_task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks, sent, _ = chunk_task
    monkeypatch.setattr(tasks, "CHUNK_THREADS", 1)
    ticks = iter([0.0, 0.1, 0.5])  # start, before a0, before a1 (in budget); then over
    monkeypatch.setattr(tasks.time, "monotonic", lambda: next(ticks, 5.0))
    tasks.ingest_assets.run("job", _ids(7))
    assert sent == [
        (INGEST_ASSETS, ["job", ["a2", "a3", "a4"]], None),
        (INGEST_ASSETS, ["job", ["a5", "a6"]], None),
    ]


def test_chunk_threads_copy_every_asset_exactly_once(
    chunk_task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    tasks, sent, _ = chunk_task
    monkeypatch.setattr(tasks, "CHUNK_THREADS", 4)
    seen: list[tuple[str, str]] = []

    def record(ctx: Any, job_id: str, asset_id: str, retries: int = 0) -> StepResult:
        seen.append((asset_id, threading.current_thread().name))
        return StepResult(Action.DONE, finalize=asset_id == "a9")

    monkeypatch.setattr(tasks, "process_asset", record)
    tasks.ingest_assets.run("job", _ids(10))
    assert sorted(a for a, _ in seen) == sorted(_ids(10))
    assert sent == [(FINALIZE_JOB, ["job"], None)]


def test_a_failing_step_hands_back_the_unstarted_assets_then_raises(
    chunk_task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis
    from celery.exceptions import Reject

    tasks, sent, _ = chunk_task
    monkeypatch.setattr(tasks, "CHUNK_THREADS", 1)

    def boom(ctx: Any, job_id: str, asset_id: str, retries: int = 0) -> StepResult:
        if asset_id == "a1":
            raise ValueError("bug")
        return StepResult(Action.DONE)

    monkeypatch.setattr(tasks, "process_asset", boom)
    with pytest.raises(ValueError):
        tasks.ingest_assets.run("job", _ids(4))
    assert sent == [(INGEST_ASSETS, ["job", ["a2"]], None), (INGEST_ASSETS, ["job", ["a3"]], None)]

    def store_down(ctx: Any, job_id: str, asset_id: str, retries: int = 0) -> StepResult:
        raise redis.ConnectionError("down")

    sent.clear()
    monkeypatch.setattr(tasks, "process_asset", store_down)
    with pytest.raises(Reject):  # the whole chunk goes back to the broker; nothing re-sent
        tasks.ingest_assets.run("job", _ids(4))
    assert sent == []


def test_a_redelivered_chunk_runs_one_asset_at_a_time(
    chunk_task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It came back because a child died: an asset that crashes must not take its chunk
    mates (running beside it in threads) down with it again."""
    import threading

    tasks, _, _ = chunk_task
    monkeypatch.setattr(tasks, "CHUNK_THREADS", 4)
    names: set[str] = set()

    def record(ctx: Any, job_id: str, asset_id: str, retries: int = 0) -> StepResult:
        names.add(threading.current_thread().name)
        return StepResult(Action.DONE)

    monkeypatch.setattr(tasks, "process_asset", record)
    tasks.ingest_assets.push_request(delivery_info={"redelivered": True})
    try:
        tasks.ingest_assets.run("job", _ids(6))
    finally:
        tasks.ingest_assets.pop_request()
    assert names == {threading.current_thread().name}
