"""QueuedStorageSink: a genblaze sink that enqueues the copy instead of doing it.

Why: provider CDN URLs expire within hours and video is large; a pipeline (or a
web request) should hand its run to durable workers in milliseconds, not block
for a multi-GB copy. The resulting bucket layout and manifest are exactly what
genblaze-core's inline `ObjectStorageSink` would have written.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from genblaze_core.exceptions import SinkError
from genblaze_core.sinks.base import BaseSink
from genblaze_core.storage.base import KeyStrategy
from genblaze_core.storage.sink import ObjectStorageSink

from genblaze_s3.ingest.client.handle import JobHandle, StoreSource
from genblaze_s3.ingest.destinations import DestinationPolicy
from genblaze_s3.ingest.errors import IngestError
from genblaze_s3.ingest.models import DestinationSpec, LockPolicy
from genblaze_s3.ingest.store.status import StatusStore
from genblaze_s3.ingest.submit.enqueue import CelerySender, TaskSender
from genblaze_s3.ingest.submit.service import IngestService
from genblaze_s3.ingest.submit.submission import build_submission
from genblaze_s3.ingest.tenants import TenantRegistry
from genblaze_s3.settings import Settings, load_settings

if TYPE_CHECKING:
    from genblaze_core.models.manifest import Manifest
    from genblaze_core.models.run import Run
    from genblaze_core.storage.base import ObjectLockConfig, StorageBackend

logger = logging.getLogger("genblaze_s3.ingest")


def destination_of(backend: Any, prefix: str, key_strategy: KeyStrategy) -> DestinationSpec:
    """Name the backend's bucket/endpoint/region; its credentials stay behind."""
    return DestinationSpec(
        bucket=backend.bucket,
        endpoint_url=getattr(backend, "endpoint_url", None),
        region=getattr(backend, "region", None) or "us-east-1",
        prefix=prefix,
        key_strategy=KeyStrategy(key_strategy).value,
    )


class QueuedStorageSink(BaseSink):
    """Enqueue a run's assets for the workers; `last_job` tracks the latest job."""

    def __init__(
        self,
        backend: StorageBackend,
        *,
        prefix: str = "genblaze",
        key_strategy: KeyStrategy = KeyStrategy.CONTENT_ADDRESSABLE,
        manifest_lock: ObjectLockConfig | None = None,
        redis_url: str | None = None,
        broker_url: str | None = None,
        queue: str | None = None,
        notify_url: str | None = None,
        tenant: str | None = None,
        store: StatusStore | None = None,
        sender: TaskSender | None = None,
        destination_policy: DestinationPolicy | None = None,
        settings: Settings | None = None,
        tenants: TenantRegistry | None = None,
        source_refresher: str | None = None,
        refresh_url: str | None = None,
        source_ready_within: float | None = None,
    ) -> None:
        """Layout options match ObjectStorageSink; the rest configure the queue.

        `source_refresher` ("package.module:function", importable on the workers)
        is called with a `genblaze_s3.ingest.RefreshRequest` when a source
        URL expires or is refused, and returns a fresh URL or None; `refresh_url`
        is the HTTP form of the same. `source_ready_within`: seconds after submit
        during which a source's 404 means "not ready yet" (the asset waits).

        `store` / `sender` / `destination_policy` / `tenants` are injection points
        for tests and embedding; by default they come from `redis_url` / `broker_url`
        / `queue` or the settings (`settings`, else read from the environment here,
        once: GENBLAZE_REDIS_URL, GENBLAZE_BROKER_URL, GENBLAZE_QUEUE, the
        allow-lists, GENBLAZE_TENANTS_FILE / GENBLAZE_API_TOKENS...). A sink obeys
        the same tenant rules as the HTTP API: its prefix is placed under the
        tenant's root (none configured: today's layout).
        """
        import redis

        config = settings or load_settings()
        self._backend = backend
        self._key_strategy = KeyStrategy(key_strategy)
        self._lock = (
            LockPolicy(mode=manifest_lock.mode, retain_until=manifest_lock.retain_until)
            if manifest_lock is not None
            else None
        )
        self._notify_url = notify_url
        self._source_refresher = source_refresher
        self._refresh_url = refresh_url
        self._source_ready_within = source_ready_within
        self._tenant = tenant or "default"
        rurl = redis_url or config.redis_url
        self._store = store or StatusStore.from_settings(config, redis.Redis.from_url(rurl))
        self._owns_sender = sender is None
        self._sender = sender or CelerySender(
            broker_url or config.broker_url or rurl, visibility_timeout=config.visibility_timeout
        )
        self._service = IngestService.from_settings(
            config,
            self._store,
            self._sender,
            queue=queue,
            policy=destination_policy,
            tenants=tenants,
        )
        self._destination = destination_of(backend, prefix, self._key_strategy)
        self._layout: ObjectStorageSink | None = None
        self.last_job: JobHandle | None = None

    @property
    def store(self) -> StatusStore:
        return self._store

    def manifest_key_for(self, run: Run) -> str:
        """Where the workers will write this run's manifest: genblaze-core's own rule
        (the `ObjectStorageSink` finalize writes through), never re-derived here, with
        the prefix placed under the tenant's root (DestinationNotAllowedError if the
        destination is not the tenant's)."""
        if self._layout is None:
            # Only its key layout is used: the manifest is written by finalize, in a worker.
            placed = self._service.place(self._tenant, self._destination)
            self._layout = ObjectStorageSink(
                self._backend, prefix=placed.prefix, key_strategy=self._key_strategy
            )
        return self._layout.manifest_key_for(run)

    def write_run(self, run: Run, manifest: Manifest) -> None:
        """Validate, record and enqueue; returns without downloading anything.

        Raises SinkError (genblaze's sink contract) wrapping the typed
        IngestError, e.g. DestinationNotAllowedError or InvalidJobError.
        """
        try:
            sub = build_submission(
                manifest,
                self._destination,
                tenant=self._tenant,
                manifest_lock=self._lock,
                notify_url=self._notify_url,
                refresh_url=self._refresh_url,
                source_refresher=self._source_refresher,
                source_ready_within=self._source_ready_within,
            )
            job_id, _ = self._service.submit(sub)
        except IngestError as exc:
            raise SinkError(f"QueuedStorageSink refused run {run.run_id}: {exc}") from exc
        self.last_job = JobHandle(job_id, StoreSource(self._store))
        manifest.manifest_uri = self._backend.get_durable_url(self.manifest_key_for(manifest.run))
        logger.info("run %s enqueued as job %s", run.run_id, job_id)

    def close(self) -> None:
        """Close the broker producer; the backend is the caller's (jobs outlive us)."""
        if self._owns_sender:
            self._sender.close()
