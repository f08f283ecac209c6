"""Module-scoped real services for queue integration tests: Redis, workers, API, CDN."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from genblaze_s3 import S3StorageBackend
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.local.services import EmbeddedRedis, SeaweedS3, start_redis
from tests.support.cdn import CDNServer
from tests.support.workers import QueueStack, start_stack


@pytest.fixture(scope="module")
def queue_redis() -> Iterator[EmbeddedRedis]:
    """A private Redis per module: workers keep connections across tests, so no flushes."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(
    queue_redis: EmbeddedRedis, seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QueueStack]:
    s = start_stack(
        redis_url=queue_redis.url, seaweed=seaweed, log_dir=tmp_path_factory.mktemp("queue-logs")
    )
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def cdn() -> Iterator[CDNServer]:
    with CDNServer() as server:
        yield server


def backend_for(seaweed: SeaweedS3, bucket: str) -> S3StorageBackend:
    return S3StorageBackend(
        bucket,
        endpoint_url=seaweed.endpoint_url,
        region="us-east-1",
        access_key_id=seaweed.access_key,
        secret_access_key=seaweed.secret_key,
        preflight=False,
    )


def policy_for(seaweed: SeaweedS3) -> DestinationPolicy:
    return DestinationPolicy.from_env({"GENBLAZE_ALLOWED_ENDPOINTS": seaweed.endpoint_url})


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def no_multipart_uploads(s3: Any, bucket: str) -> bool:
    return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def wait_for(pred: Any, timeout: float = 30, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise TimeoutError("condition not met")
