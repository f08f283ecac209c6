"""A pipeline process without the workers' tenants config fails at write_run, naming
the setting, instead of enqueuing jobs every worker then fails (issue 21, item 6)."""

from __future__ import annotations

import os

import pytest
import redis
from genblaze_core.exceptions import SinkError
from genblaze_core.mocks import MockProvider
from genblaze_core.models.asset import Asset
from genblaze_core.pipeline import Pipeline

from genblaze_s3.ingest import JobState, QueuedStorageSink
from genblaze_s3.ingest.errors import TenantsConfigMismatchError
from genblaze_s3.ingest.store import keys
from genblaze_s3.ingest.tenants import TenantRegistry
from genblaze_s3.local.services import SeaweedS3
from tests.support.cdn import CDNServer
from tests.support.helpers import backend_for, policy_for, wait_for
from tests.support.workers import QueueStack


def _run(stack: QueueStack, seaweed: SeaweedS3, bucket: str, url: str, tenants: TenantRegistry):
    sink = QueuedStorageSink(
        backend_for(seaweed, bucket),
        redis_url=stack.redis_url,
        broker_url=stack.broker_url,
        queue=stack.queue,
        destination_policy=policy_for(seaweed),
        tenant="acme",
        tenants=tenants,
    )
    provider = MockProvider(assets=lambda step: [Asset(url=url, media_type="image/png")])
    Pipeline("mismatch").step(provider, model="mock", prompt="p").run(
        sink=sink, raise_on_failure=True
    )
    return sink


def test_a_sink_without_the_workers_tenants_config_fails_at_write_run(
    stack: QueueStack, seaweed: SeaweedS3, cdn: CDNServer, bucket: str
) -> None:
    client = redis.Redis.from_url(stack.redis_url)
    wait_for(lambda: bool(client.hlen(keys.placement_seen_key())), timeout=30)  # workers said
    url = cdn.add("/mismatch.png", os.urandom(5000), content_type="image/png")
    with pytest.raises(SinkError) as info:
        _run(stack, seaweed, bucket, url, TenantRegistry())  # this process: no tenants config
    assert isinstance(info.value.__cause__, TenantsConfigMismatchError)
    text = str(info.value)
    assert "GENBLAZE_TENANTS_FILE" in text and "'acme'" in text, text
    # the workers' own config: accepted, and the job lands
    sink = _run(
        stack,
        seaweed,
        bucket,
        url,
        TenantRegistry.from_api_tokens(stack.env["GENBLAZE_API_TOKENS"]),
    )
    assert sink.last_job is not None
    assert sink.last_job.wait(timeout=60).state == JobState.SUCCEEDED
