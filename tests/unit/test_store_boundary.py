"""One store boundary: every Redis outage a worker meets is one StoreUnavailableError,
and it hands the delivery back (never an asset failure or a manifest retry)."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
import redis

from genblaze_s3.ingest.errors import StoreUnavailableError
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.delivery_state import DeliveryState
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.worker import deliveries
from genblaze_s3.ingest.worker.asset_copy import STORE_DOWN, WorkerContext
from genblaze_s3.transfer.errors import CheckpointStoreUnavailable

# Nothing listens here: every command fails with redis.ConnectionError at once.
DOWN_URL = "redis://127.0.0.1:1/0"


def _down() -> redis.Redis:
    return redis.Redis.from_url(DOWN_URL, socket_connect_timeout=0.2, socket_timeout=0.2)


def test_every_worker_store_object_raises_the_one_error() -> None:
    state = DeliveryState(_down(), retention_seconds=60)
    calls: list[Any] = [
        lambda: state.asset_lease("j", "a", 5000).take(60, inflight=("k", "j a", 0.0)),
        lambda: state.finalize_lease("j", 5000).acquire(),
        lambda: state.finalize_lease("j", 5000).take(due_at=0.0),
        lambda: state.finalize_lease("j", 5000).end(forget_retries=True),
        lambda: state.finalize_lease("j", 5000).remaining_ms(),
        lambda: state.count_retry("k", 3),
        lambda: state.note_waiting("j", "a", 0.0),
        lambda: state.forget_inflight("j", "a"),
        lambda: state.take_sweep_turn(1.0),
        lambda: state.due("k", 0.0, 10),
        lambda: state.checkpoints.load("j:a"),
        lambda: state.checkpoints.clear("j:a"),
        lambda: StatusStore(_down()).job_state("j"),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailableError) as info:
            call()
        assert isinstance(info.value.__cause__, redis.RedisError)


def test_the_one_rule_is_the_store_error_and_the_copy_engine_lets_it_through() -> None:
    assert STORE_DOWN is StoreUnavailableError
    # The copy engine passes a checkpoint-store outage through untouched (not a
    # retryable storage failure): the delivery is handed back, the upload kept.
    assert issubclass(StoreUnavailableError, CheckpointStoreUnavailable)


def test_a_store_outage_inside_finalize_hands_the_message_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: a StoreUnavailableError from finalize_job took the manifest-retry path
    (counted as a failed manifest write, resent with backoff)."""
    client = fakeredis.FakeRedis()
    ctx = WorkerContext(
        redis=client, store=StatusStore(client), backend_for=lambda d: None, policy=None
    )  # type: ignore[arg-type]

    def finalize_job(*a: Any, **k: Any) -> None:
        raise StoreUnavailableError("status store unavailable (ConnectionError)")

    monkeypatch.setattr(deliveries, "finalize_job", finalize_job)
    sent: list[Any] = []
    with pytest.raises(StoreUnavailableError):
        deliveries.run_finalize(ctx, "job-1", lambda *m: sent.append(m), backend_for=lambda d: None)
    assert sent == []  # no FINALIZE_JOB retry was sent: the message goes back instead
    assert client.get(keys.finalize_retries_key("job-1")) is None  # nothing counted
