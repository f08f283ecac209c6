"""The queue-facing library side: enqueue runs, track jobs, finalize manifests.

Importing this package never imports Celery (the enqueue seam imports it lazily).
"""

from genblaze_s3.ingest.client.handle import JobHandle, job_handle
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.errors import (
    DestinationNotAllowedError,
    EnqueueError,
    IdempotencyConflictError,
    IngestError,
    InvalidJobError,
    JobNotFoundError,
    JobWaitTimeoutError,
    StoreUnavailableError,
    TooManyJobsError,
)
from genblaze_s3.ingest.models import (
    AssetState,
    DestinationSpec,
    ErrorInfo,
    JobState,
    JobView,
    LockPolicy,
)
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.sink import QueuedStorageSink
from genblaze_s3.ingest.tenants import Tenant, TenantConfigError, TenantRegistry
from genblaze_s3.ingest.worker.refresh import RefreshRequest

__all__ = [
    "AssetState",
    "AsyncIngestClient",
    "IngestClient",
    "DestinationNotAllowedError",
    "DestinationPolicy",
    "DestinationSpec",
    "EnqueueError",
    "ErrorInfo",
    "IdempotencyConflictError",
    "IngestError",
    "InvalidJobError",
    "JobHandle",
    "JobNotFoundError",
    "JobState",
    "JobView",
    "JobWaitTimeoutError",
    "LockPolicy",
    "QueuedStorageSink",
    "RefreshRequest",
    "StatusStore",
    "StoreUnavailableError",
    "Tenant",
    "TenantConfigError",
    "TenantRegistry",
    "TooManyJobsError",
    "job_handle",
]


def __getattr__(name: str) -> object:
    """The HTTP clients import httpx (the `queue` extra) only when first used."""
    if name in {"IngestClient", "AsyncIngestClient"}:
        from genblaze_s3.ingest.client import http as api_client

        return getattr(api_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
