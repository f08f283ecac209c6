"""Per-process worker context: Redis, the store, and backends signed with OUR credentials.

Built from the worker's settings (read once by workers/celery_app.py). Credentials
come from the standard AWS variables or B2_KEY_ID / B2_APP_KEY, never from the job.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from genblaze_s3 import runtime
from genblaze_s3.ingest.models import DestinationSpec
from genblaze_s3.ingest.worker.asset_copy import WorkerContext
from workers.celery_app import CONFIG

_backends: dict[tuple[str, str | None, str], Any] = {}
_lock = threading.Lock()


def backend_for(dest: DestinationSpec) -> Any:
    """One S3StorageBackend per (bucket, endpoint, region), reused across tasks; the
    backends of one endpoint and region share one boto3 client (a new bucket costs no
    new client, no new connections)."""
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
                share_client=True,
            )
        return _backends[k]


@cache
def context() -> WorkerContext:
    """What every task needs, built once per process from the worker's settings."""
    return runtime.worker_context(CONFIG, backend_for)
