"""Build the API from the environment (the `web:` entry point)."""

from __future__ import annotations

from fastapi import FastAPI

from genblaze_s3 import runtime
from genblaze_s3.api.app import create_app
from genblaze_s3.api.broker import BrokerProbe
from genblaze_s3.api.ratelimit import parse_rate
from genblaze_s3.settings import Settings, load_settings


def app_from_env(config: Settings | None = None) -> FastAPI:
    """The API app factory (the `web:` entry point): settings read once, here."""
    config = config or load_settings()
    burl = config.effective_broker_url
    client = runtime.store_client(config, socket_timeout=5, socket_connect_timeout=2)
    store = runtime.status_store(config, client)
    service = runtime.ingest_service(config, store, runtime.celery_sender(config))
    probe = BrokerProbe(burl, [config.queue])
    # On by default: a leaked or buggy client token must not be able to starve
    # the status store; generous enough for a 500 req/s polling fleet per token.
    rate = parse_rate(config.api_rate_limit)
    return create_app(
        service,
        broker_ping=probe.ping,
        queue_depth=probe.depth,
        queue_stats=probe.stats,
        operators=runtime.operator_registry(config),
        rate_limit=rate,
        max_body_bytes=config.max_body_bytes,
        metrics_token=config.secret("metrics_token"),
    )
