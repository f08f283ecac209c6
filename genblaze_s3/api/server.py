"""Build the API from the environment (the `web:` entry point)."""

from __future__ import annotations

import redis
from fastapi import FastAPI

from genblaze_s3.api.app import create_app
from genblaze_s3.api.broker import BrokerProbe
from genblaze_s3.api.ratelimit import parse_rate
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import CelerySender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.settings import Settings, load_settings


def app_from_env(config: Settings | None = None) -> FastAPI:
    """The API app factory (the `web:` entry point): settings read once, here."""
    config = config or load_settings()
    burl = config.effective_broker_url
    client = redis.Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=2)
    store = StatusStore(client, retention_seconds=config.retention_seconds)
    service = IngestService(
        store,
        CelerySender(burl),
        config.queue,
        config.destination_policy(),
        SourceSealer(config.secret("source_key")),
        batch_max=config.batch_max,
        tenants=config.tenant_registry(),
        fetch_policy=config.fetch_policy(),
        max_retention_days=config.max_retention_days,
    )
    probe = BrokerProbe(burl, [config.queue])
    # On by default: a leaked or buggy client token must not be able to starve
    # the status store; generous enough for a 500 req/s polling fleet per token.
    rate = parse_rate(config.api_rate_limit)
    return create_app(
        service,
        broker_ping=probe.ping,
        queue_depth=probe.depth,
        queue_stats=probe.stats,
        operators=config.operator_registry(),
        rate_limit=rate,
        max_body_bytes=config.max_body_bytes,
        metrics_token=config.secret("metrics_token"),
    )
