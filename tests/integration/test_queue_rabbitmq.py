"""The same run end to end with RabbitMQ as the broker (Redis stays the status store)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from genblaze_core.mocks import MockProvider
from genblaze_core.models.asset import Asset
from genblaze_core.pipeline import Pipeline
from genblaze_core.storage.sink import ObjectStorageSink

from genblaze_s3.ingest import JobState, QueuedStorageSink
from genblaze_s3.local.services import EmbeddedRedis, SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import backend_for, policy_for, sha
from tests.support.workers import QueueStack, start_stack

AMQP_URL = os.environ.get("GENBLAZE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture(scope="module")
def rabbit_stack(
    module_redis: EmbeddedRedis, seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QueueStack]:
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=2)
    except Exception as exc:  # fail loudly: this row must run, never skip
        pytest.fail(f"RabbitMQ at {AMQP_URL} is unreachable: {exc!r}")
    queue = f"genblaze-test-{uuid.uuid4().hex[:10]}"
    s = start_stack(
        redis_url=module_redis.url,
        seaweed=seaweed,
        broker_url=AMQP_URL,
        queue=queue,
        log_dir=Path(tmp_path_factory.mktemp("rabbit-logs")),
        n_workers=2,
    )
    try:
        yield s
    finally:
        s.stop()
        with Connection(AMQP_URL) as conn:
            conn.default_channel.queue_delete(queue)


def test_three_asset_run_through_rabbitmq(
    rabbit_stack: QueueStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    s3_client: object,
) -> None:
    blobs = [os.urandom(3000 + i) for i in range(3)]
    urls = [cdn.add(f"/rmq-{i}.png", b, content_type="image/png") for i, b in enumerate(blobs)]
    sink = QueuedStorageSink(
        backend_for(seaweed, bucket),
        redis_url=rabbit_stack.redis_url,
        broker_url=AMQP_URL,
        queue=rabbit_stack.queue,
        destination_policy=policy_for(seaweed),
    )
    provider = MockProvider(
        assets=lambda step: [Asset(url=u, media_type="image/png") for u in urls]
    )
    result = (
        Pipeline("rmq")
        .step(provider, model="mock", prompt="p")
        .run(sink=sink, raise_on_failure=True)
    )
    final = sink.last_job.wait(timeout=60)  # type: ignore[union-attr]
    assert final.state == JobState.SUCCEEDED, final.model_dump_json()
    manifest = ObjectStorageSink(backend_for(seaweed, bucket)).read_manifest(result.run)
    assert sorted(a.sha256 for a in manifest.run.steps[0].assets) == sorted(map(sha, blobs))
    import httpx

    health = httpx.get(f"{rabbit_stack.api_url}/healthz").json()
    assert health == {"ok": True, "store": True, "broker": True}
