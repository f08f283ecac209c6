"""Not-ready waits and source refresh with RabbitMQ as the broker (delayed messages there too)."""

# Fixtures are imported from other modules; pytest injects them by parameter name.
# ruff: noqa: F811

from __future__ import annotations

import json
import os
from typing import Any

from genblaze_core.mocks import MockProvider
from genblaze_core.models.asset import Asset
from genblaze_core.models.manifest import parse_manifest
from genblaze_core.pipeline import Pipeline
from genblaze_s3.embedded import SeaweedS3

from genblaze_s3.ingest import JobState, QueuedStorageSink
from tests.integration.queue_fixtures import (  # noqa: F401 - fixtures
    backend_for,
    cdn,
    policy_for,
    queue_redis,
    sha,
)
from tests.integration.test_queue_rabbitmq import AMQP_URL, rabbit_stack  # noqa: F401
from tests.support.cdn import CDNServer
from tests.support.workers import QueueStack


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
