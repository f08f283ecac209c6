"""StatusStore behaviour, run against fakeredis and a real Redis (same tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fakeredis
import pytest
import redis

from genblaze_s3.ingest.models import AssetState, ErrorInfo, JobState, ManifestInfo
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.worker.progress import ProgressThrottle
from tests.unit.ingest_fixtures import make_submission


@pytest.fixture(params=["fakeredis", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[StatusStore]:
    if request.param == "fakeredis":
        client = fakeredis.FakeRedis()
    else:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield StatusStore(client, retention_seconds=3600)
    client.close()


def _sealed(sub: Any) -> dict[str, str]:
    return sub.sealed_sources(SourceSealer(None))


def _create(store: StatusStore, n: int = 3) -> str:
    sub = make_submission(n)
    job_id, created = store.create_job(
        sub.meta, sub.assets, sub.sealed_sources(SourceSealer(None)), sub.payload
    )
    assert created
    return job_id


def test_new_job_is_queued_with_redacted_sources(store: StatusStore) -> None:
    job_id = _create(store)
    view = store.get_job(job_id)
    assert view is not None and view.state == JobState.QUEUED
    assert view.progress.assets_total == 3 and view.progress.assets_done == 0
    assert all("SECRET" not in a.source_url for a in view.assets)
    assert "SECRET" not in view.model_dump_json()


def test_every_key_has_the_retention_ttl(store: StatusStore) -> None:
    job_id = _create(store)
    names = store.redis.keys(f"{keys.NAMESPACE}:job:{job_id}*")
    assert len(names) >= 5
    for name in names:
        assert 0 < store.redis.ttl(name) <= 3600


def test_idempotency_key_returns_the_first_job(store: StatusStore) -> None:
    a, b = make_submission(), make_submission()
    first, c1 = store.create_job(a.meta, a.assets, _sealed(a), a.payload, idempotency_key="k1")
    second, c2 = store.create_job(b.meta, b.assets, _sealed(b), b.payload, idempotency_key="k1")
    assert (c1, c2) == (True, False) and first == second
    assert store.get_meta(b.meta.job_id) is None


def test_asset_lifecycle_updates_progress_and_remaining(store: StatusStore) -> None:
    job_id = _create(store, 2)
    a1, a2 = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    assert store.start_asset(job_id, a1)
    assert store.job_state(job_id) == JobState.RUNNING
    store.record_progress(job_id, a1, 50, 100)
    view = store.get_job(job_id)
    assert view is not None and view.progress.bytes_done == 50
    assert (
        store.finish_asset(job_id, a1, AssetState.STORED, key="k", url="u", sha256="s", size=100)
        == 1
    )
    assert (
        store.finish_asset(job_id, a2, AssetState.FAILED, error=ErrorInfo(code="source_not_found"))
        == 0
    )
    view = store.get_job(job_id)
    assert view is not None
    states = {a.asset_id: a for a in view.assets}
    assert states[a1].state == AssetState.STORED and states[a1].key == "k"
    assert states[a2].error is not None and states[a2].error.code == "source_not_found"
    assert view.progress.assets_done == 2


def test_terminal_asset_is_never_rewritten(store: StatusStore) -> None:
    job_id = _create(store, 1)
    (a,) = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    store.finish_asset(job_id, a, AssetState.STORED, key="k1", url="u", sha256="s", size=1)
    assert store.finish_asset(job_id, a, AssetState.FAILED, error=ErrorInfo(code="x")) == 0
    assert not store.start_asset(job_id, a)
    rec = store.get_asset(job_id, a)
    assert rec is not None and rec.state == AssetState.STORED and rec.error is None


def test_job_transitions_are_checked(store: StatusStore) -> None:
    job_id = _create(store)
    assert store.transition_job(job_id, JobState.FINALIZING)
    assert store.request_cancel(job_id) == JobState.FINALIZING  # too late to cancel
    assert store.transition_job(job_id, JobState.SUCCEEDED, manifest=ManifestInfo(key="m"))
    assert not store.transition_job(job_id, JobState.FAILED)
    view = store.get_job(job_id)
    assert view is not None and view.state == JobState.SUCCEEDED and view.manifest.key == "m"


def test_cancel_a_queued_job(store: StatusStore) -> None:
    job_id = _create(store)
    assert store.request_cancel(job_id) == JobState.CANCELED
    view = store.get_job(job_id)
    assert view is not None and view.error is not None and view.error.code == "canceled"


def test_stats_count_bytes_and_states(store: StatusStore) -> None:
    job_id = _create(store, 1)
    (a,) = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    store.finish_asset(job_id, a, AssetState.STORED, key="k", url="u", sha256="s", size=123)
    stats = store.stats()
    assert stats["bytes_ingested"] == 123 and stats["jobs_submitted"] == 1


def test_progress_throttle_limits_writes() -> None:
    now = [0.0]
    t = ProgressThrottle(0.5, clock=lambda: now[0])
    assert not t.ready()  # a copy shorter than one interval writes no progress
    now[0] = 0.6
    assert t.ready()
    now[0] = 0.8
    assert not t.ready()
    assert t.ready(final=True)
    now[0] = 1.4
    assert t.ready()


def test_fast_document_equals_the_pydantic_view(store: StatusStore) -> None:
    import json

    job_id = _create(store, 3)
    a1, a2, _ = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    store.start_asset(job_id, a1, worker="h:1")
    store.record_progress(job_id, a1, 10, 100)
    store.finish_asset(job_id, a2, AssetState.FAILED, error=ErrorInfo(code="source_expired"))
    store.transition_job(job_id, JobState.FAILED, error=ErrorInfo(code="assets_failed"))
    view = store.get_job(job_id)
    doc = store.get_job_document(job_id)
    assert view is not None and doc is not None
    assert json.loads(doc) == json.loads(view.model_dump_json())
    assert store.get_job_document("nope") is None


@contextmanager
def _pipelines(store: StatusStore) -> Iterator[list[object]]:
    """The pipelines the store makes inside the block (each is one round trip)."""
    sent: list[object] = []
    real = store.redis.pipeline

    def counting_pipeline(*args: object, **kw: object) -> object:
        p = real(*args, **kw)  # type: ignore[arg-type]
        sent.append(p)
        return p

    store.redis.pipeline = counting_pipeline  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        store.redis.pipeline = real  # type: ignore[method-assign]


def test_a_worker_that_read_the_record_writes_it_in_one_round_trip(store: StatusStore) -> None:
    """The hot path: snapshot, start and finish are one round trip each, counters included."""
    job_id = _create(store, 1)
    (a,) = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    store.snapshot(job_id, a)
    with _pipelines(store) as sent:
        assert store.start_asset(job_id, a, job_state=JobState.RUNNING)
        left = store.finish_asset(
            job_id, a, AssetState.STORED, key="k", url="u", sha256="s", size=7, copy_seconds=1e-5
        )
    assert left == 0 and len(sent) == 2  # no WATCH transaction was needed
    rec = store.get_asset(job_id, a)
    assert rec is not None and rec.state == AssetState.STORED and rec.size == 7
    stats = store.stats()
    assert stats["assets_stored"] == 1 and stats["bytes_ingested"] == 7
    assert stats["copy_count"] == 1 and stats["copy_seconds_sum"] == pytest.approx(1e-5, abs=1e-6)


def test_a_stale_view_never_overwrites_what_another_worker_wrote(store: StatusStore) -> None:
    job_id = _create(store, 1)
    (a,) = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    mine = StatusStore(store.redis, retention_seconds=3600)
    mine.snapshot(job_id, a)  # this worker's view: queued
    store.finish_asset(job_id, a, AssetState.FAILED, error=ErrorInfo(code="source_expired"))
    assert not mine.start_asset(job_id, a)
    assert mine.finish_asset(job_id, a, AssetState.STORED, key="k", url="u", size=1) == 0
    rec = store.get_asset(job_id, a)
    assert rec is not None and rec.state == AssetState.FAILED and rec.key is None
    assert "assets_stored" not in store.stats()


def test_float_counters_add_up_on_both_write_paths(store: StatusStore) -> None:
    """copy_seconds_sum is a float counter: a whole-number duration on the WATCH path
    must not be sent as an integer increment onto a field that already holds 1.5."""
    job_id = _create(store, 2)
    a, b = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    store.snapshot(job_id, a)  # fast path for a
    store.finish_asset(job_id, a, AssetState.STORED, key="k", url="u", size=1, copy_seconds=1.5)
    store.finish_asset(job_id, b, AssetState.STORED, key="k2", url="u", size=1, copy_seconds=2.0)
    stats = store.stats()
    assert stats["copy_seconds_sum"] == pytest.approx(3.5) and stats["copy_count"] == 2


def test_an_unreachable_store_raises_its_own_error() -> None:
    """Callers see StoreUnavailableError (the redis error as its cause), never redis-py's."""
    from genblaze_s3.ingest.errors import StoreUnavailableError

    dead = StatusStore(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    for call in (lambda: dead.get_job("j"), lambda: dead.job_state("j"), dead.stats):
        with pytest.raises(StoreUnavailableError) as info:
            call()
        assert isinstance(info.value.__cause__, redis.ConnectionError)
        assert info.value.code == "store_unavailable"


def _job_view(store: StatusStore, job_id: str, tenant: str) -> dict[str, Any]:
    """What a job's move to running leaves behind, minus its times."""
    h = {k.decode(): v.decode() for k, v in store.redis.hgetall(keys.job_key(job_id)).items()}
    return {
        "state": h["state"],
        "version": h["version"],
        "running": store.redis.zscore(keys.tenant_jobs_key(tenant, "running"), job_id)
        == float(h["created_ts"]),
        "queued": store.redis.zscore(keys.tenant_jobs_key(tenant, "queued"), job_id),
        "ttl": store.redis.ttl(keys.tenant_jobs_key(tenant, "running")) > 3600,
    }


def test_a_start_moves_its_queued_job_in_its_own_round_trip(store: StatusStore) -> None:
    """With the tenant, the move rides the start's pipeline (job_start.py) and leaves
    what `transition_job` leaves: state, version, listings, the counter, the event."""
    by_script, by_txn = _create(store, 1), _create(store, 1)
    tenant = store.get_meta(by_script).tenant  # type: ignore[union-attr]
    pubsub = store.redis.pubsub()
    pubsub.subscribe(keys.events_channel(by_script))
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"  # type: ignore[index]
    (a,) = store.get_meta(by_script).asset_ids  # type: ignore[union-attr]
    store.snapshot(by_script, a)
    with _pipelines(store) as sent:
        assert store.start_asset(by_script, a, job_state=JobState.QUEUED, tenant=tenant)
    assert len(sent) == 1  # the start and the move: one round trip, no WATCH
    assert store.stats()["jobs_running"] == 1
    (b,) = store.get_meta(by_txn).asset_ids  # type: ignore[union-attr]
    store.snapshot(by_txn, b)
    assert store.start_asset(by_txn, b, job_state=JobState.QUEUED)  # transition_job
    script, txn = _job_view(store, by_script, tenant), _job_view(store, by_txn, tenant)
    assert script == txn and store.stats()["jobs_running"] == 2
    assert script["state"] == "running" and script["queued"] is None and script["running"]
    first = pubsub.get_message(timeout=1)  # the asset's start, then the job's move
    assert first is not None and first["data"].startswith(b"1 {")
    event = pubsub.get_message(timeout=1)
    assert (
        event is not None
        and event["data"] == f'{script["version"]} {{"job_state":"running"}}'.encode()
    )
    pubsub.close()


def test_a_start_that_did_not_land_leaves_its_job_queued(store: StatusStore) -> None:
    job_id = _create(store, 1)
    tenant = store.get_meta(job_id).tenant  # type: ignore[union-attr]
    (a,) = store.get_meta(job_id).asset_ids  # type: ignore[union-attr]
    mine = StatusStore(store.redis, retention_seconds=3600)
    mine.snapshot(job_id, a)
    store.finish_asset(job_id, a, AssetState.CANCELED, error=ErrorInfo(code="canceled"))
    assert not mine.start_asset(job_id, a, job_state=JobState.QUEUED, tenant=tenant)
    assert store.job_state(job_id) == JobState.QUEUED


def test_assets_starting_together_move_their_job_once(store: StatusStore) -> None:
    """A chunk's threads all saw the job queued: one move, one counter, one event."""
    import threading

    job_id = _create(store, 4)
    meta = store.get_meta(job_id)
    assert meta is not None
    for a in meta.asset_ids:
        store.snapshot(job_id, a)
    go = threading.Barrier(4)
    results: list[bool] = []

    def start(a: str) -> None:
        go.wait()
        results.append(store.start_asset(job_id, a, job_state=JobState.QUEUED, tenant=meta.tenant))

    threads = [threading.Thread(target=start, args=(a,)) for a in meta.asset_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4
    assert store.job_state(job_id) == JobState.RUNNING
    assert store.stats()["jobs_running"] == 1
