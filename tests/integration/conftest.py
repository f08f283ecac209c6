"""Fixtures the integration tests share: a private Redis per module, the queue stacks
(on Redis or on RabbitMQ), a CDN, a backend on a fresh bucket.

Session-wide services (SeaweedFS, a flushed Redis per test, buckets) are in
tests/conftest.py. Here: what queue tests start per module. Workers keep their
connections across a module's tests, so a module gets its own Redis (never
flushed under running workers) and the stacks it starts are stopped at module end.

A module that needs files on the CDN extends the `cdn` fixture rather than
starting a server of its own::

    @pytest.fixture(scope="module")
    def cdn(cdn: CDNServer) -> CDNServer:
        cdn.add("/v.mp4", DATA, content_type="video/mp4")
        return cdn
"""

from __future__ import annotations

import contextlib
import ipaddress
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3
from genblaze_core.exceptions import StorageError
from genblaze_core.storage import transfer as core_transfer

from genblaze_s3 import S3StorageBackend
from genblaze_s3.local.services import EmbeddedRedis, SeaweedS3, start_redis
from tests.support.cdn import CDNServer
from tests.support.helpers import user_backend
from tests.support.workers import (
    AMQP_URL,
    QueueStack,
    StartStack,
    delete_queue,
    require_rabbitmq,
    start_stack,
)


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
    `tenants` (a tenants file's TOML) makes that file the one source of tokens.
    `after_stop` runs once the stack has stopped (e.g. deleting its RabbitMQ queue).
    """
    with contextlib.ExitStack() as cleanups:  # last started, first stopped; every one runs

        def start(
            *,
            tenants: str | None = None,
            after_stop: Callable[[], None] | None = None,
            **kwargs: Any,
        ) -> QueueStack:
            if tenants is not None:
                conf = tmp_path_factory.mktemp(f"{kwargs.get('queue', 'stack')}-tenants")
                (conf / "tenants.toml").write_text(tenants)
                kwargs["extra_env"] = {
                    **(kwargs.get("extra_env") or {}),
                    "GENBLAZE_API_TOKENS": "",  # the file is the one source of tokens
                    "GENBLAZE_TENANTS_FILE": str(conf / "tenants.toml"),
                }
            redis_url = kwargs.pop("redis_url", module_redis.url)
            if redis_url is None:
                own = start_redis()
                cleanups.callback(own.stop)
                redis_url = own.url
            log_dir = kwargs.pop("log_dir", None) or tmp_path_factory.mktemp(
                f"{kwargs.get('queue', 'stack')}-logs"
            )
            if after_stop is not None:
                cleanups.callback(after_stop)  # also when the stack fails to start
            s = start_stack(redis_url=redis_url, seaweed=seaweed, log_dir=log_dir, **kwargs)
            cleanups.callback(s.stop)
            return s

        yield start


@pytest.fixture(scope="module")
def start_rabbit_stack(start_module_stack: StartStack) -> StartStack:
    """Start a queue stack with RabbitMQ as the broker (Redis stays the store).

    RabbitMQ is shared by every checkout on the machine, so each stack gets a queue
    `<queue_prefix>-<random>` and worker names `<node_prefix><random>-N` of its own
    (a second `w0@host` would collide on Celery's exclusive pidbox queue); the queue
    is deleted once the stack has stopped. Other keywords go to `start_module_stack`
    (`redis_url=None` for a Redis of the stack's own, `tenants`, `extra_env`,
    `n_workers`...). Unreachable RabbitMQ fails the module loudly.
    """
    require_rabbitmq(AMQP_URL)

    def start(
        *, queue_prefix: str = "genblaze-test", node_prefix: str = "w", **kwargs: Any
    ) -> QueueStack:
        tag = uuid.uuid4().hex[:10]
        queue = f"{queue_prefix}-{tag}"
        return start_module_stack(
            broker_url=AMQP_URL,
            queue=queue,
            worker_prefix=f"{node_prefix}{tag}-",
            after_stop=lambda: delete_queue(queue, AMQP_URL),
            **kwargs,
        )

    return start


@pytest.fixture(scope="module")
def stack(start_module_stack: StartStack) -> QueueStack:
    """API + 2 workers on the module's Redis, default queue."""
    return start_module_stack()


@pytest.fixture
def backend(seaweed: SeaweedS3, bucket: str) -> Iterator[S3StorageBackend]:
    """The backend a user builds (the README's defaults) on a fresh bucket, closed after.

    The `bucket` fixture drops the bucket (objects, versions, multipart uploads).
    """
    b = user_backend(seaweed, bucket)
    try:
        yield b
    finally:
        b.close()


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
