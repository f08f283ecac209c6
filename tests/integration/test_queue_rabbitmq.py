"""The same run end to end with RabbitMQ as the broker (Redis stays the status store)."""

from __future__ import annotations

import os

import pytest
from genblaze_core.mocks import MockProvider
from genblaze_core.models.asset import Asset
from genblaze_core.pipeline import Pipeline
from genblaze_core.storage.sink import ObjectStorageSink

from genblaze_s3.ingest import JobState, QueuedStorageSink
from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import backend_for, policy_for, sha
from tests.support.workers import AMQP_URL, QueueStack, StartStack


@pytest.fixture(scope="module")
def rabbit_stack(start_rabbit_stack: StartStack) -> QueueStack:
    """API + two workers on RabbitMQ, on a queue of their own."""
    return start_rabbit_stack(queue_prefix="genblaze-test", n_workers=2)


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
