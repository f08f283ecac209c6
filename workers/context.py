"""Per-process worker context: Redis, the store, and backends signed with OUR credentials.

Built from the worker's settings (read once by workers/celery_app.py). Credentials
come from the standard AWS variables or B2_KEY_ID / B2_APP_KEY, never from the job.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import redis

from genblaze_s3.ingest.models import DestinationSpec
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.worker.asset_copy import WorkerContext
from workers.celery_app import CONFIG

_backends: dict[tuple[str, str | None, str], Any] = {}
_lock = threading.Lock()


def backend_for(dest: DestinationSpec) -> Any:
    """One S3StorageBackend per (bucket, endpoint, region), reused across tasks."""
    from genblaze_s3 import S3StorageBackend

    k = (dest.bucket, dest.endpoint_url, dest.region)
    with _lock:
        if k not in _backends:
            key, secret = CONFIG.worker_credentials()
            _backends[k] = S3StorageBackend(
                dest.bucket,
                endpoint_url=dest.endpoint_url,
                region=dest.region,
                access_key_id=key,
                secret_access_key=secret,
                preflight=False,
            )
        return _backends[k]


def _refresher(config: Any, sealer: SourceSealer, tenants: Any) -> Any:
    """Fresh source URLs: refresh_url POSTs go through the same SSRF guard as sources and
    are signed with the job's tenant webhook secret, like its webhooks."""
    from genblaze_s3.ingest.worker.refresh import SourceRefresher
    from genblaze_s3.transfer.fetch import pin_url

    fetch_policy = config.fetch_policy()
    return SourceRefresher(
        pin=lambda url: pin_url(url, fetch_policy),
        secret_for=lambda tenant: tenants.get(tenant).webhook_secret,
        ca_bundle=fetch_policy.ca_bundle,
        unseal=sealer.unseal,
    )


@cache
def context() -> WorkerContext:
    """What every task needs, built once per process from the worker's settings."""
    client = redis.Redis.from_url(CONFIG.redis_url)
    store = StatusStore(client, retention_seconds=CONFIG.retention_seconds)
    sealer = SourceSealer(CONFIG.secret("source_key"))
    tenants = CONFIG.tenant_registry()
    return WorkerContext(
        redis=client,
        store=store,
        backend_for=backend_for,
        policy=CONFIG.destination_policy(),
        fetch_policy=CONFIG.fetch_policy(),
        copy_config=CONFIG.copy_config(),
        lease_ttl_ms=CONFIG.lease_ttl_ms,
        max_attempts=CONFIG.max_attempts,
        max_retries=CONFIG.max_retries,
        sealer=sealer,
        slice_seconds=CONFIG.slice_seconds or None,
        tenants=tenants,
        refresher=_refresher(CONFIG, sealer, tenants),
        source_rules=CONFIG.source_rules(),
        signer=CONFIG.manifest_signer(),
    )
