"""Build the API from the environment (the `web:` entry point)."""

from __future__ import annotations

import os
from collections.abc import Callable

import redis
from fastapi import FastAPI

from genblaze_s3.api.app import create_app
from genblaze_s3.api.auth import parse_tokens
from genblaze_s3.api.ratelimit import parse_rate
from genblaze_s3.ingest import settings
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.enqueue import CelerySender
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.service import IngestService
from genblaze_s3.ingest.status import StatusStore


def _broker_checks(
    broker_url: str, queue: str
) -> tuple[Callable[[], bool], Callable[[], int | None]]:
    """(ping, queue depth) for the broker; depth is known for Redis brokers only."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        client = redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
        return (lambda: bool(client.ping())), (lambda: int(client.llen(queue)))

    def ping() -> bool:
        from kombu import Connection

        with Connection(broker_url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
        return True

    return ping, (lambda: None)


def app_from_env() -> FastAPI:
    """GENBLAZE_REDIS_URL, GENBLAZE_BROKER_URL, GENBLAZE_API_TOKENS, allow-list vars."""
    rurl = settings.redis_url()
    burl = settings.broker_url()
    queue = settings.queue_name()
    client = redis.Redis.from_url(rurl, socket_timeout=5, socket_connect_timeout=2)
    store = StatusStore(client, retention_seconds=settings.retention_seconds())
    sealer = SourceSealer(settings.source_key())
    service = IngestService(
        store,
        CelerySender(burl),
        queue,
        DestinationPolicy.from_env(),
        sealer,
        batch_max=settings.batch_max(),
    )
    ping, depth = _broker_checks(burl, queue)
    tokens = parse_tokens(os.environ.get("GENBLAZE_API_TOKENS", ""))
    # On by default: a leaked or buggy client token must not be able to starve
    # the status store; generous enough for a 500 req/s polling fleet per token.
    rate = parse_rate(os.environ.get("GENBLAZE_API_RATE_LIMIT", "1000/1"))
    return create_app(service, tokens, broker_ping=ping, queue_depth=depth, rate_limit=rate)
