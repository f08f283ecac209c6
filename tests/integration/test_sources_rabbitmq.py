"""Not-ready waits and source refresh with RabbitMQ as the broker (delayed messages there too)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from genblaze_core.mocks import MockProvider
from genblaze_core.models.asset import Asset
from genblaze_core.models.manifest import parse_manifest
from genblaze_core.pipeline import Pipeline

from genblaze_s3.ingest import JobState, QueuedStorageSink
from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import backend_for, policy_for, sha
from tests.support.workers import AMQP_URL, QueueStack, StartStack


@pytest.fixture(scope="module")
def rabbit_stack(start_rabbit_stack: StartStack) -> QueueStack:
    """API + one worker on RabbitMQ, on a queue and a node name of their own: RabbitMQ is
    shared, and a second `w0@host` would collide on Celery's exclusive pidbox queue."""
    return start_rabbit_stack(queue_prefix="genblaze-src", node_prefix="src", n_workers=1)


def test_waiting_and_refreshed_sources_through_rabbitmq(
    rabbit_stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str, s3_client: Any
) -> None:
    late, gated = os.urandom(4000), os.urandom(5000)
    cdn.add("/rmq-late.png", late, content_type="image/png")
    cdn.add("/rmq-gated.png", gated, content_type="image/png")
    urls = [
        cdn.url("/rmq-late.png", mode="flaky5xx", n=2, status=503, retry_after=1),
        cdn.url("/rmq-gated.png", mode="gated"),
    ]
    sink = QueuedStorageSink(
        backend_for(seaweed, bucket),
        redis_url=rabbit_stack.redis_url,
        broker_url=AMQP_URL,
        queue=rabbit_stack.queue,
        destination_policy=policy_for(seaweed),
        source_refresher="tests.support.refresher:fresh_cdn_url",
    )
    provider = MockProvider(
        assets=lambda step: [Asset(url=u, media_type="image/png") for u in urls]
    )
    Pipeline("rmq-src").step(provider, model="m", prompt="p").run(sink=sink, raise_on_failure=True)
    assert sink.last_job is not None
    final = sink.last_job.wait(timeout=90)
    sink.close()
    assert final.state == JobState.SUCCEEDED, final.model_dump_json()
    raw = s3_client.get_object(Bucket=bucket, Key=final.manifest.key)["Body"].read()
    manifest = parse_manifest(json.loads(raw))
    assert manifest.verify()
    fetch = {a.sha256: a.metadata["fetch"] for a in manifest.run.steps[0].assets}
    assert fetch[sha(late)]["attempts"] == 1 and fetch[sha(late)]["refreshes"] == 0
    assert fetch[sha(gated)]["refreshes"] == 1
    assert len([r for r in cdn.requests if r.path == "/rmq-late.png"]) == 3
