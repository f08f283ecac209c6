"""QueuedStorageSink in-process: records and enqueues, never downloads, fast."""

from __future__ import annotations

import statistics
import time
from types import SimpleNamespace

import fakeredis
import pytest
from genblaze_core.exceptions import SinkError
from genblaze_core.storage.base import KeyStrategy
from genblaze_core.storage.sink import ObjectStorageSink

from genblaze_s3.ingest import (
    DestinationNotAllowedError,
    JobState,
    JobWaitTimeoutError,
    QueuedStorageSink,
)
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import INGEST_ASSETS, MemorySender
from genblaze_s3.settings import load_settings
from tests.unit.ingest_fixtures import make_manifest

ENDPOINT = "http://127.0.0.1:8333"


class FakeBackend(SimpleNamespace):
    def get_durable_url(self, key: str) -> str:
        return f"{self.endpoint_url}/{self.bucket}/{key}"


def _sink(**kw: object) -> tuple[QueuedStorageSink, MemorySender]:
    sender = MemorySender()
    backend = FakeBackend(
        bucket="media", endpoint_url=kw.pop("endpoint", ENDPOINT), region="us-east-1"
    )
    sink = QueuedStorageSink(
        backend,
        store=StatusStore(fakeredis.FakeRedis()),
        sender=sender,
        destination_policy=DestinationPolicy.from_settings(
            load_settings({"GENBLAZE_ALLOWED_ENDPOINTS": ENDPOINT})
        ),
        **kw,  # type: ignore[arg-type]
    )
    return sink, sender


def test_write_run_records_and_enqueues_without_downloading() -> None:
    sink, sender = _sink(tenant="acme", queue="q1")
    m = make_manifest(["https://cdn.invalid/a.png", "https://cdn.invalid/b.png"])
    sink.write_run(m.run, m)
    job = sink.last_job
    assert job is not None and job.status().state == JobState.QUEUED
    # A run of two: one delivery (a chunk), on the sink's queue.
    assert [(s[0], len(s[1][1])) for s in sender.sent] == [(INGEST_ASSETS, 2)]
    assert sender.sent[0][2] == "q1"
    meta = sink.store.get_meta(job.id)
    assert meta is not None and meta.tenant == "acme" and meta.destination.bucket == "media"
    assert "secret" not in meta.model_dump_json().lower()


def test_manifest_key_matches_object_storage_sink() -> None:
    for strategy in KeyStrategy:
        sink, _ = _sink(key_strategy=strategy, prefix="pfx")
        m = make_manifest(["https://cdn.invalid/a.png"], tenant_id="t1")
        inline = ObjectStorageSink(
            FakeBackend(bucket="media", endpoint_url=ENDPOINT), prefix="pfx", key_strategy=strategy
        )
        assert sink.manifest_key_for(m.run) == inline.manifest_key_for(m.run)
        sink.write_run(m.run, m)
        assert m.manifest_uri == f"{ENDPOINT}/media/{inline.manifest_key_for(m.run)}"


def test_destination_outside_allow_list_fails_at_submit() -> None:
    sink, sender = _sink(endpoint="http://elsewhere.example:9000")
    m = make_manifest(["https://cdn.invalid/a.png"])
    with pytest.raises(SinkError) as info:
        sink.write_run(m.run, m)
    assert isinstance(info.value.__cause__, DestinationNotAllowedError)
    assert sender.sent == [] and sink.last_job is None


def test_wait_times_out_with_a_typed_error() -> None:
    sink, _ = _sink()
    m = make_manifest(["https://cdn.invalid/a.png"])
    sink.write_run(m.run, m)
    with pytest.raises(JobWaitTimeoutError) as info:
        sink.last_job.wait(timeout=0.2, poll_interval=0.05)  # type: ignore[union-attr]
    assert isinstance(info.value, TimeoutError) and info.value.last_state == "queued"


def test_write_run_p50_is_milliseconds() -> None:
    sink, _ = _sink()
    times = []
    for _ in range(30):
        m = make_manifest([f"https://cdn.invalid/{i}.png" for i in range(10)])
        t = time.perf_counter()
        sink.write_run(m.run, m)
        times.append(time.perf_counter() - t)
    assert statistics.median(times) < 0.05


def test_sink_sends_to_the_configured_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """GENBLAZE_QUEUE reaches the sink like every other entry point (workers consume it)."""
    monkeypatch.setenv("GENBLAZE_QUEUE", "ingest-eu")
    sink, sender = _sink()
    m = make_manifest(["https://cdn.invalid/a.png"])
    sink.write_run(m.run, m)
    assert [s[2] for s in sender.sent] == ["ingest-eu"]


def test_a_sink_obeys_the_same_tenant_rules_as_the_api() -> None:
    from datetime import UTC, datetime, timedelta

    from genblaze_core.storage.base import ObjectLockConfig

    from genblaze_s3.ingest.tenants import TenantRegistry

    tenants = TenantRegistry.from_api_tokens("acme:t1,globex:t2")
    sink, sender = _sink(tenant="acme", prefix="shared", tenants=tenants)
    m = make_manifest(["https://cdn.invalid/a.png"])
    sink.write_run(m.run, m)
    meta = sink.store.get_meta(sink.last_job.id)  # type: ignore[union-attr]
    assert meta is not None and meta.destination.prefix == "acme/shared"
    assert sink.manifest_key_for(m.run).startswith("acme/shared/")
    past = ObjectLockConfig(retain_until=datetime.now(UTC) - timedelta(days=1))
    locked, sender = _sink(tenant="acme", tenants=tenants, manifest_lock=past)
    with pytest.raises(SinkError, match="retain_until"):
        locked.write_run(m.run, m)
    open_tenant, _ = _sink(tenant="someone", prefix="globex/x", tenants=tenants)
    with pytest.raises(SinkError) as info:
        open_tenant.write_run(m.run, m)
    assert isinstance(info.value.__cause__, DestinationNotAllowedError)
    assert sender.sent == []


def test_a_sink_keeps_records_as_long_as_the_settings_say(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sink builds its store and service with the API's one wiring
    (IngestService.from_settings): GENBLAZE_RETENTION_SECONDS holds for sink jobs too
    (the sink's store used to keep the 7-day default whatever the setting)."""
    import redis

    monkeypatch.setattr(redis.Redis, "from_url", lambda *a, **k: fakeredis.FakeRedis())
    settings = load_settings(
        {"GENBLAZE_RETENTION_SECONDS": "3600", "GENBLAZE_ALLOWED_ENDPOINTS": ENDPOINT}
    )
    backend = FakeBackend(bucket="media", endpoint_url=ENDPOINT, region="us-east-1")
    sink = QueuedStorageSink(backend, sender=MemorySender(), settings=settings)
    assert sink.store.retention == 3600
