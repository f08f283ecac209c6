"""Session-wide real services: SeaweedFS (S3) and an embedded Valkey (Redis).

A test that needs a service gets it from here; nothing is skipped because a
service is missing: if it cannot start, the fixture fails loudly.
Every process started here is stopped at session end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from genblaze_s3.local.services import EmbeddedRedis, SeaweedS3, start_redis, start_seaweedfs

# Tests only talk to loopback: let the SSRF guard admit the local CDN server.
os.environ.setdefault("GENBLAZE_ALLOW_PRIVATE_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("GENBLAZE_ALLOW_HTTP", "1")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS `weed mini` for the session, on free loopback ports."""
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_client(seaweed: SeaweedS3) -> Any:
    """A plain boto3 client for assertions (independent of the code under test)."""
    return seaweed.client()


@pytest.fixture
def bucket(seaweed: SeaweedS3) -> Iterator[str]:
    """A fresh, empty bucket per test (names need 3+ chars), dropped afterwards."""
    name = seaweed.create_bucket(f"t-{uuid.uuid4().hex[:12]}")
    yield name
    seaweed.drop_bucket(name)


@pytest.fixture
def locked_bucket(seaweed: SeaweedS3) -> Iterator[str]:
    """A fresh bucket with Object Lock (and so versioning) enabled, dropped afterwards."""
    name = seaweed.create_bucket(f"l-{uuid.uuid4().hex[:12]}", object_lock=True)
    yield name
    seaweed.drop_bucket(name)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """An embedded Valkey for the session: a private server, never the shared one."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    """A flushed Redis database per test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    try:
        yield redis_server.url
    finally:
        client.flushall()
        client.close()
