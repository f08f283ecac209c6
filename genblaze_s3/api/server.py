"""Build the API from the environment (the `web:` entry point)."""

from __future__ import annotations

from collections.abc import Callable

import redis
from fastapi import FastAPI

from genblaze_s3 import runtime
from genblaze_s3.api.app import create_app
from genblaze_s3.api.ratelimit import parse_rate
from genblaze_s3.settings import Settings, load_settings


def _broker_checks(
    broker_url: str, queue: str
) -> tuple[Callable[[], bool], Callable[[], int | None]]:
    """(ping, queue depth) for the broker: LLEN of the Redis list, or the message count
    a passive queue.declare answers on RabbitMQ (an absent queue: no depth reported)."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        client = redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
        return (lambda: bool(client.ping())), (lambda: int(client.llen(queue)))

    def ping() -> bool:
        from kombu import Connection

        with Connection(broker_url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
        return True

    def depth() -> int | None:
        """RabbitMQ: a passive declare answers the queue's ready-message count."""
        from kombu import Connection

        with Connection(broker_url, connect_timeout=2) as conn:
            ok = conn.default_channel.queue_declare(queue=queue, passive=True)
        return int(ok.message_count)

    return ping, depth


def app_from_env(config: Settings | None = None) -> FastAPI:
    """The API app factory (the `web:` entry point): settings read once, here."""
    config = config or load_settings()
    burl = config.effective_broker_url
    client = runtime.store_client(config, socket_timeout=5, socket_connect_timeout=2)
    store = runtime.status_store(config, client)
    service = runtime.ingest_service(config, store, runtime.celery_sender(config))
    ping, depth = _broker_checks(burl, config.queue)
    # On by default: a leaked or buggy client token must not be able to starve
    # the status store; generous enough for a 500 req/s polling fleet per token.
    rate = parse_rate(config.api_rate_limit)
    return create_app(
        service,
        broker_ping=ping,
        queue_depth=depth,
        rate_limit=rate,
        max_body_bytes=config.max_body_bytes,
        metrics_token=config.secret("metrics_token"),
    )
