"""A message lost before any worker took it delays its job, never strands it (issue 21, 8).

The real brokers (Redis list deleted, RabbitMQ queue purged) are in
tests/integration/test_lost_messages.py; here the rules of the sweep, on fakeredis.
"""

from __future__ import annotations

import time
from typing import Any

import fakeredis
import pytest

from genblaze_s3.ingest.models import AssetState, JobState
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.delivery_state import DeliveryState
from genblaze_s3.ingest.store.leases import AssetLease
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import INGEST_ASSET, INGEST_ASSETS
from genblaze_s3.ingest.worker.sweeper import sweep_once
from tests.unit.ingest_fixtures import make_submission

GRACE = 60.0


class Queue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any], float]] = []

    def __call__(self, name: str, args: list[Any], countdown: float) -> None:
        self.sent.append((name, args, countdown))

    def assets(self) -> list[str]:
        out: list[str] = []
        for name, args, _ in self.sent:
            out += [args[1]] if name == INGEST_ASSET else list(args[1])
        return out


@pytest.fixture
def store() -> StatusStore:
    return StatusStore(fakeredis.FakeRedis())


def _job(store: StatusStore, n: int) -> tuple[str, list[str]]:
    sub = make_submission(n)
    store.create_job(sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload)
    return sub.meta.job_id, sub.meta.asset_ids


def _sweep(store: StatusStore, queue: Queue, at: float) -> int:
    store.redis.delete(keys.sweeper_lock_key())  # a new interval
    deliveries = DeliveryState(store.redis, retention_seconds=store.retention)
    return sweep_once(deliveries, store, queue, grace=GRACE, now=at).assets


def test_queued_assets_whose_message_was_lost_are_resent_after_grace_then_backing_off(
    store: StatusStore,
) -> None:
    submitted = time.time()
    job_id, ids = _job(store, 100)
    queue = Queue()
    assert _sweep(store, queue, submitted + GRACE / 2) == 0  # not yet: it may be on its way
    assert _sweep(store, queue, submitted + GRACE + 1) == 100
    assert sorted(queue.assets()) == sorted(ids)
    assert {name for name, _, _ in queue.sent} == {INGEST_ASSETS}  # chunks as at submit
    assert len(queue.sent) == 25  # plan_chunks: 100 assets, 4 per message
    # idempotent: the next sweeps within the grace resend nothing
    assert _sweep(store, queue, submitted + GRACE + 2) == 0
    # still queued: once more, but backing off (2 x grace later, then 4 x ...): a backlog
    # that is only slow gets a few duplicates, not one per grace
    assert _sweep(store, queue, submitted + 2 * GRACE + 2) == 0
    assert _sweep(store, queue, submitted + 3 * GRACE + 2) == 100
    assert _sweep(store, queue, submitted + 6 * GRACE + 2) == 0
    assert _sweep(store, queue, submitted + 7 * GRACE + 3) == 100
    assert store.stats().get("swept_assets_total") == 300


def test_started_leased_and_finished_assets_are_not_resent(store: StatusStore) -> None:
    submitted = time.time()
    job_id, (started, leased, queued) = _job(store, 3)
    store.start_asset(job_id, started, worker="w:1")
    lease = AssetLease(store.redis, job_id, leased, 5000)
    assert lease.acquire()
    queue = Queue()
    try:
        assert _sweep(store, queue, submitted + GRACE + 1) == 1
    finally:
        lease.release()
    assert queue.sent == [(INGEST_ASSET, [job_id, queued], 0.0)]
    for aid in (leased, queued):
        store.start_asset(job_id, aid, worker="w:1")
    assert _sweep(store, queue, submitted + 3 * GRACE + 2) == 0
    assert not store.redis.zscore(keys.queued_jobs_key(), job_id)  # nothing queued: it left
    assert not store.redis.hget(keys.queued_resends_key(), job_id)


def test_a_canceled_job_leaves_the_queued_set_and_a_retry_comes_back(store: StatusStore) -> None:
    submitted = time.time()
    job_id, (aid,) = _job(store, 1)
    assert store.request_cancel(job_id) == JobState.CANCELED
    queue = Queue()
    assert _sweep(store, queue, submitted + GRACE + 1) == 0
    assert store.redis.zscore(keys.queued_jobs_key(), job_id) is None
    store.finish_asset(job_id, aid, AssetState.CANCELED)
    assert store.reopen_job(job_id) == JobState.CANCELED
    assert store.reopen_asset(job_id, aid)
    assert _sweep(store, queue, time.time() + GRACE + 1) == 1  # the retry's message, lost too
