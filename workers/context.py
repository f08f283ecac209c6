"""Per-process worker context: Redis, the store, and backends signed with OUR credentials.

Entry-point code: reads the environment. Credentials come from the standard AWS
variables or B2_KEY_ID / B2_APP_KEY, never from the job.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from typing import Any

import redis

from genblaze_s3.ingest import settings
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.models import DestinationSpec
from genblaze_s3.ingest.process import WorkerContext
from genblaze_s3.ingest.sealing import SourceSealer
from genblaze_s3.ingest.status import StatusStore

_backends: dict[tuple[str, str | None, str], Any] = {}
_lock = threading.Lock()


def _credentials() -> tuple[str | None, str | None]:
    key = os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("B2_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY") or os.environ.get("B2_APP_KEY")
    return key, secret


def backend_for(dest: DestinationSpec) -> Any:
    """One S3StorageBackend per (bucket, endpoint, region), reused across tasks."""
    from genblaze_s3 import S3StorageBackend

    k = (dest.bucket, dest.endpoint_url, dest.region)
    with _lock:
        if k not in _backends:
            key, secret = _credentials()
            _backends[k] = S3StorageBackend(
                dest.bucket,
                endpoint_url=dest.endpoint_url,
                region=dest.region,
                access_key_id=key,
                secret_access_key=secret,
                preflight=False,
            )
        return _backends[k]


# Source-side limits an operator may tune (a slow CDN region; tests that must not wait
# 30 s for a stall). Unset: CopyConfig's defaults.
_COPY_ENV = {
    "GENBLAZE_SOURCE_READ_TIMEOUT": "read_timeout",  # seconds without a byte: source_too_slow
    "GENBLAZE_SOURCE_MIN_RATE": "min_rate",  # bytes/s below which a trickle fails...
    "GENBLAZE_SOURCE_MIN_RATE_GRACE": "min_rate_grace",  # ...once this many seconds passed
    "GENBLAZE_SOURCE_DEADLINE": "total_deadline",  # seconds for a whole download
}


# How a CAS copy with an unknown hash learns its key (CopyConfig.cas_mode): "auto",
# "spool" (a source read once, the body buffered on local disk) or "refetch" (read twice).
_COPY_ENV_STR = {
    "GENBLAZE_CAS_MODE": "cas_mode",
    "GENBLAZE_SPOOL_DIR": "spool_dir",  # where spooled bodies go (default: the temp dir)
}


def copy_config_from_env() -> Any:
    """A CopyConfig with the GENBLAZE_SOURCE_* / _CAS_MODE / _SPOOL_DIR overrides, or None.

    A bad value fails the worker at start-up (ValueError from CopyConfig), not a copy.
    """
    from genblaze_s3.transfer import CopyConfig

    overrides: dict[str, Any] = {
        f: float(os.environ[k]) for k, f in _COPY_ENV.items() if os.environ.get(k)
    }
    overrides.update({f: os.environ[k] for k, f in _COPY_ENV_STR.items() if os.environ.get(k)})
    return CopyConfig(**overrides) if overrides else None


@cache
def context() -> WorkerContext:
    from genblaze_s3.transfer import FetchPolicy

    client = redis.Redis.from_url(settings.redis_url())
    store = StatusStore(client, retention_seconds=settings.retention_seconds())
    return WorkerContext(
        redis=client,
        store=store,
        backend_for=backend_for,
        policy=DestinationPolicy.from_env(),
        fetch_policy=FetchPolicy.from_env(),
        copy_config=copy_config_from_env(),
        lease_ttl_ms=int(os.environ.get("GENBLAZE_LEASE_TTL_MS", "30000")),
        max_attempts=int(os.environ.get("GENBLAZE_MAX_ATTEMPTS", "5")),
        max_retries=int(os.environ.get("GENBLAZE_MAX_RETRIES", "5")),
        sealer=SourceSealer(settings.source_key()),
    )
