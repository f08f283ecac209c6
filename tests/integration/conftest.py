"""Fixtures the integration tests share: a private Redis per module, the queue stack, a CDN.

Session-wide services (SeaweedFS, a flushed Redis per test, buckets) are in
tests/conftest.py. Here: what queue tests start per module. Workers keep their
connections across a module's tests, so a module gets its own Redis (never
flushed under running workers) and the stacks it starts are stopped at module end.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3
from genblaze_core.exceptions import StorageError
from genblaze_core.storage import transfer as core_transfer

from genblaze_s3.local.services import EmbeddedRedis, SeaweedS3, start_redis
from tests.support.cdn import CDNServer
from tests.support.workers import QueueStack, StartStack, start_stack


@pytest.fixture(scope="module")
def module_redis() -> Iterator[EmbeddedRedis]:
    """A private Redis (store + broker) for one test module."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def start_module_stack(
    module_redis: EmbeddedRedis, seaweed: SeaweedS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartStack]:
    """Start a queue stack (API + workers from the Procfile); all are stopped at module end.

    Keyword arguments go to tests.support.workers.start_stack; `redis_url` defaults to
    the module's Redis. A stack with `redis_url=None` gets a Redis of its own.
    """
    started: list[QueueStack] = []
    own_redis: list[EmbeddedRedis] = []

    def start(**kwargs: Any) -> QueueStack:
        redis_url = kwargs.pop("redis_url", module_redis.url)
        if redis_url is None:
            own_redis.append(start_redis())
            redis_url = own_redis[-1].url
        log_dir = kwargs.pop("log_dir", None) or tmp_path_factory.mktemp(
            f"{kwargs.get('queue', 'stack')}-logs"
        )
        s = start_stack(redis_url=redis_url, seaweed=seaweed, log_dir=log_dir, **kwargs)
        started.append(s)
        return s

    try:
        yield start
    finally:
        for s in reversed(started):
            s.stop()
        for r in own_redis:
            r.stop()


@pytest.fixture(scope="module")
def stack(start_module_stack: StartStack) -> QueueStack:
    """API + 2 workers on the module's Redis, default queue."""
    return start_module_stack()


@pytest.fixture(scope="module")
def cdn() -> Iterator[CDNServer]:
    """The test CDN (Range, ETag, slow, truncated, 5xx, expiring, not-ready modes)."""
    with CDNServer() as server:
        yield server


@pytest.fixture
def loopback_fetches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let genblaze-core download from 127.0.0.1 (its SSRF guard refuses loopback).

    Only loopback URLs take the relaxed path; anything else still goes through
    core's pinned, SSRF-checked fetcher.
    """
    original = core_transfer._http_get_stream
    pool = urllib3.PoolManager(retries=False)

    def fetch(url: str, *, timeout: float) -> Any:
        host = urlsplit(url).hostname or ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return original(url, timeout=timeout)
        resp = pool.request("GET", url, preload_content=False, timeout=timeout)
        if resp.status >= 400:
            resp.release_conn()
            raise StorageError(f"HTTP {resp.status} downloading {url}")
        return resp

    monkeypatch.setattr(core_transfer, "_http_get_stream", fetch)
