"""A job whose broker messages were lost before any worker took them still succeeds
(issue 21, item 8), with the default sweeper settings, on Redis and on RabbitMQ.

The queue is emptied by hand after submit (Redis: the list key deleted, as a Redis
restarted without persistence would; RabbitMQ: the queue purged), then a worker
starts: only the sweeper can bring the job back, within the bound docs/RELIABILITY.md
states (GENBLAZE_SWEEP_GRACE + GENBLAZE_SWEEP_INTERVAL = 90 s by default).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from genblaze_s3.ingest.models import JobState
from genblaze_s3.local.services import SeaweedS3
from genblaze_s3.settings import Settings
from tests.support.cdn import CDNServer
from tests.support.helpers import no_multipart_uploads, sha, wait_for
from tests.support.invariants import Services, wait_terminal
from tests.support.workers import StartStack

AMQP_URL = os.environ.get("GENBLAZE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
# The documented bound, from the defaults the Procfile runs with.
BOUND = float(
    Settings.model_fields["sweep_grace"].default + Settings.model_fields["sweep_interval"].default
)
DEFAULTS = {"GENBLAZE_LEASE_TTL_MS": "30000"}  # the suite shortens it; not here


def _empty_the_queue(broker: str, broker_url: str, queue: str) -> int:
    """Lose every message of ``queue``; returns how many were lost."""
    if broker == "redis":
        r = redis.Redis.from_url(broker_url)
        n = int(r.llen(queue))
        r.delete(queue)
        return n
    from kombu import Connection

    with Connection(broker_url) as conn:
        return int(conn.default_channel.queue_purge(queue) or 0)


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_job_whose_queue_was_emptied_after_submit_still_succeeds(
    broker: str,
    start_module_stack: StartStack,
    seaweed: SeaweedS3,
    cdn: CDNServer,
    bucket: str,
    s3_client: Any,
    tmp_path: Path,
) -> None:
    queue = f"genblaze-lost-{uuid.uuid4().hex[:8]}"  # unique: RabbitMQ is shared
    stack = start_module_stack(
        redis_url=None,  # its own Redis: the sweeper's sets hold this test's jobs only
        broker_url=AMQP_URL if broker == "rabbitmq" else None,
        queue=queue,
        n_workers=0,
        extra_env=DEFAULTS,
        log_dir=tmp_path,
    )
    try:
        data = os.urandom(300_000)
        url = cdn.add(f"/lost-{broker}.png", data, content_type="image/png")
        submitted = time.monotonic()
        r = httpx.post(
            f"{stack.api_url}/v1/jobs",
            json={
                "assets": [{"url": url, "media_type": "image/png"}],
                "destination": {"bucket": bucket, "endpoint_url": seaweed.endpoint_url},
            },
            headers={"Authorization": f"Bearer {stack.tokens['acme']}"},
            timeout=10,
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert _empty_the_queue(broker, stack.broker_url, queue) == 1
        stack.add_worker("w0")
        svc = Services(redis_url=stack.redis_url, s3=s3_client)
        view = wait_terminal(svc, [job_id], timeout=BOUND + 60)[job_id]
        took = time.monotonic() - submitted
        assert view.state == JobState.SUCCEEDED, view.model_dump_json()
        assert took < BOUND + 15, f"took {took:.0f}s, documented bound {BOUND:.0f}s"
        assert view.assets[0].sha256 == sha(data)
        assert svc.store.stats().get("swept_assets_total") == 1
        wait_for(lambda: no_multipart_uploads(s3_client, bucket), timeout=10)
        print(f"{broker}: lost message, job succeeded {took:.1f}s after submit (bound {BOUND}s)")
    finally:
        if broker == "rabbitmq":
            from kombu import Connection

            with Connection(AMQP_URL) as conn:
                conn.default_channel.queue_delete(queue)
